//! `cargo xtask upstream PATH`: what NexHealth's published description says
//! that our hand-maintained spec does not (yet).
//!
//! Both documents are reduced to the same model before they are compared:
//! `$ref`s followed, `allOf` merged (a one-member `allOf` that only adds a
//! description is its member), OpenAPI 3.1's `type: [T, "null"]` read as 3.0's
//! `nullable`, and "this reference, or null" (`oneOf: [$ref, {enum: [null]}]`)
//! read as a nullable reference. Operations are matched by method and path
//! (parameter names in the path do not matter), so a renamed `operationId` is
//! reported rather than missed. The comparison is limited to the resources our
//! spec covers: the first segment of one of our paths.
//!
//! What counts as drift is what could break a call or hide something NexHealth
//! added. Our deliberate choices are not drift: a response field we accept in
//! more forms than NexHealth describes (a string-or-list `description`), a
//! response enum we keep as a plain string (forward compatibility), a field
//! we mark nullable or optional where NexHealth does not. A difference we
//! keep on purpose is marked in our spec with `x-upstream: <reason>` on the
//! schema, parameter or response, and is then not listed.
//!
//! A finding on a field points at the property (or parameter, or `items`) where
//! it is written, never at the component its `$ref` leads to, which other
//! fields may share; enum and format findings add where the values are listed.
//! A field of ours that NexHealth does not describe, beside one it describes
//! and we lack, of the same shape in the same object, is one finding: "renamed
//! `a` → `b`?".
//!
//! It reads the two files and nothing else: xtask's binary does not link the
//! SDK, so the comparison runs (exit 0, 1 or 2) while the SDK does not compile.
//!
//! A response field that an API version renames is declared under both names,
//! the new one with `x-instead-of: {property: <old name>, api-version: <version>}`.
//! Either name covers the pair: a description of either version (NexHealth's
//! v3.0.0 file with `emr`, a v3.1.0 one with `ehr`) reports no drift for the
//! name it lacks, and the name it has is compared as any other field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use nexhealth_openapi::lint::{admits_only_null, escape};
use serde::Serialize;
use serde_json::Value;

/// The extension that marks a deliberate difference, with its reason.
pub const MARK: &str = "x-upstream";

/// The root extension of our spec that lists the operations NexHealth
/// describes and we leave out, each `{operation: "GET /path", reason: "…"}`.
pub const OUT_OF_SCOPE: &str = "x-out-of-scope";

/// The extension on a property that another API version sends in place of a
/// sibling property: `{property: <the sibling's name>, api-version: <version>}`.
pub const INSTEAD_OF: &str = "x-instead-of";

/// An operation NexHealth describes that our spec declares out of scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutOfScope {
    /// `GET /locations/{id}/appointment_descriptors`, as declared.
    pub operation: String,
    /// Why we leave it out.
    pub reason: String,
}

/// What `compare` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Differences to edit (exit 1 when any).
    pub findings: Vec<Finding>,
    /// Operations NexHealth describes here that we declare out of scope.
    pub out_of_scope: Vec<OutOfScope>,
}

/// Our declared out-of-scope operations: `(method, path, reason, pointer)`.
fn declared_out_of_scope(ours: &Value) -> Vec<(String, String, String, String)> {
    ours.get(OUT_OF_SCOPE)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, entry)| {
            let operation = entry.get("operation")?.as_str()?;
            let (method, path) = operation.split_once(' ')?;
            Some((
                method.to_lowercase(),
                path.trim().to_string(),
                entry
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                format!("/{OUT_OF_SCOPE}/{i}"),
            ))
        })
        .collect()
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// What kind of difference a finding is, in the order a maintainer edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// NexHealth describes an operation on our resources that we do not.
    MissingOperation,
    /// Same method and path, another operationId.
    RenamedOperation,
    /// A parameter NexHealth describes and we do not.
    MissingParameter,
    /// A request-body field NexHealth describes and we do not.
    MissingRequestField,
    /// A response status NexHealth documents and we do not.
    MissingResponse,
    /// A response field NexHealth describes and we do not.
    MissingResponseField,
    /// A field of ours that NexHealth does not describe, beside one it
    /// describes and we do not, of the same shape in the same object:
    /// probably one field renamed.
    RenamedField,
    /// The types differ in a way that can break a call.
    Type,
    /// The formats differ.
    Format,
    /// Nullability differs in a way that can break a call.
    Nullability,
    /// Required-ness differs in a way that can break a call.
    Required,
    /// Enum values differ.
    Enum,
    /// Something we declare that NexHealth does not describe, not marked.
    NotDescribed,
    /// A declaration in `x-out-of-scope` that no longer matches.
    OutOfScope,
}

