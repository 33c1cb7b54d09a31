//! Which checkout xtask acts on: the one it stands in, found at run time.
//!
//! Nothing here is compiled in. A checkout copied together with its `target/`
//! reuses an xtask binary built in the original (Cargo's fingerprints do not
//! depend on where the workspace lies), so a path compiled into that binary
//! would point at the original checkout: `generate` would write there and
//! `check` would validate the original, not the edits. Instead the checkout is
//! the workspace that holds the current directory, and xtask refuses to run
//! when Cargo says it was started for another one.

use std::path::{Path, PathBuf};

/// Whether `dir` is a nexhealth-api checkout: a workspace manifest beside
/// `xtask/` and the spec.
pub fn is_checkout(dir: &Path) -> bool {
    dir.join("xtask").join("Cargo.toml").is_file()
        && dir.join("openapi").join("nexhealth.yaml").is_file()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
}

/// The checkout that holds `start` (itself or its nearest ancestor).
pub fn checkout_of(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| is_checkout(dir))
        .map(Path::to_path_buf)
}

/// The checkout of the current directory, checked against the one Cargo ran
/// xtask for (`CARGO_MANIFEST_DIR`, set by `cargo run` at run time) when set.
pub fn find() -> Result<PathBuf, String> {
    let here = std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?;
    let here = here.canonicalize().unwrap_or(here);
    let root = checkout_of(&here).ok_or_else(|| {
        format!(
            "{} is not inside a nexhealth-api checkout (a workspace with xtask/ and \
             openapi/nexhealth.yaml): run `cargo xtask` from the checkout you mean to change",
            here.display()
        )
    })?;
    if let Some(manifest) = std::env::var_os("CARGO_MANIFEST_DIR") {
        let manifest = PathBuf::from(manifest);
        let manifest = manifest.canonicalize().unwrap_or(manifest);
        let ran_for = manifest.parent().map(Path::to_path_buf);
        if ran_for.as_deref() != Some(root.as_path()) {
            return Err(format!(
                "this xtask was started for the checkout at {} but the current directory is in \
                 {}; refusing to act on a checkout other than the one it stands in (run `cargo \
                 xtask` from inside the checkout, without --manifest-path)",
                ran_for.map_or_else(
                    || manifest.display().to_string(),
                    |p| p.display().to_string()
                ),
                root.display()
            ));
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_is_found_from_any_folder_inside_it_and_nowhere_else() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("repo");
        std::fs::create_dir_all(root.join("xtask/src")).unwrap();
        std::fs::create_dir_all(root.join("openapi")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::write(root.join("xtask/Cargo.toml"), "").unwrap();
        std::fs::write(root.join("openapi/nexhealth.yaml"), "").unwrap();
        assert_eq!(
            checkout_of(&root.join("xtask/src")).as_deref(),
            Some(root.as_path())
        );
        assert_eq!(checkout_of(&root).as_deref(), Some(root.as_path()));
        assert_eq!(checkout_of(scratch.path()), None);
        // A member's manifest is not the workspace's.
        std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        assert_eq!(checkout_of(&root.join("xtask")), None);
    }
}
