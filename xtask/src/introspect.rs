//! What the compiled SDK says about the spec: checks 3 (examples) and 4
//! (types) ask the generated types themselves, and nothing else in xtask
//! needs the SDK built.
//!
//! xtask does not link `nexhealth-api`: the SDK is a dev-dependency, compiled
//! only into the `introspect` example (`src/introspect_sdk.rs`). `check` builds
//! and runs that example as a separate process ([`Sdk`]), sends it the spec's
//! examples as JSON on its stdin and reads the answers on its stdout. So
//! `cargo xtask upstream`, `published-facts`, `new-operation`, `generate` and
//! `--help` build and run from the spec files alone, even while the SDK does
//! not compile; `check` reports such a build as a problem with rustc's words.
//!
//! The same [`Compiled`] trait is answered in process by [`Registry`], which
//! xtask's tests use with types of their own fixtures.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One component schema and the compiled type generated for it.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The schema's name in the spec (and the type's name in `types`).
    pub name: &'static str,
    /// Decodes a JSON value into the type and encodes it again.
    pub roundtrip: fn(&Value) -> Result<Value, String>,
    /// The type's JSON Schema (OpenAPI 3.0 flavour), as JSON.
    pub json_schema: fn() -> Value,
}

/// What `check` asks the compiled types.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Request {
    /// `(schema name, example)`: decode each example into the schema's type
    /// and encode it again.
    pub examples: Vec<(String, Value)>,
}

/// What the compiled types answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Answer {
    /// Every compiled type by schema name, with its JSON Schema.
    pub types: BTreeMap<String, Value>,
    /// One per requested example, in order: `None` when no type has that
    /// name, else the value after the round trip or why it did not decode.
    pub roundtrips: Vec<Option<Result<Value, String>>>,
}

/// Why the compiled types could not answer: a problem to report, with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// Where it happened (`(build)`, `(target directory)`).
    pub place: String,
    /// What happened.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// Something that answers for the compiled types.
pub trait Compiled {
    /// Answers `request`, or says why it cannot.
    fn answer(&self, request: &Request) -> Result<Answer, Unavailable>;
}

/// The compiled types of this process, as a list of entries.
pub struct Registry(pub Vec<Entry>);

impl Compiled for Registry {
    fn answer(&self, request: &Request) -> Result<Answer, Unavailable> {
        Ok(answer(&self.0, request))
    }
}

/// Answers `request` from `entries`.
pub fn answer(entries: &[Entry], request: &Request) -> Answer {
    Answer {
        types: entries
            .iter()
            .map(|e| (e.name.to_string(), (e.json_schema)()))
            .collect(),
        roundtrips: request
            .examples
            .iter()
            .map(|(name, example)| {
                entries
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| (e.roundtrip)(example))
            })
            .collect(),
    }
}

