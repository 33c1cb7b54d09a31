//! `cargo xtask generate` and `cargo xtask check`: the spec, the generated
//! code, the examples, the compiled types and the contract tests, kept in sync.

#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use nexhealth_openapi::lint::{self, deref, escape};
use serde_json::Value;

pub mod bench;
mod compare;
pub mod facts;
pub mod introspect;
pub mod package;
pub mod root;
pub mod scaffold;
pub mod upstream;

/// Where the things that must agree live.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The checkout's root (README.md, CHANGELOG.md).
    pub root: PathBuf,
    /// The OpenAPI spec.
    pub spec: PathBuf,
    /// The folder of checked-in generated files.
    pub generated: PathBuf,
    /// The contract-test folder.
    pub tests: PathBuf,
}

impl Paths {
    /// The paths of the checkout xtask stands in (see [`root::find`]).
    pub fn repo() -> Result<Self, String> {
        root::find().map(|root| Self::of(&root))
    }

    /// The paths of the checkout at `root`.
    pub fn of(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            spec: root.join("openapi").join("nexhealth.yaml"),
            generated: root.join("nexhealth-api").join("generated"),
            tests: root.join("tests"),
        }
    }
}

/// One thing out of sync: where, what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which check found it (1 to 5, see `check`).
    pub check: &'static str,
    /// The file at fault.
    pub file: PathBuf,
    /// The place in it (a JSON pointer into the spec, or a file name).
    pub place: String,
    /// What is wrong.
    pub message: String,
    /// What to run or change.
    pub fix: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[{}] {}: {}",
            self.check,
            self.file.display(),
            self.place
        )?;
        if let Some(section) = Section::of(self.check) {
            writeln!(f, "  (checks that {})", section.meaning())?;
        }
        for line in self.message.lines() {
            writeln!(f, "    {line}")?;
        }
        write!(f, "  fix: {}", self.fix)
    }
}

const FIX_SPEC: &str = "fix the spec at that place, then run `cargo xtask check`";
const FIX_GENERATE: &str = "run `cargo xtask generate` and commit the result";

/// Writes the generated files into `paths.generated`; returns what it wrote.
pub fn generate(paths: &Paths) -> Result<Vec<PathBuf>, String> {
    let generated = nexhealth_openapi::generate(&paths.spec).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&paths.generated).map_err(|e| e.to_string())?;
    let mut written = Vec::new();
    for (name, contents) in generated.files() {
        let path = paths.generated.join(name);
        std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The sections of `cargo xtask check`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// 1: the spec is OpenAPI 3.0.x and fits what progenitor needs.
    Spec,
    /// 2: the checked-in generated files are what the spec produces now.
    Drift,
    /// 3: every example round-trips through the generated types.
    Examples,
    /// 4: the compiled types accept what the spec's schemas describe.
    Types,
    /// 5: every operation has a contract test that calls the client.
    ContractTests,
    /// 6: every test file that lists operations by `OperationId` names them all.
    Registry,
}

impl Section {
    /// Every section, in order.
    pub const ALL: [Section; 6] = [
        Section::Spec,
        Section::Drift,
        Section::Examples,
        Section::Types,
        Section::ContractTests,
        Section::Registry,
    ];

    /// The label its failures carry (`[2 drift]`).
    pub fn label(self) -> &'static str {
        match self {
            Section::Spec => "1 spec",
            Section::Drift => "2 drift",
            Section::Examples => "3 examples",
            Section::Types => "4 types",
            Section::ContractTests => "5 contract tests",
            Section::Registry => "6 registry",
        }
    }

    /// What the section checks, and so what one of its problems is.
    pub fn meaning(self) -> &'static str {
        match self {
            Section::Spec => "the spec is OpenAPI 3.0.x and fits what the generator needs",
            Section::Drift => {
                "nexhealth-api/generated/ holds what the spec produces now (a problem: one stale file)"
            }
            Section::Examples => {
                "every example in the spec decodes into the generated type and encodes back unchanged (a problem: one example)"
            }
            Section::Types => {
                "the compiled types accept what the spec's schemas describe (a problem: one schema)"
            }
            Section::ContractTests => {
                "every operation has a test function in tests/tests that calls the client (a problem: one operation)"
            }
            Section::Registry => {
                "every test file that lists operations by `OperationId::…` names every operation with a real arm, and each operation the Prism walk calls is in NexHealth's facts (a problem: one file, arm or operation)"
            }
        }
    }

    fn of(label: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.label() == label)
    }
}

