//! `cargo xtask quick`, the inner loop, run in a checkout made of fixtures
//! with a fixture cargo (`tests/fixtures/quick/cargo.sh`) that logs what it
//! is asked, answers `cargo metadata` with a fixture workspace, and fails the
//! SDK's build and the tests: quick must go on after each failure, run the
//! tests with --no-fail-fast, leave out only what it names, and compile the
//! benches and doctests.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{FixtureCheckout, fixture};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// The arguments of each cargo call, in order.
    calls: Vec<String>,
}

fn quick() -> Run {
    let checkout = FixtureCheckout::new(&fixture("check/nexhealth.yaml"));
    let scratch = tempfile::tempdir().unwrap();
    let cargo = scratch.path().join("cargo.sh");
    std::fs::copy(fixture("quick/cargo.sh"), &cargo).unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(
        fixture("quick/metadata.json"),
        scratch.path().join("metadata.json"),
    )
    .unwrap();
    let log = scratch.path().join("calls.log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("quick")
        .current_dir(checkout.root())
        .env_remove("CARGO_MANIFEST_DIR")
        .env("CARGO", &cargo)
        .env("QUICK_LOG", &log)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        calls: std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
    }
}

fn has(args: &str, words: &[&str]) -> bool {
    let args: Vec<&str> = args.split_whitespace().collect();
    words.iter().all(|w| args.contains(w))
}

#[test]
fn quick_runs_every_step_whatever_fails_and_names_what_it_skips() {
    let run = quick();
    let all = format!("{}\n{}\n{:#?}", run.stdout, run.stderr, run.calls);
    // Failures found (check, and the tests): 1, after every step ran.
    assert_eq!(run.code, Some(1), "{all}");
    // check ran, and asked the SDK (its build failed: a problem, not a stop).
    assert!(run.calls.iter().any(|c| c.starts_with("build ")), "{all}");
    assert!(run.stderr.contains("E0425"), "{all}");
    let tests: Vec<&String> = run
        .calls
        .iter()
        .filter(|c| c.starts_with("test "))
        .collect();
    assert_eq!(tests.len(), 3, "compile, tests, doctests: {all}");
    // 1. Every target compiled, benches and examples included, nothing run.
    assert!(
        has(tests[0], &["--workspace", "--all-targets", "--no-run"]),
        "{all}"
    );
    // 2. The tests, with --no-fail-fast: xtask's own among them.
    let run_tests = tests[1];
    assert!(
        has(
            run_tests,
            &["--workspace", "--no-fail-fast", "--lib", "--bins"]
        ),
        "{all}"
    );
    for target in ["errors", "check", "cli", "package"] {
        assert!(
            run_tests.contains(&format!("--test {target} ")),
            "{target}: {all}"
        );
    }
    // Left out: the minute-long fleet file, and two single slow tests by name.
    assert!(!run_tests.contains("--test shared_limit"), "{all}");
    for skipped in [
        "--skip a_package_missing_the_spec_fails_the_check",
        "--skip a_copied_checkout_with_the_original_build_checks_and_generates_itself",
    ] {
        assert!(run_tests.contains(skipped), "{skipped}: {all}");
    }
    // 3. The doctests (no_run ones compiled) ran after the tests failed.
    assert!(has(tests[2], &["--doc", "--no-fail-fast"]), "{all}");
    // The output names every skip, and what failed.
    for named in [
        "tests/tests/shared_limit.rs",
        "xtask/tests/package.rs",
        "xtask/tests/cli.rs",
    ] {
        assert!(run.stdout.contains(named), "{named}: {all}");
    }
    assert!(
        run.stderr.contains("quick: failed: check, the tests"),
        "{all}"
    );
}

/// `quick --help` says what it runs and names every skip.
#[test]
fn quick_help_names_what_it_skips() {
    let checkout = FixtureCheckout::new(&fixture("check/nexhealth.yaml"));
    let out = checkout.xtask(&["quick", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for expected in [
        "--no-fail-fast",
        "--all-targets --no-run",
        "--doc",
        "tests/tests/shared_limit.rs",
        "xtask/tests/package.rs",
        "xtask/tests/cli.rs",
        "Exit codes",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}
