//! `cargo xtask new-operation OPERATION_ID`: once the spec names an operation,
//! writes its contract-test skeleton in the suite's style
//! (`tests/tests/operation_<name>.rs`). The typed example accessors
//! (`mock::payloads::examples::<name>_<status>()`) and the `OperationId`
//! variant are generated from the spec with the client, so nothing else is
//! written by hand; the build of the tests names every `match` that must learn
//! the new variant.

use std::path::PathBuf;

use nexhealth_openapi::lint::{self, deref};
use serde_json::Value;

use crate::Paths;

/// The method name of a `Then` answer for `status`, as the generated helpers
/// spell it.
fn answer_method(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "ok",
        201 => "created",
        202 => "accepted",
        204 => "no_content",
        _ => return None,
    })
}

/// A value of the parameter's type for the skeleton: its example, else a
/// placeholder of its type.
fn example_value(spec: &Value, parameter: &Value) -> String {
    let schema = parameter
        .get("schema")
        .and_then(|s| deref(spec, s))
        .cloned()
        .unwrap_or(Value::Null);
    let example = parameter
        .get("example")
        .or_else(|| schema.get("example"))
        .cloned();
    match (schema.get("type").and_then(Value::as_str), example) {
        (Some("integer"), Some(Value::Number(n))) => n.to_string(),
        (Some("integer"), _) => "1".into(),
        (Some("boolean"), Some(Value::Bool(b))) => b.to_string(),
        (Some("boolean"), _) => "true".into(),
        (_, Some(Value::String(s))) => format!("{s:?}"),
        _ => "\"example\"".into(),
    }
}

/// Writes the skeleton of `operation_id`'s contract test; returns its path.
pub fn new_operation(paths: &Paths, operation_id: &str) -> Result<PathBuf, String> {
    let spec = nexhealth_openapi::load_spec_value(&paths.spec).map_err(|e| e.to_string())?;
    let operations = lint::operations(&spec);
    let Some((pointer, method, path, op)) = operations
        .iter()
        .find(|(.., op)| op.get("operationId").and_then(Value::as_str) == Some(operation_id))
    else {
        let known: Vec<&str> = operations
            .iter()
            .filter_map(|(.., op)| op.get("operationId").and_then(Value::as_str))
            .collect();
        return Err(format!(
            "{} names no operation `{operation_id}`: add it to the spec first (the operationId \
             is NexHealth's). Known: {}",
            paths.spec.display(),
            known.join(", ")
        ));
    };
    let name = nexhealth_openapi::method_name(operation_id);
    let file = paths
        .tests
        .join("tests")
        .join(format!("operation_{name}.rs"));
    if file.exists() {
        return Err(format!(
            "{} exists already; nothing written",
            file.display()
        ));
    }
    let mut setters = String::new();
    let mut matchers = String::new();
    for parameter in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| deref(&spec, p))
    {
        let place = parameter.get("in").and_then(Value::as_str);
        let required = parameter.get("required").and_then(Value::as_bool) == Some(true);
        let Some(param) = parameter.get("name").and_then(Value::as_str) else {
            continue;
        };
        if (place == Some("path") || (place == Some("query") && required))
            && !param.eq_ignore_ascii_case("Nex-Api-Version")
        {
            let setter = nexhealth_openapi::method_name(param).replace(['[', ']'], "");
            let value = example_value(&spec, parameter);
            setters.push_str(&format!("\n        .{setter}({value})"));
            if place == Some("path") {
                // The typed matcher: the mock answers only this id.
                matchers.push_str(&format!(".{setter}({value})"));
            }
        }
    }
    if op
        .pointer("/requestBody")
        .and_then(|b| deref(&spec, b))
        .and_then(|b| b.pointer("/content/application~1json/example"))
        .is_some()
    {
        setters.push_str(&format!(
            "\n        .body(payloads::examples::{name}_request())"
        ));
    }
    let success = op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(status, response)| Some((status.parse::<u16>().ok()?, response)))
        .find(|(status, _)| (200..300).contains(status))
        .ok_or_else(|| format!("{pointer}: no 2xx response"))?;
    let (status, response) = success;
    let method_name = answer_method(status)
        .ok_or_else(|| format!("{pointer}: no answer helper for status {status}"))?;
    let has_example = deref(&spec, response)
        .and_then(|r| r.pointer("/content/application~1json/example"))
        .is_some();
    let answer = if status == 204 {
        format!("then.{method_name}();")
    } else if has_example {
        format!("then.{method_name}(&payloads::examples::{name}_{status}());")
    } else {
        return Err(format!(
            "{pointer}/responses/{status}: give the answer an example first (the skeleton answers \
             with it), then run this again"
        ));
    };
    let method_upper = method.to_uppercase();
    let text = format!(
        r#"//! Contract test of `{method_upper} {path}` (`{operation_id}`), started by
//! `cargo xtask new-operation {operation_id}`: the client sends the documented
//! request and decodes the spec's example answer. Add what a service relies on.

use nexhealth_api::mock::{{MockServerExt, payloads}};
use nexhealth_contract_tests::Harness;

#[tokio::test]
async fn {name}_sends_the_documented_request_and_decodes_the_answer() {{
    let h = Harness::start().await;
    h.auth();
    let mock = h.server.{name}(|when, then| {{
        when{matchers};
        {answer}
    }});
    let (client, fallback) = h.client();
    let answer = client
        .{name}(){setters}
        .await
        .expect("the spec's example answer decodes");
    mock.assert();
    fallback.assert_calls(0);
    // The answer's fields a service relies on: assert them here.
    let _ = answer;
}}
"#
    );
    std::fs::create_dir_all(file.parent().expect("has a parent")).map_err(|e| e.to_string())?;
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    // Formatted as `cargo fmt` would (long names wrap), when rustfmt is there.
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(&file)
        .status();
    Ok(file)
}

