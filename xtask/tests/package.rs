//! `cargo xtask package-check` fails when packaging would ship a crate that
//! does not build: here, the spec left out of the `nexhealth-openapi` package,
//! which a service that enables `codegen` needs.

mod support;

use support::copy_of_the_workspace;
use xtask::package::{self, Options};

#[test]
fn only_the_crates_meant_for_users_are_published() {
    let repo = Options::repo().unwrap().workspace;
    let mut names: Vec<String> = package::publishable(&repo)
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.sort();
    assert_eq!(names, ["nexhealth-api", "nexhealth-openapi"]);
}

#[test]
fn a_package_missing_the_spec_fails_the_check() {
    let repo = Options::repo().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    copy_of_the_workspace(&repo.workspace, scratch.path());
    let manifest = scratch.path().join("openapi").join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let broken = text.replace("\"/nexhealth.yaml\", ", "");
    assert_ne!(broken, text, "the include list names nexhealth.yaml");
    std::fs::write(&manifest, broken).unwrap();

    let options = Options {
        workspace: scratch.path().to_path_buf(),
        // Shared with the real check so that dependencies compile once.
        target_dir: repo.target_dir.clone(),
        allow_dirty: true,
    };
    let error = package::check(&options).expect_err("a package without its spec must fail");
    eprintln!("{error}");
    // A default build compiles the checked-in code and needs no spec; the
    // consumer that asks for `codegen` (progenitor on the packaged spec) fails.
    assert!(error.contains("building the `ring` consumer"), "{error}");
    assert!(error.contains("nexhealth.yaml"), "{error}");
    // The packaged build script speaks to a user, not to a maintainer.
    assert!(!error.contains("cargo xtask"), "{error}");
    assert!(
        error.contains("defect of the published nexhealth-api"),
        "{error}"
    );
}
