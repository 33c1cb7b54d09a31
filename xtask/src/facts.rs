//! `cargo xtask published-facts`: the facts-only copy of NexHealth's published
//! OpenAPI description that the Prism contract suite serves.
//!
//! One source: NexHealth's whole published file (the shared reference keeps it
//! as `../shared/reference/nexhealth-openapi-full.json`; CI's
//! `published-facts --check` and CONTRIBUTING name the same default). The copy
//! holds only what the Prism walk needs: the operations of our spec that the
//! walk calls (every one not declared in `not_walked`, tests/src/prism.rs),
//! matched by method and path, and the components they refer to, nothing of
//! the rest of NexHealth's API.
//!
//! NexHealth's file holds its own sentences (`description`, `summary`); those
//! are not ours to keep. What the copy keeps are facts: paths, parameters,
//! schemas and examples. A property that happens to be named `description`
//! (the envelope's field) is a fact and stays.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Where the copy lives in the checkout at `root`.
pub fn copy_path(root: &Path) -> PathBuf {
    root.join("tests")
        .join("data")
        .join("nexhealth-published-facts.json")
}

/// The one source of the facts: NexHealth's whole published description, as
/// the project's shared reference keeps it beside the checkout at `root`.
pub fn default_source(root: &Path) -> PathBuf {
    root.join("..")
        .join("shared")
        .join("reference")
        .join("nexhealth-openapi-full.json")
}

/// Keys whose string values are prose.
const PROSE: [&str; 2] = ["description", "summary"];

/// The document without its prose.
pub fn strip(value: &Value) -> Value {
    strip_in(value, None)
}

fn strip_in(value: &Value, parent: Option<&str>) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                // Under `properties` a key is a field name, not a keyword.
                let prose = PROSE.contains(&key.as_str())
                    && child.is_string()
                    && parent != Some("properties");
                // Example payloads (`example`, an Example Object's `value`) are
                // facts, kept as they are.
                let payload =
                    matches!(key.as_str(), "example" | "value") && parent != Some("properties");
                if payload {
                    out.insert(key.clone(), child.clone());
                } else if !prose {
                    out.insert(key.clone(), strip_in(child, Some(key)));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| strip_in(v, parent)).collect()),
        other => other.clone(),
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The operations of `ours` that the Prism walk calls: `(method, path)` of
/// each operation whose `OperationId` variant `not_walked` does not declare.
pub fn walked(ours: &Value, not_walked: &[String]) -> Vec<(String, String)> {
    nexhealth_openapi::lint::operations(ours)
        .into_iter()
        .filter(|(.., op)| {
            let id = op.get("operationId").and_then(Value::as_str).unwrap_or("");
            !not_walked.contains(&nexhealth_openapi::variant_name(id))
        })
        .map(|(_, method, path, _)| (method.to_string(), path.to_string()))
        .collect()
}