/// What `check_sections` found, section by section.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The sections that ran, with their problem counts.
    pub ran: Vec<(Section, usize)>,
    /// Sections that could not run, with why.
    pub skipped: Vec<(Section, String)>,
    /// Every problem found.
    pub failures: Vec<Failure>,
}

impl CheckReport {
    /// One line per section: its label, its count and what the count means.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (section, count) in &self.ran {
            let status = match count {
                0 => "ok".to_string(),
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            };
            out.push_str(&format!(
                "  {:<19} {status:<11} {}\n",
                format!("[{}]", section.label()),
                section.meaning()
            ));
        }
        for (section, why) in &self.skipped {
            out.push_str(&format!(
                "  {:<19} NOT RUN     {why}\n",
                format!("[{}]", section.label())
            ));
        }
        out
    }
}

/// Runs `sections` of the check; `compiled` answers for the compiled types
/// (sections 3 and 4): [`introspect::Sdk`] builds and runs the checkout's SDK.
pub fn check_sections(
    paths: &Paths,
    sections: &[Section],
    compiled: &dyn introspect::Compiled,
) -> CheckReport {
    let mut report = CheckReport {
        ran: Vec::new(),
        skipped: Vec::new(),
        failures: Vec::new(),
    };
    let record = |section: Section, found: Vec<Failure>, report: &mut CheckReport| {
        report.ran.push((section, found.len()));
        report.failures.extend(found);
    };
    let spec_failures = check_spec(paths);
    let spec_ok = spec_failures.is_empty();
    if sections.contains(&Section::Spec) || !spec_ok {
        record(Section::Spec, spec_failures, &mut report);
    }
    let spec = nexhealth_openapi::load_spec_value(&paths.spec).ok();
    // Sections 3 and 4 ask the compiled types once, together.
    let needs_types = sections
        .iter()
        .any(|s| matches!(s, Section::Examples | Section::Types));
    let answer = match &spec {
        Some(spec) if needs_types => Some(compiled.answer(&types_request(spec))),
        _ => None,
    };
    let mut unavailable_reported = false;
    for &section in sections {
        let found = match (section, &spec) {
            (Section::Spec, _) => continue,
            (Section::Drift, _) if !spec_ok => {
                report
                    .skipped
                    .push((section, "the spec does not generate (see [1 spec])".into()));
                continue;
            }
            (Section::Drift, _) => check_drift(paths),
            (_, None) => {
                report
                    .skipped
                    .push((section, "the spec cannot be read (see [1 spec])".into()));
                continue;
            }
            (Section::Examples | Section::Types, Some(_)) => match &answer {
                Some(Err(unavailable)) if unavailable_reported => {
                    report.skipped.push((
                        section,
                        format!(
                            "the compiled types could not answer (see [{}])",
                            Section::Examples.label()
                        ),
                    ));
                    continue;
                }
                Some(Err(unavailable)) => {
                    unavailable_reported = true;
                    vec![Failure {
                        check: section.label(),
                        file: paths.spec.clone(),
                        place: unavailable.place.clone(),
                        message: unavailable.message.clone(),
                        fix: unavailable.fix.clone(),
                    }]
                }
                Some(Ok(answer)) => match (section, &spec) {
                    (Section::Examples, Some(spec)) => check_examples(&paths.spec, spec, answer),
                    (_, Some(spec)) => check_types(&paths.spec, spec, answer),
                    (_, None) => continue,
                },
                None => continue,
            },
            (Section::ContractTests, Some(spec)) => {
                check_contract_tests(&paths.spec, spec, &paths.tests)
            }
            (Section::Registry, Some(spec)) => check_registry(spec, &paths.tests),
        };
        record(section, found, &mut report);
    }
    report
}

