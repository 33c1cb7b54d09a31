//! Two checkouts building in one target directory (one `CARGO_TARGET_DIR` for
//! both) are named as such, instead of a false red in `[4 types]` whose
//! advice to rebuild loops: Cargo reruns the build script by file times, so
//! one checkout's build can leave the client generated from the other's spec.
//! Runs on checkouts made of fixtures and scratch target directories.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::{FixtureCheckout, copy_dir, fixture};
use xtask::introspect::{MARKER, shared_target};

fn checkout() -> FixtureCheckout {
    FixtureCheckout::new(&fixture("check/nexhealth.yaml"))
}

fn target() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .unwrap();
    dir
}

fn canonical(path: &Path) -> String {
    path.canonicalize().unwrap().display().to_string()
}

#[test]
fn a_target_directory_shared_by_two_checkouts_is_named_for_both() {
    let (a, b, target) = (checkout(), checkout(), target());
    shared_target(target.path(), a.root()).unwrap();
    shared_target(target.path(), a.root()).expect("one checkout, run again");

    let error = shared_target(target.path(), b.root()).unwrap_err();
    assert_eq!(error.place, "(target directory)");
    assert!(
        error.message.contains(&canonical(target.path())),
        "{error:?}"
    );
    assert!(error.message.contains(&canonical(a.root())), "{error:?}");
    assert!(
        error.message.contains("rebuilding does not change"),
        "{error:?}"
    );
    assert!(
        error.fix.contains("target directory of its own"),
        "{error:?}"
    );
    assert!(error.fix.contains(MARKER), "{error:?}");
    // The first checkout is told too: its build may hold the other's client.
    let error = shared_target(target.path(), a.root()).unwrap_err();
    assert!(error.message.contains(&canonical(b.root())), "{error:?}");

    // Once the other checkout is gone, its line no longer counts.
    drop(b);
    shared_target(target.path(), a.root()).expect("the other checkout was removed");
}

/// A checkout copied with its `target/` (a copy, not a share): the copied
/// lines name the original's directory, not this one.
#[test]
fn a_copied_target_directory_is_not_shared() {
    let (original, copy, target) = (checkout(), checkout(), target());
    shared_target(target.path(), original.root()).unwrap();
    let copied = tempfile::tempdir().unwrap();
    copy_dir(target.path(), copied.path());
    shared_target(copied.path(), copy.root()).expect("a copy of a target directory");
}

/// End to end: `cargo xtask check` in a checkout whose target directory
/// another checkout used names it, with a fixture cargo whose "build" of the
/// SDK answers with an executable in that directory.
#[test]
fn check_names_the_shared_target_directory() {
    let (here, other, target) = (checkout(), checkout(), target());
    shared_target(target.path(), other.root()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let exe = target.path().join("debug/examples/introspect");
    std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
    std::fs::write(&exe, "").unwrap();
    let cargo = scratch.path().join("cargo.sh");
    std::fs::write(
        &cargo,
        format!(
            "#!/bin/sh\nprintf '%s\\n' '{}'\n",
            serde_json::json!({
                "reason": "compiler-artifact",
                "target": {"name": "introspect"},
                "executable": exe,
            })
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("check")
        .current_dir(here.root())
        .env_remove("CARGO_MANIFEST_DIR")
        .env("CARGO", &cargo)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("(target directory)"), "{stderr}");
    assert!(stderr.contains(&canonical(other.root())), "{stderr}");
    assert!(
        stderr.contains("is shared with the checkout at"),
        "{stderr}"
    );
}
