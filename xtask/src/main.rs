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
                "       cargo xtask build-cost    clean builds with and without progenitor, rebuild after a spec edit"
            );
            eprintln!(
                "       cargo xtask bench-report  BENCHMARKS.md from `cargo bench` results and build costs"
            );
            ExitCode::from(2)
        }
    }
}
