//! xtask's command line, from the outside: `--help` changes nothing, `help`
//! is a subcommand like the others, and a copied checkout that reuses the
//! original's build acts on itself only.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::copy_of_the_workspace;

const SUBCOMMANDS: [&str; 10] = [
    "help",
    "generate",
    "check",
    "quick",
    "new-operation",
    "upstream",
    "published-facts",
    "package-check",
    "build-cost",
    "bench-report",
];

fn repo() -> PathBuf {
    xtask::root::find().unwrap()
}

fn git_status(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(dir)
        .output()
        .expect("git is installed");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir` with its bytes, for "nothing was written" checks
/// where git cannot see (ignored files).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn help_on_every_subcommand_prints_usage_and_changes_nothing() {
    let repo = repo();
    let status = git_status(&repo);
    let generated = snapshot(&repo.join("nexhealth-api").join("generated"));
    let tests = snapshot(&repo.join("tests").join("tests"));
    for sub in SUBCOMMANDS {
        for help in ["--help", "-h"] {
            let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
                .args([sub, help])
                .current_dir(&repo)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{sub} {help}: {out:?}");
            assert!(text.contains("Usage: cargo xtask"), "{sub} {help}: {text}");
            assert!(text.contains("Exit codes"), "{sub} {help}: {text}");
        }
    }
    // Bad usage is exit 2, and also touches nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["generate", "--no-such-flag"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(git_status(&repo), status, "--help changed the checkout");
    assert_eq!(
        snapshot(&repo.join("nexhealth-api").join("generated")),
        generated
    );
    assert_eq!(snapshot(&repo.join("tests").join("tests")), tests);
}

/// `help` takes `--help` like every subcommand, and `help COMMAND` prints that
/// command's usage; it needs no checkout.
#[test]
fn help_is_a_subcommand_that_takes_help() {
    let scratch = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .current_dir(scratch.path())
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap()
    };
    let out = run(&["help", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text.contains("Usage: cargo xtask help [COMMAND]"), "{text}");
    let out = run(&["help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for sub in SUBCOMMANDS {
        assert!(text.contains(sub), "{sub} not in:\n{text}");
    }
    let out = run(&["help", "upstream"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text.contains("Usage: cargo xtask upstream"), "{text}");
    assert_eq!(
        String::from_utf8_lossy(&run(&["upstream", "--help"]).stdout),
        text
    );
    assert_eq!(run(&["help", "no-such-command"]).status.code(), Some(2));
}

#[test]
fn outside_any_checkout_xtask_refuses_with_exit_2() {
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("check")
        .current_dir(scratch.path())
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside a nexhealth-api checkout"));
}

fn cargo_xtask(dir: &Path, target: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .arg("xtask")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap()
}

/// Adds a nullable `fax_number` to the first component schema of `spec` that
/// has properties, whatever the spec holds today; returns the schema's name.
fn add_a_field(spec: &Path) -> String {
    let text = std::fs::read_to_string(spec).unwrap();
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let schemas = doc["components"]["schemas"].as_mapping_mut().unwrap();
    let (name, schema) = schemas
        .iter_mut()
        .find(|(_, s)| s.get("properties").is_some_and(|p| p.is_mapping()))
        .expect("a component schema with properties");
    let name = name.as_str().unwrap().to_string();
    let properties = schema["properties"].as_mapping_mut().unwrap();
    assert!(!properties.contains_key("fax_number"));
    properties.insert(
        "fax_number".into(),
        serde_yaml::from_str("{type: string, nullable: true, description: Fax number.}").unwrap(),
    );
    std::fs::write(spec, serde_yaml::to_string(&doc).unwrap()).unwrap();
    name
}

/// The false green of a copied checkout: the copy reuses a build made in the
/// original (one target directory for both, as a copied `target/` would be),
/// its spec is edited, and `check` and `generate` act on the copy alone.
#[test]
fn a_copied_checkout_with_the_original_build_checks_and_generates_itself() {
    let original = repo();
    let target = original.join("target").join("copied-checkout");
    // The original's build of xtask and of the SDK that `check` runs.
    let built = Command::new(env!("CARGO"))
        .args([
            "build",
            "--offline",
            "--locked",
            "-p",
            "xtask",
            "--bins",
            "--example",
            "introspect",
        ])
        .current_dir(&original)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(built.success());

    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("checkout");
    copy_of_the_workspace(&original, &copy);
    let spec = copy.join("openapi").join("nexhealth.yaml");
    add_a_field(&spec);
    let original_generated = snapshot(&original.join("nexhealth-api").join("generated"));
    let original_spec = std::fs::read(original.join("openapi").join("nexhealth.yaml")).unwrap();

    let check = cargo_xtask(&copy, &target, &["check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("checking the checkout at {}", copy.display())),
        "{stdout}"
    );
    assert!(stderr.contains("[2 drift]"), "{stderr}");
    assert!(stderr.contains("fax_number"), "{stderr}");

    // A build without `codegen` (what a registry user's build is) refuses the
    // copy's checked-in code, now stale against its spec.
    let stale = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--locked", "-p", "nexhealth-api"])
        .current_dir(&copy)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    let stale_err = String::from_utf8_lossy(&stale.stderr);
    assert!(!stale.status.success(), "{stale_err}");
    assert!(stale_err.contains("it is stale"), "{stale_err}");
    assert!(stale_err.contains("cargo xtask generate"), "{stale_err}");

    let generate = cargo_xtask(&copy, &target, &["generate"]);
    assert_eq!(generate.status.code(), Some(0), "{generate:?}");
    let wrote = String::from_utf8_lossy(&generate.stdout);
    assert!(
        wrote
            .lines()
            .all(|l| l.contains(&copy.display().to_string())),
        "{wrote}"
    );
    let client = std::fs::read_to_string(
        copy.join("nexhealth-api")
            .join("generated")
            .join("generated_client.rs"),
    )
    .unwrap();
    assert!(client.contains("fax_number"));

    let check = cargo_xtask(&copy, &target, &["check"]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");

    // The original is untouched.
    assert_eq!(
        snapshot(&original.join("nexhealth-api").join("generated")),
        original_generated
    );
    assert_eq!(
        std::fs::read(original.join("openapi").join("nexhealth.yaml")).unwrap(),
        original_spec
    );
}
