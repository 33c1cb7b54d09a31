//! `cargo xtask upstream` and a response field that an API version renames
//! (`x-instead-of`): NexHealth's v3.1.0 sends the sync status's `emr` as
//! `ehr`. Runs on its own fixtures in `tests/fixtures/instead_of/` (a small
//! spec of ours and two published descriptions, one per version), never on
//! the checkout's spec.

use std::path::PathBuf;

use serde_json::{Value, json};
use xtask::upstream::{Finding, INSTEAD_OF, Kind, Report, compare, load, render};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/instead_of")
        .join(name);
    load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Our fixture spec: `SyncStatus` with `emr`, and `ehr` declared `x-instead-of` it.
fn ours() -> Value {
    fixture("ours.yaml")
}

/// NexHealth's shape in v3.0.0 (`emr`) and in v3.1.0 (`ehr`).
fn published(version: &str) -> Value {
    fixture(&format!("published-{version}.json"))
}

const SYNC_STATUS: &str = "/components/schemas/SyncStatus/properties";

fn findings(theirs: &Value, ours: &Value) -> Vec<Finding> {
    compare(theirs, ours).findings
}

fn text(findings: &[Finding]) -> String {
    render(&Report {
        findings: findings.to_vec(),
        out_of_scope: vec![],
    })
}

#[test]
fn a_v3_1_description_with_ehr_is_covered_by_the_declared_rename() {
    let theirs = published("v3.1");
    assert!(
        theirs
            .pointer("/components/schemas/SyncStatus/properties/ehr")
            .is_some()
    );
    assert!(
        theirs
            .pointer("/components/schemas/SyncStatus/properties/emr")
            .is_none()
    );
    let found = findings(&theirs, &ours());
    assert!(found.is_empty(), "{}", text(&found));
}

#[test]
fn a_v3_0_description_with_emr_is_covered_as_well() {
    let found = findings(&published("v3.0"), &ours());
    assert!(found.is_empty(), "{}", text(&found));
}

/// The declaration is what covers the other name: without it, each version's
/// description reports the name it lacks (and nothing under it).
#[test]
fn without_the_declaration_the_name_a_version_lacks_is_reported() {
    let mut undeclared = ours();
    undeclared
        .pointer_mut(&format!("{SYNC_STATUS}/ehr"))
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove(INSTEAD_OF);
    for (version, lacked) in [("v3.1", "emr"), ("v3.0", "ehr")] {
        let found = findings(&published(version), &undeclared);
        assert_eq!(found.len(), 1, "{version}: {}", text(&found));
        assert_eq!(
            found[0].kind,
            Kind::NotDescribed,
            "{version}: {:?}",
            found[0]
        );
        assert_eq!(found[0].ours, format!("{SYNC_STATUS}/{lacked}"));
        assert!(
            found[0].change.contains(&format!("`data[].{lacked}`")),
            "{}",
            found[0].change
        );
    }
}

/// Before the spec knew the new name, a v3.1.0 description was drift: `ehr`
/// has the shape of our `emr`, which it does not describe, so it is reported
/// once, as a rename, pointing at the declaration that covers it.
#[test]
fn a_spec_without_the_new_name_is_told_of_the_rename() {
    let mut old = ours();
    old.pointer_mut(SYNC_STATUS)
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove("ehr");
    let found = findings(&published("v3.1"), &old);
    let kinds: Vec<(Kind, &str, &str)> = found
        .iter()
        .map(|f| (f.kind, f.upstream.as_str(), f.ours.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(
            Kind::RenamedField,
            "/components/schemas/SyncStatus/properties/ehr",
            "/components/schemas/SyncStatus/properties/emr"
        )],
        "{}",
        text(&found)
    );
    assert!(
        found[0].change.contains("renamed `emr` → `ehr`?"),
        "{}",
        found[0].change
    );
    assert!(found[0].change.contains(INSTEAD_OF), "{}", found[0].change);

    // Another shape under the new name: a field to add, and the old one not
    // described.
    let mut theirs = published("v3.1");
    *theirs.pointer_mut(&format!("{SYNC_STATUS}/ehr")).unwrap() = json!({"type": "string"});
    let found = findings(&theirs, &old);
    let kinds: Vec<(Kind, &str)> = found.iter().map(|f| (f.kind, f.ours.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (Kind::MissingResponseField, SYNC_STATUS),
            (
                Kind::NotDescribed,
                "/components/schemas/SyncStatus/properties/emr"
            ),
        ],
        "{}",
        text(&found)
    );
    assert!(found[0].change.contains("add `ehr`"), "{}", found[0].change);
}

/// The renamed field is compared like any other under the name the
/// description uses: a declaration covers the name, never a difference.
#[test]
fn the_name_a_version_uses_is_still_compared() {
    let mut theirs = published("v3.1");
    *theirs
        .pointer_mut("/components/schemas/Emr/properties/id")
        .unwrap() = json!({"type": "string"});
    let found = findings(&theirs, &ours());
    assert_eq!(found.len(), 1, "{}", text(&found));
    assert_eq!(found[0].kind, Kind::Type);
    assert!(
        found[0].change.contains("`data[].ehr.id`"),
        "{}",
        found[0].change
    );
}
