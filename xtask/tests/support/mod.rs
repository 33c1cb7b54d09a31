//! Shared by xtask's integration tests.
// Each test file uses the helpers it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of the repository's working tree (tracked files and new ones git
/// does not ignore, as a build in the checkout sees them), outside any VCS.
pub fn copy_of_the_workspace(repo: &Path, to: &Path) {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(repo)
        .output()
        .expect("git is installed");
    assert!(listed.status.success(), "git ls-files failed");
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = repo.join(name);
        let target = to.join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        // Listed by the index but deleted in the working tree: not there.
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&from).unwrap();
            std::os::unix::fs::symlink(link, &target).unwrap();
        } else if meta.is_file() {
            std::fs::copy(&from, &target).unwrap();
        }
    }
}

/// A file of xtask's own fixtures (`xtask/tests/fixtures/...`).
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(path)
}

/// Copies the folder `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A checkout made of fixtures only, in a scratch folder: a workspace
/// manifest, `xtask/Cargo.toml`, the spec at `spec` (a fixture) as
/// `openapi/nexhealth.yaml`, and the fixture suite
/// (`fixtures/check/tests/`) as `tests/`. xtask treats it as a checkout;
/// nothing in it builds. The scratch folder goes when the value is dropped.
pub struct FixtureCheckout {
    pub dir: tempfile::TempDir,
}

impl FixtureCheckout {
    pub fn new(spec: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        std::fs::create_dir_all(root.join("xtask")).unwrap();
        std::fs::write(root.join("xtask").join("Cargo.toml"), "").unwrap();
        std::fs::create_dir_all(root.join("openapi")).unwrap();
        std::fs::copy(spec, root.join("openapi").join("nexhealth.yaml")).unwrap();
        copy_dir(&fixture("check/tests"), &root.join("tests"));
        Self { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The xtask binary run in this checkout with `args`.
    pub fn xtask(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .current_dir(self.root())
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap()
    }
}