/// Runs every check; an empty list means all is in sync.
pub fn check(paths: &Paths, compiled: &dyn introspect::Compiled) -> Vec<Failure> {
    check_sections(paths, &Section::ALL, compiled).failures
}

/// The question sections 3 and 4 ask the compiled types: every media-type
/// example whose schema is a component, by that component's name.
pub fn types_request(spec: &Value) -> introspect::Request {
    introspect::Request {
        examples: media_examples(spec)
            .into_iter()
            .filter_map(|(_, schema, example)| Some((schema?, example.clone())))
            .collect(),
    }
}

/// Check 1: the spec is OpenAPI 3.0.x and fits what progenitor needs.
pub fn check_spec(paths: &Paths) -> Vec<Failure> {
    let failure = |place: String, message: String| Failure {
        check: "1 spec",
        file: paths.spec.clone(),
        place,
        message,
        fix: FIX_SPEC.into(),
    };
    let spec = match nexhealth_openapi::load_spec_value(&paths.spec) {
        Ok(spec) => spec,
        Err(e) => return vec![failure("(file)".into(), e.to_string())],
    };
    let problems = lint::lint(&spec);
    if !problems.is_empty() {
        return problems
            .into_iter()
            .map(|p| failure(p.pointer, p.message))
            .collect();
    }
    match nexhealth_openapi::generate(&paths.spec) {
        Ok(_) => vec![],
        Err(e) => vec![failure("(generation)".into(), e.to_string())],
    }
}

/// Check 2: the checked-in generated files are what the spec produces now.
pub fn check_drift(paths: &Paths) -> Vec<Failure> {
    let generated = match nexhealth_openapi::generate(&paths.spec) {
        Ok(generated) => generated,
        Err(_) => return vec![], // reported by check 1
    };
    let mut failures = Vec::new();
    for (name, fresh) in generated.files() {
        let path = paths.generated.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != fresh {
            let diff = similar::TextDiff::from_lines(current.as_str(), fresh)
                .unified_diff()
                .context_radius(2)
                .header(
                    &format!("{name} (checked in)"),
                    &format!("{name} (from the spec)"),
                )
                .to_string();
            failures.push(Failure {
                check: "2 drift",
                file: path,
                place: name.to_string(),
                message: format!("differs from what the spec produces now:\n{diff}"),
                fix: FIX_GENERATE.into(),
            });
        }
    }
    failures
}

fn schema_ref(value: &Value) -> Option<&str> {
    value
        .get("$ref")
        .and_then(Value::as_str)?
        .strip_prefix("#/components/schemas/")
}

/// Every media-type example of the spec: `(pointer, schema name, example)`.
type Example<'a> = (String, Option<String>, &'a Value);

fn media_example<'a>(pointer: String, holder: &'a Value, out: &mut Vec<Example<'a>>) {
    if let Some(media) = holder.pointer("/content/application~1json")
        && let Some(example) = media.get("example")
    {
        let schema = media.get("schema").and_then(schema_ref).map(str::to_string);
        out.push((
            format!("{pointer}/content/application~1json/example"),
            schema,
            example,
        ));
    }
}

fn media_examples(spec: &Value) -> Vec<Example<'_>> {
    let mut out = Vec::new();
    if let Some(responses) = spec
        .pointer("/components/responses")
        .and_then(Value::as_object)
    {
        for (name, response) in responses {
            media_example(
                format!("/components/responses/{}", escape(name)),
                response,
                &mut out,
            );
        }
    }
    for (pointer, _, _, op) in lint::operations(spec) {
        if let Some(responses) = op.get("responses").and_then(Value::as_object) {
            for (status, response) in responses {
                if response.get("$ref").is_none() {
                    media_example(format!("{pointer}/responses/{status}"), response, &mut out);
                }
            }
        }
        if let Some(body) = op.get("requestBody")
            && body.get("$ref").is_none()
        {
            media_example(format!("{pointer}/requestBody"), body, &mut out);
        }
    }
    out
}

