//! Each check of `cargo xtask check` fails on a copy of xtask's own fixture
//! (`tests/fixtures/check/`: a small spec of things, its contract tests, its
//! Prism walk and facts) broken on purpose. The compiled types are the
//! fixture's own, below, answered in process: nothing here reads the
//! checkout's spec, so a legitimate change of the spec cannot break these
//! tests. `the_repository_is_in_sync` is the one test of the checkout itself.

mod support;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::{copy_dir, fixture};
use xtask::introspect::{Answer, Compiled, Entry, Registry, Request, Unavailable};
use xtask::{Failure, Paths, Section};

/// The fixture's compiled types: what progenitor would generate for
/// `fixtures/check/nexhealth.yaml`, each with the JSON Schema schemars
/// derives for it (OpenAPI 3.0 settings: an `Option` is `nullable`).
mod types {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub enum State {
        #[serde(rename = "on")]
        On,
        #[serde(rename = "off")]
        Off,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Thing {
        pub id: i32,
        pub name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub colour: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub state: Option<State>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Envelope {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<Vec<String>>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct ErrorEnvelope {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub data: Option<Value>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct ThingResponse {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<Vec<String>>,
        pub data: Thing,
    }

    #[derive(Serialize, Deserialize)]
    pub struct ThingListResponse {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<Vec<String>>,
        pub data: Vec<Thing>,
    }
}

/// The JSON Schema of an object type: `properties` and `required`.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

fn envelope_fields() -> serde_json::Map<String, Value> {
    json!({
        "code": {"type": "boolean", "nullable": true},
        "error": {"type": "array", "items": {"type": "string"}, "nullable": true}
    })
    .as_object()
    .unwrap()
    .clone()
}

fn compiled() -> Registry {
    use nexhealth_api::introspect::roundtrip;
    Registry(vec![
        Entry {
            name: "State",
            roundtrip: roundtrip::<types::State>,
            json_schema: || json!({"type": "string", "enum": ["on", "off"]}),
        },
        Entry {
            name: "Thing",
            roundtrip: roundtrip::<types::Thing>,
            json_schema: || {
                object(
                    json!({
                        "id": {"type": "integer", "format": "int32"},
                        "name": {"type": "string"},
                        "colour": {"type": "string", "nullable": true},
                        "state": {"allOf": [{"$ref": "#/components/schemas/State"}], "nullable": true}
                    }),
                    &["id", "name"],
                )
            },
        },
        Entry {
            name: "Envelope",
            roundtrip: roundtrip::<types::Envelope>,
            json_schema: || object(Value::Object(envelope_fields()), &[]),
        },
        Entry {
            name: "ErrorEnvelope",
            roundtrip: roundtrip::<types::ErrorEnvelope>,
            json_schema: || {
                let mut fields = envelope_fields();
                fields.insert("data".into(), json!({"nullable": true}));
                object(Value::Object(fields), &[])
            },
        },
        Entry {
            name: "ThingResponse",
            roundtrip: roundtrip::<types::ThingResponse>,
            json_schema: || {
                let mut fields = envelope_fields();
                fields.insert("data".into(), json!({"$ref": "#/components/schemas/Thing"}));
                object(Value::Object(fields), &["data"])
            },
        },
        Entry {
            name: "ThingListResponse",
            roundtrip: roundtrip::<types::ThingListResponse>,
            json_schema: || {
                let mut fields = envelope_fields();
                fields.insert(
                    "data".into(),
                    json!({"type": "array", "items": {"$ref": "#/components/schemas/Thing"}}),
                );
                object(Value::Object(fields), &["data"])
            },
        },
    ])
}

/// A scratch copy of the fixture: its spec, the code generated from it, and
/// its contract tests.
struct Copy {
    dir: tempfile::TempDir,
    paths: Paths,
}

impl Copy {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: dir.path().to_path_buf(),
            spec: dir.path().join("nexhealth.yaml"),
            generated: dir.path().join("generated"),
            tests: dir.path().join("tests"),
        };
        std::fs::copy(fixture("check/nexhealth.yaml"), &paths.spec).unwrap();
        copy_dir(&fixture("check/tests"), &paths.tests);
        xtask::generate(&paths).expect("the fixture generates");
        Self { dir, paths }
    }

    fn spec(&self) -> Value {
        nexhealth_openapi::load_spec_value(&self.paths.spec).unwrap()
    }

    fn edit(&self, change: impl FnOnce(&mut Value)) -> &Self {
        let mut spec = self.spec();
        change(&mut spec);
        std::fs::write(&self.paths.spec, serde_yaml::to_string(&spec).unwrap()).unwrap();
        self
    }

    /// Sets (or adds) the value at `pointer`; its parent must exist.
    fn set(&self, pointer: &str, value: Value) -> &Self {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let key = key.replace("~1", "/").replace("~0", "~");
        self.edit(|spec| {
            let parent = spec
                .pointer_mut(parent)
                .unwrap_or_else(|| panic!("{parent}"));
            match parent {
                Value::Object(map) => {
                    map.insert(key, value);
                }
                Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
                _ => panic!("{pointer}: parent is not a container"),
            }
        })
    }

    /// Adds `GET /things/{id}/parts` (`getThingsIdParts`), a copy of
    /// `GET /things/{id}`: a new operation, the tests untouched.
    fn add_operation(&self) -> &Self {
        self.edit(|spec| {
            let mut get = spec.pointer(THING).unwrap().clone();
            get["operationId"] = json!("getThingsIdParts");
            spec["paths"]["/things/{id}/parts"] = json!({ "get": get });
        })
    }

    fn check(&self) -> Vec<Failure> {
        xtask::check(&self.paths, &compiled())
    }

    fn file(&self, path: &str) -> std::path::PathBuf {
        self.dir.path().join(path)
    }
}

fn shown(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_fails(failures: &[Failure], check: &str, place: &str, text: &str) {
    assert!(
        failures
            .iter()
            .any(|f| f.check == check && f.place.contains(place) && f.message.contains(text)),
        "expected a [{check}] failure at {place} saying {text:?}; got:\n{}",
        shown(failures)
    );
    for f in failures {
        assert!(!f.fix.is_empty(), "every failure says what to do: {f}");
    }
}

const THING: &str = "/paths/~1things~1{id}/get";

/// The checkout itself: `cargo xtask check` as a test, its SDK built and run
/// as a separate process.
#[test]
fn the_repository_is_in_sync() {
    let paths = Paths::repo().unwrap();
    let failures = xtask::check(&paths, &xtask::introspect::Sdk::of(&paths.root));
    assert!(failures.is_empty(), "{}", shown(&failures));
}

#[test]
fn an_untouched_fixture_is_in_sync() {
    let copy = Copy::new();
    let failures = copy.check();
    assert!(failures.is_empty(), "{}", shown(&failures));
}

#[test]
fn check_1_openapi_version() {
    let copy = Copy::new();
    copy.set("/openapi", json!("3.1.0"));
    assert_fails(&copy.check(), "1 spec", "/openapi", "not 3.0.x");
}

#[test]
fn check_1_not_yaml() {
    let copy = Copy::new();
    std::fs::write(&copy.paths.spec, "openapi: 3.0.3\npaths: [unclosed\n").unwrap();
    assert_fails(&copy.check(), "1 spec", "(file)", "not valid YAML");
}

#[test]
fn check_1_duplicate_operation_id() {
    let copy = Copy::new();
    copy.set(&format!("{THING}/operationId"), json!("getThings"));
    assert_fails(&copy.check(), "1 spec", THING, "already used");
}

#[test]
fn check_1_two_success_schemas() {
    let copy = Copy::new();
    copy.edit(|spec| {
        let responses = spec.pointer_mut(&format!("{THING}/responses")).unwrap();
        responses["201"] = json!({"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ThingListResponse"}}}});
    });
    assert_fails(&copy.check(), "1 spec", THING, "must share one schema");
}

