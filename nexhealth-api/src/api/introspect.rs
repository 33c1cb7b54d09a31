//! Lets `cargo xtask check` compare the compiled types with the spec: each
//! component schema's generated type can decode and re-encode an example and
//! describe itself as JSON Schema. Enabled by the `introspection` feature.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// One component schema and its generated type.
#[derive(Clone, Copy)]
pub struct SchemaEntry {
    /// The schema's name in the spec (and the type's name in `types`).
    pub name: &'static str,
    /// Decodes a JSON value into the type and encodes it again.
    pub roundtrip: fn(&serde_json::Value) -> Result<serde_json::Value, String>,
    /// The type's JSON Schema (OpenAPI 3.0 flavour), as JSON.
    pub json_schema: fn() -> serde_json::Value,
}

impl std::fmt::Debug for SchemaEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaEntry")
            .field("name", &self.name)
            .finish()
    }
}

/// Decodes `value` as `T` (naming the failing field) and encodes it again.
pub fn roundtrip<T: DeserializeOwned + Serialize>(
    value: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let decoded: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!("at `{path}`: {}", e.inner())
    })?;
    serde_json::to_value(decoded).map_err(|e| e.to_string())
}

/// The JSON Schema schemars derives for `T`, with OpenAPI 3.0 settings.
pub fn json_schema<T: schemars::JsonSchema>() -> serde_json::Value {
    let root = schemars::r#gen::SchemaSettings::openapi3()
        .into_generator()
        .into_root_schema_for::<T>();
    serde_json::to_value(root).unwrap_or_default()
}

pub use crate::api::operations::SCHEMAS;

/// The per-call token check on its own: the cached bearer header, if fresh.
/// For benchmarks.
pub fn cached_bearer(client: &crate::generated::Client) -> Option<reqwest::header::HeaderValue> {
    use progenitor_client::ClientInfo;
    client.inner().session.fresh_header()
}
