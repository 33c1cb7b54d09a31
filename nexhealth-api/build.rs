//! Produces the generated client in `OUT_DIR`.
//!
//! With the `codegen` feature (the default) it runs progenitor on
//! `openapi/nexhealth.yaml`, with the settings that live in `nexhealth-openapi`.
//! Without it, it copies the checked-in files from `generated/`, after checking
//! that they were produced from the spec as it is now: a stale copy stops the
//! build instead of compiling an API that no longer matches the spec.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let spec = manifest.join("..").join("openapi").join("nexhealth.yaml");
    println!("cargo::rerun-if-changed={}", spec.display());
    println!("cargo::rerun-if-changed=build.rs");
    if let Err(message) = produce(&manifest, &spec, &out_dir) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

#[cfg(feature = "codegen")]
fn produce(_manifest: &Path, spec: &Path, out_dir: &Path) -> Result<(), String> {
    let generated = nexhealth_openapi::generate(spec)
        .map_err(|e| format!("{e}\nhelp: fix the spec, then run `cargo xtask check`"))?;
    for (name, contents) in generated.files() {
        std::fs::write(out_dir.join(name), contents).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(not(feature = "codegen"))]
fn produce(manifest: &Path, spec: &Path, out_dir: &Path) -> Result<(), String> {
    use sha2::Digest;
    const PREFIX: &str = "// spec-sha256: ";
    const FILES: [&str; 3] = [
        "generated_client.rs",
        "generated_httpmock.rs",
        "generated_operations.rs",
    ];
    let checked_in = manifest.join("generated");
    println!("cargo::rerun-if-changed={}", checked_in.display());
    // Outside this repository (a packaged crate) the spec is not there to compare with.
    let expected = std::fs::read(spec).ok().map(|bytes| {
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    for name in FILES {
        let path = checked_in.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let recorded = text
            .lines()
            .find_map(|l| l.strip_prefix(PREFIX))
            .ok_or_else(|| format!("{} has no `{PREFIX}` header", path.display()))?;
        if let Some(expected) = &expected
            && recorded != expected
        {
            return Err(format!(
                "{} was generated from another version of {}; it is stale.\n\
                 help: run `cargo xtask generate`, or build with the `codegen` feature",
                path.display(),
                spec.display()
            ));
        }
        std::fs::write(out_dir.join(name), text).map_err(|e| e.to_string())?;
    }
    Ok(())
}
