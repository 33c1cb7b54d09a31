//! The `introspect` example of xtask: the one program of xtask that links the
//! SDK. `cargo xtask check` builds and runs it (see `xtask::introspect`), so
//! every other subcommand builds without `nexhealth-api`.
//!
//! Reads a request (the spec's examples, by schema name) as JSON on stdin and
//! answers with each generated type's JSON Schema and each example's round
//! trip through its type, as JSON on stdout.

use std::process::ExitCode;

use xtask::introspect::{Entry, serve};

fn main() -> ExitCode {
    let entries: Vec<Entry> = nexhealth_api::introspect::SCHEMAS
        .iter()
        .map(|e| Entry {
            name: e.name,
            roundtrip: e.roundtrip,
            json_schema: e.json_schema,
        })
        .collect();
    serve(&entries)
}
