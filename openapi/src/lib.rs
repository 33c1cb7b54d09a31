//! The one home of nexhealth-api's code generation.
//!
//! `nexhealth-api`'s build script and `cargo xtask` both call [`generate`], so the
//! code the crate compiles and the copy checked in for review are produced by the
//! same settings from the same spec.

#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use openapiv3::OpenAPI;
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle, TagStyle};

pub mod lint;
mod meta;
pub mod shape;

pub use meta::pascal as variant_name;
pub use meta::snake as method_name;

/// Where this package keeps the spec: its folder when it was compiled. Meant
/// for a packaged copy (a registry or vendored crate, which does not move);
/// in the repository, tools find the spec from the checkout they run in
/// (`openapi/nexhealth.yaml` under the workspace root), never from here, so a
/// copied checkout that reuses the original's build never reads the original.
pub fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("nexhealth.yaml")
}

/// The generated sources, formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The client: types, builders and `Client`.
    pub client: String,
    /// Typed httpmock helpers (compiled behind the `mock` feature).
    pub httpmock: String,
    /// Per-operation facts and envelope glue read from the spec.
    pub operations: String,
}

impl Generated {
    /// The generated files as `(file name, contents)` pairs.
    pub fn files(&self) -> [(&'static str, &str); 3] {
        [
            ("generated_client.rs", &self.client),
            ("generated_httpmock.rs", &self.httpmock),
            ("generated_operations.rs", &self.operations),
        ]
    }
}

/// Why generation failed, pointing at the spec.
#[derive(Debug)]
pub struct GenerateError {
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GenerateError {}

fn err(message: impl Into<String>) -> GenerateError {
    GenerateError {
        message: message.into(),
    }
}

/// Spec types the SDK implements by hand: `(schema name, Rust path)`.
pub const REPLACED_TYPES: &[(&str, &str)] = &[
    // The endpoint's signing secret: a type whose Debug never shows it.
    ("WebhookSecretKey", "crate::WebhookSecret"),
];

/// The progenitor settings. Changing them changes the public API of the SDK.
pub fn settings() -> GenerationSettings {
    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Builder)
        .with_tag(TagStyle::Merged)
        .with_inner_type("crate::ClientState".parse().expect("valid path"))
        .with_hooks(HooksMode::Expected)
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq");
    for (name, path) in REPLACED_TYPES {
        settings.with_replacement(name, path, std::iter::empty());
    }
    settings
}

/// Reads the spec as JSON-compatible YAML.
pub fn load_spec_value(path: &Path) -> Result<serde_json::Value, GenerateError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    serde_yaml::from_str(&text).map_err(|e| {
        let place = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        err(format!("{}{place}: not valid YAML: {e}", path.display()))
    })
}

/// Lints and generates all sources from the spec at `path`.
pub fn generate(path: &Path) -> Result<Generated, GenerateError> {
    let value = load_spec_value(path)?;
    let problems = lint::lint(&value);
    if !problems.is_empty() {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("  {}: {p}", path.display()))
            .collect();
        return Err(err(format!(
            "the spec breaks what the generator needs:\n{}",
            list.join("\n")
        )));
    }
    let spec: OpenAPI = serde_json::from_value(value.clone()).map_err(|e| {
        err(format!(
            "{}: not an OpenAPI 3.0 document: {e}",
            path.display()
        ))
    })?;
    let gen_err = |e: progenitor::Error| err(format!("{}: progenitor: {e}", path.display()));

    // Some spec shapes make progenitor panic rather than return an error; the
    // lint above rules out the known ones, and this turns any other into a
    // message that names the spec.
    let run = || -> Result<_, progenitor::Error> {
        let client = Generator::new(&settings()).generate_tokens(&spec)?;
        let httpmock = Generator::new(&settings()).httpmock(&spec, "crate")?;
        Ok((client, httpmock))
    };
    let (client, httpmock) = std::panic::catch_unwind(run)
        .map_err(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            err(format!(
                "{}: progenitor panicked on this spec ({what}); run `cargo xtask check` to find the place",
                path.display()
            ))
        })?
        .map_err(gen_err)?;
    let operations = meta::operations(&value).map_err(err)?;
    let text =
        std::fs::read(path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let hash = spec_hash(&text);
    let shaped = |e: shape::ShapeError| err(format!("{}: {}", path.display(), e.0));
    Ok(Generated {
        client: format_tokens(client, &hash, |file| {
            let routes: Vec<(String, String, String)> = lint::operations(&value)
                .into_iter()
                .filter_map(|(_, method, path, op)| {
                    let id = op.get("operationId")?.as_str()?;
                    Some((meta::snake(id), method.to_string(), path.to_string()))
                })
                .collect();
            shape::client(file, &routes).map_err(shaped)
        })?,
        httpmock: format_tokens(with_examples(httpmock, &value)?, &hash, |file| {
            shape::httpmock(file, meta::snake).map_err(shaped)
        })?,
        operations: format_tokens(operations, &hash, |_| Ok(()))?,
    })
}

/// progenitor's httpmock helpers and the typed example accessors, one file.
fn with_examples(
    mut httpmock: proc_macro2::TokenStream,
    spec: &serde_json::Value,
) -> Result<proc_macro2::TokenStream, GenerateError> {
    httpmock.extend(meta::examples(spec).map_err(err)?);
    Ok(httpmock)
}

/// The prefix of the header line that records which spec a file came from.
pub const SPEC_HASH_PREFIX: &str = "// spec-sha256: ";

/// The SHA-256 of the spec's bytes, in hex.
pub fn spec_hash(spec: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(spec)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn format_tokens(
    tokens: proc_macro2::TokenStream,
    hash: &str,
    shape: impl FnOnce(&mut syn::File) -> Result<(), GenerateError>,
) -> Result<String, GenerateError> {
    let mut file: syn::File =
        syn::parse2(tokens).map_err(|e| err(format!("generated code does not parse: {e}")))?;
    shape(&mut file)?;
    Ok(format!(
        "// Generated by nexhealth-openapi from openapi/nexhealth.yaml. Do not edit by hand:\n\
         // edit the spec and run `cargo xtask generate`.\n{SPEC_HASH_PREFIX}{hash}\n\n{}",
        prettyplease::unparse(&file)
    ))
}
