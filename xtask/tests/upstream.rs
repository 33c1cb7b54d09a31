//! `cargo xtask upstream`: one test per kind of drift. Each upstream document
//! is built here from xtask's own fixture spec (`tests/fixtures/upstream/`)
//! with one thing changed, so the project holds no copy of NexHealth's text,
//! and nothing here reads the checkout's spec or the shared reference: a
//! legitimate change of either cannot break these tests.

mod support;

use serde_json::{Value, json};
use support::{FixtureCheckout, fixture};
use xtask::upstream::{Finding, Kind, OUT_OF_SCOPE, Report, load};

/// The fixture spec, out-of-scope declaration included.
fn spec() -> Value {
    load(&fixture("upstream/ours.yaml")).unwrap()
}

/// The fixture without its out-of-scope declarations (NexHealth's copies built
/// here do not describe those operations); the tests of `x-out-of-scope` use
/// [`spec`].
fn ours() -> Value {
    let mut doc = spec();
    doc.as_object_mut().unwrap().remove(OUT_OF_SCOPE);
    doc
}

fn compare(theirs: &Value, ours: &Value) -> Vec<Finding> {
    xtask::upstream::compare(theirs, ours).findings
}

fn render(findings: &[Finding]) -> String {
    xtask::upstream::render(&Report {
        findings: findings.to_vec(),
        out_of_scope: vec![],
    })
}

/// The fixture with `change` applied, as NexHealth's description.
fn upstream(change: impl FnOnce(&mut Value)) -> Value {
    let mut doc = ours();
    change(&mut doc);
    doc
}

fn at<'a>(doc: &'a mut Value, pointer: &str) -> &'a mut Value {
    doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the fixture"))
}

/// Exactly one finding, of `kind`, on `operation`.
fn only(findings: &[Finding], kind: Kind, operation: &str) -> Finding {
    assert_eq!(
        findings.len(),
        1,
        "expected one {kind:?} on {operation}, got:\n{}",
        render(findings)
    );
    let finding = findings[0].clone();
    assert_eq!(finding.kind, kind, "{finding:?}");
    assert_eq!(finding.operation, operation, "{finding:?}");
    assert!(!finding.change.is_empty());
    finding
}

const LOCATION: &str = "/components/schemas/Location/properties";

#[test]
fn the_fixture_against_itself_reports_nothing() {
    let findings = compare(&ours(), &ours());
    assert!(findings.is_empty(), "{}", render(&findings));
}

/// Equivalent shapes are not drift: a `$ref` wrapped in a one-member `allOf`
/// that only adds a description, a referenced schema written inline.
#[test]
fn references_and_single_member_all_of_are_resolved() {
    let theirs = upstream(|doc| {
        *at(doc, &format!("{LOCATION}/specialty")) = json!({
            "allOf": [{"$ref": "#/components/schemas/Specialty"}],
            "description": "another wording"
        });
        let inline = at(doc, "/components/schemas/Institution").clone();
        *at(
            doc,
            "/components/schemas/InstitutionResponse/allOf/1/properties/data",
        ) = inline;
    });
    let findings = compare(&theirs, &ours());
    assert!(findings.is_empty(), "{}", render(&findings));
}

#[test]
fn a_new_operation_on_our_resources() {
    let theirs = upstream(|doc| {
        let get = at(doc, "/paths/~1locations~1{id}/get").clone();
        let mut delete = get;
        delete["operationId"] = json!("deleteLocationsId");
        at(doc, "/paths/~1locations~1{id}")["delete"] = delete;
    });
    let finding = only(
        &compare(&theirs, &ours()),
        Kind::MissingOperation,
        "DELETE /locations/{id}",
    );
    assert_eq!(finding.upstream, "/paths/~1locations~1{id}/delete");
    assert!(
        finding.change.contains("deleteLocationsId"),
        "{}",
        finding.change
    );
}