/// The facts of `published` for the operations `walked`: those operations
/// (matched by method and path, parameter names in the path aside), the
/// components they refer to, the document's header, and no prose.
pub fn facts(published: &Value, walked: &[(String, String)]) -> Value {
    let wanted = |method: &str, path: &str| {
        walked.iter().any(|(m, p)| {
            m.eq_ignore_ascii_case(method)
                && crate::upstream::path_key(p) == crate::upstream::path_key(path)
        })
    };
    let mut paths = Map::new();
    for (path, item) in published
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(item) = item.as_object() else {
            continue;
        };
        let kept: Map<String, Value> = item
            .iter()
            .filter(|(key, _)| !METHODS.contains(&key.as_str()) || wanted(key, path))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if kept.keys().any(|k| METHODS.contains(&k.as_str())) {
            paths.insert(path.clone(), Value::Object(kept));
        }
    }
    // The components the kept operations refer to, and theirs in turn.
    let components = published.get("components");
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    refs(&Value::Object(paths.clone()), &mut todo);
    while let Some(reference) = todo.pop() {
        let mut parts = reference.trim_start_matches("#/components/").splitn(2, '/');
        let (Some(kind), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name = name.replace("~1", "/").replace("~0", "~");
        if !seen.insert((kind.to_string(), name.clone())) {
            continue;
        }
        if let Some(target) = components
            .and_then(|c| c.get(kind))
            .and_then(|k| k.get(&name))
        {
            refs(target, &mut todo);
        }
    }
    let mut kept_components = Map::new();
    for (kind, entries) in components.and_then(Value::as_object).into_iter().flatten() {
        let Some(entries) = entries.as_object() else {
            continue;
        };
        // Security schemes are named by `security`, not by `$ref`: all kept.
        let kept: Map<String, Value> = entries
            .iter()
            .filter(|(name, _)| {
                kind == "securitySchemes" || seen.contains(&(kind.clone(), (*name).clone()))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !kept.is_empty() {
            kept_components.insert(kind.clone(), Value::Object(kept));
        }
    }
    let mut out = Map::new();
    for key in ["openapi", "info", "servers", "security"] {
        if let Some(value) = published.get(key) {
            out.insert(key.to_string(), value.clone());
        }
    }
    out.insert("paths".into(), Value::Object(paths));
    if !kept_components.is_empty() {
        out.insert("components".into(), Value::Object(kept_components));
    }
    strip(&Value::Object(out))
}

/// Every `$ref` to a component under `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match child {
                    Value::String(target)
                        if key == "$ref" && target.starts_with("#/components/") =>
                    {
                        out.push(target.clone())
                    }
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The copy's text, for the checkout at `root`, from NexHealth's file at
/// `source`: the facts of the operations the checkout's Prism walk calls.
pub fn render(root: &Path, source: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let published: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", source.display()))?;
    let spec = root.join("openapi").join("nexhealth.yaml");
    let ours = nexhealth_openapi::load_spec_value(&spec)
        .map_err(|e| format!("{}: {e}", spec.display()))?;
    let prism = root.join("tests").join("src").join("prism.rs");
    let not_walked = std::fs::read_to_string(&prism)
        .map(|text| crate::not_walked(&text))
        .unwrap_or_default();
    let mut out = serde_json::to_string_pretty(&facts(&published, &walked(&ours, &not_walked)))
        .map_err(|e| e.to_string())?;
    out.push('\n');
    Ok(out)
}

/// Writes the copy of the checkout at `root` from `source`; returns where.
pub fn write(root: &Path, source: &Path) -> Result<PathBuf, String> {
    let out = copy_path(root);
    let text = render(root, source)?;
    std::fs::create_dir_all(out.parent().expect("has a parent")).map_err(|e| e.to_string())?;
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// `Ok(true)` when the checkout's copy matches `source`, `Ok(false)` when it is stale.
pub fn is_current(root: &Path, source: &Path) -> Result<bool, String> {
    let fresh = render(root, source)?;
    let kept = std::fs::read_to_string(copy_path(root)).unwrap_or_default();
    Ok(fresh == kept)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn prose_goes_and_fields_named_like_it_stay() {
        let doc = json!({
            "info": {"title": "T", "description": "their words"},
            "paths": {"/x": {"get": {"summary": "their words", "parameters": [
                {"name": "id", "description": "their words", "schema": {"type": "integer"}}
            ]}}},
            "components": {"schemas": {"E": {"type": "object", "description": "their words",
                "properties": {"description": {"type": "string", "description": "their words"}},
                "example": {"description": "Description"}}}}
        });
        let out = super::strip(&doc);
        let text = out.to_string();
        assert!(!text.contains("their words"), "{text}");
        assert_eq!(
            out.pointer("/components/schemas/E/properties/description/type"),
            Some(&json!("string"))
        );
        assert_eq!(
            out.pointer("/components/schemas/E/example/description"),
            Some(&json!("Description"))
        );
        assert_eq!(
            out.pointer("/paths/~1x/get/parameters/0/name"),
            Some(&json!("id"))
        );
    }
}
