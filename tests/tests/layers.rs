//! The crate's layers import downward only, and modules import from a
//! module's home rather than from the crate root's re-exports (the public
//! face). Reads the hand-written sources of `nexhealth-api/src`.
//!
//! Layers, lowest first: `generated` (progenitor's output), `error`,
//! `transport`, `api`, `webhooks`, `domain`, `mock`. A module may use its own
//! layer and those below it. Test modules (after `#[cfg(test)]`) may use
//! anything (as may those after `#[cfg(all(test, …))]`, and the unit-test
//! files `tests.rs` and `*_tests.rs` beside a module).

use std::path::Path;

const LAYERS: [&str; 7] = [
    "generated",
    "error",
    "transport",
    "api",
    "webhooks",
    "domain",
    "mock",
];

/// The `crate::X` (and `$crate::X`) first segments used in code, with the line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") || code.starts_with("#[cfg(all(test") {
            break;
        }
        if code.starts_with("//") || code.starts_with("#[doc") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or(code);
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let segment: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let preceded = &rest[..at];
            // `pub(crate)` and `super::` are not paths into the crate root.
            if !preceded.ends_with("pub(") {
                found.push((number + 1, segment));
            }
            rest = after;
        }
    }
    found
}

fn layer_of(relative: &Path) -> Option<usize> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    LAYERS.iter().position(|l| *l == name)
}

#[test]
fn layers_import_downward_and_from_each_module_s_home() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("nexhealth-api")
        .join("src");
    let files = nexhealth_contract_tests::rust_files(&src);
    assert!(files.len() > 30, "found only {} sources", files.len());
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        // Unit-test files beside their module (`tests.rs`, `*_tests.rs`) are
        // test modules: they may use anything, as `#[cfg(test)]` blocks do.
        let name = relative.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if relative == Path::new("lib.rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let own = layer_of(relative)
            .unwrap_or_else(|| panic!("{} is in no layer: add it to LAYERS", relative.display()));
        let text = std::fs::read_to_string(file).unwrap();
        for (line, segment) in crate_paths(&text) {
            checked += 1;
            match LAYERS.iter().position(|l| *l == segment) {
                Some(target) if target <= own => {}
                Some(_) => problems.push(format!(
                    "{}:{line}: `{}` imports `crate::{segment}`, a layer above it",
                    relative.display(),
                    LAYERS[own]
                )),
                None => problems.push(format!(
                    "{}:{line}: `crate::{segment}` is a re-export of the crate root; import it from its home module",
                    relative.display()
                )),
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} paths seen: is the scan broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scan_sees_upward_imports_and_root_re_exports() {
    let text = "use crate::api::call;\nuse crate::Client;\n// crate::domain in a comment\npub(crate) fn f() {}\n#[cfg(test)]\nuse crate::mock::StandIn;\n";
    assert_eq!(
        crate_paths(text),
        vec![(1, "api".to_string()), (2, "Client".to_string())]
    );
}