/// One difference: where in each document, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `GET /locations/{id}`, as our spec writes it (NexHealth's for a missing operation).
    pub operation: String,
    /// What kind of difference.
    pub kind: Kind,
    /// JSON pointer into NexHealth's file (empty when it has no such place).
    pub upstream: String,
    /// JSON pointer into our spec (empty when it has no such place).
    pub ours: String,
    /// What to change.
    pub change: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  [{:?}] {}", self.kind, self.change)?;
        if !self.upstream.is_empty() {
            writeln!(f, "      NexHealth: {}", self.upstream)?;
        }
        if !self.ours.is_empty() {
            writeln!(f, "      ours:      {}", self.ours)?;
        }
        Ok(())
    }
}

/// Reads an OpenAPI document, JSON or YAML.
pub fn load(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(_) => serde_yaml::from_str(&text)
            .map_err(|e| format!("{}: neither JSON nor YAML: {e}", path.display()))?,
    };
    match value.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0") || v.starts_with("3.1") => Ok(value),
        Some(v) => Err(format!("{}: OpenAPI {v} is not 3.0 or 3.1", path.display())),
        None => Err(format!("{}: not an OpenAPI document", path.display())),
    }
}

/// One field (or the value of a parameter) after references are resolved.
#[derive(Debug, Clone, Default)]
struct Field {
    /// Where the field is written: the property (or parameter, or `items`),
    /// never the schema it refers to, which other fields may share.
    pointer: String,
    /// The component schema its `$ref` leads to, when it has one.
    schema: Option<String>,
    /// JSON types, `null` excluded; empty means any.
    types: BTreeSet<String>,
    format: Option<String>,
    nullable: bool,
    required: bool,
    /// The object it sits in has a `required` list: required-ness is described.
    required_described: bool,
    enumeration: Option<BTreeSet<String>>,
    /// An object described with no properties: anything inside is described.
    open: bool,
    /// `x-upstream` on the schema or the property.
    mark: Option<String>,
    /// `x-instead-of`'s `property`: the sibling this field replaces in another
    /// API version.
    instead_of: Option<String>,
}

/// Field path (`data[].locations[].id`) to field.
type Shape = BTreeMap<String, Field>;

struct Doc<'a> {
    root: &'a Value,
}