#[test]
fn an_operation_outside_our_resources_is_out_of_scope() {
    let theirs = upstream(|doc| {
        let get = at(doc, "/paths/~1institutions/get").clone();
        at(doc, "/paths")["/appointments"] = json!({ "get": get });
    });
    assert_eq!(compare(&theirs, &ours()), vec![]);
}

#[test]
fn a_new_query_parameter() {
    let theirs = upstream(|doc| {
        at(doc, "/paths/~1locations/get/parameters")
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "near_zip", "in": "query", "required": false, "schema": {"type": "string"}}));
    });
    let finding = only(
        &compare(&theirs, &ours()),
        Kind::MissingParameter,
        "GET /locations",
    );
    assert!(finding.change.contains("`near_zip`"), "{}", finding.change);
    assert!(
        finding
            .upstream
            .starts_with("/paths/~1locations/get/parameters/")
    );
}

#[test]
fn a_new_response_field() {
    let theirs = upstream(|doc| {
        at(doc, LOCATION)["fax_number"] = json!({"type": "string", "nullable": true});
    });
    let findings = compare(&theirs, &ours());
    // Location is in the answers of two operations; each says where to add it.
    assert!(!findings.is_empty());
    for finding in &findings {
        assert_eq!(finding.kind, Kind::MissingResponseField, "{finding:?}");
        assert!(finding.change.contains("fax_number"), "{}", finding.change);
        assert_eq!(finding.upstream, format!("{LOCATION}/fax_number"));
        // Pointed at the one component schema to edit, not at each use site.
        assert_eq!(finding.ours, LOCATION, "{finding:?}");
        assert!(
            finding.change.contains("/components/schemas/Location"),
            "{}",
            finding.change
        );
    }
    let operations: Vec<&str> = findings.iter().map(|f| f.operation.as_str()).collect();
    assert_eq!(operations, ["GET /locations", "GET /locations/{id}"]);
}

#[test]
fn a_field_made_nullable() {
    let theirs = upstream(|doc| {
        at(doc, &format!("{LOCATION}/tz"))["nullable"] = json!(true);
    });
    let findings = compare(&theirs, &ours());
    assert_eq!(findings.len(), 2, "{}", render(&findings));
    for finding in &findings {
        assert_eq!(finding.kind, Kind::Nullability);
        assert_eq!(finding.ours, format!("{LOCATION}/tz"));
        assert!(finding.change.contains("make ours nullable"));
    }
}

#[test]
fn a_new_enum_value_on_a_parameter_we_send() {
    let theirs = upstream(|doc| {
        at(doc, "/components/schemas/SyncState/enum")
            .as_array_mut()
            .unwrap()
            .push(json!("amber"));
    });
    let findings = compare(&theirs, &ours());
    // `read_status` and `write_status` of GET /sync_status both use it.
    assert_eq!(findings.len(), 2, "{}", render(&findings));
    for (finding, i) in findings.iter().zip([0, 1]) {
        assert_eq!(finding.kind, Kind::Enum);
        assert!(finding.change.contains("amber"), "{}", finding.change);
        // The parameter, never the schema it refers to (which both share) ...
        assert_eq!(
            finding.ours,
            format!("/paths/~1sync_status/get/parameters/{i}")
        );
        // ... while the change says where the values are listed.
        assert!(
            finding
                .change
                .contains("listed in /components/schemas/SyncState"),
            "{}",
            finding.change
        );
    }
}

/// A finding on a field whose schema is a `$ref` points at the property (the
/// place to edit for this field), not at the referenced component, which
/// other fields share.
#[test]
fn a_finding_points_at_the_property_not_the_referenced_schema() {
    let theirs = upstream(|doc| {
        *at(doc, &format!("{LOCATION}/specialty")) = json!({
            "oneOf": [{"$ref": "#/components/schemas/Specialty"}, {"enum": [null]}]
        });
    });
    let findings = compare(&theirs, &ours());
    assert_eq!(findings.len(), 2, "{}", render(&findings));
    for finding in &findings {
        assert_eq!(finding.kind, Kind::Nullability, "{finding:?}");
        assert_eq!(finding.ours, format!("{LOCATION}/specialty"));
        assert_eq!(finding.upstream, format!("{LOCATION}/specialty"));
        assert!(finding.change.contains("make ours nullable"));
    }
}

