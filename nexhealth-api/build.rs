//! Runs progenitor on `openapi/nexhealth.yaml` (settings live in `nexhealth-openapi`).

use std::path::PathBuf;

fn main() {
    let spec = nexhealth_openapi::spec_path();
    println!("cargo::rerun-if-changed={}", spec.display());
    println!("cargo::rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let generated = match nexhealth_openapi::generate(&spec) {
        Ok(generated) => generated,
        Err(e) => {
            // A readable message instead of a backtrace: the spec is at fault.
            eprintln!("error: {e}\nhelp: fix the spec, then run `cargo xtask check`");
            std::process::exit(1);
        }
    };
    for (name, contents) in generated.files() {
        std::fs::write(out_dir.join(name), contents).expect("OUT_DIR is writable");
    }
}
