//! Each check of `cargo xtask check` fails on a copy of the spec (or of the
//! generated files, or of the test folder) broken on purpose.

use std::path::Path;

use serde_json::{Value, json};
use xtask::{Failure, Paths};

/// A scratch copy of the spec, the generated files and the contract tests.
struct Copy {
    _dir: tempfile::TempDir,
    paths: Paths,
}

fn copy_dir(from: &Path, to: &Path) {
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

impl Copy {
    fn new() -> Self {
        let repo = Paths::repo().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            spec: dir.path().join("nexhealth.yaml"),
            generated: dir.path().join("generated"),
            tests: dir.path().join("tests"),
        };
        std::fs::copy(&repo.spec, &paths.spec).unwrap();
        copy_dir(&repo.generated, &paths.generated);
        copy_dir(&repo.tests.join("tests"), &paths.tests.join("tests"));
        copy_dir(&repo.tests.join("src"), &paths.tests.join("src"));
        std::fs::create_dir_all(paths.tests.join("data")).unwrap();
        std::fs::copy(
            repo.tests
                .join("data")
                .join("nexhealth-published-facts.json"),
            paths
                .tests
                .join("data")
                .join("nexhealth-published-facts.json"),
        )
        .unwrap();
        Self { _dir: dir, paths }
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

    fn check(&self) -> Vec<Failure> {
        xtask::check(&self.paths)
    }
}

fn assert_fails(failures: &[Failure], check: &str, place: &str, text: &str) {
    assert!(
        failures
            .iter()
            .any(|f| f.check == check && f.place.contains(place) && f.message.contains(text)),
        "expected a [{check}] failure at {place} saying {text:?}; got:\n{}",
        failures
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for f in failures {
        assert!(!f.fix.is_empty(), "every failure says what to do: {f}");
    }
}

const LOCATION: &str = "/paths/~1locations~1{id}/get";

#[test]
fn the_repository_is_in_sync() {
    let failures = xtask::check(&Paths::repo().unwrap());
    assert!(
        failures.is_empty(),
        "{}",
        failures
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn an_untouched_copy_is_in_sync() {
    assert_eq!(Copy::new().check(), vec![]);
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
    copy.set(&format!("{LOCATION}/operationId"), json!("getLocations"));
    assert_fails(&copy.check(), "1 spec", LOCATION, "already used");
}

#[test]
fn check_1_two_success_schemas() {
    let copy = Copy::new();
    copy.edit(|spec| {
        let responses = spec.pointer_mut(&format!("{LOCATION}/responses")).unwrap();
        responses["201"] = json!({"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/InstitutionResponse"}}}});
    });
    assert_fails(&copy.check(), "1 spec", LOCATION, "must share one schema");
}

#[test]
fn check_1_two_error_schemas() {
    let copy = Copy::new();
    copy.edit(|spec| {
        let responses = spec.pointer_mut(&format!("{LOCATION}/responses")).unwrap();
        responses["404"] = json!({"description": "x", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}});
    });
    assert_fails(
        &copy.check(),
        "1 spec",
        LOCATION,
        "error (4xx/5xx) responses must share one schema",
    );
}

#[test]
fn check_1_vendor_media_type() {
    let copy = Copy::new();
    copy.edit(|spec| {
        let content = spec
            .pointer_mut(&format!("{LOCATION}/responses/200/content"))
            .unwrap();
        let media = content["application/json"].take();
        *content = json!({"application/vnd.Nexhealth+json;version=2": media});
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
        "/components/schemas/Location/properties/specialty/$ref",
        json!("#/components/schemas/Speciality"),
    );
    assert_fails(
        &copy.check(),
        "1 spec",
        "/components/schemas/Location/properties/specialty",
        "does not resolve",
    );
}

/// The form other OpenAPI 3.0.3 tools reject (Redocly's `nullable-type-sibling`):
/// `nullable` beside `allOf: [$ref]` and no `type`.
#[test]
fn check_1_nullable_without_type() {
    let copy = Copy::new();
    copy.set(
        "/components/schemas/Envelope/properties/page_info",
        json!({"allOf": [{"$ref": "#/components/schemas/PageInfo"}], "nullable": true}),
    );
    let failures = copy.check();
    assert_fails(
        &failures,
        "1 spec",
        "/components/schemas/Envelope/properties/page_info/nullable",
        "oneOf: [{$ref: ...}, {enum: [null]}]",
    );
    // The report names the file too.
    let shown = failures.iter().map(|f| f.to_string()).collect::<String>();
    assert!(shown.contains("nexhealth.yaml"), "{shown}");
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
            .pointer_mut(&format!("{LOCATION}/parameters"))
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
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "pub struct Location {",
        "pub struct Location { pub sneaky: u8,",
    );
    std::fs::write(&file, text).unwrap();
    let failures = copy.check();
    assert_fails(
        &failures,
        "2 drift",
        "generated_client.rs",
        "pub struct Location { pub sneaky: u8,",
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
        "/components/schemas/Location/properties/fax_number",
        json!({"type": "string", "nullable": true}),
    );
    let failures = copy.check();
    assert_fails(
        &failures,
        "2 drift",
        "generated_client.rs",
        "+        pub fax_number: ::std::option::Option",
    );
    // The compiled crate does not have the field yet either.
    assert_fails(
        &failures,
        "4 types",
        "/components/schemas/Location",
        "`fax_number` is in the spec but not in the type",
    );
}

