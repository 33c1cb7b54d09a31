//! `cargo xtask upstream` compares two spec files and needs no build of the
//! SDK: xtask's binary does not depend on `nexhealth-api` (only its
//! `introspect` example does, which `check` runs as a separate process), and
//! it runs in a checkout whose SDK does not compile. Its exit codes are the
//! documented ones. Runs on fixtures (a checkout made of them).

mod support;

use serde_json::Value;
use support::{FixtureCheckout, fixture};

/// In Cargo's resolved graph, xtask reaches `nexhealth-api` only as a
/// dev-dependency: `cargo run -p xtask` (what `cargo xtask` is) never builds it.
#[test]
fn xtask_depends_on_the_sdk_only_for_its_introspect_example() {
    let root = xtask::root::find().unwrap();
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let xtask = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"].as_str().is_some_and(|id| id.contains("/xtask#")))
        .expect("xtask in the graph");
    let sdk = xtask["deps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "nexhealth_api")
        .expect("the introspect example's dev-dependency");
    let kinds: Vec<&Value> = sdk["dep_kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kind"])
        .collect();
    assert_eq!(kinds, [&Value::from("dev")], "{sdk}");
}

#[test]
fn upstream_runs_where_the_sdk_does_not_compile() {
    let checkout = FixtureCheckout::new(&fixture("check/nexhealth.yaml"));
    let sdk = checkout.root().join("nexhealth-api/src");
    std::fs::create_dir_all(&sdk).unwrap();
    std::fs::write(
        sdk.join("lib.rs"),
        "compile_error!(\"broken on purpose\");\n",
    )
    .unwrap();
    // NexHealth's side: the same spec, then one with a field more.
    let theirs = checkout.root().join("published.yaml");
    std::fs::copy(fixture("check/nexhealth.yaml"), &theirs).unwrap();
    let out = checkout.xtask(&["upstream", theirs.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout.contains("nothing NexHealth describes differs"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&theirs).unwrap();
    let more = text.replacen(
        "        name:\n          type: string\n",
        "        name:\n          type: string\n        weight:\n          type: number\n",
        1,
    );
    assert_ne!(more, text);
    std::fs::write(&theirs, more).unwrap();
    let out = checkout.xtask(&["upstream", theirs.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout.contains("add `weight`"), "{stdout}");
}

#[test]
fn upstream_help_documents_its_exit_codes() {
    let checkout = FixtureCheckout::new(&fixture("upstream/ours.yaml"));
    let out = checkout.xtask(&["upstream", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for expected in [
        "Exit codes, whatever happens: 0",
        "1 differences to edit",
        "2 the comparison could not run",
        "needs no build of the SDK",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}
