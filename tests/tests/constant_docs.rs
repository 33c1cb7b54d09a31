//! Every public constant of `nexhealth-api` shows its value in its rustdoc, so
//! a user reading the docs never writes a program to learn it. rustdoc prints
//! a string literal's value itself; any other constant carries a `Value:` line.

use std::path::Path;

/// `(constant, its doc says its value)` for every `pub const` of `text`.
fn constants(text: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("pub const ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let literal = line
            .split_once('=')
            .is_some_and(|(_, value)| value.trim_start().starts_with('"'));
        let documented = lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim_start())
            .take_while(|l| l.starts_with("///") || l.starts_with("#["))
            .any(|l| l.starts_with("/// Value: "));
        out.push((name, literal || documented));
    }
    out
}

#[test]
fn every_public_constant_shows_its_value() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nexhealth-api/src");
    let files = nexhealth_contract_tests::rust_files(&src);
    let mut seen = 0;
    let mut missing = Vec::new();
    for file in files {
        for (name, shown) in constants(&std::fs::read_to_string(&file).unwrap()) {
            seen += 1;
            if !shown {
                missing.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(
        seen > 30,
        "only {seen} constants found: is the scan broken?"
    );
    assert!(
        missing.is_empty(),
        "constants without a `/// Value: …` line:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_scan_tells_a_documented_value_from_a_missing_one() {
    let text = "/// Shown.\n///\n/// Value: 10 s.\npub const A: Duration = Duration::from_secs(10);\n/// Not shown.\npub const B: u64 = 3;\n/// A literal.\npub const C: &str = \"x\";\n";
    assert_eq!(
        constants(text),
        [("A".into(), true), ("B".into(), false), ("C".into(), true)]
    );
}
