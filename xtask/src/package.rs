//! `cargo xtask package-check`: the crates as a registry would serve them.
//!
//! Packages every publishable member of the workspace with one `cargo package`
//! (which also builds each package on its own, as `cargo publish` would),
//! extracts the `.crate` files into an empty directory outside the workspace,
//! and builds three scratch consumers that depend on `nexhealth-api` by version
//! with `[patch.crates-io]` standing in for the registry: default features,
//! `default-features = false`, `features = ["mock"]`, the `rustls-ring`
//! TLS feature and the `redis` feature. The `mock` consumer serves the stand-in server; the others
//! call it over loopback, each after building a `reqwest::Client` of its own
//! from a reqwest dependency without TLS features (adding the SDK to a service
//! must not make the service's own client panic).
//!
//! Each consumer is its own workspace, so Cargo cannot unify their features.
//! They start from this workspace's `Cargo.lock` and build `--offline`: what
//! the workspace's own build downloaded is all they may use.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What to package and where to build.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workspace root (the folder of its `Cargo.toml`).
    pub workspace: PathBuf,
    /// Cargo's target directory for packaging and the consumers; shared
    /// between runs so that dependencies compile once.
    pub target_dir: PathBuf,
    /// Passes `--allow-dirty` to `cargo package` (for a tree with uncommitted
    /// changes or no VCS at all; CI packages a clean clone without it).
    pub allow_dirty: bool,
}

impl Options {
    /// The checkout xtask stands in, building in `target/package-check`.
    pub fn repo() -> Result<Self, String> {
        crate::root::find().map(|root| Self::of(&root))
    }

    /// The checkout at `workspace`, building in its `target/package-check`.
    pub fn of(workspace: &Path) -> Self {
        Self {
            target_dir: workspace.join("target").join("package-check"),
            workspace: workspace.to_path_buf(),
            allow_dirty: false,
        }
    }
}

/// What a successful check saw.
#[derive(Debug, Clone)]
pub struct Report {
    /// `name-version` of each packaged crate, with its file count.
    pub packages: Vec<(String, usize)>,
    /// One line per consumer set-up: its name and what it printed.
    pub consumers: Vec<(&'static str, String)>,
    /// Wall time of the whole check.
    pub elapsed: Duration,
}

/// One consumer set-up.
struct Setup {
    name: &'static str,
    dependency: &'static str,
    /// What the service runs before it builds its own `reqwest::Client`.
    prelude: &'static str,
}

const SETUPS: [Setup; 5] = [
    Setup {
        name: "mock",
        dependency: r#"{ version = "=VERSION", features = ["mock"] }"#,
        prelude: "",
    },
    Setup {
        name: "default",
        dependency: r#"{ version = "=VERSION" }"#,
        prelude: "",
    },
    Setup {
        name: "no-default",
        dependency: r#"{ version = "=VERSION", default-features = false }"#,
        prelude: "",
    },
    // The ring provider leaves reqwest without one of its own: the service
    // does what the feature's documentation tells it to.
    Setup {
        name: "ring",
        dependency: r#"{ version = "=VERSION", default-features = false, features = ["codegen", "rustls-ring"] }"#,
        prelude: "nexhealth_api::ensure_crypto_provider();",
    },
    // The shared rate limit's feature, from the package.
    Setup {
        name: "redis",
        dependency: r#"{ version = "=VERSION", features = ["redis"] }"#,
        prelude: "let _shared = nexhealth_api::RedisRateLimit::new(\"redis://127.0.0.1:1/\").fallback_share(0.5);",
    },
];

/// The consumer of the other set-ups: a service with its own reqwest
/// dependency (no TLS feature of its own), which builds its own client first,
/// then an SDK client against the URL given: three operations, one line of
/// what came back.
const CALLER: &str = r#"//! A service that took nexhealth-api from a registry.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    PRELUDE
    // The service's own reqwest client, for its internal calls, built before
    // the SDK's: adding nexhealth-api must not make this panic.
    let internal = reqwest::Client::new();
    drop(internal);
    // Key and base URL from NEXHEALTH_API_KEY and NEXHEALTH_BASE_URL, and
    // still configurable: what a service's start-up does.
    let client = nexhealth_api::ClientBuilder::from_env()?
        .rate_limit(nexhealth_api::RateLimit::NEXHEALTH_DEFAULT.divided_among(2))
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let institutions = client.get_institutions().await?;
    let locations = client.get_locations().await?;
    let syncs = client.get_sync_status().await?;
    let count: usize = locations.iter().map(|i| i.locations.len()).sum();
    // A health endpoint's answer, without mapping the SDK's types by hand.
    let report = client.sync_health(None).await?;
    let health = nexhealth_api::serde_json::to_value(&report)?;
    let readiness: Vec<&str> = health["syncs"]
        .as_array()
        .ok_or("no syncs array")?
        .iter()
        .filter_map(|s| s["write_readiness"].as_str())
        .collect();
    println!(
        "consumer ok: {} institution(s), {} location(s), {} sync(s), write readiness {:?}",
        institutions.len(),
        count,
        syncs.len(),
        readiness
    );
    Ok(())
}
"#;

