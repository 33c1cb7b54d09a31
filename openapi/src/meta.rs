//! Generates `generated_operations.rs`: what the spec says about each operation
//! (status codes, idempotency, version header), the glue that unwraps each
//! success envelope, and the spec's examples as JSON strings.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use serde_json::Value;

use crate::lint::{deref, operations as spec_operations};

/// Pascal case as progenitor spells builder names (`getLocationsId` → `GetLocationsId`).
/// The Rust type-case name progenitor gives an operation id
/// (`getLocationsId` → `GetLocationsId`): its builder and `OperationId` variant.
pub fn pascal(id: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in id.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Snake case as progenitor spells an operation's method and its
/// `OperationInfo::operation_id` (`getLocationsId` → `get_locations_id`).
pub fn snake(id: &str) -> String {
    let mut out = String::new();
    for (i, c) in id.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn ref_name(value: &Value) -> Option<&str> {
    value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

/// The Rust type of an envelope's `data`, from `allOf: [Envelope, {data: …}]`.
fn data_type(spec: &Value, schema_name: &str) -> Result<TokenStream, String> {
    let at = format!("/components/schemas/{schema_name}");
    let parts = spec
        .pointer(&format!("{at}/allOf"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            format!("at {at}: a success schema must be `allOf: [Envelope, {{data}}]`")
        })?;
    if parts.first().and_then(ref_name) != Some("Envelope") {
        return Err(format!(
            "at {at}/allOf/0: must be `$ref: #/components/schemas/Envelope`"
        ));
    }
    let data = parts
        .iter()
        .find_map(|p| p.pointer("/properties/data"))
        .ok_or_else(|| format!("at {at}/allOf: no `data` property"))?;
    if let Some(name) = ref_name(data) {
        let ident = format_ident!("{}", name);
        return Ok(quote!(crate::types::#ident));
    }
    if data.get("type").and_then(Value::as_str) == Some("array")
        && let Some(name) = data.get("items").and_then(ref_name)
    {
        let ident = format_ident!("{}", name);
        return Ok(quote!(::std::vec::Vec<crate::types::#ident>));
    }
    Err(format!(
        "at {at}: `data` must be a `$ref` to a schema or an array of one"
    ))
}

fn json_example(spec: &Value, response: &Value) -> Option<String> {
    let response = deref(spec, response)?;
    let example = response.pointer("/content/application~1json/example")?;
    serde_json::to_string(example).ok()
}

pub(crate) fn operations(spec: &Value) -> Result<TokenStream, String> {
    let mut entries = Vec::new();
    let mut variants = Vec::new();
    let mut glue = Vec::new();
    let mut envelopes = std::collections::BTreeSet::new();
    let mut examples = Vec::new();
    for (pointer, method, path, op) in spec_operations(spec) {
        let id = op
            .get("operationId")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("at {pointer}: no operationId"))?;
        let responses = op
            .get("responses")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("at {pointer}: no responses"))?;
        let mut success_status = None;
        let mut success_schema = None;
        let mut error_statuses = Vec::new();
        for (status, response) in responses {
            let code: u16 = status
                .parse()
                .map_err(|_| format!("at {pointer}/responses/{status}: not a status code"))?;
            if let Some(example) = json_example(spec, response) {
                examples.push(quote!((#id, #code, #example)));
            }
            if status.starts_with('2') {
                success_status = Some(code);
                success_schema = deref(spec, response)
                    .and_then(|r| r.pointer("/content/application~1json/schema"))
                    .and_then(ref_name)
                    .map(str::to_string);
            } else {
                error_statuses.push(code);
            }
        }
        let success_status =
            success_status.ok_or_else(|| format!("at {pointer}: no 2xx response"))?;
        // 204 answers nothing: its builder resolves to `Response<()>`.
        let schema = match success_schema {
            Some(schema) => Some(schema),
            None if success_status == 204 => None,
            None => {
                return Err(format!(
                    "at {pointer}: the 2xx response must `$ref` a component schema"
                ));
            }
        };
        let method_upper = method.to_uppercase();
        let idempotent = matches!(method, "get" | "head" | "options")
            || op.get("x-idempotent").and_then(Value::as_bool) == Some(true);
        let needs_version = op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| deref(spec, p))
            .any(|p| p.get("name").and_then(Value::as_str) == Some("Nex-Api-Version"));
        let rust_name = snake(id);
        variants.push((
            format_ident!("{}", pascal(id)),
            id.to_string(),
            method_upper.clone(),
            path.to_string(),
        ));
        entries.push(quote! {
            crate::operations::Operation {
                id: #id,
                rust_name: #rust_name,
                method: #method_upper,
                path: #path,
                success_status: #success_status,
                error_statuses: &[#(#error_statuses),*],
                idempotent: #idempotent,
                needs_api_version: #needs_version,
            }
        });
        if let Some(body) = op.get("requestBody").and_then(|b| deref(spec, b))
            && let Some(example) = body.pointer("/content/application~1json/example")
        {
            let text = serde_json::to_string(example).map_err(|e| e.to_string())?;
            examples.push(quote!((#id, 0u16, #text)));
        }

        let builder = format_ident!("{}", pascal(id));
        match schema {
            Some(schema) => {
                let schema_ident = format_ident!("{}", schema);
                if envelopes.insert(schema.clone()) {
                    let data = data_type(spec, &schema)?;
                    glue.push(
                        quote!(crate::api::envelope::impl_envelope!(#schema_ident => #data);),
                    );
                }
                glue.push(
                    quote!(crate::api::envelope::impl_into_future!(#builder => #schema_ident, #id);),
                );
            }
            None => glue.push(
                quote!(crate::api::envelope::impl_into_future!(#builder => no_content, #id);),
            ),
        }
    }
    let schema_names: Vec<&String> = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let registry = schema_names.iter().map(|name| {
        let path: proc_macro2::TokenStream =
            match crate::REPLACED_TYPES.iter().find(|(n, _)| n == name) {
                Some((_, path)) => path.parse().expect("a Rust path"),
                None => {
                    let ident = format_ident!("{}", name);
                    quote!(crate::types::#ident)
                }
            };
        quote! {
            crate::introspect::SchemaEntry {
                name: #name,
                roundtrip: crate::introspect::roundtrip::<#path>,
                json_schema: crate::introspect::json_schema::<#path>,
            }
        }
    });
    let count = variants.len();
    let variant_docs: Vec<String> = variants
        .iter()
        .map(|(_, id, method, path)| format!("`{id}`: `{method} {path}`."))
        .collect();
    let idents: Vec<&proc_macro2::Ident> = variants.iter().map(|(v, ..)| v).collect();
    let ids: Vec<&String> = variants.iter().map(|(_, id, ..)| id).collect();
    let indexes: Vec<usize> = (0..count).collect();
    Ok(quote! {
        /// One variant per operation of the spec, generated with it. Deliberately
        /// not `#[non_exhaustive]`: a test suite that `match`es on it exhaustively
        /// stops compiling when the spec gains an operation, at every place that
        /// must learn it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OperationId {
            #(#[doc = #variant_docs] #idents,)*
        }

        impl OperationId {
            /// Every operation, in spec order.
            pub const ALL: [OperationId; #count] = [#(OperationId::#idents),*];

            /// The spec's `operationId` (`getLocationsId`).
            pub fn id(self) -> &'static str {
                match self {
                    #(OperationId::#idents => #ids,)*
                }
            }

            /// What the spec says about the operation.
            pub fn operation(self) -> &'static crate::operations::Operation {
                match self {
                    #(OperationId::#idents => &OPERATIONS[#indexes],)*
                }
            }

            /// The variant of the spec's `operationId` `id`.
            pub fn from_id(id: &str) -> Option<Self> {
                match id {
                    #(#ids => Some(OperationId::#idents),)*
                    _ => None,
                }
            }
        }

        /// Every component schema of the spec and its generated type.
        #[cfg(feature = "introspection")]
        pub const SCHEMAS: &[crate::introspect::SchemaEntry] = &[#(#registry),*];

        /// Every operation of the spec, in spec order.
        pub const OPERATIONS: &[crate::operations::Operation] = &[#(#entries),*];

        /// Examples from the spec as `(operation id, status, JSON)`; status 0 marks a request body.
        pub const EXAMPLES: &[(&str, u16, &str)] = &[#(#examples),*];

        #(#glue)*
    })
}

/// A typed accessor for every example of the spec (`mock::payloads::examples`):
/// `get_locations_id_200()` answers the `getLocationsId` 200 example as its
/// schema's type, `post_onboardings_request()` the request body's.
pub(crate) fn examples(spec: &Value) -> Result<TokenStream, String> {
    let mut accessors = Vec::new();
    for (pointer, method, path, op) in spec_operations(spec) {
        let id = op
            .get("operationId")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("at {pointer}: no operationId"))?;
        let mut holders: Vec<(u16, &Value)> = Vec::new();
        if let Some(body) = op.get("requestBody").and_then(|b| deref(spec, b)) {
            holders.push((0, body));
        }
        for (status, response) in op
            .get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let (Ok(code), Some(response)) = (status.parse::<u16>(), deref(spec, response)) {
                holders.push((code, response));
            }
        }
        for (status, holder) in holders {
            let Some(media) = holder.pointer("/content/application~1json") else {
                continue;
            };
            let (Some(_), Some(schema)) =
                (media.get("example"), media.get("schema").and_then(ref_name))
            else {
                continue;
            };
            let ty: TokenStream = match crate::REPLACED_TYPES.iter().find(|(n, _)| *n == schema) {
                Some((_, path)) => path.parse().expect("a Rust path"),
                None => {
                    let ident = format_ident!("{}", schema);
                    quote!(crate::types::#ident)
                }
            };
            let (name, what) = if status == 0 {
                (format!("{}_request", snake(id)), "request body".to_string())
            } else {
                (
                    format!("{}_{status}", snake(id)),
                    format!("{status} answer"),
                )
            };
            let name = format_ident!("{}", name);
            let method_upper = method.to_uppercase();
            let doc = format!(
                "The spec's example {what} of `{id}` (`{method_upper} {path}`), as `{schema}`."
            );
            accessors.push(quote! {
                #[doc = #doc]
                pub fn #name() -> #ty {
                    crate::mock::payloads::decode(#id, #status)
                        .unwrap_or_else(|e| panic!("{e}"))
                }
            });
        }
    }
    Ok(quote! {
        /// A typed accessor for every example in the spec, generated with it:
        /// `OPERATION_STATUS()` for an answer (`get_locations_id_200()`),
        /// `OPERATION_request()` for a request body. A new operation's examples
        /// appear here when the spec names them.
        pub mod examples {
            #(#accessors)*
        }
    })
}