/// A property removed and one added with the same schema in the same object
/// is reported once, as a rename, at both places.
#[test]
fn a_field_removed_and_one_of_the_same_shape_added_is_a_rename() {
    let theirs = upstream(|doc| {
        let properties = at(doc, LOCATION).as_object_mut().unwrap();
        let tz = properties.remove("tz").unwrap();
        properties.insert("time_zone".into(), tz);
    });
    let findings = compare(&theirs, &ours());
    // Location is in the answers of two operations.
    assert_eq!(findings.len(), 2, "{}", render(&findings));
    for finding in &findings {
        assert_eq!(finding.kind, Kind::RenamedField, "{finding:?}");
        assert!(
            finding.change.contains("renamed `tz` → `time_zone`?"),
            "{}",
            finding.change
        );
        assert_eq!(finding.upstream, format!("{LOCATION}/time_zone"));
        assert_eq!(finding.ours, format!("{LOCATION}/tz"));
    }
    let text = render(&findings);
    assert!(text.contains("[RenamedField]"), "{text}");

    // Another shape is no rename: one field to add, one not described.
    let theirs = upstream(|doc| {
        let properties = at(doc, LOCATION).as_object_mut().unwrap();
        properties.remove("tz");
        properties.insert("time_zone".into(), json!({"type": "integer"}));
    });
    let kinds: Vec<Kind> = compare(&theirs, &ours()).iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::MissingResponseField,
            Kind::NotDescribed,
            Kind::MissingResponseField,
            Kind::NotDescribed
        ]
    );

    // Two candidates of the same shape: no guess.
    let theirs = upstream(|doc| {
        let properties = at(doc, LOCATION).as_object_mut().unwrap();
        properties.remove("tz");
        properties.insert("time_zone".into(), json!({"type": "string"}));
        properties.insert("zone_name".into(), json!({"type": "string"}));
    });
    assert!(
        compare(&theirs, &ours())
            .iter()
            .all(|f| f.kind != Kind::RenamedField)
    );
}

#[test]
fn a_response_enum_kept_as_a_string_is_not_drift() {
    // Ours says `read_status` is a string (forward compatibility); NexHealth lists values.
    let theirs = upstream(|doc| {
        at(doc, "/components/schemas/SyncStatus/properties/read_status")["enum"] =
            json!(["green", "red"]);
    });
    assert_eq!(compare(&theirs, &ours()), vec![]);
}

#[test]
fn a_type_change() {
    let theirs = upstream(|doc| {
        *at(doc, &format!("{LOCATION}/id")) = json!({"type": "string"});
    });
    let findings = compare(&theirs, &ours());
    assert!(!findings.is_empty());
    for finding in &findings {
        assert_eq!(finding.kind, Kind::Type, "{finding:?}");
        assert!(
            finding
                .change
                .contains("NexHealth says string, we say integer"),
            "{}",
            finding.change
        );
    }
}

#[test]
fn a_renamed_operation_id_on_the_same_path() {
    let theirs = upstream(|doc| {
        at(doc, "/paths/~1sync_status/get")["operationId"] = json!("listSyncStatuses");
    });
    let finding = only(
        &compare(&theirs, &ours()),
        Kind::RenamedOperation,
        "GET /sync_status",
    );
    assert!(
        finding.change.contains("listSyncStatuses"),
        "{}",
        finding.change
    );
    assert!(
        finding.change.contains("getSyncStatus"),
        "{}",
        finding.change
    );
}