/// Check 3: every example decodes into its generated type and survives a
/// round trip; `answer` is the compiled types' answer to [`types_request`].
pub fn check_examples(spec_path: &Path, spec: &Value, answer: &introspect::Answer) -> Vec<Failure> {
    let mut roundtrips = answer.roundtrips.iter();
    let mut failures = Vec::new();
    let mut fail = |place: String, message: String| {
        failures.push(Failure {
            check: "3 examples",
            file: spec_path.to_path_buf(),
            place,
            message,
            fix: "make the example match its schema (or fix the schema and run `cargo xtask generate`)".into(),
        })
    };
    for (pointer, schema, example) in media_examples(spec) {
        let Some(schema) = schema else {
            fail(
                pointer,
                "the example's schema is not a `$ref` to a component".into(),
            );
            continue;
        };
        // The request listed exactly the examples that have a schema, in this order.
        let Some(Some(roundtrip)) = roundtrips.next() else {
            fail(pointer, format!("no generated type for schema `{schema}`"));
            continue;
        };
        match roundtrip {
            Err(e) => fail(
                pointer,
                format!("does not decode into `types::{schema}`: {e}"),
            ),
            Ok(back) => {
                if let Some(lost) = compare::lost_in_roundtrip(example, back, String::new()) {
                    fail(
                        pointer,
                        format!("does not survive a round trip through `types::{schema}`: {lost}"),
                    );
                }
            }
        }
    }
    for (pointer, _, _, op) in lint::operations(spec) {
        let params = op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (i, param) in params.enumerate() {
            let Some(param) = deref(spec, param) else {
                continue;
            };
            if let (Some(example), Some(schema)) = (param.get("example"), param.get("schema"))
                && let Some(schema) = deref(spec, schema)
                && !compare::scalar_fits(spec, schema, example)
            {
                fail(
                    format!("{pointer}/parameters/{i}/example"),
                    "the example does not fit the parameter's schema".into(),
                );
            }
        }
    }
    failures
}

/// Check 4: the JSON Schema of each generated type agrees with the spec on
/// field names, required-ness, nullability and enum values.
pub fn check_types(spec_path: &Path, spec: &Value, answer: &introspect::Answer) -> Vec<Failure> {
    let mut failures = Vec::new();
    let Some(schemas) = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return failures;
    };
    for (name, schema) in schemas {
        let place = format!("/components/schemas/{}", escape(name));
        let Some(generated) = answer.types.get(name) else {
            failures.push(Failure {
                check: "4 types",
                file: spec_path.to_path_buf(),
                place,
                message: format!("the compiled crate has no type `types::{name}`"),
                fix: FIX_GENERATE.into(),
            });
            continue;
        };
        for message in compare::schema_differences(spec, schema, generated) {
            failures.push(Failure {
                check: "4 types",
                file: spec_path.to_path_buf(),
                place: place.clone(),
                message: format!("`types::{name}`: {message}"),
                fix: "`check` built the SDK from this spec just now, so the generator renders \
                      the schema otherwise than it reads: change the schema to a form the \
                      generator keeps (or its settings in openapi/src), then `cargo xtask \
                      generate`"
                    .into(),
            });
        }
    }
    failures
}

/// The method name progenitor gives an operation (`getLocationsId` → `get_locations_id`).
pub use nexhealth_openapi::method_name;

fn rust_sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            out.push((path, text));
        }
    }
}