impl<'a> Doc<'a> {
    /// Follows `$ref`s; returns the schema and the pointer where it is written.
    fn resolve(&self, mut value: &'a Value, mut pointer: String) -> (&'a Value, String) {
        for _ in 0..32 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(reference) => match reference
                    .strip_prefix('#')
                    .and_then(|p| self.root.pointer(p))
                {
                    Some(target) => {
                        pointer = reference.trim_start_matches('#').to_string();
                        value = target;
                    }
                    None => break,
                },
                None => break,
            }
        }
        (value, pointer)
    }

    /// Adds the fields under `schema` to `shape`, at `prefix`.
    fn flatten(
        &self,
        schema: &'a Value,
        pointer: String,
        prefix: &str,
        shape: &mut Shape,
        depth: usize,
    ) {
        if depth > 24 {
            return;
        }
        let (schema, pointer) = self.resolve(schema, pointer);
        let Some(object) = schema.as_object() else {
            return;
        };
        if let Some(members) = object.get("allOf").and_then(Value::as_array) {
            for (i, member) in members.iter().enumerate() {
                self.flatten(
                    member,
                    format!("{pointer}/allOf/{i}"),
                    prefix,
                    shape,
                    depth + 1,
                );
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(members) = object.get(key).and_then(Value::as_array) {
                let non_null: Vec<(usize, &Value)> = members
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| !admits_only_null(m))
                    .collect();
                if let [(i, only)] = non_null.as_slice() {
                    self.flatten(
                        only,
                        format!("{pointer}/{key}/{i}"),
                        prefix,
                        shape,
                        depth + 1,
                    );
                }
            }
        }
        let required: BTreeSet<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let at = format!("{pointer}/properties/{}", escape(name));
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                let mut field = self.field(property, at.clone(), depth);
                field.required = required.contains(name.as_str());
                field.required_described = object.contains_key("required");
                field.instead_of = property
                    .get(INSTEAD_OF)
                    .and_then(|x| x.get("property"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if field.mark.is_none() {
                    field.mark = property
                        .get(MARK)
                        .and_then(Value::as_str)
                        .map(str::to_string);
                }
                shape.insert(path.clone(), field);
                self.flatten(property, at, &path, shape, depth + 1);
            }
        }
        if let Some(items) = object.get("items") {
            let path = format!("{prefix}[]");
            let at = format!("{pointer}/items");
            let field = self.field(items, at.clone(), depth);
            shape.insert(path.clone(), field);
            self.flatten(items, at, &path, shape, depth + 1);
        }
    }

    /// The facts of one schema (after `$ref`, `allOf` and "or null").
    fn field(&self, schema: &'a Value, pointer: String, depth: usize) -> Field {
        let mark = schema.get(MARK).and_then(Value::as_str).map(str::to_string);
        let (resolved, at) = self.resolve(schema, pointer.clone());
        let mut field = Field {
            schema: (at != pointer).then_some(at),
            pointer,
            mark: mark.or_else(|| {
                resolved
                    .get(MARK)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }),
            ..Field::default()
        };
        self.facts(resolved, &mut field, depth);
        if field.types.is_empty() && field.enumeration.is_none() {
            // A one-member allOf or an "or null" carries its member's facts.
            for key in ["allOf", "oneOf", "anyOf"] {
                let members: Vec<&Value> = resolved
                    .get(key)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|m| !admits_only_null(m))
                    .collect();
                if members.len() == 1 {
                    let (member, at) = self.resolve(members[0], String::new());
                    if field.schema.is_none() && !at.is_empty() {
                        field.schema = Some(at);
                    }
                    self.facts(member, &mut field, depth + 1);
                } else if key != "allOf" {
                    // A real union: the types of its members.
                    for member in members {
                        let (member, _) = self.resolve(member, String::new());
                        let mut inner = Field::default();
                        self.facts(member, &mut inner, depth + 1);
                        field.types.extend(inner.types);
                    }
                }
                if resolved
                    .get(key)
                    .and_then(Value::as_array)
                    .is_some_and(|m| m.iter().any(admits_only_null))
                {
                    field.nullable = true;
                }
            }
        }
        if field.types.contains("object")
            && resolved.get("properties").is_none()
            && resolved.get("allOf").is_none()
            && resolved.get("oneOf").is_none()
        {
            field.open = true;
        }
        field
    }

    fn facts(&self, schema: &Value, field: &mut Field, _depth: usize) {
        match schema.get("type") {
            Some(Value::String(t)) => {
                field.types.insert(t.clone());
            }
            // OpenAPI 3.1: `type: [string, "null"]`.
            Some(Value::Array(types)) => {
                for t in types.iter().filter_map(Value::as_str) {
                    if t == "null" {
                        field.nullable = true;
                    } else {
                        field.types.insert(t.to_string());
                    }
                }
            }
            _ => {}
        }
        if field.types.is_empty() && schema.get("properties").is_some() {
            field.types.insert("object".into());
        }
        if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            field.nullable = true;
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str) {
            field.format = Some(format.to_string());
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let values: BTreeSet<String> = values
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            if values.is_empty() {
                field.nullable = true;
            } else {
                field.enumeration = Some(values);
            }
        }
    }
}

/// `/locations/{id}` and `/locations/{location_id}` are one path.
pub fn path_key(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

struct Operation<'a> {
    method: &'a str,
    path: &'a str,
    pointer: String,
    value: &'a Value,
}

/// Whether `ops` hold `method` `path` (parameter names in the path aside).
fn describes(ops: &[Operation<'_>], method: &str, path: &str) -> bool {
    ops.iter()
        .any(|o| o.method == method && path_key(o.path) == path_key(path))
}

fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let mut out = Vec::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for method in METHODS {
            if let Some(value) = item.get(method) {
                out.push(Operation {
                    method,
                    path,
                    pointer: format!("/paths/{}/{method}", escape(path)),
                    value,
                });
            }
        }
    }
    out
}

