//! `cargo xtask`: the maintainers' commands. `cargo xtask --help` lists them;
//! `cargo xtask COMMAND --help` prints a command's usage and changes nothing.
//!
//! Exit codes: 0 done and in sync; 1 a check found problems (or `upstream`
//! found differences); 2 the command could not run (bad usage, a missing or
//! unreadable file, not inside a checkout, or a defect of xtask itself: a
//! panic is caught and exits 2, never Rust's 101).
//!
//! The binary does not link the SDK (see `xtask::introspect`): every
//! subcommand but `check` and `quick` builds and runs from the spec files
//! alone, even while `nexhealth-api` does not compile.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};

const EXIT_CODES: &str = "\
Exit codes: 0 done, everything in sync; 1 problems found (each printed with the file, \
the place and the fix); 2 the command could not run (usage, a missing file, not inside \
a nexhealth-api checkout, or a defect of xtask, reported as such).

xtask acts on the checkout that holds the current directory, found when it runs.";

/// `upstream`'s own exit codes: it compares two files and builds nothing.
const UPSTREAM_EXIT_CODES: &str = "\
Exit codes, whatever happens: 0 nothing NexHealth describes differs from our spec (operations \
declared in `x-out-of-scope` are counted, not differences); 1 differences to edit, each printed \
with both JSON pointers and the change; 2 the comparison could not run: PATH missing, not JSON \
or YAML, or not OpenAPI 3.0/3.1, our spec unreadable, not inside a nexhealth-api checkout, bad \
usage, or a defect of xtask.

It reads openapi/nexhealth.yaml of the checkout that holds the current directory and PATH, \
nothing else: it needs no build of the SDK and runs while nexhealth-api does not compile.";

fn cli() -> Command {
    let flag = |name: &'static str, help: &'static str| {
        Arg::new(name)
            .long(name)
            .action(ArgAction::SetTrue)
            .help(help)
    };
    Command::new("xtask")
        .bin_name("cargo xtask")
        .about("Keeps nexhealth-api's spec, generated code, examples, types and tests in sync")
        .after_help(EXIT_CODES)
        .subcommand_required(true)
        .arg_required_else_help(true)
        // Our own `help`, which takes `--help` like every other subcommand.
        .disable_help_subcommand(true)
        .subcommand(
            Command::new("help")
                .about("Print this list, or the usage of COMMAND (the same as `COMMAND --help`)")
                .arg(
                    Arg::new("command")
                        .value_name("COMMAND")
                        .help("The subcommand whose usage to print"),
                )
                .after_help(EXIT_CODES),
        )
        .subcommand(
            Command::new("generate")
                .about("Write nexhealth-api/generated/ from openapi/nexhealth.yaml")
                .arg(flag(
                    "check",
                    "Write nothing: fail if the checked-in files differ from what the spec \
                     produces (the drift part of `check`)",
                ))
                .after_help(EXIT_CODES),
        )
        .subcommand(
            Command::new("check")
                .about(
                    "Check the spec, the generated code, the examples, the compiled types and \
                     the contract tests against each other",
                )
                .after_help(EXIT_CODES),
        )
        .subcommand(
            Command::new("quick")
                .about(
                    "The inner loop: `check`, then every test of the workspace (the SDK's, the \
                     contract suite's, xtask's and the doctests) with --no-fail-fast, and every \
                     bench, example and no_run doctest compiled; it skips only what needs \
                     minutes (listed below). The full suite (`cargo test --workspace --locked`) \
                     is what CI runs",
                )
                .after_help(quick_help()),
        )
        .subcommand(
            Command::new("new-operation")
                .about(
                    "Write the contract-test skeleton of an operation the spec already names \
                     (tests/tests/operation_<name>.rs)",
                )
                .arg(
                    Arg::new("operation_id")
                        .required(true)
                        .value_name("OPERATION_ID")
                        .help("The spec's operationId, e.g. getLocationsIdAppointmentDescriptors"),
                )
                .after_help(EXIT_CODES),
        )
        .subcommand(
            Command::new("upstream")
                .about(
                    "Compare NexHealth's published OpenAPI file with our spec: what it says that \
                     ours does not, and the operations we declare out of scope",
                )
                .arg(
                    Arg::new("path")
                        .required(true)
                        .value_name("PATH")
                        .help("A copy of NexHealth's OpenAPI file (JSON or YAML)"),
                )
                .arg(flag("json", "Print the findings as JSON"))
                .after_help(UPSTREAM_EXIT_CODES),
        )
        .subcommand(
            Command::new("published-facts")
                .about(
                    "Write tests/data/nexhealth-published-facts.json, the facts-only copy of \
                     NexHealth's file that the Prism suite serves: the operations of our spec \
                     that the Prism walk calls and the components they use, without prose",
                )
                .arg(Arg::new("path").value_name("PATH").help(
                    "NexHealth's whole published file (default, and what CI compares with: \
                     ../shared/reference/nexhealth-openapi-full.json)",
                ))
                .arg(flag(
                    "check",
                    "Write nothing: fail if the kept copy is stale. Where NexHealth's file is not \
                     there it prints SKIPPED, naming what was not compared, and exits 0",
                ))
                .after_help(EXIT_CODES),
        )
        .subcommand(
            Command::new("package-check")
                .about(
                    "Package both crates, extract them outside the workspace, and build and run \
                     consumers of them in five feature set-ups",
                )
                .arg(flag("allow-dirty", "Package uncommitted changes too"))
                .after_help(EXIT_CODES),
        )
        .subcommand(
            Command::new("build-cost")
                .about(
                    "Clean builds with and without progenitor, and the rebuild after a spec edit",
                )
                .after_help(EXIT_CODES),
        )
        .subcommand(
            Command::new("bench-report")
                .about("Print BENCHMARKS.md from `cargo bench` results and build costs")
                .after_help(EXIT_CODES),
        )
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => {
            // `--help` and `--version` are not errors; usage mistakes are.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A panic is a defect of xtask, not a finding: exit 2 as documented, never 101.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&matches))) {
        Ok(code) => code,
        Err(_) => {
            eprintln!(
                "error: xtask stopped on a defect of its own (the panic above), not on a problem \
                 of the checkout; exit 2"
            );
            ExitCode::from(2)
        }
    }
}