/// Check 5: every operation is called by a test in the contract suite's `tests/` folder.
pub fn check_contract_tests(spec_path: &Path, spec: &Value, tests_dir: &Path) -> Vec<Failure> {
    let mut sources = Vec::new();
    rust_sources(&tests_dir.join("tests"), &mut sources);
    let mut failures = Vec::new();
    // Every call `client.METHOD(` made inside a test function (`#[test]` or
    // `#[tokio::test]`), read from the syntax tree: naming the method in a
    // mock, a comment or a helper outside a test does not count.
    let mut called: Vec<String> = Vec::new();
    for (file, text) in &sources {
        match syn::parse_file(text) {
            Ok(parsed) => test_client_calls(&parsed.items, &mut called),
            Err(e) => failures.push(Failure {
                check: "5 contract tests",
                file: file.clone(),
                place: "(file)".into(),
                message: format!("does not parse as Rust: {e}"),
                fix: "fix the test file".into(),
            }),
        }
    }
    for (pointer, _, _, op) in lint::operations(spec) {
        let Some(id) = op.get("operationId").and_then(Value::as_str) else {
            continue;
        };
        let method = method_name(id);
        if !called.contains(&method) {
            failures.push(Failure {
                check: "5 contract tests",
                file: spec_path.to_path_buf(),
                place: pointer,
                message: format!(
                    "no test function under {} calls `client.{method}()`",
                    tests_dir.join("tests").display()
                ),
                fix: format!(
                    "run `cargo xtask new-operation {id}` for a skeleton, or add a #[tokio::test] \
                     that calls `client.{method}()` against httpmock"
                ),
            });
        }
    }
    failures
}