/// Compares NexHealth's description (`upstream`) with ours.
pub fn compare(upstream: &Value, ours: &Value) -> Report {
    let theirs_doc = Doc { root: upstream };
    let ours_doc = Doc { root: ours };
    let our_ops = operations(ours);
    let their_ops = operations(upstream);
    let resources: BTreeSet<&str> = our_ops.iter().map(|o| first_segment(o.path)).collect();
    let declared = declared_out_of_scope(ours);
    let mut findings = Vec::new();
    let mut out_of_scope = Vec::new();
    // A declaration must keep matching: an operation we also describe, or one
    // NexHealth no longer describes where its resource is described (moved or
    // removed), is a finding, never silently ignored.
    let their_resources: BTreeSet<&str> = their_ops.iter().map(|o| first_segment(o.path)).collect();
    for (method, path, _, pointer) in &declared {
        let name = format!("{} {path}", method.to_uppercase());
        if describes(&our_ops, method, path) {
            findings.push(Finding {
                operation: name.clone(),
                kind: Kind::OutOfScope,
                upstream: String::new(),
                ours: pointer.clone(),
                change: format!(
                    "{name} is declared out of scope but our spec describes it: remove it from `{OUT_OF_SCOPE}`"
                ),
            });
        } else if their_resources.contains(first_segment(path))
            && !describes(&their_ops, method, path)
        {
            findings.push(Finding {
                operation: name.clone(),
                kind: Kind::OutOfScope,
                upstream: String::new(),
                ours: pointer.clone(),
                change: format!(
                    "NexHealth no longer describes {name}, declared out of scope (moved or removed?): update or remove it in `{OUT_OF_SCOPE}`"
                ),
            });
        }
    }
    for theirs in their_ops {
        if !resources.contains(first_segment(theirs.path)) {
            continue;
        }
        let name = format!("{} {}", theirs.method.to_uppercase(), theirs.path);
        let Some(mine) = our_ops
            .iter()
            .find(|o| o.method == theirs.method && path_key(o.path) == path_key(theirs.path))
        else {
            if let Some((_, _, reason, _)) = declared
                .iter()
                .find(|(m, p, ..)| m == theirs.method && path_key(p) == path_key(theirs.path))
            {
                out_of_scope.push(OutOfScope {
                    operation: name,
                    reason: reason.clone(),
                });
                continue;
            }
            findings.push(Finding {
                operation: name,
                kind: Kind::MissingOperation,
                upstream: theirs.pointer.clone(),
                ours: String::new(),
                change: format!(
                    "NexHealth describes {} {} ({}): add it to our spec, or declare it in `{OUT_OF_SCOPE}` with a reason",
                    theirs.method.to_uppercase(),
                    theirs.path,
                    theirs
                        .value
                        .get("operationId")
                        .and_then(Value::as_str)
                        .unwrap_or("no operationId")
                ),
            });
            continue;
        };
        let operation = format!("{} {}", mine.method.to_uppercase(), mine.path);
        let mut push = |kind, upstream: String, ours: String, change: String| {
            findings.push(Finding {
                operation: operation.clone(),
                kind,
                upstream,
                ours,
                change,
            })
        };
        let their_id = theirs.value.get("operationId").and_then(Value::as_str);
        let our_id = mine.value.get("operationId").and_then(Value::as_str);
        if their_id.is_some() && their_id != our_id && mine.value.get(MARK).is_none() {
            push(
                Kind::RenamedOperation,
                format!("{}/operationId", theirs.pointer),
                format!("{}/operationId", mine.pointer),
                format!(
                    "NexHealth's operationId is `{}`, ours `{}`: rename ours (the Rust method name follows it) or mark the operation with `{MARK}`",
                    their_id.unwrap_or_default(),
                    our_id.unwrap_or_default()
                ),
            );
        }
        compare_parameters(&theirs_doc, &theirs, &ours_doc, mine, &mut push);
        compare_body(&theirs_doc, &theirs, &ours_doc, mine, &mut push);
        compare_responses(&theirs_doc, &theirs, &ours_doc, mine, &mut push);
    }
    findings.sort_by(|a, b| {
        (
            a.operation.as_str(),
            a.kind,
            a.upstream.as_str(),
            a.ours.as_str(),
        )
            .cmp(&(
                b.operation.as_str(),
                b.kind,
                b.upstream.as_str(),
                b.ours.as_str(),
            ))
    });
    Report {
        findings,
        out_of_scope,
    }
}

type Push<'p> = dyn FnMut(Kind, String, String, String) + 'p;

fn parameters<'a>(
    doc: &Doc<'a>,
    op: &Operation<'a>,
) -> BTreeMap<(String, String), (Field, &'a Value)> {
    let mut out = BTreeMap::new();
    for (i, parameter) in op
        .value
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let (parameter, pointer) = doc.resolve(parameter, format!("{}/parameters/{i}", op.pointer));
        let (Some(name), Some(place)) = (
            parameter.get("name").and_then(Value::as_str),
            parameter.get("in").and_then(Value::as_str),
        ) else {
            continue;
        };
        let name = if place == "header" {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        };
        let mut field = match parameter.get("schema") {
            Some(schema) => doc.field(schema, format!("{pointer}/schema"), 0),
            None => Field::default(),
        };
        field.pointer = pointer;
        field.required = parameter.get("required").and_then(Value::as_bool) == Some(true);
        field.required_described = true;
        if field.mark.is_none() {
            field.mark = parameter
                .get(MARK)
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        out.insert((place.to_string(), name), (field, parameter));
    }
    out
}

