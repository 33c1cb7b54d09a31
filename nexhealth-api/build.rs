//! Produces the generated client in `OUT_DIR`.
//!
//! With the `codegen` feature (off by default; on for this repository's own
//! crates, so that editing the spec and building regenerates) it runs progenitor on the spec that
//! ships inside the `nexhealth-openapi` crate (in this repository, that is
//! `openapi/nexhealth.yaml`), with the settings that live in that crate.
//! Without it, it copies the checked-in files from `generated/`; inside the
//! repository it first checks that they were produced from the spec as it is
//! now, so a stale copy stops the build instead of compiling an API that no
//! longer matches the spec.
//!
//! Whoever reads an error from here is either a maintainer working in the
//! repository (who has `cargo xtask`) or a user building the published crate
//! (who does not): each is told what they can do.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let place = Place::of(&manifest);
    println!("cargo::rerun-if-changed=build.rs");
    if let Err(message) = produce(&manifest, &out_dir, &place) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// Where this build runs: in the repository, or from a package.
enum Place {
    /// The repository: the spec beside the crate, and `cargo xtask` at hand.
    Repository { spec: PathBuf },
    /// A packaged crate (crates.io, a vendored copy, `cargo package`).
    Package,
}

impl Place {
    fn of(manifest: &Path) -> Self {
        let root = manifest.join("..");
        let spec = root.join("openapi").join("nexhealth.yaml");
        if spec.is_file() && root.join("xtask").join("Cargo.toml").is_file() {
            Place::Repository { spec }
        } else {
            Place::Package
        }
    }

    /// What the person who sees a failure can do about it.
    fn help(&self, repository_help: &str) -> String {
        match self {
            Place::Repository { .. } => format!("help: {repository_help}"),
            Place::Package => format!(
                "help: this is a defect of the published nexhealth-api {}; please report it at {} \
                 with this message. Meanwhile, depending on nexhealth-api with \
                 `default-features = false` compiles the code generated when it was published.",
                env!("CARGO_PKG_VERSION"),
                env!("CARGO_PKG_REPOSITORY"),
            ),
        }
    }
}

#[cfg(feature = "codegen")]
fn produce(_manifest: &Path, out_dir: &Path, place: &Place) -> Result<(), String> {
    // In the repository: the spec beside this crate, found now and watched by
    // a path relative to the crate, so a copied checkout (even one reusing the
    // original's `target/`) generates from its own spec. From a package: the
    // spec inside the nexhealth-openapi package.
    let spec = match place {
        Place::Repository { spec } => {
            println!("cargo::rerun-if-changed=../openapi/nexhealth.yaml");
            spec.clone()
        }
        Place::Package => {
            let spec = nexhealth_openapi::spec_path();
            println!("cargo::rerun-if-changed={}", spec.display());
            spec
        }
    };
    let generated = nexhealth_openapi::generate(&spec).map_err(|e| {
        format!(
            "{e}\n{}",
            place.help("fix the spec, then run `cargo xtask check`, which names the place")
        )
    })?;
    for (name, contents) in generated.files() {
        let path = out_dir.join(name);
        std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(not(feature = "codegen"))]
fn produce(manifest: &Path, out_dir: &Path, place: &Place) -> Result<(), String> {
    use sha2::Digest;
    const PREFIX: &str = "// spec-sha256: ";
    const FILES: [&str; 3] = [
        "generated_client.rs",
        "generated_httpmock.rs",
        "generated_operations.rs",
    ];
    let checked_in = manifest.join("generated");
    // Relative to this crate: the checkout the build runs in, never a path
    // recorded by an earlier build elsewhere.
    println!("cargo::rerun-if-changed=generated");
    // A package holds no spec to compare with: its `generated/` was checked
    // against the spec when it was packaged (`cargo xtask package-check`).
    let expected = match place {
        Place::Repository { spec } => {
            println!("cargo::rerun-if-changed=../openapi/nexhealth.yaml");
            let bytes = std::fs::read(spec).map_err(|e| format!("{}: {e}", spec.display()))?;
            Some(
                sha2::Sha256::digest(bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            )
        }
        Place::Package => None,
    };
    for name in FILES {
        let path = checked_in.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e}\n{}",
                path.display(),
                place.help("run `cargo xtask generate`")
            )
        })?;
        let recorded = text
            .lines()
            .find_map(|l| l.strip_prefix(PREFIX))
            .ok_or_else(|| {
                format!(
                    "{} has no `{PREFIX}` header\n{}",
                    path.display(),
                    place.help("run `cargo xtask generate`")
                )
            })?;
        if let Some(expected) = &expected
            && recorded != expected
        {
            return Err(format!(
                "{} was generated from another version of openapi/nexhealth.yaml; it is stale.\n{}",
                path.display(),
                place.help("run `cargo xtask generate`, or build with the `codegen` feature")
            ));
        }
        let target = out_dir.join(name);
        std::fs::write(&target, text).map_err(|e| format!("{}: {e}", target.display()))?;
    }
    Ok(())
}
