//! The example webhook receiver end to end: real HTTP deliveries over loopback,
//! signed and forged, and the JSON line it prints for each.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use nexhealth_api::webhooks::signature;

const SECRET: &str = "example-receiver-secret";

/// The example's binary: built by `cargo build --examples` (and by
/// `cargo test --workspace`, which builds the examples it tests).
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap();
    let binary = debug.join("examples").join("webhook_receiver");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "nexhealth-api",
                "--example",
                "webhook_receiver",
            ])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "building the webhook_receiver example failed"
        );
    }
    binary
}

#[tokio::test]
async fn the_example_receiver_verifies_real_deliveries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(example())
        .args(["--port", &port.to_string(), "--secret", SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for "listening on …".
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("listening on"), "{line}");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let deliver = |body: &'static str, timestamp: &str, signature: String| {
        http.post(&url)
            .header("content-type", "application/json")
            .header("timestamp", timestamp)
            .header("signature", signature)
            .body(body)
            .send()
    };
    let sync = r#"{"event_name":"sync_status_read_change","resource_type":"SyncStatus","subdomain":"acme","data":{"sync_status":{"read_status":"green","locations":[{"id":7}]}}}"#;
    let ts = "2026-08-14T10:00:00Z";
    let mut read_line = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };

    let ok = deliver(sync, ts, signature::sign(SECRET, ts, sync.as_bytes()))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let line = read_line();
    assert_eq!(line["verified"], true);
    assert_eq!(line["event"], "sync_status_read_change");
    assert_eq!(line["resource_type"], "SyncStatus");
    assert_eq!(line["subdomain"], "acme");

    // An event it does not handle: still 2xx, as NexHealth advises.
    let other = r#"{"event_name":"appointment_insertion.complete","data":{}}"#;
    let ok = deliver(other, ts, signature::sign(SECRET, ts, other.as_bytes()))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(read_line()["verified"], true);

    // Forged: signed with another secret.
    let forged = deliver(
        sync,
        ts,
        signature::sign("not-the-secret", ts, sync.as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    let line = read_line();
    assert_eq!(line["verified"], false);
    assert_eq!(line["reason"], "the signature does not match");
    assert!(!line.to_string().contains(SECRET));

    // Signed, but not JSON.
    let garbage = "not json at all";
    let bad = deliver(garbage, ts, signature::sign(SECRET, ts, garbage.as_bytes()))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(read_line()["reason"], "the body is not JSON");

    // No signature header.
    let missing = http
        .post(&url)
        .header("timestamp", ts)
        .body(sync)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(read_line()["reason"], "the `signature` header is missing");

    let _ = child.kill();
    let _ = child.wait();
}
