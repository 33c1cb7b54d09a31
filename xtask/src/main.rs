//! `cargo xtask`: the maintainers' commands. `cargo xtask --help` lists them;
//! `cargo xtask COMMAND --help` prints a command's usage and changes nothing.
//!
//! Exit codes: 0 done and in sync; 1 a check found problems (or `upstream`
//! found differences); 2 the command could not run (bad usage, a missing or
//! unreadable file, not inside a checkout).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};

const EXIT_CODES: &str = "\
Exit codes: 0 done, everything in sync; 1 problems found (each printed with the file, \
the place and the fix); 2 the command could not run (usage, a missing file, not inside \
a nexhealth-api checkout).

xtask acts on the checkout that holds the current directory, found when it runs.";

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
                    "The inner loop: `check`, then the crate's unit tests and the contract suite \
                     without the slow fleet tests (tests/tests/shared_limit.rs) and without \
                     xtask's packaging tests. The full suite (`cargo test --workspace --locked`) \
                     is what CI runs",
                )
                .after_help(EXIT_CODES),
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
                .after_help(EXIT_CODES),
        )
        .subcommand(
            Command::new("published-facts")
                .about(
                    "Write tests/data/nexhealth-published-facts.json, the facts-only copy of \
                     NexHealth's file that the Prism suite serves",
                )
                .arg(Arg::new("path").value_name("PATH").help(
                    "NexHealth's file (default: ../shared/reference/nexhealth-openapi-subset.json)",
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
    let root = match xtask::root::find() {
        Ok(root) => root,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (name, args) = matches.subcommand().expect("a subcommand is required");
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
    let report = if drift_only {
        xtask::check_sections(&paths, &[xtask::Section::Drift])
    } else {
        xtask::check_sections(&paths, &xtask::Section::ALL)
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

/// Contract-test files the inner loop leaves to the full suite, and why.
const SLOW_TESTS: [(&str, &str); 1] = [(
    "shared_limit",
    "about a minute of replica fleets on a real Redis",
)];

fn quick(root: &Path) -> ExitCode {
    let checked = check(root, false);
    if checked != ExitCode::SUCCESS {
        return checked;
    }
    let mut targets: Vec<String> = std::fs::read_dir(root.join("tests").join("tests"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e
                .file_name()
                .to_string_lossy()
                .strip_suffix(".rs")?
                .to_string();
            (!SLOW_TESTS.iter().any(|(slow, _)| *slow == name)).then_some(name)
        })
        .collect();
    targets.sort();
    for (slow, why) in SLOW_TESTS {
        println!("quick: leaving tests/tests/{slow}.rs to the full suite ({why})");
    }
    let mut test =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    test.args([
        "test",
        "--locked",
        "-p",
        "nexhealth-api",
        "--lib",
        "-p",
        "nexhealth-contract-tests",
    ])
    .current_dir(root);
    for target in &targets {
        test.args(["--test", target]);
    }
    match test.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: cargo test: {e}");
            ExitCode::from(2)
        }
    }
}

fn new_operation(root: &Path, args: &ArgMatches) -> ExitCode {
    let id = args.get_one::<String>("operation_id").expect("required");
    match xtask::scaffold::new_operation(&xtask::Paths::of(root), id) {
        Ok(written) => {
            println!("wrote {}", written.display());
            println!(
                "next: `cargo xtask check` names every `match` that must learn the operation \
                 ([6 registry]); teach them, add the test's assertions, then `cargo xtask quick`"
            );
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