#[test]
fn a_field_we_have_and_upstream_lacks_unless_marked() {
    let theirs = upstream(|doc| {
        at(doc, LOCATION)
            .as_object_mut()
            .unwrap()
            .remove("foreign_id_type");
    });
    let findings = compare(&theirs, &ours());
    assert_eq!(findings.len(), 2, "{}", render(&findings));
    for finding in &findings {
        assert_eq!(finding.kind, Kind::NotDescribed);
        assert_eq!(finding.ours, format!("{LOCATION}/foreign_id_type"));
        assert!(finding.upstream.is_empty());
    }
    // Marked as deliberate in our spec: not listed.
    let mut marked = ours();
    at(&mut marked, &format!("{LOCATION}/foreign_id_type"))["x-upstream"] =
        json!("not-described, seen in real answers");
    assert_eq!(compare(&theirs, &marked), vec![]);
}

/// The same document as OpenAPI 3.1: `type: [T, "null"]` instead of
/// `nullable`, `{type: "null"}` instead of `{enum: [null]}`. Equivalent: no drift.
#[test]
fn an_openapi_3_1_document_equivalent_to_ours() {
    fn to_3_1(value: &mut Value) {
        match value {
            Value::Object(map) => {
                if map.remove("nullable") == Some(json!(true))
                    && let Some(Value::String(t)) = map.get("type").cloned()
                {
                    map.insert("type".into(), json!([t, "null"]));
                }
                if map.get("enum") == Some(&json!([null])) {
                    map.remove("enum");
                    map.insert("type".into(), json!("null"));
                }
                map.values_mut().for_each(to_3_1);
            }
            Value::Array(items) => items.iter_mut().for_each(to_3_1),
            _ => {}
        }
    }
    let theirs = upstream(|doc| {
        doc["openapi"] = json!("3.1.0");
        to_3_1(doc);
    });
    assert!(theirs.to_string().contains(r#"["string","null"]"#));
    let findings = compare(&theirs, &ours());
    assert!(findings.is_empty(), "{}", render(&findings));

    // And the tool reads it from a YAML file as well as JSON.
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("nexhealth.yaml");
    std::fs::write(&yaml, serde_yaml::to_string(&theirs).unwrap()).unwrap();
    assert_eq!(load(&yaml).unwrap(), theirs);
    let json_file = dir.path().join("nexhealth.json");
    std::fs::write(&json_file, theirs.to_string()).unwrap();
    assert_eq!(load(&json_file).unwrap(), theirs);
}

/// The report says what to change, and where in both documents.
#[test]
fn the_text_report_groups_by_operation_with_both_places() {
    let theirs = upstream(|doc| {
        at(doc, "/paths/~1sync_status/get")["operationId"] = json!("listSyncStatuses");
        at(doc, "/paths/~1locations/get/parameters")
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "near_zip", "in": "query", "schema": {"type": "string"}}));
    });
    let text = render(&compare(&theirs, &ours()));
    let locations = text.find("\nGET /locations\n").expect(&text);
    let sync = text.find("\nGET /sync_status\n").expect(&text);
    assert!(locations < sync, "{text}");
    assert!(
        text.contains("NexHealth: /paths/~1sync_status/get/operationId"),
        "{text}"
    );
    assert!(
        text.contains("ours:      /paths/~1sync_status/get/operationId"),
        "{text}"
    );
    assert!(
        text.ends_with("upstream: 2 difference(s) to edit; out of scope (0)\n"),
        "{text}"
    );
}

