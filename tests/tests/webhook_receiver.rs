//! The example webhook receiver end to end: real HTTP deliveries over
//! loopback from the delivery simulator, signed and forged, three replicas
//! sharing a real `redis-server`, and the JSON line each prints per delivery.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use nexhealth_api::mock::{DeliverySimulator, RedisServer};
use nexhealth_api::webhooks::signature;
use serde_json::{Value, json};

const SECRET: &str = "example-receiver-secret";

/// The example's binary, built now: a test never runs a stale one.
fn example() -> std::path::PathBuf {
    nexhealth_contract_tests::example_binary("webhook_receiver", &["redis"])
}

/// A running receiver, stopped when dropped (also when a test fails).
struct Replica {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl Replica {
    fn start(binary: &std::path::Path, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(binary)
            // Never a real account from the environment: the example checks
            // (and re-enables) the key's webhook endpoints when it has one.
            .env_remove("NEXHEALTH_API_KEY")
            .env_remove("NEXHEALTH_BASE_URL")
            .args(["--port", &port.to_string(), "--secret", SECRET])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = String::new();
        // "listening on …", after the metrics endpoint's line when asked for one.
        for _ in 0..3 {
            let mut line = String::new();
            stderr.read_line(&mut line).unwrap();
            lines.push_str(&line);
            if line.contains("listening on") {
                break;
            }
        }
        assert!(lines.contains("listening on"), "{lines}");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdout,
            url: format!("http://127.0.0.1:{port}/hooks"),
        }
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sync_event(n: usize) -> Value {
    json!({"event_name": "sync_status_read_change", "resource_type": "SyncStatus", "subdomain": "acme",
           "data": {"sync_status": {"read_status": "green", "read_status_at": format!("2026-11-30T10:{:02}:00Z", n % 60),
                                    "locations": [{"id": 7}], "n": n}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_receiver_handles_verifies_and_refuses() {
    let mut replica = Replica::start(&example(), &["--fail-first", "1"]);
    let simulator = DeliverySimulator::new(SECRET);

    // The handler fails the first time: 500, and NexHealth's retry handles it, once.
    let attempts = simulator.deliver(&replica.url, &sync_event(1)).await;
    let statuses: Vec<_> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(200)]);
    let failed = replica.line();
    assert_eq!(
        (failed["verified"].clone(), failed["outcome"].clone()),
        (json!(true), json!("handler_failed"))
    );
    let handled = replica.line();
    assert_eq!(handled["handled"], true);
    assert_eq!(handled["event"], "sync_status_read_change");
    // A later retry of it is a duplicate: 200, not handled again.
    assert_eq!(
        simulator.send_once(&replica.url, &sync_event(1)).await,
        Some(200)
    );
    let duplicate = replica.line();
    assert_eq!(
        (duplicate["duplicate"].clone(), duplicate["handled"].clone()),
        (json!(true), json!(false))
    );

    // An event it does not handle: still 2xx, as NexHealth advises.
    let other = json!({"event_name": "appointment_insertion.complete", "data": {}});
    assert_eq!(simulator.send_once(&replica.url, &other).await, Some(200));
    assert_eq!(replica.line()["verified"], true);

    // Forged: signed with another secret.
    let forger = DeliverySimulator::new("not-the-secret");
    assert_eq!(
        forger.send_once(&replica.url, &sync_event(2)).await,
        Some(401)
    );
    let line = replica.line();
    assert_eq!(line["verified"], false);
    assert_eq!(line["reason"], "the signature does not match");
    assert!(!line.to_string().contains(SECRET));

    // Signed, but not JSON.
    assert_eq!(
        simulator
            .send_body(&replica.url, b"not json at all".to_vec())
            .await,
        Some(400)
    );
    assert_eq!(replica.line()["reason"], "the body is not JSON");

    // Too large: refused on Content-Length, before reading. The head alone
    // is sent (a client still writing 2 MiB may see its connection reset
    // by the early answer, which made this flaky): the 413 must come anyway.
    let address = replica
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/hooks")
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"POST /hooks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2097152\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_exact(&mut head),
    )
    .await
    .expect("an answer before the body")
    .unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    assert_eq!(replica.line()["status"], 413);

    // No signature header.
    let http = nexhealth_api::reqwest::Client::new();
    let missing = http
        .post(&replica.url)
        .header("timestamp", chrono::Utc::now().to_rfc3339())
        .body(sync_event(3).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        replica.line()["reason"],
        "the `signature` header is missing"
    );
}

/// Three replicas share Redis. 15 logical events, each delivered 1 to 4
/// times to replicas in turn, each attempt signed anew with NexHealth's clock
/// up to 4 minutes off, `delivery_errors` grown and the JSON re-serialized;
/// plus a byte-for-byte replay and forgeries. Exactly 15 handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_sharing_redis_handle_each_event_once() {
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let binary = example();
    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::start(&binary, &["--redis", &redis.url()]))
        .collect();
    let mut lines = Vec::new();
    let mut turn = 0usize;
    for n in 0..15 {
        let event = sync_event(100 + n);
        let repeats = 1 + (n * 7 + 3) % 4;
        for attempt in 0..repeats {
            let skew = chrono::Duration::seconds(((n * 37 + attempt * 11) % 481) as i64 - 240);
            let simulator = DeliverySimulator::new(SECRET).clock_skew(skew);
            let mut delivery = event.clone();
            delivery["delivery_errors"] = json!(
                (0..attempt)
                    .map(|i| json!({"attempt": i + 1}))
                    .collect::<Vec<_>>()
            );
            // Re-serialized: keys in another order, with whitespace, on odd attempts.
            let body = if attempt % 2 == 1 {
                let Value::Object(map) = &delivery else {
                    unreachable!()
                };
                let members: Vec<String> = map
                    .iter()
                    .rev()
                    .map(|(k, v)| format!(" {} : {} ", serde_json::to_string(k).unwrap(), v))
                    .collect();
                format!("{{{}}}", members.join(",")).into_bytes()
            } else {
                serde_json::to_vec(&delivery).unwrap()
            };
            let replica = &mut replicas[turn % 3];
            turn += 1;
            let status = simulator.send_body(&replica.url, body).await;
            assert_eq!(status, Some(200), "event {n}, attempt {attempt}");
            lines.push(replica.line());
        }
    }
    // A byte-for-byte replay of one delivery, to another replica: 200, a duplicate.
    let simulator = DeliverySimulator::new(SECRET);
    let body = serde_json::to_vec(&sync_event(100)).unwrap();
    let timestamp = chrono::Utc::now().to_rfc3339();
    let signature = signature::sign(SECRET, &timestamp, &body);
    let http = nexhealth_api::reqwest::Client::new();
    for replica in replicas.iter_mut().take(2) {
        let answer = http
            .post(&replica.url)
            .header("timestamp", &timestamp)
            .header("signature", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        lines.push(replica.line());
    }
    // Forgeries: another secret, and a changed byte.
    let forger = DeliverySimulator::new("forger");
    assert_eq!(
        forger.send_once(&replicas[2].url, &sync_event(999)).await,
        Some(401)
    );
    lines.push(replicas[2].line());
    let mut changed = body.clone();
    changed[10] ^= 1;
    let answer = http
        .post(&replicas[0].url)
        .header("timestamp", &timestamp)
        .header("signature", &signature)
        .body(changed)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    lines.push(replicas[0].line());
    let handled = lines.iter().filter(|l| l["handled"] == true).count();
    let duplicates = lines.iter().filter(|l| l["duplicate"] == true).count();
    let refused = lines.iter().filter(|l| l["verified"] == false).count();
    assert_eq!(handled, 15, "{lines:#?}");
    assert_eq!(refused, 2);
    assert_eq!(handled + duplicates + refused, lines.len());
    drop(simulator);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_counts_its_deliveries_by_outcome_for_prometheus() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let mut replica = Replica::start(&example(), &["--metrics", &metrics]);
    let handled = DeliverySimulator::new(SECRET)
        .deliver(&replica.url, &sync_event(1))
        .await;
    assert_eq!(handled.last().and_then(|a| a.status), Some(200));
    assert_eq!(replica.line()["outcome"], "handled");
    let forged = DeliverySimulator::new("not-the-secret")
        .deliver(&replica.url, &sync_event(2))
        .await;
    assert_eq!(forged.last().and_then(|a| a.status), Some(401));
    let text = nexhealth_api::reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |outcome: &str| -> f64 {
        text.lines()
            .find(|l| {
                l.starts_with("nexhealth_webhook_deliveries_total{")
                    && l.contains(&format!("nexhealth_outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {outcome} in:\n{text}"))
    };
    assert_eq!(value("handled"), 1.0);
    assert_eq!(value("bad_signature"), forged.len() as f64);
}

/// Three example receivers on one Redis handle 12 events; Redis is killed and
/// restarted empty; NexHealth's retries of all 12, signed anew and sent to
/// other replicas, are 12 duplicates a few seconds after the restart and
/// again later: each replica handed back what it handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_loses_no_handled_event() {
    let mut redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let binary = example();
    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::start(&binary, &["--redis", &redis.url()]))
        .collect();
    let simulator = DeliverySimulator::new(SECRET);
    for n in 0..12 {
        let replica = &mut replicas[n % 3];
        assert_eq!(
            simulator
                .send_once(&replica.url, &sync_event(200 + n))
                .await,
            Some(200)
        );
        assert_eq!(replica.line()["handled"], true, "event {n}");
    }
    // Every replica has looked at Redis's epoch (each looks every 500 ms).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    redis.stop();
    redis.restart().unwrap();
    for round in 1..=2 {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let mut outcomes = Vec::new();
        for n in 0..12 {
            let replica = &mut replicas[(n + round) % 3];
            let status = simulator
                .send_once(&replica.url, &sync_event(200 + n))
                .await;
            let line = replica.line();
            outcomes.push((status, line["outcome"].clone(), line["handled"].clone()));
        }
        assert!(
            outcomes
                .iter()
                .all(|o| *o == (Some(200), json!("duplicate"), json!(false))),
            "round {round}: {outcomes:?}"
        );
    }
}