#[test]
fn check_1_two_error_schemas() {
    let copy = Copy::new();
    copy.edit(|spec| {
        let responses = spec.pointer_mut(&format!("{THING}/responses")).unwrap();
        responses["404"] = json!({"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}});
    });
    assert_fails(
        &copy.check(),
        "1 spec",
        THING,
        "error (4xx/5xx) responses must share one schema",
    );
}

#[test]
fn check_1_vendor_media_type() {
    let copy = Copy::new();
    copy.edit(|spec| {
        let content = spec
            .pointer_mut(&format!("{THING}/responses/200/content"))
            .unwrap();
        let media = content["application/json"].take();
        *content = json!({"application/vnd.Things+json;version=2": media});
    });
    assert_fails(
        &copy.check(),
        "1 spec",
        "/responses/200/content",
        "application/json only",
    );
}

#[test]
fn check_1_dangling_ref() {
    let copy = Copy::new();
    copy.set(
        "/components/schemas/Thing/properties/state/$ref",
        json!("#/components/schemas/Stat"),
    );
    assert_fails(
        &copy.check(),
        "1 spec",
        "/components/schemas/Thing/properties/state",
        "does not resolve",
    );
}

/// The form other OpenAPI 3.0.3 tools reject (Redocly's `nullable-type-sibling`):
/// `nullable` beside `allOf: [$ref]` and no `type`.
#[test]
fn check_1_nullable_without_type() {
    let copy = Copy::new();
    copy.set(
        "/components/schemas/Thing/properties/state",
        json!({"allOf": [{"$ref": "#/components/schemas/State"}], "nullable": true}),
    );
    let failures = copy.check();
    assert_fails(
        &failures,
        "1 spec",
        "/components/schemas/Thing/properties/state/nullable",
        "oneOf: [{$ref: ...}, {enum: [null]}]",
    );
    // The report names the file too.
    assert!(shown(&failures).contains("nexhealth.yaml"));
}

#[test]
fn check_1_unused_component() {
    let copy = Copy::new();
    copy.set("/components/schemas/Orphan", json!({"type": "object"}));
    assert_fails(
        &copy.check(),
        "1 spec",
        "/components/schemas/Orphan",
        "never referenced",
    );
}

#[test]
fn check_1_what_only_progenitor_rejects() {
    let copy = Copy::new();
    copy.edit(|spec| {
        let params = spec
            .pointer_mut(&format!("{THING}/parameters"))
            .unwrap()
            .as_array_mut()
            .unwrap();
        params.push(json!({"name": "session", "in": "cookie", "schema": {"type": "string"}}));
    });
    assert_fails(&copy.check(), "1 spec", "(generation)", "nexhealth.yaml");
}

#[test]
fn check_2_a_hand_edit_of_generated_code() {
    let copy = Copy::new();
    let file = copy.paths.generated.join("generated_client.rs");
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen(
        "pub struct Thing {",
        "pub struct Thing { pub sneaky: u8,",
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&file, edited).unwrap();
    let failures = copy.check();
    assert_fails(
        &failures,
        "2 drift",
        "generated_client.rs",
        "pub struct Thing { pub sneaky: u8,",
    );
    assert!(
        failures
            .iter()
            .any(|f| f.fix.contains("cargo xtask generate"))
    );
}

#[test]
fn check_2_a_spec_edit_without_regenerating() {
    let copy = Copy::new();
    copy.set(
        "/components/schemas/Thing/properties/weight",
        json!({"type": "string", "nullable": true}),
    );
    let failures = copy.check();
    assert_fails(
        &failures,
        "2 drift",
        "generated_client.rs",
        "+        pub weight: ::std::option::Option",
    );
    // The compiled types do not have the field either.
    assert_fails(
        &failures,
        "4 types",
        "/components/schemas/Thing",
        "`weight` is in the spec but not in the type",
    );
}

#[test]
fn check_3_an_example_of_the_wrong_type() {
    let copy = Copy::new();
    copy.set(
        &format!("{THING}/responses/200/content/application~1json/example/data/id"),
        json!("seven"),
    );
    assert_fails(&copy.check(), "3 examples", THING, "at `data.id`");
}

#[test]
fn check_3_an_example_field_the_schema_lacks() {
    let copy = Copy::new();
    copy.set(
        &format!("{THING}/responses/200/content/application~1json/example/data/size"),
        json!("large"),
    );
    assert_fails(
        &copy.check(),
        "3 examples",
        THING,
        "`.data.size` is in the example (\"large\") but absent",
    );
}

#[test]
fn check_3_a_request_body_example() {
    let copy = Copy::new();
    copy.set(
        "/paths/~1things~1{id}/post/requestBody/content/application~1json/example/state",
        json!("sideways"),
    );
    assert_fails(
        &copy.check(),
        "3 examples",
        "/paths/~1things~1{id}/post/requestBody",
        "state",
    );
}

#[test]
fn check_3_a_parameter_example() {
    let copy = Copy::new();
    copy.set(&format!("{THING}/parameters/0/example"), json!("seven"));
    assert_fails(
        &copy.check(),
        "3 examples",
        &format!("{THING}/parameters/0/example"),
        "does not fit",
    );
}

#[test]
fn check_4_required_ness() {
    let copy = Copy::new();
    copy.set(
        "/components/schemas/Thing/required",
        json!(["id", "name", "state"]),
    );
    assert_fails(
        &copy.check(),
        "4 types",
        "/components/schemas/Thing",
        "required fields differ",
    );
}

#[test]
fn check_4_nullability() {
    let copy = Copy::new();
    copy.set(
        "/components/schemas/Thing/properties/name/nullable",
        json!(true),
    );
    assert_fails(
        &copy.check(),
        "4 types",
        "/components/schemas/Thing",
        "`name` may be null in the spec",
    );
}

#[test]
fn check_4_enum_values() {
    let copy = Copy::new();
    copy.edit(|spec| {
        spec.pointer_mut("/components/schemas/State/enum")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(json!("amber"));
    });
    assert_fails(
        &copy.check(),
        "4 types",
        "/components/schemas/State",
        "enum values differ",
    );
}

/// Compiled types that cannot answer (the SDK does not compile, or its target
/// directory is shared): one problem with the reason and its fix, and
/// neither section claims a result.
#[test]
fn check_3_and_4_when_the_compiled_types_cannot_answer() {
    struct Broken;
    impl Compiled for Broken {
        fn answer(&self, _: &Request) -> Result<Answer, Unavailable> {
            Err(Unavailable {
                place: "(build)".into(),
                message: "the SDK does not compile: error[E0004]".into(),
                fix: "fix the first error".into(),
            })
        }
    }
    let copy = Copy::new();
    let report = xtask::check_sections(&copy.paths, &Section::ALL, &Broken);
    assert_fails(&report.failures, "3 examples", "(build)", "E0004");
    assert_eq!(report.failures.len(), 1, "{}", shown(&report.failures));
    assert!(
        report.skipped.iter().any(|(s, _)| *s == Section::Types),
        "{}",
        report.summary()
    );
    assert!(report.summary().contains("NOT RUN"), "{}", report.summary());
}

#[test]
fn check_5_an_operation_without_a_contract_test() {
    let copy = Copy::new();
    let file = copy.paths.tests.join("tests").join("things.rs");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(".get_things_id(", ".xx(")).unwrap();
    assert_fails(
        &copy.check(),
        "5 contract tests",
        THING,
        "client.get_things_id()",
    );
}

#[test]
fn check_5_naming_the_mock_or_calling_outside_a_test_is_not_a_contract_test() {
    let copy = Copy::new();
    let dir = copy.paths.tests.join("tests");
    let file = dir.join("things.rs");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(".get_things_id(", ".xx(")).unwrap();
    std::fs::write(
        dir.join("only_names.rs"),
        r#"
// client.get_things_id() in a comment
async fn helper(client: &Client) {
    let _ = client.get_things_id().id(7).await;
}

#[tokio::test]
async fn mocks_only() {
    let h = Harness::start().await;
    h.server.get_things_id(|when, then| { when.id(7); then.ok(&x()); });
    let text = "client.get_things_id()";
}
"#,
    )
    .unwrap();
    assert_fails(
        &copy.check(),
        "5 contract tests",
        THING,
        "client.get_things_id()",
    );
    // The same call inside a test function counts.
    std::fs::write(
        dir.join("calls.rs"),
        "#[tokio::test]\nasync fn calls() { let _ = client\n    .get_things_id().id(7).await; }\n",
    )
    .unwrap();
    let failures = copy.check();
    assert!(
        !failures
            .iter()
            .any(|f| f.check == "5 contract tests" && f.place == THING),
        "{}",
        shown(&failures)
    );
}

