//! `cargo xtask new-operation`: after the skeleton, "next:" lists every step
//! left, including the error statuses to copy from the neighbouring
//! operations (read from the spec). Runs in a checkout made of fixtures.

mod support;

use serde_json::{Value, json};
use support::{FixtureCheckout, fixture};

/// The fixture checkout with `GET /things/{id}/parts` (`getThingsIdParts`):
/// a 200 with an example and a 401 only.
fn with_new_operation() -> FixtureCheckout {
    let checkout = FixtureCheckout::new(&fixture("check/nexhealth.yaml"));
    let spec = checkout.root().join("openapi").join("nexhealth.yaml");
    let mut doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    let mut get = doc.pointer("/paths/~1things~1{id}/get").unwrap().clone();
    get["operationId"] = json!("getThingsIdParts");
    get["responses"]
        .as_object_mut()
        .unwrap()
        .remove("404")
        .unwrap();
    doc["paths"]["/things/{id}/parts"] = json!({ "get": get });
    std::fs::write(&spec, serde_yaml::to_string(&doc).unwrap()).unwrap();
    checkout
}

#[test]
fn the_error_statuses_to_declare_come_from_the_neighbours() {
    let checkout = with_new_operation();
    let spec =
        nexhealth_openapi::load_spec_value(&checkout.root().join("openapi").join("nexhealth.yaml"))
            .unwrap();
    let (missing, neighbours) =
        xtask::scaffold::missing_error_statuses(&spec, "getThingsIdParts").unwrap();
    assert_eq!(
        missing,
        [
            (
                400,
                "$ref: \"#/components/responses/BadRequest\"".to_string()
            ),
            (404, "$ref: \"#/components/responses/NotFound\"".to_string()),
        ]
    );
    let names: Vec<&str> = neighbours.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(
        names,
        ["GET /things", "GET /things/{id}", "POST /things/{id}"]
    );
}

#[test]
fn next_lists_every_step_left() {
    let checkout = with_new_operation();
    let out = checkout.xtask(&["new-operation", "getThingsIdParts"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        checkout
            .root()
            .join("tests/tests/operation_get_things_id_parts.rs")
            .is_file()
    );
    let next = stdout.split("next:").nth(1).expect(&stdout);
    for expected in [
        // The spec: the error statuses its neighbours declare, as they do.
        "\"400\": {$ref: \"#/components/responses/BadRequest\"}",
        "\"404\": {$ref: \"#/components/responses/NotFound\"}",
        "GET /things/{id}: 401 404",
        "cargo xtask generate",
        // The lists of operations to teach, by file.
        "tests/src/lib.rs",
        "tests/src/prism.rs",
        "`not_walked`",
        // The test's assertions, the README's row, the facts, the CHANGELOG.
        "operation_get_things_id_parts.rs",
        "README",
        "| `GET /things/{id}/parts` | `get_things_id_parts` |",
        "cargo xtask published-facts",
        "CHANGELOG",
        "Unreleased",
        // And the commands that prove it.
        "cargo xtask check",
        "cargo xtask quick",
    ] {
        assert!(next.contains(expected), "{expected:?} not in:\n{next}");
    }
    // Numbered, in order: the spec first, the proof last.
    let steps: Vec<&str> = next.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        steps[0].trim_start().starts_with("1. error statuses"),
        "{next}"
    );
    assert!(
        steps.last().unwrap().contains("cargo xtask quick"),
        "{next}"
    );
}