/// Check 6: every file of the contract suite that lists operations by the
/// generated `OperationId` (an exhaustive `match`, a declared exception: a
/// file that names two variants or more) names every operation of the spec. The build fails on the same files, one crate
/// at a time; this names them all at once, before a build.
pub fn check_registry(spec: &Value, tests_dir: &Path) -> Vec<Failure> {
    let variants: Vec<(String, String)> = lint::operations(spec)
        .into_iter()
        .filter_map(|(_, _, _, op)| op.get("operationId").and_then(Value::as_str))
        .map(|id| (id.to_string(), nexhealth_openapi::variant_name(id)))
        .collect();
    let mut sources = Vec::new();
    rust_sources(tests_dir, &mut sources);
    sources.sort();
    let mut failures = check_prism_walk(&variants, tests_dir);
    for (file, text) in sources {
        let names = |variant: &str| {
            let needle = format!("OperationId::{variant}");
            text.match_indices(&needle).any(|(at, _)| {
                !text[at + needle.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
        };
        let missing: Vec<&str> = variants
            .iter()
            .filter(|(_, variant)| !names(variant))
            .map(|(id, _)| id.as_str())
            .collect();
        // An arm that only says "later" (rustc's own suggestion for a missing
        // arm is `=> todo!()`) compiles, and fails only when the suite runs.
        for (number, line) in text.lines().enumerate() {
            if line.contains("OperationId::")
                && line.contains("=>")
                && ["todo!(", "unimplemented!("]
                    .iter()
                    .any(|m| line.contains(m))
            {
                failures.push(Failure {
                    check: "6 registry",
                    file: file.clone(),
                    place: format!("line {}", number + 1),
                    message: format!("an operation's arm is a placeholder: `{}`", line.trim()),
                    fix: "write the arm (see the other arms of that `match`), or declare the \
                          operation's exception with its reason"
                        .into(),
                });
            }
        }
        // A file that names two operations or more lists them; one that names
        // a single operation (or only `OperationId::ALL`) does not.
        if variants.len() - missing.len() >= 2 && !missing.is_empty() {
            failures.push(Failure {
                check: "6 registry",
                file: file.clone(),
                place: "(file)".into(),
                message: format!(
                    "lists operations by `OperationId` but not {}",
                    missing.join(", ")
                ),
                fix: "teach it the operation (an arm of its `match`, or a declared exception \
                      with the reason), then build the tests"
                    .into(),
            });
        }
    }
    failures
}

/// The Prism walk against its facts: an operation the walk does not declare
/// in `not_walked` (tests/src/prism.rs) must be in NexHealth's facts
/// (tests/data/nexhealth-published-facts.json), or Prism cannot answer it and
/// the suite fails where `check` would have passed.
fn check_prism_walk(variants: &[(String, String)], tests_dir: &Path) -> Vec<Failure> {
    let prism = tests_dir.join("src").join("prism.rs");
    let facts_file = tests_dir
        .join("data")
        .join("nexhealth-published-facts.json");
    let (Ok(text), Ok(facts)) = (
        std::fs::read_to_string(&prism),
        std::fs::read_to_string(&facts_file),
    ) else {
        return vec![];
    };
    let Ok(facts) = serde_json::from_str::<Value>(&facts) else {
        return vec![Failure {
            check: "6 registry",
            file: facts_file,
            place: "(file)".into(),
            message: "is not JSON".into(),
            fix: "run `cargo xtask published-facts`".into(),
        }];
    };
    let declared = not_walked(&text);
    let mut failures = Vec::new();
    for (id, variant) in variants {
        if declared.contains(variant) {
            continue;
        }
        let described = facts_describe(&facts, id);
        if !described {
            failures.push(Failure {
                check: "6 registry",
                file: prism.clone(),
                place: "not_walked".into(),
                message: format!(
                    "the Prism walk would call {id}, which {} does not describe",
                    facts_file.display()
                ),
                fix: "declare it in `not_walked` with the reason, or refresh the facts with \
                      `cargo xtask published-facts` (from NexHealth's whole file) if NexHealth \
                      describes it"
                    .into(),
            });
        }
    }
    failures
}

/// The `OperationId` variants that `not_walked` (in the text of
/// tests/src/prism.rs) declares: its arms that answer something other than
/// `None`.
pub fn not_walked(text: &str) -> Vec<String> {
    use quote::ToTokens;
    let Ok(parsed) = syn::parse_file(text) else {
        return vec![];
    };
    let mut declared: Vec<String> = Vec::new();
    for item in &parsed.items {
        let syn::Item::Fn(f) = item else { continue };
        if f.sig.ident != "not_walked" {
            continue;
        }
        for stmt in &f.block.stmts {
            let syn::Stmt::Expr(syn::Expr::Match(m), _) = stmt else {
                continue;
            };
            for arm in &m.arms {
                if arm.body.to_token_stream().to_string() == "None" {
                    continue;
                }
                let pattern = arm.pat.to_token_stream().to_string();
                declared.extend(
                    pattern
                        .split('|')
                        .filter_map(|p| p.trim().strip_prefix("OperationId ::"))
                        .map(|v| v.trim().to_string()),
                );
            }
        }
    }
    declared
}

/// Whether NexHealth's facts describe the operation `id` (by operationId, or
/// by the method and path our spec gives it).
fn facts_describe(facts: &Value, id: &str) -> bool {
    facts
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .flat_map(|(_, item)| item.as_object().into_iter().flatten())
        .any(|(_, op)| op.get("operationId").and_then(Value::as_str) == Some(id))
}

/// The methods called as `client.METHOD(` (any receiver whose last name is
/// `client`) in the test functions among `items`, nested modules included.
fn test_client_calls(items: &[syn::Item], out: &mut Vec<String>) {
    use quote::ToTokens;
    for item in items {
        match item {
            syn::Item::Fn(f)
                if f.attrs.iter().any(|a| {
                    let path = a.path().to_token_stream().to_string();
                    path == "test" || path.ends_with(":: test")
                }) =>
            {
                let tokens: Vec<String> = f
                    .block
                    .to_token_stream()
                    .into_iter()
                    .flat_map(flatten_tokens)
                    .collect();
                for window in tokens.windows(4) {
                    if window[0] == "client" && window[1] == "." && window[3] == "(" {
                        out.push(window[2].clone());
                    }
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, items)) = &m.content {
                    test_client_calls(items, out);
                }
            }
            _ => {}
        }
    }
}

/// A token tree as a flat list of token texts, groups opened and closed.
fn flatten_tokens(tree: proc_macro2::TokenTree) -> Vec<String> {
    match tree {
        proc_macro2::TokenTree::Group(g) => {
            let (open, close) = match g.delimiter() {
                proc_macro2::Delimiter::Parenthesis => ("(", ")"),
                proc_macro2::Delimiter::Brace => ("{", "}"),
                proc_macro2::Delimiter::Bracket => ("[", "]"),
                proc_macro2::Delimiter::None => ("", ""),
            };
            let mut out = vec![open.to_string()];
            out.extend(g.stream().into_iter().flat_map(flatten_tokens));
            out.push(close.to_string());
            out
        }
        other => vec![other.to_string()],
    }
}