#[test]
fn check_3_an_example_of_the_wrong_type() {
    let copy = Copy::new();
    copy.set(
        &format!("{LOCATION}/responses/200/content/application~1json/example/data/id"),
        json!("seven"),
    );
    assert_fails(&copy.check(), "3 examples", LOCATION, "at `data.id`");
}

#[test]
fn check_3_an_example_field_the_schema_lacks() {
    let copy = Copy::new();
    copy.set(
        &format!("{LOCATION}/responses/200/content/application~1json/example/data/colour"),
        json!("blue"),
    );
    assert_fails(
        &copy.check(),
        "3 examples",
        LOCATION,
        "`.data.colour` is in the example (\"blue\") but absent",
    );
}

#[test]
fn check_3_a_request_body_example() {
    let copy = Copy::new();
    copy.set("/paths/~1onboardings/post/requestBody/content/application~1json/example/onboarding/emr_name", json!("abacus"));
    assert_fails(
        &copy.check(),
        "3 examples",
        "/paths/~1onboardings/post/requestBody",
        "onboarding.emr_name",
    );
}

#[test]
fn check_3_a_parameter_example() {
    let copy = Copy::new();
    copy.set(&format!("{LOCATION}/parameters/0/example"), json!("seven"));
    assert_fails(
        &copy.check(),
        "3 examples",
        &format!("{LOCATION}/parameters/0/example"),
        "does not fit",
    );
}

#[test]
fn check_4_required_ness() {
    let copy = Copy::new();
    copy.set(
        "/components/schemas/Location/required",
        json!(["id", "name"]),
    );
    assert_fails(
        &copy.check(),
        "4 types",
        "/components/schemas/Location",
        "required fields differ",
    );
}

#[test]
fn check_4_nullability() {
    let copy = Copy::new();
    copy.set(
        "/components/schemas/Institution/properties/locations/nullable",
        json!(true),
    );
    assert_fails(
        &copy.check(),
        "4 types",
        "/components/schemas/Institution",
        "`locations` may be null in the spec",
    );
}

#[test]
fn check_4_enum_values() {
    let copy = Copy::new();
    copy.edit(|spec| {
        spec.pointer_mut("/components/schemas/SyncState/enum")
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(json!("amber"));
    });
    assert_fails(
        &copy.check(),
        "4 types",
        "/components/schemas/SyncState",
        "enum values differ",
    );
}

#[test]
fn check_5_an_operation_without_a_contract_test() {
    let copy = Copy::new();
    for entry in std::fs::read_dir(copy.paths.tests.join("tests"))
        .unwrap()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path())
            .unwrap()
            .replace(".get_locations_id(", ".xx(");
        std::fs::write(entry.path(), text).unwrap();
    }
    assert_fails(
        &copy.check(),
        "5 contract tests",
        LOCATION,
        "client.get_locations_id()",
    );
}

#[test]
fn check_5_naming_the_mock_or_calling_outside_a_test_is_not_a_contract_test() {
    let copy = Copy::new();
    let dir = copy.paths.tests.join("tests");
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        std::fs::remove_file(entry.path()).unwrap();
    }
    std::fs::write(
        dir.join("only_names.rs"),
        r#"
// client.get_locations_id() in a comment
async fn helper(client: &nexhealth_api::Client) {
    let _ = client.get_locations_id().id(7).await;
}

#[tokio::test]
async fn mocks_only() {
    let h = nexhealth_contract_tests::Harness::start().await;
    h.server.get_locations_id(|when, then| { when.id(7); then.ok(&x()); });
    let text = "client.get_locations_id()";
}
"#,
    )
    .unwrap();
    assert_fails(
        &copy.check(),
        "5 contract tests",
        LOCATION,
        "client.get_locations_id()",
    );
    // The same call inside a test function counts.
    std::fs::write(
        dir.join("calls.rs"),
        "#[tokio::test]\nasync fn calls() { let _ = client\n    .get_locations_id().id(7).await; }\n",
    )
    .unwrap();
    let failures = copy.check();
    assert!(
        !failures
            .iter()
            .any(|f| f.check == "5 contract tests" && f.place == LOCATION),
        "{failures:?}"
    );
}

