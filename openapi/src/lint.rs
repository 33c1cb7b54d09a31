//! Checks that turn what would be a generator panic into a message that points
//! into the spec (a JSON pointer such as `/paths/~1locations/get`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

/// One thing wrong with the spec, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer into the spec.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.pointer, self.message)
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Escapes one JSON-pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Every operation as `(pointer, method, path, operation)`.
pub fn operations(spec: &Value) -> Vec<(String, &str, &str, &Value)> {
    let mut out = Vec::new();
    if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    out.push((
                        format!("/paths/{}/{method}", escape(path)),
                        method,
                        path.as_str(),
                        op,
                    ));
                }
            }
        }
    }
    out
}

/// Resolves a local `$ref` such as `#/components/schemas/Location`.
pub fn resolve<'a>(spec: &'a Value, reference: &str) -> Option<&'a Value> {
    spec.pointer(reference.strip_prefix('#')?)
}

/// Follows `$ref` until a non-reference value.
pub fn deref<'a>(spec: &'a Value, mut value: &'a Value) -> Option<&'a Value> {
    for _ in 0..32 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => value = resolve(spec, r)?,
            None => return Some(value),
        }
    }
    None
}

/// All problems found, in spec order.
pub fn lint(spec: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut push = |pointer: &str, message: String| {
        problems.push(Problem {
            pointer: pointer.to_string(),
            message,
        })
    };

    match spec.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0.") => {}
        Some(v) => push(
            "/openapi",
            format!("version {v} is not 3.0.x (progenitor reads only OpenAPI 3.0)"),
        ),
        None => push("/openapi", "missing `openapi: 3.0.x`".into()),
    }
    if spec.get("info").and_then(|i| i.get("version")).is_none() {
        push("/info/version", "missing".into());
    }

    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (pointer, _method, _path, op) in operations(spec) {
        match op.get("operationId").and_then(Value::as_str) {
            None => push(&pointer, "operation has no operationId".into()),
            Some(id) => {
                if let Some(first) = ids.insert(id.to_string(), pointer.clone()) {
                    push(
                        &format!("{pointer}/operationId"),
                        format!("operationId `{id}` is already used at {first}"),
                    );
                }
            }
        }
        lint_responses(spec, &pointer, op, &mut push);
        if let Some(body) = op.get("requestBody").and_then(|b| deref(spec, b))
            && let Some(content) = body.get("content").and_then(Value::as_object)
        {
            let types: Vec<&String> = content.keys().collect();
            if types.len() != 1 || types[0] != "application/json" {
                push(
                    &format!("{pointer}/requestBody/content"),
                    format!("request body must be application/json only, found {types:?}"),
                );
            }
        }
    }

    // `nullable` only counts beside a `type` (OpenAPI 3.0.3): other tools read
    // `nullable` without one as not nullable at all, whatever progenitor does.
    let mut untyped = Vec::new();
    nullable_without_type(spec, String::new(), &mut untyped);
    for pointer in untyped {
        push(&pointer, NULLABLE_WITHOUT_TYPE.into());
    }

    // Every $ref resolves.
    let mut refs = Vec::new();
    collect_refs(spec, String::new(), &mut refs);
    for (pointer, reference) in &refs {
        if resolve(spec, reference).is_none() {
            push(pointer, format!("`$ref: {reference}` does not resolve"));
        }
    }

    // Every component is used.
    let used: BTreeSet<&str> = refs.iter().map(|(_, r)| r.as_str()).collect();
    if let Some(components) = spec.get("components").and_then(Value::as_object) {
        for (kind, entries) in components {
            if kind == "securitySchemes" {
                continue;
            }
            for name in entries.as_object().into_iter().flat_map(|m| m.keys()) {
                let reference = format!("#/components/{kind}/{}", escape(name));
                if !used.contains(reference.as_str()) {
                    push(
                        &format!("/components/{kind}/{}", escape(name)),
                        "component is never referenced".into(),
                    );
                }
            }
        }
    }
    problems
}

fn lint_responses(spec: &Value, pointer: &str, op: &Value, push: &mut impl FnMut(&str, String)) {
    let Some(responses) = op.get("responses").and_then(Value::as_object) else {
        push(pointer, "operation has no responses".into());
        return;
    };
    let mut success: BTreeMap<String, String> = BTreeMap::new();
    let mut failure: BTreeMap<String, String> = BTreeMap::new();
    for (status, response) in responses {
        let at = format!("{pointer}/responses/{status}");
        if status == "default" {
            push(
                &at,
                "`default` responses are not used in this spec; list each status".into(),
            );
            continue;
        }
        let Some(response) = deref(spec, response) else {
            continue; // reported by the $ref check
        };
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            // A 204 has no body: a success without a schema.
            if status == "204" {
                success.insert("(no content)".into(), at);
            }
            continue;
        };
        let types: Vec<&String> = content.keys().collect();
        if types.len() != 1 || types[0] != "application/json" {
            push(
                &format!("{at}/content"),
                format!("responses must be application/json only, found {types:?}"),
            );
        }
        let schema = content
            .values()
            .next()
            .and_then(|c| c.get("schema"))
            .map(|s| s.to_string())
            .unwrap_or_default();
        let bucket = if status.starts_with('2') {
            &mut success
        } else {
            &mut failure
        };
        bucket.insert(schema, at);
    }
    if success.is_empty() {
        push(pointer, "operation has no 2xx response with a body".into());
    }
    for (bucket, what) in [(&success, "success (2xx)"), (&failure, "error (4xx/5xx)")] {
        if bucket.len() > 1 {
            let places: Vec<&String> = bucket.values().collect();
            push(
                pointer,
                format!("{what} responses must share one schema; they differ at {places:?}"),
            );
        }
    }
}

/// Whether `schema` admits only null: `{enum: [null]}` (the OpenAPI 3.0.3
/// member of "this reference, or null") or 3.1's `{type: "null"}`.
pub fn admits_only_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
        || schema
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|v| !v.is_empty() && v.iter().all(Value::is_null))
}

/// What to write instead of `nullable` without `type`.
pub const NULLABLE_WITHOUT_TYPE: &str = "`nullable: true` has no effect without a `type` in the same schema \
(OpenAPI 3.0.3), so other tools read this value as never null. For \"this reference, or null\" \
write `oneOf: [{$ref: ...}, {enum: [null]}]` without `nullable` (progenitor still makes it an \
`Option`); for a value of one type, add its `type`; for any JSON value, drop `nullable`";

/// Pointers to every schema object with `nullable` and no `type`. Examples
/// are payloads, not schemas, and are not searched.
fn nullable_without_type(value: &Value, pointer: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if map.contains_key("nullable") && !map.contains_key("type") {
                out.push(format!("{pointer}/nullable"));
            }
            for (key, child) in map {
                if key == "example" || key == "examples" {
                    continue;
                }
                nullable_without_type(child, format!("{pointer}/{}", escape(key)), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                nullable_without_type(child, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn collect_refs(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_pointer = format!("{pointer}/{}", escape(key));
                if key == "$ref"
                    && let Some(r) = child.as_str()
                {
                    out.push((pointer.clone(), r.to_string()));
                } else {
                    collect_refs(child, child_pointer, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}