/// The example's side: reads a [`Request`] on stdin, writes the [`Answer`] on
/// stdout. Exit 0 when answered, 2 when the request is not readable.
pub fn serve(entries: &[Entry]) -> std::process::ExitCode {
    let mut input = String::new();
    let request = std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str::<Request>(&input).map_err(|e| e.to_string()));
    match request {
        Ok(request) => {
            let out = serde_json::to_string(&answer(entries, &request)).expect("serializable");
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(out.as_bytes()).is_err() || stdout.flush().is_err() {
                return std::process::ExitCode::from(2);
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("introspect: the request is not readable: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The SDK of the checkout at `workspace`, built (`cargo build -p xtask
/// --example introspect`, with the `codegen` feature, so the build script
/// generates the client from the checkout's spec as it is now) and run.
#[derive(Debug, Clone)]
pub struct Sdk {
    /// The checkout's root.
    pub workspace: PathBuf,
}

impl Sdk {
    /// The SDK of the checkout at `workspace`.
    pub fn of(workspace: &Path) -> Self {
        Self {
            workspace: workspace.to_path_buf(),
        }
    }

    /// Builds the example; returns the executable's path.
    fn build(&self) -> Result<PathBuf, Unavailable> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "xtask",
                "--example",
                "introspect",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(&self.workspace)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Unavailable {
                place: "(build)".into(),
                message: format!("cargo could not be started: {e}"),
                fix: "run `cargo xtask check` through cargo, with cargo on the PATH".into(),
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let executable = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| {
                m.get("reason").and_then(Value::as_str) == Some("compiler-artifact")
                    && m.pointer("/target/name").and_then(Value::as_str) == Some("introspect")
            })
            .find_map(|m| m.get("executable")?.as_str().map(PathBuf::from));
        match executable {
            Some(exe) if out.status.success() => Ok(exe),
            _ => Err(Unavailable {
                place: "(build)".into(),
                message: format!(
                    "the SDK does not compile, so its types cannot be compared with the spec \
                     (`cargo build -p xtask --example introspect`):\n{}",
                    tail(&String::from_utf8_lossy(&out.stderr), 60)
                ),
                fix: "fix the first error above (an error in nexhealth-api/generated code means \
                      the spec or the generator settings in openapi/src), then run `cargo xtask \
                      check` again"
                    .into(),
            }),
        }
    }
}

impl Compiled for Sdk {
    fn answer(&self, request: &Request) -> Result<Answer, Unavailable> {
        let exe = self.build()?;
        if let Some(target) = target_dir_of(&exe) {
            shared_target(&target, &self.workspace)?;
        }
        let unavailable = |message: String| Unavailable {
            place: "(introspect)".into(),
            message,
            fix: "a defect of xtask's `introspect` example (xtask/src/introspect_sdk.rs): run it \
                  by hand to see it fail"
                .into(),
        };
        let mut child = Command::new(&exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| unavailable(format!("{}: {e}", exe.display())))?;
        let input = serde_json::to_vec(request).expect("serializable");
        let mut stdin = child.stdin.take().expect("piped");
        // Written from a thread: the answer may fill the pipe before the
        // request is read to its end.
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child
            .wait_with_output()
            .map_err(|e| unavailable(format!("{}: {e}", exe.display())))?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(unavailable(format!(
                "{} exited with {}: {}",
                exe.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            unavailable(format!(
                "{}: its answer is not readable: {e}",
                exe.display()
            ))
        })
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// The target directory an executable was built in: the nearest folder above
/// it that holds Cargo's `CACHEDIR.TAG`.
pub fn target_dir_of(executable: &Path) -> Option<PathBuf> {
    executable
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}

/// The file in a target directory that lists the checkouts xtask ran for with
/// it: one line per checkout, `<target directory>\t<checkout>`.
pub const MARKER: &str = "nexhealth-xtask-checkouts";

/// Records that `checkout` builds in `target`, and fails when another
/// checkout, still there, built in the same target directory: a target
/// directory shared between checkouts (one `CARGO_TARGET_DIR` for both).
///
/// Cargo decides whether the build script must run again by comparing file
/// times, so a build in one checkout can leave the client generated from the
/// other's spec in place: `check` would compare code from the other spec, and
/// no rebuild fixes it. A copy of a target directory (a checkout copied with
/// its `target/`) is not shared: its lines name the directory it was copied
/// from, and are dropped.
pub fn shared_target(target: &Path, checkout: &Path) -> Result<(), Unavailable> {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let (target, checkout) = (canonical(target), canonical(checkout));
    let marker = target.join(MARKER);
    let text = std::fs::read_to_string(&marker).unwrap_or_default();
    let mut others = Vec::new();
    let mut kept = Vec::new();
    for line in text.lines() {
        let Some((dir, other)) = line.split_once('\t') else {
            continue;
        };
        let other = PathBuf::from(other);
        // Lines copied with the directory, or of checkouts since removed.
        if Path::new(dir) != target || !crate::root::is_checkout(&other) {
            continue;
        }
        if other != checkout {
            others.push(other);
        }
        kept.push(line.to_string());
    }
    let own = format!("{}\t{}", target.display(), checkout.display());
    if !kept.contains(&own) {
        kept.push(own);
    }
    let _ = std::fs::write(&marker, kept.join("\n") + "\n");
    if others.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
    let how = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => format!(" (CARGO_TARGET_DIR={})", PathBuf::from(dir).display()),
        None => String::new(),
    };
    Err(Unavailable {
        place: "(target directory)".into(),
        message: format!(
            "the target directory {}{how} is shared with the checkout at {}: Cargo decides \
             whether the build script runs again by file times, so the compiled SDK may hold \
             the client generated from that checkout's spec, and rebuilding does not change \
             that; the types are not compared",
            target.display(),
            names.join(" and ")
        ),
        fix: format!(
            "give this checkout a target directory of its own (unset CARGO_TARGET_DIR, or point \
             it at a directory no other checkout uses), then run `cargo xtask check` again; if \
             the other checkout no longer builds there, delete {}",
            marker.display()
        ),
    })
}