/// The command's exit status: 0 when clean, 1 on drift, 2 when it cannot run.
/// The CLI runs in a checkout made of fixtures (its spec is the fixture).
#[test]
fn exit_status_and_json_output() {
    let checkout = FixtureCheckout::new(&fixture("upstream/ours.yaml"));
    let dir = tempfile::tempdir().unwrap();
    // The CLI compares with the checkout's spec, out-of-scope declaration included.
    let clean = dir.path().join("clean.json");
    std::fs::write(
        &clean,
        upstream(|doc| with_descriptors(doc, "/locations/{id}/appointment_descriptors"))
            .to_string(),
    )
    .unwrap();
    let drifted = dir.path().join("drifted.json");
    std::fs::write(
        &drifted,
        upstream(|doc| {
            with_descriptors(doc, "/locations/{id}/appointment_descriptors");
            at(doc, "/paths/~1sync_status/get")["operationId"] = json!("listSyncStatuses");
        })
        .to_string(),
    )
    .unwrap();
    let moved = dir.path().join("moved.json");
    std::fs::write(
        &moved,
        upstream(|doc| with_descriptors(doc, "/locations/{id}/descriptors")).to_string(),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["upstream"];
        all.extend(args);
        checkout.xtask(&all)
    };
    let out = run(&[clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("out of scope (1)"));
    let out = run(&[drifted.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["kind"], json!("renamed-operation"));
    assert_eq!(
        report["findings"][0]["operation"],
        json!("GET /sync_status")
    );
    assert_eq!(report["out_of_scope"].as_array().unwrap().len(), 1);
    assert_eq!(run(&[moved.to_str().unwrap()]).status.code(), Some(1));
    assert_eq!(run(&["/nonexistent/nexhealth.json"]).status.code(), Some(2));
    let not_openapi = dir.path().join("not-openapi.json");
    std::fs::write(&not_openapi, "{\"swagger\": \"2.0\"}").unwrap();
    assert_eq!(run(&[not_openapi.to_str().unwrap()]).status.code(), Some(2));
    // Our spec unreadable: 2, never a panic's 101.
    std::fs::write(
        checkout.root().join("openapi").join("nexhealth.yaml"),
        "openapi: [unclosed\n",
    )
    .unwrap();
    assert_eq!(run(&[clean.to_str().unwrap()]).status.code(), Some(2));
}

/// `GET /locations/{id}/appointment_descriptors` as NexHealth describes it:
/// our `GET /locations/{id}` at another path and id.
fn with_descriptors(doc: &mut Value, path: &str) {
    let mut get = at(doc, "/paths/~1locations~1{id}/get").clone();
    get["operationId"] = json!("getLocationsIdAppointmentDescriptors");
    doc["paths"][path] = json!({ "get": get });
}

#[test]
fn an_operation_declared_out_of_scope_is_counted_not_reported() {
    let theirs = upstream(|doc| with_descriptors(doc, "/locations/{id}/appointment_descriptors"));
    let report = xtask::upstream::compare(&theirs, &spec());
    assert!(report.findings.is_empty(), "{}", render(&report.findings));
    assert_eq!(report.out_of_scope.len(), 1, "{report:?}");
    assert_eq!(
        report.out_of_scope[0].operation,
        "GET /locations/{id}/appointment_descriptors"
    );
    assert!(!report.out_of_scope[0].reason.is_empty());
    let text = xtask::upstream::render(&report);
    assert!(text.contains("out of scope (1)"), "{text}");
    // Without the declaration the same document is drift.
    let findings = compare(&theirs, &ours());
    only(
        &findings,
        Kind::MissingOperation,
        "GET /locations/{id}/appointment_descriptors",
    );
}

#[test]
fn an_out_of_scope_operation_that_moved_is_reported_with_its_new_path() {
    let theirs = upstream(|doc| with_descriptors(doc, "/locations/{id}/descriptors"));
    let report = xtask::upstream::compare(&theirs, &spec());
    let kinds: Vec<(Kind, &str)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.operation.as_str()))
        .collect();
    assert!(
        kinds.contains(&(
            Kind::OutOfScope,
            "GET /locations/{id}/appointment_descriptors"
        )),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(Kind::MissingOperation, "GET /locations/{id}/descriptors")),
        "{kinds:?}"
    );
    assert!(report.out_of_scope.is_empty());
}

#[test]
fn a_new_operation_beside_an_out_of_scope_one_is_still_drift() {
    let theirs = upstream(|doc| {
        with_descriptors(doc, "/locations/{id}/appointment_descriptors");
        let mut post = at(doc, "/paths/~1locations/get").clone();
        post["operationId"] = json!("postLocations");
        at(doc, "/paths/~1locations")["post"] = post;
    });
    let report = xtask::upstream::compare(&theirs, &spec());
    only(&report.findings, Kind::MissingOperation, "POST /locations");
    assert_eq!(report.out_of_scope.len(), 1);
}