/// The error statuses (4xx and 5xx) an operation declares, each with what it
/// is declared as (a `$ref` to a shared response, or `inline`).
fn error_statuses(op: &Value) -> std::collections::BTreeMap<u16, String> {
    op.get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(status, response)| {
            let status = status.parse::<u16>().ok().filter(|s| *s >= 400)?;
            let how = response
                .get("$ref")
                .and_then(Value::as_str)
                .map_or_else(|| "inline".to_string(), |r| format!("$ref: \"{r}\""));
            Some((status, how))
        })
        .collect()
}

/// Error statuses with how they are declared: `(404, "$ref: \"…\"")`.
pub type Statuses = Vec<(u16, String)>;

/// Operations with the error statuses each declares: `("GET /x", [401, 404])`.
pub type Neighbours = Vec<(String, Vec<u16>)>;

/// The error statuses `operation_id` should declare: those its neighbours
/// (the other operations on its resource, the first segment of its path; all
/// operations when it has none) declare and it does not, each with how they
/// declare it. Also returns the neighbours, `(operation, statuses)`.
pub fn missing_error_statuses(
    spec: &Value,
    operation_id: &str,
) -> Result<(Statuses, Neighbours), String> {
    let operations = lint::operations(spec);
    let (_, _, path, op) = operations
        .iter()
        .find(|(.., op)| op.get("operationId").and_then(Value::as_str) == Some(operation_id))
        .ok_or_else(|| format!("the spec names no operation `{operation_id}`"))?;
    let resource = |p: &str| {
        p.trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let others = operations.iter().filter(|(.., other)| {
        other.get("operationId").and_then(Value::as_str) != Some(operation_id)
    });
    let mut neighbours: Vec<_> = others
        .clone()
        .filter(|(_, _, p, _)| resource(p) == resource(path))
        .collect();
    if neighbours.is_empty() {
        neighbours = others.collect();
    }
    let own = error_statuses(op);
    let mut missing: std::collections::BTreeMap<u16, String> = Default::default();
    let mut listed = Vec::new();
    for (_, method, p, other) in neighbours {
        let statuses = error_statuses(other);
        listed.push((
            format!("{} {p}", method.to_uppercase()),
            statuses.keys().copied().collect(),
        ));
        for (status, how) in statuses {
            if !own.contains_key(&status) {
                missing.entry(status).or_insert(how);
            }
        }
    }
    Ok((missing.into_iter().collect(), listed))
}

/// Every step left once the skeleton of `operation_id` is written, in the
/// order to take them: the spec's error statuses, the `match`es to teach, the
/// test's assertions, the README's row, NexHealth's facts, the CHANGELOG, and
/// the commands that prove it.
pub fn next_steps(paths: &Paths, operation_id: &str) -> Result<Vec<String>, String> {
    let spec = nexhealth_openapi::load_spec_value(&paths.spec).map_err(|e| e.to_string())?;
    let operations = lint::operations(&spec);
    let (_, method, path, _) = operations
        .iter()
        .find(|(.., op)| op.get("operationId").and_then(Value::as_str) == Some(operation_id))
        .ok_or_else(|| format!("the spec names no operation `{operation_id}`"))?;
    let call = format!("{} {path}", method.to_uppercase());
    let name = nexhealth_openapi::method_name(operation_id);
    let mut steps = Vec::new();

    let (missing, neighbours) = missing_error_statuses(&spec, operation_id)?;
    let neighbours = neighbours
        .iter()
        .map(|(op, statuses)| {
            let statuses: Vec<String> = statuses.iter().map(u16::to_string).collect();
            format!("{op}: {}", statuses.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ");
    if missing.is_empty() {
        steps.push(format!(
            "error statuses: {call} declares every error status its neighbours declare \
             ({neighbours}); nothing to add"
        ));
    } else {
        let add: Vec<String> = missing
            .iter()
            .map(|(status, how)| format!("\"{status}\": {{{how}}}"))
            .collect();
        steps.push(format!(
            "error statuses: add to the `responses` of {call} in {} the ones its neighbours \
             declare and it does not, as they declare them: {} (neighbours: {neighbours}); then \
             `cargo xtask generate`",
            paths.spec.display(),
            add.join(", ")
        ));
    }

    let variant = nexhealth_openapi::variant_name(operation_id);
    let mut files: Vec<String> = crate::check_registry(&spec, &paths.tests)
        .into_iter()
        .filter(|f| f.place == "(file)" && f.message.contains(operation_id))
        .map(|f| f.file.display().to_string())
        .collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        steps.push(format!(
            "the `match`es over `OperationId`: every list of operations names `OperationId::{variant}` already"
        ));
    } else {
        steps.push(format!(
            "the `match`es over `OperationId` (building the tests stops at each with E0004; never \
             `=> todo!()`): teach `OperationId::{variant}` to {}; in tests/src/prism.rs either walk \
             it or declare it in `not_walked` with the reason",
            files.join(", ")
        ));
    }

    steps.push(format!(
        "the test: {} answers the spec's example; add the assertions a service relies on",
        paths
            .tests
            .join("tests")
            .join(format!("operation_{name}.rs"))
            .display()
    ));

    let readme = paths.root.join("README.md");
    let readme_text = std::fs::read_to_string(&readme).unwrap_or_default();
    if readme_text.contains(&format!("`{name}`")) {
        steps.push(format!(
            "README: {} names `{name}` already; check its row in the table from resource and verb to method",
            readme.display()
        ));
    } else {
        steps.push(format!(
            "README: add a row to the table from resource and verb to method in {}: \
             | RESOURCE | VERB | `{call}` | `{name}` |",
            readme.display()
        ));
    }

    steps.push(format!(
        "facts: if the Prism walk calls it, `cargo xtask published-facts` (from NexHealth's whole \
         file, ../shared/reference/nexhealth-openapi-full.json) adds NexHealth's description of \
         {call} to tests/data/nexhealth-published-facts.json; commit it (`cargo xtask \
         published-facts --check` is what CI runs)"
    ));

    let changelog = paths.root.join("CHANGELOG.md");
    let changelog_text = std::fs::read_to_string(&changelog).unwrap_or_default();
    if changelog_text.contains(&format!("`{name}`")) || changelog_text.contains(&call) {
        steps.push(format!(
            "CHANGELOG: {} mentions it already",
            changelog.display()
        ));
    } else {
        steps.push(format!(
            "CHANGELOG: under `Unreleased` in {}, an `### Added` entry for `Client::{name}` ({call}) \
             and what a service can do with it",
            changelog.display()
        ));
    }

    steps.push(
        "prove it: `cargo xtask check`, `cargo xtask upstream ../shared/reference/nexhealth-openapi-full.json`, \
         then `cargo xtask quick`"
            .to_string(),
    );
    Ok(steps)
}
