//! Stoplight Prism, pinned in `tests/prism/package-lock.json` and installed
//! with `npm ci` on first use, serving NexHealth's published description
//! (`tests/data/nexhealth-published-facts.json`, its prose removed).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nexhealth_api::Client;
use nexhealth_api::mock::Tethered;
use nexhealth_api::operations::OperationId;

/// The contract suite's folder.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The pinned Prism, installed on first use.
fn prism_binary() -> &'static Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = root().join("prism");
        let binary = dir.join("node_modules").join(".bin").join("prism");
        if binary.exists() {
            return Ok(binary);
        }
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&dir)
            .output()
            .map_err(|e| {
                format!("Prism is installed with npm, which could not start ({e}): install Node.js and npm")
            })?;
        if !output.status.success() || !binary.exists() {
            return Err(format!(
                "`npm ci` in {} failed:\n{}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(binary)
    })
}

/// A running `prism mock`, stopped on drop, and killed with this process
/// however it ends ([`Tethered`]); its log is kept for failures.
pub struct Prism {
    _child: Tethered,
    /// The base URL.
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Prism {
    /// Starts `prism mock` on a free loopback port; `dynamic` answers with
    /// values generated from the schemas instead of the examples.
    pub fn start(dynamic: bool) -> Self {
        let binary = prism_binary().as_ref().unwrap_or_else(|e| panic!("{e}"));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut command = Tethered::command(binary);
        command
            .arg("mock")
            .arg(root().join("data").join("nexhealth-published-facts.json"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        if dynamic {
            command.arg("--dynamic");
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Tethered::spawn(&mut command).expect("prism starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.child().stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.child().stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            let ready = ready_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("Prism is listening") {
                        let _ = ready.send(());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let started = Instant::now();
        // The readers' senders only: `recv_timeout` fails at once when both
        // streams end (Prism exited).
        drop(ready_tx);
        if ready_rx.recv_timeout(Duration::from_secs(90)).is_err() {
            child.stop();
            panic!(
                "Prism did not start within {:?}:\n{}",
                started.elapsed(),
                log.lock().unwrap().join("\n")
            );
        }
        Self {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Prism's request-validation complaints so far (its `✖` lines).
    pub fn violations(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains('✖') || l.contains("[VALIDATOR]") && l.contains("error"))
            .cloned()
            .collect()
    }

    /// `(method, path)` of every request Prism received.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.split("[HTTP SERVER] ").nth(1))
            .filter_map(|rest| {
                let mut words = rest.split_whitespace();
                Some((words.next()?.to_uppercase(), words.next()?.to_string()))
            })
            .collect()
    }

    /// Fails, naming the operation and the facts file, when NexHealth's
    /// served description lacks `id`: Prism could not answer it anyway.
    pub fn assert_described(&self, id: OperationId) {
        let facts_file = root().join("data").join("nexhealth-published-facts.json");
        let facts: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&facts_file).expect("the facts file"))
                .expect("JSON");
        let op = id.operation();
        assert!(
            facts["paths"]
                .get(op.path)
                .and_then(|item| item.get(op.method.to_lowercase()))
                .is_some(),
            "{} {} ({}) is not in {}: refresh it with `cargo xtask published-facts PATH` from a \
             NexHealth file that describes it (the whole one: \
             ../shared/reference/nexhealth-openapi-full.json), or declare the operation in \
             `not_walked` (tests/src/prism.rs) with the reason",
            op.method,
            op.path,
            id.id(),
            facts_file.display()
        );
    }

    /// Asserts that Prism received every operation the suite walks, and that
    /// NexHealth's served description has each of them. Every operation of the
    /// registry is either walked or declared in [`not_walked`] with a reason:
    /// none is skipped silently.
    pub fn assert_saw_every_operation(&self) {
        let requests = self.requests();
        let facts_file = root().join("data").join("nexhealth-published-facts.json");
        let facts: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&facts_file).expect("the facts file"))
                .expect("JSON");
        let described = |method: &str, path: &str| {
            facts["paths"]
                .get(path)
                .and_then(|item| item.get(method.to_lowercase()))
                .is_some()
        };
        for id in OperationId::ALL {
            if not_walked(id).is_some() {
                continue;
            }
            let op = id.operation();
            assert!(
                described(op.method, op.path),
                "{} {} ({}) is not in {}: run `cargo xtask published-facts` on NexHealth's \
                 current file, or declare the operation in `not_walked` (tests/src/prism.rs) \
                 with the reason",
                op.method,
                op.path,
                id.id(),
                facts_file.display()
            );
            let template: Vec<&str> = op.path.split('/').collect();
            let seen = requests.iter().any(|(method, path)| {
                let segments: Vec<&str> = path.split('/').collect();
                method == op.method
                    && segments.len() == template.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            });
            assert!(
                seen,
                "Prism never received {} {} ({}): add it to the walk in tests/tests/prism.rs: {requests:?}",
                op.method,
                op.path,
                id.id()
            );
        }
    }

    /// The last lines of Prism's log.
    pub fn tail(&self) -> String {
        let log = self.log.lock().unwrap();
        let start = log.len().saturating_sub(15);
        log[start..].join("\n")
    }

    /// A client against this Prism, without retries.
    pub fn client(&self) -> Client {
        Client::builder("prism-contract-key")
            .base_url(&self.url)
            .retry(nexhealth_api::RetryPolicy::default().with_max_attempts(1))
            .build()
            .unwrap()
    }
}

/// The operations the Prism suite does not walk, each with the reason; `None`
/// for every other. Exhaustive: a new operation of the spec does not compile
/// here until someone decides.
pub fn not_walked(operation: OperationId) -> Option<&'static str> {
    const WEBHOOKS: &str = "NexHealth describes the webhook endpoints in a separate file \
        (nexhealth-webhooks-openapi-subset.json) that the facts copy served to Prism does not \
        include; their contract tests run against httpmock (tests/tests/webhooks.rs)";
    match operation {
        OperationId::PostAuthenticates
        | OperationId::GetInstitutions
        | OperationId::GetInstitutionsId
        | OperationId::GetLocations
        | OperationId::GetLocationsId
        | OperationId::GetSyncStatus
        | OperationId::GetOnboardings
        | OperationId::PostOnboardings
        | OperationId::GetOnboardingsHashid => None,
        OperationId::GetWebhookEndpoints
        | OperationId::PostWebhookEndpoints
        | OperationId::PatchWebhookEndpointsId
        | OperationId::DeleteWebhookEndpointsId
        | OperationId::GetWebhookEndpointsIdWebhookSubscriptions
        | OperationId::PostWebhookEndpointsIdWebhookSubscriptions
        | OperationId::PatchWebhookEndpointsIdWebhookSubscriptionsSubscriptionId
        | OperationId::DeleteWebhookEndpointsIdWebhookSubscriptionsSubscriptionId => Some(WEBHOOKS),
    }
}
