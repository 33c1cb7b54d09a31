//! `cargo xtask generate` | `check` | `package-check` | `build-cost` | `bench-report`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paths = xtask::Paths::repo();
    match args.first().map(String::as_str) {
        Some("generate") => match xtask::generate(&paths) {
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
        },
        Some("check") => {
            let failures = xtask::check(&paths);
            if failures.is_empty() {
                println!("spec, generated code, examples, types and contract tests are in sync");
                ExitCode::SUCCESS
            } else {
                for failure in &failures {
                    eprintln!("{failure}\n");
                }
                eprintln!("cargo xtask check: {} problem(s)", failures.len());
                ExitCode::FAILURE
            }
        }
        Some("package-check") => {
            let mut options = xtask::package::Options::repo();
            options.allow_dirty = args.iter().any(|a| a == "--allow-dirty");
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
                    eprintln!(
                        "cargo xtask package-check: the packaged crates would not work for a user"
                    );
                    ExitCode::FAILURE
                }
            }
        }
        Some("published-facts") => {
            let check_only = args.iter().any(|a| a == "--check");
            let source = args
                .iter()
                .skip(1)
                .find(|a| !a.starts_with("--"))
                .map(std::path::PathBuf::from)
                .unwrap_or_else(xtask::facts::default_source);
            if !source.exists() {
                if check_only {
                    println!(
                        "published-facts: {} is not here; the kept copy is not compared",
                        source.display()
                    );
                    return ExitCode::SUCCESS;
                }
                eprintln!(
                    "error: {} does not exist; pass the path of NexHealth's OpenAPI file",
                    source.display()
                );
                return ExitCode::FAILURE;
            }
            let outcome = if check_only {
                xtask::facts::is_current(&source).inspect(|&current| {
                    if current {
                        println!(
                            "published-facts: {} is current",
                            xtask::facts::copy_path().display()
                        );
                    }
                })
            } else {
                xtask::facts::write(&source).map(|path| {
                    println!("wrote {}", path.display());
                    true
                })
            };
            match outcome {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => {
                    eprintln!(
                        "error: {} is stale against {}\n  fix: run `cargo xtask published-facts` and commit the result",
                        xtask::facts::copy_path().display(),
                        source.display()
                    );
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("upstream") => {
            let json = args.iter().any(|a| a == "--json");
            let Some(path) = args.iter().skip(1).find(|a| !a.starts_with("--")) else {
                eprintln!(
                    "usage: cargo xtask upstream PATH [--json]   (PATH: a copy of NexHealth's OpenAPI file)"
                );
                return ExitCode::from(2);
            };
            let loaded = xtask::upstream::load(std::path::Path::new(path)).and_then(|theirs| {
                let ours =
                    nexhealth_openapi::load_spec_value(&paths.spec).map_err(|e| e.to_string())?;
                Ok(xtask::upstream::compare(&theirs, &ours))
            });
            match loaded {
                Ok(findings) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&findings).expect("serializable")
                        );
                    } else {
                        print!("{}", xtask::upstream::render(&findings));
                    }
                    if findings.is_empty() {
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
        Some("build-cost") => match xtask::bench::build_cost() {
            Ok(result) => {
                println!("{result:#}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some("bench-report") => match xtask::bench::report() {
            Ok(md) => {
                print!("{md}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!(
                "usage: cargo xtask generate      write nexhealth-api/generated/ from openapi/nexhealth.yaml"
            );
            eprintln!(
                "       cargo xtask check         spec valid, generated code current, examples, types, contract tests"
            );
            eprintln!(
                "       cargo xtask package-check [--allow-dirty]  package the crates, build and run consumers of them"
            );
            eprintln!(
                "       cargo xtask published-facts [PATH] [--check]  facts-only copy of NexHealth's description for the Prism suite"
            );
            eprintln!(
                "       cargo xtask upstream PATH [--json]  what NexHealth's published description says that our spec does not"
            );
            eprintln!(
                "       cargo xtask build-cost    clean builds with and without progenitor, rebuild after a spec edit"
            );
            eprintln!(
                "       cargo xtask bench-report  BENCHMARKS.md from `cargo bench` results and build costs"
            );
            ExitCode::from(2)
        }
    }
}
