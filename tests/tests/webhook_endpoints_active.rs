//! Endpoints that switch themselves off (issue #29): NexHealth sets a webhook
//! endpoint `active = false` after 48 hours of failed deliveries, and
//! `Client::ensure_webhook_endpoints_active` turns exactly the selected
//! inactive ones back on with `PATCH {"active": true}`, never an active one;
//! a failed PATCH is reported; the example receiver does it at start and
//! shows the count on `/metrics`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use httpmock::Method::PATCH;
use httpmock::{Mock, MockServer};
use nexhealth_api::API_KEY_VAR;
use nexhealth_api::mock::MockServerExt;
use nexhealth_api::webhooks::manage::EndpointFilter;
use nexhealth_contract_tests::{API_KEY, Capture, Harness};
use serde_json::{Value, json};

const OURS: &str = "https://hooks.example.com/nexhealth?token=path-secret";
const OTHER: &str = "https://old.example.org/hooks";
const OURS_TOO: &str = "https://hooks.example.com/second";

fn endpoint(id: i32, url: &str, active: bool) -> Value {
    json!({"id": id, "target_url": url, "secret_key": format!("whsec-live-{id}"), "active": active,
           "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z"})
}

/// Three endpoints: 1 off and ours, 2 off and someone else's, 3 on and ours.
fn three() -> Vec<Value> {
    vec![
        endpoint(1, OURS, false),
        endpoint(2, OTHER, false),
        endpoint(3, OURS_TOO, true),
    ]
}

/// `GET /webhook_endpoints?active=false` answering `endpoints` as raw JSON
/// (the secrets go out as they are, so a log that held one would show it).
/// It answers the active one too: the helper must check each itself.
fn list(server: &MockServer, endpoints: Vec<Value>) -> Mock<'_> {
    let body = json!({"code": true, "description": null, "error": [], "count": endpoints.len(), "data": endpoints});
    server.get_webhook_endpoints(|when, then| {
        when.active(false);
        then.into_inner()
            .status(200)
            .header("content-type", "application/json")
            .body(body.to_string());
    })
}

/// `PATCH /webhook_endpoints/{id}` with exactly `{"active": true}`, answering
/// `status` and the endpoint as `active_after`.
fn patch(server: &MockServer, id: i32, status: u16, active_after: bool) -> Mock<'_> {
    let url = if id == 2 { OTHER } else { OURS };
    let body = json!({"code": status < 400, "description": null, "error": [], "data": endpoint(id, url, active_after)});
    server.mock(|when, then| {
        when.method(PATCH)
            .path(format!("/webhook_endpoints/{id}"))
            .json_body(json!({"active": true}));
        then.status(status)
            .header("content-type", "application/json")
            .body(body.to_string());
    })
}

/// Everything this binary logs at WARN, each line with its thread's name
/// (libtest names a test's thread after the test). One global subscriber:
/// thread-local ones, coming and going in parallel tests, let tracing cache
/// a call site as unwanted, and a test then saw no line at all.
static LOGS: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();

/// This test's WARN lines, from when it was made on.
struct Warnings {
    from: usize,
    thread: String,
}

impl Warnings {
    fn text(&self) -> String {
        let all = LOGS.get().expect("capturing").text();
        all.get(self.from..)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(&self.thread))
            .map(|line| format!("{line}\n"))
            .collect()
    }
}

fn capture_warnings() -> (Warnings, ()) {
    let logs = LOGS.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn,httpmock=off"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_thread_names(true)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only subscriber of this test binary");
        capture
    });
    let thread = std::thread::current().name().unwrap_or("main").to_string();
    (
        Warnings {
            from: logs.text().len(),
            thread,
        },
        (),
    )
}

fn ids(endpoints: &[nexhealth_api::types::WebhookEndpoint]) -> Vec<i32> {
    endpoints.iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn only_the_inactive_endpoint_the_filter_selects_is_patched() {
    let (logs, _guard) = capture_warnings();
    let h = Harness::start().await;
    let _auth = h.auth();
    let listed = list(&h.server, three());
    let patched = patch(&h.server, 1, 200, true);
    // Any other call (a PATCH of 2 or 3, another body) reaches the fallback.
    let (client, fallback) = h.client();
    let ours = EndpointFilter::target_urls([OURS, OURS_TOO]);
    let report = client.ensure_webhook_endpoints_active(&ours).await.unwrap();
    assert_eq!(ids(&report.inactive), [1]);
    assert_eq!(ids(&report.reactivated), [1]);
    assert!(report.reactivated[0].is_active());
    assert!(report.failed.is_empty() && report.all_reactivated());
    listed.assert_calls(1);
    patched.assert_calls(1);
    fallback.assert_calls(0);

    // One WARN, with the id and the host alone: no path, query or secret.
    let text = logs.text();
    let warned: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warned.len(), 1, "{text}");
    assert!(warned[0].contains("endpoint_id=1"), "{text}");
    assert!(
        warned[0].contains("target_host=hooks.example.com"),
        "{text}"
    );
    for secret in ["whsec-live", "path-secret", "/nexhealth", "old.example.org"] {
        assert!(!text.contains(secret), "{secret} in the logs:\n{text}");
    }
    // Nor does the report's Debug show a secret.
    assert!(!format!("{report:?}").contains("whsec-live"));
}

