//! Comparisons behind checks 3 and 4.

use std::collections::BTreeSet;

use nexhealth_openapi::lint::deref;
use serde_json::Value;

/// Where `original` lost something on its way through a generated type.
/// Nulls may vanish (progenitor omits `None`), fields may gain defaults,
/// numbers may change representation (5 vs 5.0), and a secret serializes as
/// `"<redacted>"` (`WebhookSecret`, on purpose); anything else is a loss.
pub fn lost_in_roundtrip(original: &Value, back: &Value, path: String) -> Option<String> {
    match (original, back) {
        (Value::Null, _) => None,
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(key, value)| {
            let here = format!("{path}.{key}");
            match b.get(key) {
                // An absent field and `null`, or an empty free-form map (which
                // the generated type skips when encoding), mean the same.
                None if value.is_null() || value.as_object().is_some_and(|m| m.is_empty()) => None,
                None => Some(format!(
                    "`{here}` is in the example ({}) but absent once decoded and encoded again: \
                     the generated type has no field `{key}` (is it in the schema?) or skips it",
                    short(value)
                )),
                Some(v) => lost_in_roundtrip(value, v, here),
            }
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| lost_in_roundtrip(x, y, format!("{path}[{i}]"))),
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => None,
        (Value::String(a), Value::String(b)) if same_instant(a, b) => None,
        (Value::String(_), Value::String(b)) if b == "<redacted>" => None,
        (a, b) if a == b => None,
        (a, b) => Some(format!(
            "`{}` changes value: {} in the example, {} after the round trip",
            if path.is_empty() { "." } else { &path },
            short(a),
            short(b)
        )),
    }
}

/// A value for a message: the spec's example text, cut at 60 characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `2020-06-05T20:10:00.000Z` and `2020-06-05T20:10:00Z` are the same time.
fn same_instant(a: &str, b: &str) -> bool {
    match (
        chrono::DateTime::parse_from_rfc3339(a),
        chrono::DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Whether a parameter example fits a simple schema.
pub fn scalar_fits(spec: &Value, schema: &Value, example: &Value) -> bool {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => example.is_i64() || example.is_u64(),
        Some("number") => example.is_number(),
        Some("boolean") => example.is_boolean(),
        Some("string") => example.is_string(),
        Some("array") => example.as_array().is_some_and(|items| {
            let item_schema = schema.get("items").and_then(|s| deref(spec, s));
            items
                .iter()
                .all(|i| item_schema.is_none_or(|s| scalar_fits(spec, s, i)))
        }),
        _ => true,
    }
}

/// A spec schema with `allOf` parts merged: properties, required, enum.
struct Flat<'a> {
    properties: Vec<(&'a str, &'a Value)>,
    required: BTreeSet<&'a str>,
    enumeration: Option<Vec<&'a Value>>,
}

fn flatten<'a>(spec: &'a Value, schema: &'a Value, flat: &mut Flat<'a>) {
    let Some(schema) = deref(spec, schema) else {
        return;
    };
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        flatten(spec, part, flat);
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        flat.properties
            .extend(props.iter().map(|(k, v)| (k.as_str(), v)));
    }
    flat.required.extend(
        schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        flat.enumeration = Some(values.iter().collect());
    }
}

/// `nullable: true`, or the OpenAPI 3.0.3 form of "this reference, or null":
/// `oneOf`/`anyOf` with a member that admits only null (`enum: [null]`).
fn is_nullable(value: &Value) -> bool {
    value.get("nullable").and_then(Value::as_bool) == Some(true)
        || ["oneOf", "anyOf"].iter().any(|key| {
            value
                .get(*key)
                .and_then(Value::as_array)
                .is_some_and(|members| {
                    members
                        .iter()
                        .any(nexhealth_openapi::lint::admits_only_null)
                })
        })
}

/// Differences between a spec schema and the JSON Schema of its generated type.
pub fn schema_differences(spec: &Value, schema: &Value, generated: &Value) -> Vec<String> {
    let mut flat = Flat {
        properties: vec![],
        required: BTreeSet::new(),
        enumeration: None,
    };
    flatten(spec, schema, &mut flat);
    let mut out = Vec::new();
    if let Some(values) = flat.enumeration {
        let spec_values: BTreeSet<String> = values.iter().map(|v| v.to_string()).collect();
        let generated_values: BTreeSet<String> = generated
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| v.to_string())
            .collect();
        if spec_values != generated_values {
            out.push(format!(
                "enum values differ: spec {spec_values:?}, type {generated_values:?}"
            ));
        }
    }
    if flat.properties.is_empty() {
        return out;
    }
    let gen_props = generated.get("properties").and_then(Value::as_object);
    let gen_names: BTreeSet<&str> = gen_props
        .into_iter()
        .flat_map(|p| p.keys().map(String::as_str))
        .collect();
    let spec_names: BTreeSet<&str> = flat.properties.iter().map(|(k, _)| *k).collect();
    for missing in spec_names.difference(&gen_names) {
        out.push(format!(
            "field `{missing}` is in the spec but not in the type"
        ));
    }
    for extra in gen_names.difference(&spec_names) {
        out.push(format!(
            "field `{extra}` is in the type but not in the spec"
        ));
    }
    let gen_required: BTreeSet<&str> = generated
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if gen_required != flat.required {
        out.push(format!(
            "required fields differ: spec {:?}, type {:?}",
            flat.required, gen_required
        ));
    }
    for (name, property) in &flat.properties {
        let Some(gen_prop) = gen_props.and_then(|p| p.get(*name)) else {
            continue;
        };
        // Absent fields are covered by the required sets above. What remains
        // is null: a field the spec lets be null must be an `Option` (which
        // schemars reports as `nullable`), or a null would fail to decode; a
        // required non-null field must not be one.
        let spec_nullable = is_nullable(property);
        let gen_nullable = is_nullable(gen_prop);
        if spec_nullable && !gen_nullable {
            out.push(format!(
                "field `{name}` may be null in the spec but the type cannot hold null"
            ));
        }
        if !spec_nullable && flat.required.contains(name) && gen_nullable {
            out.push(format!(
                "field `{name}` is required and non-null in the spec but an Option in the type"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::lost_in_roundtrip;
    use serde_json::json;

    #[test]
    fn an_empty_free_form_map_equals_an_absent_one() {
        let original = json!({"data": {}, "code": true});
        assert_eq!(
            lost_in_roundtrip(&original, &json!({"code": true}), String::new()),
            None
        );
        assert_eq!(
            lost_in_roundtrip(&json!({"data": null}), &json!({}), String::new()),
            None
        );
    }

    #[test]
    fn a_dropped_field_and_a_changed_value_say_what_differed() {
        let lost =
            lost_in_roundtrip(&json!({"data": {"a": 1}}), &json!({}), String::new()).unwrap();
        assert!(
            lost.contains("`.data`") && lost.contains(r#"{"a":1}"#),
            "{lost}"
        );
        let changed =
            lost_in_roundtrip(&json!({"n": "x"}), &json!({"n": "y"}), String::new()).unwrap();
        assert!(
            changed.contains(r#""x""#) && changed.contains(r#""y""#),
            "{changed}"
        );
    }
}
