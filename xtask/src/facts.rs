//! `cargo xtask published-facts`: the facts-only copy of NexHealth's published
//! OpenAPI description that the Prism contract suite serves.
//!
//! NexHealth's file holds its own sentences (`description`, `summary`); those
//! are not ours to keep. What the copy keeps are facts: paths, parameters,
//! schemas and examples. A property that happens to be named `description`
//! (the envelope's field) is a fact and stays.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Where the copy lives in the checkout at `root`.
pub fn copy_path(root: &Path) -> PathBuf {
    root.join("tests")
        .join("data")
        .join("nexhealth-published-facts.json")
}

/// NexHealth's description as the project's shared reference keeps it, where
/// that folder is beside the checkout at `root`.
pub fn default_source(root: &Path) -> PathBuf {
    root.join("..")
        .join("shared")
        .join("reference")
        .join("nexhealth-openapi-subset.json")
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

/// The copy's text for the description at `source`.
pub fn render(source: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", source.display()))?;
    let mut out = serde_json::to_string_pretty(&strip(&value)).map_err(|e| e.to_string())?;
    out.push('\n');
    Ok(out)
}

/// Writes the copy of the checkout at `root` from `source`; returns where.
pub fn write(root: &Path, source: &Path) -> Result<PathBuf, String> {
    let out = copy_path(root);
    std::fs::create_dir_all(out.parent().expect("has a parent")).map_err(|e| e.to_string())?;
    std::fs::write(&out, render(source)?).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// `Ok(true)` when the checkout's copy matches `source`, `Ok(false)` when it is stale.
pub fn is_current(root: &Path, source: &Path) -> Result<bool, String> {
    let fresh = render(source)?;
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