#[tokio::test]
async fn every_inactive_endpoint_when_the_filter_is_all_and_never_an_active_one() {
    let h = Harness::start().await;
    let _auth = h.auth();
    list(&h.server, three());
    let first = patch(&h.server, 1, 200, true);
    let second = patch(&h.server, 2, 200, true);
    let (client, fallback) = h.client();
    let report = client
        .ensure_webhook_endpoints_active(&EndpointFilter::All)
        .await
        .unwrap();
    assert_eq!(ids(&report.inactive), [1, 2]);
    assert_eq!(ids(&report.reactivated), [1, 2]);
    first.assert_calls(1);
    second.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_failed_patch_is_reported_and_the_others_still_sent() {
    let (logs, _guard) = capture_warnings();
    let h = Harness::start().await;
    let _auth = h.auth();
    list(
        &h.server,
        vec![
            endpoint(1, OURS, false),
            endpoint(4, OURS, false),
            endpoint(5, OURS, false),
        ],
    );
    // 1: NexHealth fails (retried, then given up); 4: deleted meanwhile;
    // 5: answered 200 but still inactive.
    let failing = patch(&h.server, 1, 500, false);
    let gone = patch(&h.server, 4, 404, false);
    let still_off = patch(&h.server, 5, 200, false);
    let (client, fallback) = h.client();
    let report = client
        .ensure_webhook_endpoints_active(&EndpointFilter::target_urls([OURS]))
        .await
        .unwrap();
    assert_eq!(ids(&report.inactive), [1, 4, 5]);
    assert!(report.reactivated.is_empty());
    assert!(!report.all_reactivated());
    let failed: Vec<(i32, &str)> = report
        .failed
        .iter()
        .map(|f| (f.endpoint_id, f.error.kind()))
        .collect();
    assert_eq!(
        failed,
        [(1, "server"), (4, "not_found"), (5, "invalid_response")]
    );
    assert!(
        report.failed[2]
            .error
            .to_string()
            .contains("still inactive")
    );
    assert!(failing.calls() >= 1);
    gone.assert_calls(1);
    still_off.assert_calls(1);
    fallback.assert_calls(0);
    let text = logs.text();
    let warned = text.lines().filter(|l| l.contains("WARN")).count();
    assert_eq!(warned, 3, "{text}");
    assert!(text.contains("error=\"not_found\""), "{text}");
    assert!(!text.contains("whsec-live"), "{text}");
}

#[tokio::test]
async fn nothing_inactive_sends_no_patch() {
    let h = Harness::start().await;
    let _auth = h.auth();
    list(&h.server, vec![endpoint(3, OURS_TOO, true)]);
    let (client, fallback) = h.client();
    let report = client
        .ensure_webhook_endpoints_active(&EndpointFilter::All)
        .await
        .unwrap();
    assert!(report.inactive.is_empty() && report.all_reactivated());
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_list_that_fails_is_an_error_and_nothing_is_patched() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let refused = h.server.get_webhook_endpoints(|_, then| {
        then.bad_request(&nexhealth_api::mock::payloads::error(400));
    });
    let (client, fallback) = h.client();
    let error = client
        .ensure_webhook_endpoints_active(&EndpointFilter::All)
        .await
        .unwrap_err();
    assert!(error.is_bad_request(), "{error}");
    refused.assert_calls(1);
    fallback.assert_calls(0);
}

/// The example receiver, running with a key against the mock: turns endpoint
/// 1 back on at start and shows 1 in `nexhealth_webhook_endpoints_inactive`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_receiver_turns_endpoints_back_on_and_counts_them() {
    let h = Harness::start().await;
    let _auth = h.auth();
    list(&h.server, three());
    let patched = patch(&h.server, 1, 200, true);
    let fallback = nexhealth_api::mock::fallback(&h.server);

    let binary = nexhealth_contract_tests::example_binary("webhook_receiver", &["redis"]);
    // Two distinct free ports (both held until chosen).
    let held: Vec<_> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let [port, metrics_port] = [0, 1].map(|i| held[i].local_addr().unwrap().port());
    drop(held);
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut child = Receiver(
        Command::new(binary)
            .args(["--port", &port.to_string(), "--secret", "s3cret"])
            .args(["--metrics", &metrics, "--target-url", OURS])
            .args(["--target-url", OURS_TOO])
            .env(API_KEY_VAR, API_KEY)
            .env(nexhealth_api::BASE_URL_VAR, h.server.base_url())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // stderr, drained in the background so the receiver never blocks on it.
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = BufReader::new(child.0.stderr.take().unwrap());
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });

    let started = Instant::now();
    let text = loop {
        let text = match nexhealth_api::reqwest::get(format!("http://{metrics}/metrics")).await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("nexhealth_webhook_endpoints_inactive") {
            break text;
        }
        let exited = child.0.try_wait().unwrap();
        assert!(
            exited.is_none() && started.elapsed() < Duration::from_secs(30),
            "no gauge after 30 s (exit: {exited:?}); stderr:\n{}\nmetrics:\n{text}",
            stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let gauge: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("nexhealth_webhook_endpoints_inactive"))
        .collect();
    assert_eq!(gauge.len(), 1, "{text}");
    assert_eq!(gauge[0].rsplit(' ').next(), Some("1"), "{text}");
    // The gauge is recorded after the PATCHes.
    patched.assert_calls(1);
    fallback.assert_calls(0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stderr.lock().unwrap().contains("endpoint check:") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stderr = stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("endpoint check: 1 inactive, 1 turned back on, still off: []"),
        "{stderr}"
    );
    assert!(!stderr.contains("whsec-live"), "{stderr}");
}

/// The example's process, killed when dropped (also when the test fails).
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
