//! Shared by xtask's integration tests.

use std::path::Path;
use std::process::Command;

/// A copy of the repository's tracked files, outside any VCS.
pub fn copy_of_the_workspace(repo: &Path, to: &Path) {
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo)
        .output()
        .expect("git is installed");
    assert!(listed.status.success(), "git ls-files failed");
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = repo.join(name);
        let target = to.join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let meta = std::fs::symlink_metadata(&from).unwrap();
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&from).unwrap();
            std::os::unix::fs::symlink(link, &target).unwrap();
        } else if meta.is_file() {
            std::fs::copy(&from, &target).unwrap();
        }
    }
}