fn compare_parameters(
    theirs_doc: &Doc<'_>,
    theirs: &Operation<'_>,
    ours_doc: &Doc<'_>,
    mine: &Operation<'_>,
    push: &mut Push<'_>,
) {
    let their_params = parameters(theirs_doc, theirs);
    let our_params = parameters(ours_doc, mine);
    for ((place, name), (field, _)) in &their_params {
        match our_params.get(&(place.clone(), name.clone())) {
            None => push(
                Kind::MissingParameter,
                field.pointer.clone(),
                format!("{}/parameters", mine.pointer),
                format!(
                    "add the {}{place} parameter `{name}`{}",
                    if field.required { "required " } else { "" },
                    describe(field)
                ),
            ),
            Some((ours, _)) => compare_field(
                &format!("{place} parameter `{name}`"),
                field,
                ours,
                Direction::Request,
                push,
            ),
        }
    }
    for ((place, name), (field, _)) in &our_params {
        if !their_params.contains_key(&(place.clone(), name.clone())) && field.mark.is_none() {
            push(
                Kind::NotDescribed,
                String::new(),
                field.pointer.clone(),
                format!(
                    "NexHealth does not describe our {place} parameter `{name}`: remove it, or mark it with `{MARK}: <reason>`"
                ),
            );
        }
    }
}

/// The JSON schema of an operation's request body or of one response.
fn json_schema<'a>(
    doc: &Doc<'a>,
    holder: &'a Value,
    pointer: String,
) -> Option<(&'a Value, String)> {
    let (holder, pointer) = doc.resolve(holder, pointer);
    let content = holder.get("content")?.as_object()?;
    let (media, body) = content.iter().find(|(m, _)| m.contains("json"))?;
    let schema = body.get("schema")?;
    Some((
        schema,
        format!("{pointer}/content/{}/schema", escape(media)),
    ))
}

fn compare_body(
    theirs_doc: &Doc<'_>,
    theirs: &Operation<'_>,
    ours_doc: &Doc<'_>,
    mine: &Operation<'_>,
    push: &mut Push<'_>,
) {
    let their_body = theirs
        .value
        .get("requestBody")
        .and_then(|b| json_schema(theirs_doc, b, format!("{}/requestBody", theirs.pointer)));
    let our_body = mine
        .value
        .get("requestBody")
        .and_then(|b| json_schema(ours_doc, b, format!("{}/requestBody", mine.pointer)));
    match (their_body, our_body) {
        (Some((theirs_schema, tp)), Some((our_schema, op))) => {
            let mut their_shape = Shape::new();
            theirs_doc.flatten(theirs_schema, tp, "", &mut their_shape, 0);
            let mut our_shape = Shape::new();
            ours_doc.flatten(our_schema, op.clone(), "", &mut our_shape, 0);
            compare_shapes(
                "request body",
                &their_shape,
                &our_shape,
                Direction::Request,
                Kind::MissingRequestField,
                (ours_doc, &op),
                push,
            );
        }
        (Some((_, tp)), None) => push(
            Kind::MissingRequestField,
            tp,
            mine.pointer.clone(),
            "NexHealth describes a JSON request body; add `requestBody`".into(),
        ),
        _ => {}
    }
}

fn compare_responses(
    theirs_doc: &Doc<'_>,
    theirs: &Operation<'_>,
    ours_doc: &Doc<'_>,
    mine: &Operation<'_>,
    push: &mut Push<'_>,
) {
    let empty = serde_json::Map::new();
    let their_responses = theirs
        .value
        .get("responses")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let our_responses = mine
        .value
        .get("responses")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (status, their_response) in their_responses {
        let tp = format!("{}/responses/{status}", theirs.pointer);
        let Some(our_response) = our_responses.get(status) else {
            if mine
                .value
                .get("responses")
                .and_then(|r| r.get(MARK))
                .is_none()
            {
                push(
                    Kind::MissingResponse,
                    tp,
                    format!("{}/responses", mine.pointer),
                    format!(
                        "NexHealth documents status {status}; add it (or mark our `responses` with `{MARK}`)"
                    ),
                );
            }
            continue;
        };
        let op = format!("{}/responses/{status}", mine.pointer);
        let (Some((theirs_schema, tsp)), Some((our_schema, osp))) = (
            json_schema(theirs_doc, their_response, tp.clone()),
            json_schema(ours_doc, our_response, op.clone()),
        ) else {
            continue;
        };
        let mut their_shape = Shape::new();
        theirs_doc.flatten(theirs_schema, tsp, "", &mut their_shape, 0);
        let mut our_shape = Shape::new();
        ours_doc.flatten(our_schema, osp.clone(), "", &mut our_shape, 0);
        compare_shapes(
            &format!("{status} response"),
            &their_shape,
            &our_shape,
            Direction::Response,
            Kind::MissingResponseField,
            (ours_doc, &osp),
            push,
        );
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// What we send: we must not send what NexHealth would refuse.
    Request,
    /// What we decode: we must accept whatever NexHealth describes.
    Response,
}

fn describe(field: &Field) -> String {
    let mut out = Vec::new();
    if !field.types.is_empty() {
        out.push(field.types.iter().cloned().collect::<Vec<_>>().join("|"));
    }
    if let Some(format) = &field.format {
        out.push(format!("format {format}"));
    }
    if field.nullable {
        out.push("nullable".into());
    }
    if let Some(values) = &field.enumeration {
        out.push(format!("enum {values:?}"));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" ({})", out.join(", "))
    }
}

