//! `cargo xtask published-facts`: one source (NexHealth's whole published
//! file), kept at the size the Prism walk needs: the operations of our spec
//! that the walk calls, and the components they use. Runs on xtask's own
//! fixtures (`tests/fixtures/facts/published.json` as NexHealth's file, the
//! check fixture's spec and suite as the checkout), never on the shared
//! reference or the checkout's spec.

mod support;

use serde_json::Value;
use support::{FixtureCheckout, fixture};
use xtask::facts;

fn published() -> std::path::PathBuf {
    fixture("facts/published.json")
}

fn rendered(checkout: &FixtureCheckout) -> Value {
    serde_json::from_str(&facts::render(checkout.root(), &published()).unwrap()).unwrap()
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_facts_hold_the_walked_operations_and_what_they_use_only() {
    let checkout = FixtureCheckout::new(&fixture("check/nexhealth.yaml"));
    let facts = rendered(&checkout);
    // GET /things and GET /things/{id} are walked (matched by method and
    // path, whatever the path parameter is called); POST /things/{id} is in
    // our spec but declared in `not_walked`; DELETE and /widgets are not ours.
    assert_eq!(keys(&facts["paths"]), ["/things", "/things/{thing_id}"]);
    let item = &facts["paths"]["/things/{thing_id}"];
    assert_eq!(keys(item), ["get", "parameters"]);
    // The components they refer to, and theirs in turn; no other.
    assert_eq!(
        keys(&facts["components"]["schemas"]),
        ["Problem", "State", "Thing", "ThingList"]
    );
    assert_eq!(keys(&facts["components"]["responses"]), ["NotFound"]);
    assert_eq!(keys(&facts["components"]["securitySchemes"]), ["bearer"]);
    // The header stays, the tags and every sentence of NexHealth's go; a
    // field named `description` and the examples are facts.
    assert_eq!(facts["info"]["title"], "Things");
    assert!(facts.get("tags").is_none());
    let text = facts.to_string();
    assert!(!text.contains("their words"), "{text}");
    assert!(text.contains("a fact"), "{text}");
    assert_eq!(
        facts.pointer("/components/schemas/Thing/properties/description/type"),
        Some(&Value::from("string"))
    );
}

#[test]
fn an_operation_newly_walked_makes_the_copy_stale_until_it_is_written() {
    let checkout = FixtureCheckout::new(&fixture("check/nexhealth.yaml"));
    let written = facts::write(checkout.root(), &published()).unwrap();
    assert_eq!(written, facts::copy_path(checkout.root()));
    assert!(facts::is_current(checkout.root(), &published()).unwrap());
    // The walk now calls POST /things/{id} as well.
    let prism = checkout.root().join("tests/src/prism.rs");
    let text = std::fs::read_to_string(&prism).unwrap();
    let walked = text
        .replace(
            "OperationId::GetThings | OperationId::GetThingsId => None,",
            "OperationId::GetThings | OperationId::GetThingsId | OperationId::PostThingsId => None,",
        )
        .replace(
            "        OperationId::PostThingsId => Some(\"writes; its contract test runs against httpmock\"),\n",
            "",
        );
    assert_ne!(walked, text);
    std::fs::write(&prism, walked).unwrap();
    assert!(!facts::is_current(checkout.root(), &published()).unwrap());

    // The command says so (exit 1), then writes it, then agrees (exit 0).
    let path = published().display().to_string();
    let stale = checkout.xtask(&["published-facts", "--check", &path]);
    assert_eq!(stale.status.code(), Some(1), "{stale:?}");
    assert!(String::from_utf8_lossy(&stale.stderr).contains("is stale"));
    let write = checkout.xtask(&["published-facts", &path]);
    assert_eq!(write.status.code(), Some(0), "{write:?}");
    let current = checkout.xtask(&["published-facts", "--check", &path]);
    assert_eq!(current.status.code(), Some(0), "{current:?}");
    assert_eq!(
        keys(&rendered(&checkout)["paths"]["/things/{thing_id}"]),
        ["get", "parameters", "post"]
    );
}

/// One source: the default is NexHealth's whole file, and neither CI's step
/// nor CONTRIBUTING names another.
#[test]
fn one_source_in_the_tool_ci_and_contributing() {
    let root = xtask::root::find().unwrap();
    assert!(
        facts::default_source(&root).ends_with("shared/reference/nexhealth-openapi-full.json"),
        "{}",
        facts::default_source(&root).display()
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let step: Vec<&str> = ci
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo xtask published-facts"))
        .collect();
    assert_eq!(step.len(), 1, "{step:?}");
    assert!(
        step[0].trim() == "cargo xtask published-facts --check"
            || step[0].contains("nexhealth-openapi-full.json"),
        "{}",
        step[0]
    );
    let contributing = std::fs::read_to_string(root.join("CONTRIBUTING.md")).unwrap();
    let row: Vec<&str> = contributing
        .lines()
        .filter(|l| l.starts_with("| `cargo xtask published-facts"))
        .collect();
    assert_eq!(row.len(), 1, "{row:?}");
    assert!(row[0].contains("nexhealth-openapi-full.json"), "{}", row[0]);
    assert!(!contributing.contains("nexhealth-openapi-subset.json"));
}
