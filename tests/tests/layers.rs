//! The crate's layers import downward only, and modules import from a
//! module's home rather than from the crate root's re-exports (the public
//! face). Reads the hand-written sources of `nexhealth-api/src`.
//!
//! Layers, lowest first: `generated` (progenitor's output), `error`,
//! `transport`, `api`, `webhooks`, `domain`, `mock`. A module may use its own
//! layer and those below it. Test modules (after `#[cfg(test)]`) may use
//! anything (as may those after `#[cfg(all(test, …))]`, and the unit-test
//! files `tests.rs` and `*_tests.rs` beside a module).

use std::collections::{BTreeMap, BTreeSet};
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
    let lines: Vec<&str> = text.lines().collect();
    for (number, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if starts_test_module(&lines[number..]) {
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

/// Whether `lines` open with a test-only module (`#[cfg(test)]` or
/// `#[cfg(all(test, …))]`, maybe more attributes, then `mod`): what follows
/// is tests. A test-only item that is not a module is scanned like code.
fn starts_test_module(lines: &[&str]) -> bool {
    let first = lines.first().map(|l| l.trim_start()).unwrap_or_default();
    if !(first.starts_with("#[cfg(test)]") || first.starts_with("#[cfg(all(test")) {
        return false;
    }
    lines[1..]
        .iter()
        .map(|l| l.trim_start())
        .find(|l| !l.starts_with("#["))
        .is_some_and(|l| {
            l.starts_with("mod ") || l.starts_with("pub mod ") || l.starts_with("pub(crate) mod ")
        })
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
    let text = "use crate::api::call;\nuse crate::Client;\n// crate::domain in a comment\npub(crate) fn f() {}\n#[cfg(test)]\nmod tests {\nuse crate::mock::StandIn;\n";
    assert_eq!(
        crate_paths(text),
        vec![(1, "api".to_string()), (2, "Client".to_string())]
    );
}

/// The module a source file belongs to, below its layer: `domain/changes.rs`
/// is `domain::changes`, and every file of `domain/fleet/` is `domain::fleet`.
/// A layer's own `mod.rs` (and `lib.rs`) belongs to none.
fn unit_of(relative: &Path) -> Option<String> {
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    let [layer, second, ..] = parts.as_slice() else {
        return None;
    };
    let module = second.strip_suffix(".rs").unwrap_or(second);
    (module != "mod").then(|| format!("{layer}::{module}"))
}

/// The modules a file's code (not its tests) imports within the crate:
/// `crate::layer::module…`, and `super::module…` in a file directly under its layer.
fn imported_units(relative: &Path, text: &str) -> BTreeSet<String> {
    let parts: Vec<&str> = relative
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    let layer = parts.first().copied().unwrap_or_default();
    let direct = parts.len() == 2;
    let mut found = BTreeSet::new();
    let ident = |rest: &str| -> String {
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let lines: Vec<&str> = text.lines().collect();
    for (number, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if starts_test_module(&lines[number..]) {
            break;
        }
        if code.starts_with("//") || code.starts_with("#[doc") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or(code);
        for (at, _) in code.match_indices("crate::") {
            let after = &code[at + "crate::".len()..];
            let first = ident(after);
            if LAYERS.contains(&first.as_str())
                && let Some(rest) = after[first.len()..].strip_prefix("::")
            {
                let module = ident(rest);
                if !module.is_empty() {
                    found.insert(format!("{first}::{module}"));
                }
            }
        }
        if direct {
            for (at, _) in code.match_indices("super::") {
                if code[..at].ends_with("::") {
                    continue;
                }
                let module = ident(&code[at + "super::".len()..]);
                if !module.is_empty() && module != "super" {
                    found.insert(format!("{layer}::{module}"));
                }
            }
        }
    }
    found
}

/// Every cycle among `edges` (each once, from its smallest module).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn walk(
        at: &str,
        start: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        for next in edges.get(at).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                found.push(cycle);
            } else if next.as_str() > start && !path.contains(next) {
                path.push(next.clone());
                walk(next, start, edges, path, found);
                path.pop();
            }
        }
    }
    let mut found = Vec::new();
    for start in edges.keys() {
        walk(start, start, edges, &mut vec![start.clone()], &mut found);
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("nexhealth-api")
        .join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in nexhealth_contract_tests::rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let name = relative.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let Some(unit) = unit_of(relative) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let targets = edges.entry(unit.clone()).or_default();
        for target in imported_units(relative, &text) {
            if target != unit {
                targets.insert(target);
            }
        }
    }
    assert!(edges.len() > 30, "found only {} modules", edges.len());
    let found: Vec<String> = cycles(&edges).iter().map(|c| c.join(" -> ")).collect();
    assert!(
        found.is_empty(),
        "modules that import each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cycle_check_sees_a_deliberate_cycle_and_nothing_else() {
    let file = |path: &str, text: &str| imported_units(Path::new(path), text);
    assert_eq!(
        file(
            "webhooks/handle.rs",
            "use super::receive::Receiver;\nuse crate::transport::x;\nlet y = crate::domain::fleet::Lease;\n#[cfg(test)]\n#[allow(x)]\nmod tests {\nuse super::store::X;\n"
        ),
        BTreeSet::from([
            "webhooks::receive".to_string(),
            "transport::x".to_string(),
            "domain::fleet".to_string()
        ])
    );
    // Deeper files' `super::` stays inside their module.
    assert!(file("domain/fleet/share.rs", "use super::Trouble;").is_empty());
    assert_eq!(
        unit_of(Path::new("domain/fleet/share.rs")).unwrap(),
        "domain::fleet"
    );
    assert_eq!(unit_of(Path::new("domain/mod.rs")), None);
    let graph = |pairs: &[(&str, &str)]| {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            edges
                .entry(a.to_string())
                .or_default()
                .insert(b.to_string());
            edges.entry(b.to_string()).or_default();
        }
        edges
    };
    let cyclic = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]);
    assert_eq!(cycles(&cyclic), vec![vec!["a", "b", "c", "a"]]);
    assert!(cycles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
}