fn run(matches: &ArgMatches) -> ExitCode {
    let (name, args) = matches.subcommand().expect("a subcommand is required");
    if name == "help" {
        return help(args.get_one::<String>("command").map(String::as_str));
    }
    let root = match xtask::root::find() {
        Ok(root) => root,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match name {
        "generate" if args.get_flag("check") => check(&root, true),
        "generate" => generate(&root),
        "check" => check(&root, false),
        "quick" => quick(&root),
        "new-operation" => new_operation(&root, args),
        "upstream" => upstream(&root, args),
        "published-facts" => published_facts(&root, args),
        "package-check" => package_check(&root, args),
        "build-cost" => build_cost(),
        "bench-report" => bench_report(),
        other => unreachable!("clap knows no subcommand {other}"),
    }
}

/// `cargo xtask help [COMMAND]`: the list, or a command's usage.
fn help(command: Option<&str>) -> ExitCode {
    let mut args = vec!["xtask"];
    args.extend(command);
    args.push("--help");
    match cli().try_get_matches_from(args) {
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            ExitCode::from(code)
        }
        Ok(_) => ExitCode::SUCCESS,
    }
}

fn generate(root: &Path) -> ExitCode {
    match xtask::generate(&xtask::Paths::of(root)) {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(root: &Path, drift_only: bool) -> ExitCode {
    let paths = xtask::Paths::of(root);
    println!("checking the checkout at {}", root.display());
    let sdk = xtask::introspect::Sdk::of(root);
    let report = if drift_only {
        xtask::check_sections(&paths, &[xtask::Section::Drift], &sdk)
    } else {
        xtask::check_sections(&paths, &xtask::Section::ALL, &sdk)
    };
    print!("{}", report.summary());
    if report.failures.is_empty() {
        println!("in sync");
        ExitCode::SUCCESS
    } else {
        for failure in &report.failures {
            eprintln!("\n{failure}");
        }
        eprintln!(
            "\ncargo xtask {}: {} problem(s)",
            if drift_only {
                "generate --check"
            } else {
                "check"
            },
            report.failures.len()
        );
        ExitCode::FAILURE
    }
}

/// What the inner loop leaves to the full suite, and why: whole test files
/// (`tests/tests/NAME.rs`) and single tests (by name), each needing minutes.
const SLOW: [Slow; 4] = [
    Slow::File(
        "shared_limit",
        "tests/tests/shared_limit.rs (about a minute of replica fleets on a real Redis)",
    ),
    Slow::File(
        "directory_fleet",
        "tests/tests/directory_fleet.rs (about a minute of watcher processes sharing a real Redis)",
    ),
    Slow::Test(
        "a_package_missing_the_spec_fails_the_check",
        "a_package_missing_the_spec_fails_the_check in xtask/tests/package.rs (packages both \
         crates and builds consumers of them: minutes)",
    ),
    Slow::Test(
        "a_copied_checkout_with_the_original_build_checks_and_generates_itself",
        "a_copied_checkout_with_the_original_build_checks_and_generates_itself in \
         xtask/tests/cli.rs (builds xtask and the SDK in a target directory of its own: minutes \
         after each change to them)",
    ),
];

#[derive(Clone, Copy)]
enum Slow {
    /// A test target, left out.
    File(&'static str, &'static str),
    /// One test, skipped by its (unique) name.
    Test(&'static str, &'static str),
}

impl Slow {
    fn why(self) -> &'static str {
        match self {
            Slow::File(_, why) | Slow::Test(_, why) => why,
        }
    }
}

fn quick_help() -> String {
    let mut out = String::from(
        "Steps, each run whatever the one before found (one cycle shows every failure):\n  \
         1. cargo xtask check\n  \
         2. cargo test --workspace --locked --all-targets --no-run: compiles every test, \
         example and bench (benches in the test profile, the cheapest that compiles them)\n  \
         3. cargo test --workspace --locked --no-fail-fast --lib --bins --test ... (every test \
         file but those skipped below)\n  \
         4. cargo test --workspace --locked --no-fail-fast --doc: the doctests, no_run ones \
         compiled\n\nSkipped (they need minutes; the full suite runs them):\n",
    );
    for slow in SLOW {
        out.push_str(&format!("  - {}\n", slow.why()));
    }
    out.push('\n');
    out.push_str(EXIT_CODES);
    out
}

/// The test targets of the workspace's packages (`cargo metadata`).
fn test_targets(root: &Path) -> Result<Vec<String>, String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let mut names: Vec<String> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "test"))
        })
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn quick(root: &Path) -> ExitCode {
    for slow in SLOW {
        println!("quick: skipping {}; the full suite runs it", slow.why());
    }
    let checked = check(root, false);
    let targets = match test_targets(root) {
        Ok(targets) => targets,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut run: Vec<(&str, Vec<String>)> = Vec::new();
    run.push((
        "compile every test, example and bench",
        [
            "test",
            "--workspace",
            "--locked",
            "--all-targets",
            "--no-run",
        ]
        .map(String::from)
        .to_vec(),
    ));
    let mut tests: Vec<String> = [
        "test",
        "--workspace",
        "--locked",
        "--no-fail-fast",
        "--lib",
        "--bins",
    ]
    .map(String::from)
    .to_vec();
    for target in &targets {
        if !SLOW
            .iter()
            .any(|s| matches!(s, Slow::File(name, _) if name == target))
        {
            tests.push("--test".into());
            tests.push(target.clone());
        }
    }
    tests.push("--".into());
    for slow in SLOW {
        if let Slow::Test(name, _) = slow {
            tests.push("--skip".into());
            tests.push(name.into());
        }
    }
    run.push(("the tests", tests));
    run.push((
        "the doctests",
        ["test", "--workspace", "--locked", "--no-fail-fast", "--doc"]
            .map(String::from)
            .to_vec(),
    ));
    let mut failed = Vec::new();
    if checked != ExitCode::SUCCESS {
        failed.push("check".to_string());
    }
    for (what, args) in &run {
        println!("\nquick: {what}: cargo {}", args.join(" "));
        match cargo().args(args).current_dir(root).status() {
            Ok(status) if status.success() => {}
            Ok(_) => failed.push(what.to_string()),
            Err(e) => {
                eprintln!("error: cargo: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!();
    for slow in SLOW {
        println!("quick: skipped {}", slow.why());
    }
    if failed.is_empty() {
        println!("quick: all passed");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "quick: failed: {} (each failure is printed above)",
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}

fn new_operation(root: &Path, args: &ArgMatches) -> ExitCode {
    let id = args.get_one::<String>("operation_id").expect("required");
    match xtask::scaffold::new_operation(&xtask::Paths::of(root), id) {
        Ok(written) => {
            println!("wrote {}", written.display());
            match xtask::scaffold::next_steps(&xtask::Paths::of(root), id) {
                Ok(steps) => {
                    println!("next:");
                    for (i, step) in steps.iter().enumerate() {
                        println!("  {}. {step}", i + 1);
                    }
                }
                Err(e) => eprintln!("error: the next steps: {e}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn upstream(root: &Path, args: &ArgMatches) -> ExitCode {
    let path = Path::new(args.get_one::<String>("path").expect("required"));
    let loaded = xtask::upstream::load(path).and_then(|theirs| {
        let spec = root.join("openapi").join("nexhealth.yaml");
        let ours = nexhealth_openapi::load_spec_value(&spec).map_err(|e| e.to_string())?;
        Ok(xtask::upstream::compare(&theirs, &ours))
    });
    match loaded {
        Ok(report) => {
            if args.get_flag("json") {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serializable")
                );
            } else {
                print!("{}", xtask::upstream::render(&report));
            }
            if report.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn published_facts(root: &Path, args: &ArgMatches) -> ExitCode {
    let check_only = args.get_flag("check");
    let source = args
        .get_one::<String>("path")
        .map(PathBuf::from)
        .unwrap_or_else(|| xtask::facts::default_source(root));
    if !source.exists() {
        if check_only {
            // Not an error where the shared reference is absent, but never silent.
            println!(
                "published-facts: SKIPPED: {} is not here, so {} was NOT compared with \
                 NexHealth's file",
                source.display(),
                xtask::facts::copy_path(root).display()
            );
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "error: {} does not exist; pass the path of NexHealth's OpenAPI file",
            source.display()
        );
        return ExitCode::from(2);
    }
    let outcome = if check_only {
        xtask::facts::is_current(root, &source).inspect(|&current| {
            if current {
                println!(
                    "published-facts: {} is current",
                    xtask::facts::copy_path(root).display()
                );
            }
        })
    } else {
        xtask::facts::write(root, &source).map(|path| {
            println!("wrote {}", path.display());
            true
        })
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "error: {} is stale against {}\n  fix: run `cargo xtask published-facts` and commit the result",
                xtask::facts::copy_path(root).display(),
                source.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn package_check(root: &Path, args: &ArgMatches) -> ExitCode {
    let mut options = xtask::package::Options::of(root);
    options.allow_dirty = args.get_flag("allow-dirty");
    match xtask::package::check(&options) {
        Ok(report) => {
            for (name, files) in &report.packages {
                println!("packaged {name} ({files} files)");
            }
            for (setup, line) in &report.consumers {
                println!("consumer `{setup}`: {line}");
            }
            println!(
                "package-check: the packaged crates build and run in every set-up ({:.0} s)",
                report.elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("cargo xtask package-check: the packaged crates would not work for a user");
            ExitCode::FAILURE
        }
    }
}

fn build_cost() -> ExitCode {
    match xtask::bench::build_cost() {
        Ok(result) => {
            println!("{result:#}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench_report() -> ExitCode {
    match xtask::bench::report() {
        Ok(md) => {
            print!("{md}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