/// The consumer of the `mock` set-up: checks itself against the stand-in,
/// then serves it until standard input closes.
const SERVER: &str = r#"//! A service's test support that took nexhealth-api from a registry.
use std::io::BufRead;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stand_in = nexhealth_api::mock::StandIn::start().await;
    let client = nexhealth_api::Client::builder("consumer-key").base_url(stand_in.base_url()).build()?;
    let locations = client.get_locations().subdomain("example-subdomain").await?;
    let first = &locations[0].locations[0];
    assert_eq!(first.id, nexhealth_api::mock::payloads::locations().data[0].locations[0].id);
    println!("serving {}", stand_in.base_url());
    // Serve until the parent closes our standard input.
    tokio::task::spawn_blocking(|| {
        for _ in std::io::stdin().lock().lines() {}
    })
    .await?;
    Ok(())
}
"#;

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `command`; on failure returns its standard error, last lines first named.
fn run(mut command: Command, what: &str) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{what} failed ({}):\n{}",
        output.status,
        tail.join("\n")
    ))
}

/// The workspace members that are meant for users: `publish` not set to false.
pub fn publishable(workspace: &Path) -> Result<Vec<(String, String)>, String> {
    let mut command = cargo();
    command
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    let text = run(command, "cargo metadata")?;
    let metadata: Value =
        serde_json::from_str(&text).map_err(|e| format!("cargo metadata: {e}"))?;
    let members = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    Ok(members
        .iter()
        // `publish` is null when any registry may take the crate, `[]` when none.
        .filter(|p| !p["publish"].as_array().is_some_and(Vec::is_empty))
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_string(),
                p["version"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Packages, extracts, builds the consumers and runs them. Any failure comes
/// back as the step that failed and Cargo's own words.
pub fn check(options: &Options) -> Result<Report, String> {
    let started = Instant::now();
    let crates = publishable(&options.workspace)?;
    let api = crates
        .iter()
        .find(|(name, _)| name == "nexhealth-api")
        .ok_or("nexhealth-api is not publishable (publish = false?)")?;
    let version = api.1.clone();

    clear_unpacked(&crates);
    // Cargo takes a registry crate's version as its identity and would reuse
    // what an earlier run compiled for the same version; ours change between
    // runs, so their artifacts go (the dependencies' stay).
    let mut clean = cargo();
    clean
        .arg("clean")
        .arg("--manifest-path")
        .arg(options.workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&options.target_dir);
    for (name, _) in &crates {
        clean.args(["-p", name]);
    }
    run(clean, "cargo clean")?;
    let mut package = cargo();
    package
        .arg("package")
        .arg("--manifest-path")
        .arg(options.workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &options.target_dir);
    for (name, _) in &crates {
        package.args(["-p", name]);
    }
    if options.allow_dirty {
        package.arg("--allow-dirty");
    }
    run(package, "cargo package")?;

    let scratch = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let unpacked = scratch.path().join("registry");
    std::fs::create_dir_all(&unpacked).map_err(|e| e.to_string())?;
    let mut packages = Vec::new();
    for (name, version) in &crates {
        let file = options
            .target_dir
            .join("package")
            .join(format!("{name}-{version}.crate"));
        let mut tar = Command::new("tar");
        tar.arg("xzf").arg(&file).arg("-C").arg(&unpacked);
        run(tar, &format!("extracting {}", file.display()))?;
        let root = unpacked.join(format!("{name}-{version}"));
        // Apache-2.0 asks that its text travel with the work.
        for license in ["LICENSE-MIT", "LICENSE-APACHE"] {
            if !root.join(license).is_file() {
                return Err(format!(
                    "the {name} package carries no {license}: add it to the package (a symlink to \
                     the root's copy, and the `include` list if the manifest has one)"
                ));
            }
        }
        let files = count_files(&root);
        packages.push((format!("{name}-{version}"), files));
    }

    let lock = std::fs::read_to_string(options.workspace.join("Cargo.lock"))
        .map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut consumers = Vec::new();
    let mut dirs = Vec::new();
    for setup in &SETUPS {
        let dir = scratch.path().join(format!("consumer-{}", setup.name));
        write_consumer(&dir, setup, &version, &crates, &unpacked, &lock)?;
        let mut build = cargo();
        build
            .args(["build", "--offline", "--quiet"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &options.target_dir);
        run(build, &format!("building the `{}` consumer", setup.name))?;
        check_generator(&dir, setup)?;
        dirs.push((setup.name, dir));
    }

    let binary = |name: &str| {
        options
            .target_dir
            .join("debug")
            .join(format!("consumer-{name}"))
    };
    let server = Server::start(&binary("mock"))?;
    consumers.push(("mock", server.line.clone()));
    let url = server
        .line
        .strip_prefix("serving ")
        .ok_or_else(|| format!("the mock consumer printed {:?}", server.line))?
        .to_string();
    for (name, _) in dirs.iter().filter(|(name, _)| *name != "mock") {
        let mut call = Command::new(binary(name));
        call.env("NEXHEALTH_API_KEY", "consumer-key")
            .env("NEXHEALTH_BASE_URL", &url);
        let out = run(call, &format!("running the `{name}` consumer"))?;
        let line = out.lines().last().unwrap_or_default().to_string();
        if !line.starts_with("consumer ok:") {
            return Err(format!("the `{name}` consumer printed {line:?}"));
        }
        consumers.push((name, line));
    }
    server.stop();
    Ok(Report {
        packages,
        consumers,
        elapsed: started.elapsed(),
    })
}

/// `cargo package` verifies each crate against the others through a local
/// registry whose sources Cargo unpacks under `$CARGO_HOME/registry/src/-<hash>/`
/// and, for the same name and version, never unpacks again: a second run
/// would verify against the first run's sources. Those copies are removed
/// first (only local registries' copies of our own crates).
fn clear_unpacked(crates: &[(String, String)]) {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(src) else {
        return;
    };
    for registry in registries.flatten() {
        // crates.io's folder is `index.crates.io-…`; local registries' start with `-`.
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for (name, version) in crates {
            let unpacked = registry.path().join(format!("{name}-{version}"));
            if unpacked.is_dir() {
                let _ = std::fs::remove_dir_all(unpacked);
            }
        }
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count_files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A registry user's build holds no code generator unless it asks for
/// `codegen`: `cargo tree -e normal,build` of the consumer names progenitor
/// and typify exactly when the set-up enables the feature.
fn check_generator(dir: &Path, setup: &Setup) -> Result<(), String> {
    let mut tree = cargo();
    tree.args([
        "tree",
        "--offline",
        "-e",
        "normal,build",
        "--prefix",
        "none",
    ])
    .current_dir(dir);
    let out = run(
        tree,
        &format!("`cargo tree` of the `{}` consumer", setup.name),
    )?;
    let generators: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("progenitor v") || l.starts_with("typify v"))
        .collect();
    let wants = setup.dependency.contains("\"codegen\"");
    match (wants, generators.is_empty()) {
        (false, false) => Err(format!(
            "the `{}` consumer builds the code generator without asking for `codegen`: {generators:?}",
            setup.name
        )),
        (true, true) => Err(format!(
            "the `{}` consumer asks for `codegen` but `cargo tree` shows no progenitor: is the check broken?",
            setup.name
        )),
        _ => Ok(()),
    }
}

fn write_consumer(
    dir: &Path,
    setup: &Setup,
    version: &str,
    crates: &[(String, String)],
    unpacked: &Path,
    lock: &str,
) -> Result<(), String> {
    let patches: Vec<String> = crates
        .iter()
        .map(|(name, v)| {
            let path = unpacked.join(format!("{name}-{v}"));
            format!("{name} = {{ path = {:?} }}", path.display().to_string())
        })
        .collect();
    let manifest = format!(
        "[package]\nname = \"consumer-{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nnexhealth-api = {dependency}\ntokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n\
         reqwest = {{ version = \"0.13\", default-features = false, features = [\"json\"] }}\n\n\
         [patch.crates-io]\n{patches}\n\n[workspace]\n",
        name = setup.name,
        dependency = setup.dependency.replace("VERSION", version),
        patches = patches.join("\n"),
    );
    let main = if setup.name == "mock" {
        SERVER.to_string()
    } else {
        CALLER.replace("PRELUDE", setup.prelude)
    };
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    write(dir.join("Cargo.toml"), &manifest)?;
    write(dir.join("src").join("main.rs"), &main)?;
    write(dir.join("Cargo.lock"), lock)?;
    Ok(())
}

/// The `mock` consumer serving the stand-in until its standard input closes.
struct Server {
    child: Child,
    line: String,
}

impl Server {
    fn start(binary: &Path) -> Result<Self, String> {
        let mut child = Command::new(binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let line = line.trim().to_string();
        if read.is_err() || line.is_empty() {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(format!(
                "the `mock` consumer failed before serving ({status})"
            ));
        }
        Ok(Self { child, line })
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