/// Whether a field, or one of the fields it sits in, is marked or open.
fn covered(shape: &Shape, path: &str, by: impl Fn(&Field) -> bool) -> bool {
    let mut current = path.to_string();
    loop {
        if shape.get(&current).is_some_and(&by) {
            return true;
        }
        match current.rfind(['.', '[']) {
            Some(i) => current.truncate(i),
            None => return false,
        }
    }
}

/// `path` with its last property renamed `name` (`data[].emr` → `data[].ehr`).
fn sibling(path: &str, name: &str) -> String {
    match path.rfind('.') {
        Some(i) => format!("{}.{name}", &path[..i]),
        None => name.to_string(),
    }
}

/// Whether `path` (of ours, which `theirs` lacks), or a field it sits in, is
/// one name of a field that an API version renames (`x-instead-of`) while
/// `theirs` describes the other name: a description of either version covers
/// both names.
fn renamed_and_described(ours: &Shape, theirs: &Shape, path: &str) -> bool {
    let mut current = path.to_string();
    loop {
        if !current.ends_with(']') {
            let name = current.rsplit('.').next().unwrap_or(&current);
            // This field replaces a sibling that `theirs` describes ...
            if let Some(old) = ours.get(&current).and_then(|f| f.instead_of.as_deref())
                && theirs.contains_key(&sibling(&current, old))
            {
                return true;
            }
            // ... or a sibling that `theirs` describes replaces this field.
            let parent = current.rfind('.').map_or("", |i| &current[..i]);
            let replaced = ours.iter().any(|(other, field)| {
                field.instead_of.as_deref() == Some(name)
                    && other.rfind('.').map_or("", |i| &other[..i]) == parent
                    && theirs.contains_key(other)
            });
            if replaced {
                return true;
            }
        }
        match current.rfind(['.', '[']) {
            Some(i) => current.truncate(i),
            None => return false,
        }
    }
}