/// A new operation in the spec, the tests untouched: `check` names the
/// operation without a contract test and every file whose list of operations
/// must learn it.
#[test]
fn a_new_operation_names_every_place_that_must_learn_it() {
    let copy = Copy::new();
    copy.edit(|spec| {
        let mut get = spec.pointer(LOCATION).unwrap().clone();
        get["operationId"] = json!("getLocationsIdAppointmentDescriptors");
        spec["paths"]["/locations/{id}/appointment_descriptors"] = json!({ "get": get });
    });
    let failures = copy.check();
    assert_fails(
        &failures,
        "5 contract tests",
        "/paths/~1locations~1{id}~1appointment_descriptors/get",
        "client.get_locations_id_appointment_descriptors()",
    );
    // The Prism walk would call it, and NexHealth's facts do not describe it.
    assert_fails(
        &failures,
        "6 registry",
        "not_walked",
        "would call getLocationsIdAppointmentDescriptors",
    );
    let mut named: Vec<String> = failures
        .iter()
        .filter(|f| f.check == "6 registry" && f.place == "(file)")
        .map(|f| {
            assert!(
                f.message.contains("getLocationsIdAppointmentDescriptors"),
                "{f}"
            );
            f.file
                .strip_prefix(&copy.paths.tests)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            "src/lib.rs",
            "src/prism.rs",
            "tests/prism.rs",
            "tests/public_api.rs"
        ]
    );
    // The repository's own suite names every operation today.
    assert!(
        xtask::check_registry(
            &nexhealth_openapi::load_spec_value(&Paths::repo().unwrap().spec).unwrap(),
            &Paths::repo().unwrap().tests
        )
        .is_empty()
    );
}

/// `new-operation` writes a contract-test skeleton in the suite's style for an
/// operation the spec names; check 5 then finds the operation tested.
#[test]
fn new_operation_writes_a_skeleton_that_satisfies_the_contract_rule() {
    let copy = Copy::new();
    let id = "getLocationsIdAppointmentDescriptors";
    let unknown = xtask::scaffold::new_operation(&copy.paths, id).unwrap_err();
    assert!(
        unknown.contains("names no operation") && unknown.contains("getLocationsId"),
        "{unknown}"
    );
    copy.edit(|spec| {
        let mut get = spec.pointer(LOCATION).unwrap().clone();
        get["operationId"] = json!(id);
        spec["paths"]["/locations/{id}/appointment_descriptors"] = json!({ "get": get });
    });
    let written = xtask::scaffold::new_operation(&copy.paths, id).unwrap();
    assert_eq!(
        written,
        copy.paths
            .tests
            .join("tests")
            .join("operation_get_locations_id_appointment_descriptors.rs")
    );
    let text = std::fs::read_to_string(&written).unwrap();
    for expected in [
        "#[tokio::test]",
        "h.server.get_locations_id_appointment_descriptors(|when, then| {",
        "when.id(",
        "then.ok(&payloads::examples::get_locations_id_appointment_descriptors_200());",
        ".get_locations_id_appointment_descriptors()",
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
            .any(|f| f.check == "5 contract tests" && f.message.contains("appointment_descriptors")),
        "{failures:?}"
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
    let lib = copy.paths.tests.join("src").join("lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    let broken = text.replacen(
        "OperationId::GetInstitutions => client.get_institutions().await.map(drop),",
        "OperationId::GetInstitutions => todo!(),",
        1,
    );
    assert_ne!(broken, text);
    std::fs::write(&lib, broken).unwrap();
    assert_fails(&copy.check(), "6 registry", "line ", "placeholder");
}

/// An operation the Prism walk would call but NexHealth's facts lack: check
/// names it (the suite would fail), until `not_walked` declares it.
#[test]
fn check_6_a_walked_operation_missing_from_the_facts() {
    let copy = Copy::new();
    let id = "getLocationsIdAppointmentDescriptors";
    copy.edit(|spec| {
        let mut get = spec.pointer(LOCATION).unwrap().clone();
        get["operationId"] = json!(id);
        spec["paths"]["/locations/{id}/appointment_descriptors"] = json!({ "get": get });
    });
    let prism = copy.paths.tests.join("src").join("prism.rs");
    let text = std::fs::read_to_string(&prism).unwrap();
    let walked = text.replacen(
        "OperationId::PostAuthenticates\n",
        "OperationId::PostAuthenticates\n        | OperationId::GetLocationsIdAppointmentDescriptors\n",
        1,
    );
    assert_ne!(walked, text);
    std::fs::write(&prism, &walked).unwrap();
    assert_fails(
        &copy.check(),
        "6 registry",
        "not_walked",
        "would call getLocationsIdAppointmentDescriptors",
    );
    let declared = text.replacen(
        "OperationId::GetWebhookEndpoints\n",
        "OperationId::GetLocationsIdAppointmentDescriptors\n        | OperationId::GetWebhookEndpoints\n",
        1,
    );
    assert_ne!(declared, text);
    std::fs::write(&prism, &declared).unwrap();
    assert!(
        !copy
            .check()
            .iter()
            .any(|f| f.message.contains("would call")),
        "declared in not_walked"
    );
}