/// A new operation in the spec, the tests untouched: `check` names the
/// operation without a contract test and every file whose list of operations
/// must learn it.
#[test]
fn a_new_operation_names_every_place_that_must_learn_it() {
    let copy = Copy::new();
    copy.add_operation();
    let failures = copy.check();
    assert_fails(
        &failures,
        "5 contract tests",
        "/paths/~1things~1{id}~1parts/get",
        "client.get_things_id_parts()",
    );
    // The Prism walk would call it, and the facts do not describe it.
    assert_fails(
        &failures,
        "6 registry",
        "not_walked",
        "would call getThingsIdParts",
    );
    let mut named: Vec<String> = failures
        .iter()
        .filter(|f| f.check == "6 registry" && f.place == "(file)")
        .map(|f| {
            assert!(f.message.contains("getThingsIdParts"), "{f}");
            f.file
                .strip_prefix(&copy.paths.tests)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    named.sort();
    assert_eq!(named, ["src/lib.rs", "src/prism.rs"]);
}

/// `new-operation` writes a contract-test skeleton in the suite's style for an
/// operation the spec names; check 5 then finds the operation tested.
#[test]
fn new_operation_writes_a_skeleton_that_satisfies_the_contract_rule() {
    let copy = Copy::new();
    let id = "getThingsIdParts";
    let unknown = xtask::scaffold::new_operation(&copy.paths, id).unwrap_err();
    assert!(
        unknown.contains("names no operation") && unknown.contains("getThingsId"),
        "{unknown}"
    );
    copy.add_operation();
    let written = xtask::scaffold::new_operation(&copy.paths, id).unwrap();
    assert_eq!(
        written,
        copy.paths
            .tests
            .join("tests")
            .join("operation_get_things_id_parts.rs")
    );
    let text = std::fs::read_to_string(&written).unwrap();
    for expected in [
        "#[tokio::test]",
        "h.server.get_things_id_parts(|when, then| {",
        "when.id(7)",
        "then.ok(&payloads::examples::get_things_id_parts_200());",
        ".get_things_id_parts()",
        "mock.assert();",
        "fallback.assert_calls(0);",
    ] {
        // rustfmt decides the line breaks: compare without whitespace.
        let squeeze = |s: &str| s.split_whitespace().collect::<String>();
        assert!(
            squeeze(&text).contains(&squeeze(expected)),
            "{expected:?} not in:\n{text}"
        );
    }
    syn::parse_file(&text).expect("the skeleton is Rust");
    let failures = copy.check();
    assert!(
        !failures
            .iter()
            .any(|f| f.check == "5 contract tests" && f.message.contains("parts")),
        "{}",
        shown(&failures)
    );
    // A second run refuses to overwrite the maintainer's work.
    let again = xtask::scaffold::new_operation(&copy.paths, id).unwrap_err();
    assert!(again.contains("exists already"), "{again}");
}

/// rustc suggests `=> todo!()` for a missing arm; it compiles and fails only
/// when the suite runs, so check 6 names it.
#[test]
fn check_6_a_placeholder_arm_is_not_an_answer() {
    let copy = Copy::new();
    let lib = copy.file("tests/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    let broken = text.replacen(
        "OperationId::GetThings => client.get_things().await.map(drop),",
        "OperationId::GetThings => todo!(),",
        1,
    );
    assert_ne!(broken, text);
    std::fs::write(&lib, broken).unwrap();
    assert_fails(&copy.check(), "6 registry", "line ", "placeholder");
}

/// An operation the Prism walk would call but the facts lack: check names it
/// (the suite would fail), until `not_walked` declares it.
#[test]
fn check_6_a_walked_operation_missing_from_the_facts() {
    let copy = Copy::new();
    let prism = copy.file("tests/src/prism.rs");
    let text = std::fs::read_to_string(&prism).unwrap();
    // POST /things/{id} walked: the facts do not describe it.
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
    std::fs::write(&prism, &walked).unwrap();
    assert_fails(
        &copy.check(),
        "6 registry",
        "not_walked",
        "would call postThingsId",
    );
    std::fs::write(&prism, &text).unwrap();
    assert!(
        !copy
            .check()
            .iter()
            .any(|f| f.message.contains("would call")),
        "declared in not_walked"
    );
}