fn compare_shapes(
    what: &str,
    theirs: &Shape,
    ours: &Shape,
    direction: Direction,
    missing: Kind,
    (ours_doc, our_root): (&Doc<'_>, &str),
    push: &mut Push<'_>,
) {
    let under = |path: &str, reported: &[&str]| {
        reported
            .iter()
            .any(|m| path.starts_with(&format!("{m}.")) || path.starts_with(&format!("{m}[")))
    };
    // What NexHealth describes and we do not (the outermost field of each).
    let mut reported_missing: Vec<&str> = Vec::new();
    for (path, field) in theirs {
        if under(path, &reported_missing) {
            continue;
        }
        match ours.get(path) {
            None => {
                if !covered(ours, path, |f| f.mark.is_some() || f.open) {
                    reported_missing.push(path);
                }
            }
            Some(our_field) => {
                if our_field.mark.is_none() {
                    compare_field(
                        &format!("`{path}` of the {what}"),
                        field,
                        our_field,
                        direction,
                        push,
                    );
                }
            }
        }
    }
    // What we declare and NexHealth does not describe.
    let mut reported_extra: Vec<&str> = Vec::new();
    for path in ours.keys() {
        if theirs.contains_key(path)
            || under(path, &reported_extra)
            || covered(ours, path, |f| f.mark.is_some())
            || renamed_and_described(ours, theirs, path)
            || covered(theirs, path, |f| f.open)
        {
            continue;
        }
        reported_extra.push(path);
    }
    // One of each in the same object, of the same shape: one field renamed.
    let mut renamed: Vec<(&str, &str)> = Vec::new();
    for &new in &reported_missing {
        let candidates: Vec<&str> = reported_extra
            .iter()
            .copied()
            .filter(|&old| {
                parent_of(old) == parent_of(new)
                    && !old.ends_with(']')
                    && !new.ends_with(']')
                    && same_shape(ours, old, theirs, new)
            })
            .collect();
        let unique = |old: &str| {
            reported_missing
                .iter()
                .filter(|&&other| {
                    parent_of(other) == parent_of(old) && same_shape(ours, old, theirs, other)
                })
                .count()
                == 1
        };
        if let [old] = candidates.as_slice()
            && unique(old)
        {
            renamed.push((old, new));
        }
    }
    for &path in &reported_missing {
        let field = &theirs[path];
        let owner = owner_schema(ours_doc, ours, path, our_root);
        let name = path.rsplit(['.', '[']).next().unwrap_or(path);
        if let Some((old, _)) = renamed.iter().find(|(_, new)| *new == path) {
            let old_name = old.rsplit('.').next().unwrap_or(old);
            push(
                Kind::RenamedField,
                field.pointer.clone(),
                ours[*old].pointer.clone(),
                format!(
                    "renamed `{old_name}` → `{name}`? NexHealth describes `{path}` of the {what} \
                     with the shape of our `{old}`, which it does not describe: rename ours to \
                     `{name}` in {owner} (when an API version renames it, declare `{name}` beside \
                     it with `{INSTEAD_OF}`){}",
                    describe(field)
                ),
            );
            continue;
        }
        push(
            missing,
            field.pointer.clone(),
            format!("{owner}/properties"),
            format!(
                "add `{name}` to the properties of {owner} (`{path}` of the {what}){}",
                describe(field)
            ),
        );
    }
    for &path in &reported_extra {
        if renamed.iter().any(|(old, _)| *old == path) {
            continue;
        }
        push(
            Kind::NotDescribed,
            String::new(),
            ours[path].pointer.clone(),
            format!(
                "NexHealth does not describe `{path}` of the {what}: remove it, or mark it with `{MARK}: <reason>` (e.g. `not-described, seen in real answers`)"
            ),
        );
    }
}

/// The object a field sits in (`data[].emr` → `data[]`; `id` → ``).
fn parent_of(path: &str) -> &str {
    path.rfind('.').map_or("", |i| &path[..i])
}

/// Whether the field at `a` of one shape and the one at `b` of another have
/// the same schema: the same type, format, nullability and values, and the
/// same fields inside, named alike.
fn same_shape(a_shape: &Shape, a: &str, b_shape: &Shape, b: &str) -> bool {
    let facts = |f: &Field| {
        (
            f.types.clone(),
            f.format.clone(),
            f.nullable,
            f.enumeration.clone(),
            f.open,
        )
    };
    let inside = |shape: &Shape, at: &str| -> Vec<(String, _)> {
        shape
            .iter()
            .filter_map(|(path, field)| {
                let rest = path.strip_prefix(at)?;
                (rest.starts_with('.') || rest.starts_with('['))
                    .then(|| (rest.to_string(), facts(field)))
            })
            .collect()
    };
    match (a_shape.get(a), b_shape.get(b)) {
        (Some(x), Some(y)) => facts(x) == facts(y) && inside(a_shape, a) == inside(b_shape, b),
        _ => false,
    }
}

/// The schema to edit for a field missing at `path`: the object that holds
/// its parent, followed through `$ref`s and one-member `allOf`/`oneOf`/`anyOf`
/// (an "or null" wrapper) to the component schema where its properties are
/// written, so that one edit serves every operation that uses it.
fn owner_schema(doc: &Doc<'_>, ours: &Shape, path: &str, root: &str) -> String {
    let parent = path.rfind('.').map_or("", |i| &path[..i]);
    let start = if parent.is_empty() {
        root.to_string()
    } else {
        ours.get(parent)
            .map_or_else(|| root.to_string(), |f| f.pointer.clone())
    };
    let Some(mut value) = doc.root.pointer(&start) else {
        return start;
    };
    let mut pointer = start;
    for _ in 0..8 {
        let (resolved, at) = doc.resolve(value, pointer.clone());
        value = resolved;
        pointer = at;
        if value.get("properties").is_some() {
            break;
        }
        let single = ["allOf", "oneOf", "anyOf"].iter().find_map(|key| {
            let members = value.get(*key)?.as_array()?;
            let non_null: Vec<(usize, &Value)> = members
                .iter()
                .enumerate()
                .filter(|(_, m)| !admits_only_null(m))
                .collect();
            match non_null.as_slice() {
                [(i, member)] => Some((format!("{pointer}/{key}/{i}"), *member)),
                _ => None,
            }
        });
        match single {
            Some((at, member)) => {
                pointer = at;
                value = member;
            }
            None => break,
        }
    }
    pointer
}

/// Whether every type in `narrow` is accepted by `wide` (integer fits number).
fn types_within(narrow: &BTreeSet<String>, wide: &BTreeSet<String>) -> bool {
    wide.is_empty()
        || narrow
            .iter()
            .all(|t| wide.contains(t) || (t == "integer" && wide.contains("number")))
}

/// Where the values of a field that refers to a component schema are
/// written: ` (its values are listed in /components/schemas/SyncState, which
/// other fields may share)`.
fn listed_in(field: &Field) -> String {
    match &field.schema {
        Some(schema) => format!(" (listed in {schema}, which other fields may share)"),
        None => String::new(),
    }
}

fn compare_field(
    what: &str,
    theirs: &Field,
    ours: &Field,
    direction: Direction,
    push: &mut Push<'_>,
) {
    if ours.mark.is_some() {
        return;
    }
    let (tp, op) = (theirs.pointer.clone(), ours.pointer.clone());
    // Types: we decode whatever NexHealth sends; NexHealth accepts what we send.
    let broken = match direction {
        Direction::Response => {
            !theirs.types.is_empty() && !types_within(&theirs.types, &ours.types)
        }
        Direction::Request => !ours.types.is_empty() && !types_within(&ours.types, &theirs.types),
    };
    if broken {
        push(
            Kind::Type,
            tp.clone(),
            op.clone(),
            format!(
                "{what}: NexHealth says {}, we say {}: change ours to {}",
                join(&theirs.types),
                join(&ours.types),
                join(&theirs.types)
            ),
        );
    }
    if let Some(format) = &theirs.format
        && ours.format.as_ref() != Some(format)
        && !broken
        && !(direction == Direction::Response && widens(format, ours.format.as_deref()))
    {
        push(
            Kind::Format,
            tp.clone(),
            op.clone(),
            format!(
                "{what}: NexHealth's format is `{format}`, ours {}: use `{format}`{}",
                ours.format
                    .as_deref()
                    .map_or("is not set".to_string(), |f| format!("`{f}`")),
                listed_in(ours)
            ),
        );
    }
    let nullability = match direction {
        Direction::Response => theirs.nullable && !ours.nullable,
        Direction::Request => ours.nullable && !theirs.nullable,
    };
    if nullability {
        push(
            Kind::Nullability,
            tp.clone(),
            op.clone(),
            match direction {
                Direction::Response => {
                    format!("{what}: NexHealth says it may be null: make ours nullable")
                }
                Direction::Request => {
                    format!("{what}: NexHealth does not accept null: make ours not nullable")
                }
            },
        );
    }
    let required = match direction {
        // A file that lists no required fields says nothing about them.
        Direction::Response => ours.required && !theirs.required && theirs.required_described,
        Direction::Request => theirs.required && !ours.required,
    };
    if required {
        push(
            Kind::Required,
            tp.clone(),
            op.clone(),
            match direction {
                Direction::Response => {
                    format!("{what}: NexHealth does not always send it: make ours optional")
                }
                Direction::Request => format!("{what}: NexHealth requires it: make ours required"),
            },
        );
    }
    match (&theirs.enumeration, &ours.enumeration) {
        (Some(their_values), Some(our_values)) => {
            let added: Vec<&String> = their_values.difference(our_values).collect();
            let removed: Vec<&String> = our_values.difference(their_values).collect();
            if !added.is_empty() {
                push(
                    Kind::Enum,
                    tp.clone(),
                    op.clone(),
                    format!(
                        "{what}: NexHealth lists {added:?}, which ours lacks: add them{}",
                        listed_in(ours)
                    ),
                );
            }
            if direction == Direction::Request && !removed.is_empty() {
                push(
                    Kind::Enum,
                    tp,
                    op,
                    format!(
                        "{what}: we may send {removed:?}, which NexHealth does not list: remove \
                         them{}",
                        listed_in(ours)
                    ),
                );
            }
        }
        // We may send any string where NexHealth lists values.
        (Some(their_values), None) if direction == Direction::Request => push(
            Kind::Enum,
            tp,
            op,
            format!("{what}: NexHealth accepts only {their_values:?}: make ours an enum"),
        ),
        // A response enum kept as a string is our forward-compatibility choice.
        _ => {}
    }
}

/// Whether our format holds every value of NexHealth's (a `double` holds any
/// `float`, an `int64` any `int32`): decoding cannot fail on it.
fn widens(theirs: &str, ours: Option<&str>) -> bool {
    matches!(
        (theirs, ours),
        ("float", Some("double")) | ("int32", Some("int64"))
    )
}

fn join(types: &BTreeSet<String>) -> String {
    if types.is_empty() {
        "any type".into()
    } else {
        types.iter().cloned().collect::<Vec<_>>().join("|")
    }
}

/// The report as text: the findings grouped by operation, then the
/// operations declared out of scope.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut current = "";
    for finding in &report.findings {
        if finding.operation != current {
            current = &finding.operation;
            out.push_str(&format!("\n{current}\n"));
        }
        out.push_str(&finding.to_string());
    }
    if !report.out_of_scope.is_empty() {
        out.push_str(&format!(
            "\nout of scope ({}), declared in `{OUT_OF_SCOPE}`:\n",
            report.out_of_scope.len()
        ));
        for entry in &report.out_of_scope {
            out.push_str(&format!("  {}: {}\n", entry.operation, entry.reason));
        }
    }
    if report.findings.is_empty() {
        out.push_str(&format!(
            "upstream: nothing NexHealth describes differs from our spec (deliberate differences \
             are marked with {MARK}); out of scope ({})\n",
            report.out_of_scope.len()
        ));
    } else {
        out.push_str(&format!(
            "\nupstream: {} difference(s) to edit; out of scope ({})\n",
            report.findings.len(),
            report.out_of_scope.len()
        ));
    }
    out
}
