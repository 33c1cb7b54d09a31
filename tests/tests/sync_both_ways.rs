//! Sync webhooks fire both ways (NexHealth's reference, October 2026):
//! `sync_status_*_change.red` when a side goes down, `.green` when it comes
//! back. Against httpmock serving `/sync_status` in NexHealth's shape, with
//! the deliveries of `mock::payloads` received through `Receiver`: a `.red`
//! repeating the held time stops writes, a `.red` without a status in its data
//! makes the sync unhealthy, a newer `.green` brings it back, an older `.red`
//! after a newer `.green` changes nothing; the same across two replicas sharing
//! a real `redis-server`; per-sync thresholds, each sync judged by its own to
//! the second; and every sample delivery reaches its typed event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nexhealth_api::Client;
use nexhealth_api::fleet::{FleetShare, SharedSyncHealth};
use nexhealth_api::mock::{DeliverySimulator, RedisServer, payloads};
use nexhealth_api::reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use nexhealth_api::sync_health::{
    State, SyncReport, SyncSide, ThresholdPolicy, Thresholds, WriteReadiness,
};
use nexhealth_api::webhooks::{Event, MemoryStore, Outcome, Receiver, SyncStatusEvent, signature};
use nexhealth_contract_tests::{API_KEY, Harness};
use serde_json::{Value, json};

const SECRET: &str = "sync-both-ways-secret";

/// One test with a redis-server at a time (2 cores).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `/sync_status` for `example-subdomain` as NexHealth answers it: the
/// payloads' two syncs, "Front desk server" (location 7) green both ways,
/// last read 10 and last check-in 2 minutes before `now`; "Uptown cloud"
/// (location 8) reads green, writes red.
fn sync_status(h: &Harness, now: DateTime<Utc>) -> httpmock::Mock<'_> {
    let minutes_ago = |m: i64| json!((now - chrono::Duration::minutes(m)).to_rfc3339());
    let mut body = serde_json::to_value(payloads::sync_status_at(now)).unwrap();
    body["data"][0]["read_status_at"] = minutes_ago(10);
    body["data"][0]["write_status_at"] = minutes_ago(2);
    h.server.mock(|when, then| {
        when.method(httpmock::Method::GET)
            .path("/sync_status")
            .query_param("subdomain", "example-subdomain");
        then.status(200).json_body(body);
    })
}

/// `delivery` signed now, received as NexHealth's deliveries are.
fn receive(delivery: &Value) -> Event {
    let body = serde_json::to_vec(delivery).unwrap();
    Receiver::new(SECRET)
        .unwrap()
        .receive(&signed(&body), &body)
        .unwrap_or_else(|r| panic!("{delivery}: {r:?}"))
}

fn signed(body: &[u8]) -> HeaderMap {
    let timestamp = Utc::now().to_rfc3339();
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static(signature::TIMESTAMP_HEADER),
        HeaderValue::from_str(&timestamp).unwrap(),
    );
    headers.insert(
        HeaderName::from_static(signature::SIGNATURE_HEADER),
        HeaderValue::from_str(&signature::sign(SECRET, &timestamp, body)).unwrap(),
    );
    headers
}

/// A sync delivery from the payloads, received, as its typed event.
fn delivered(delivery: Value) -> SyncStatusEvent {
    match receive(&delivery) {
        Event::SyncStatusReadChange(e) | Event::SyncStatusWriteChange(e) => e,
        other => panic!("{other:?}"),
    }
}

fn front_desk(report: &SyncReport) -> &nexhealth_api::sync_health::SyncHealth {
    report.for_location(7).next().expect("location 7's sync")
}

/// The four deliveries of the brief, for location 7, relative to what the
/// report holds: `.red` writes at the held check-in time, `.red` reads
/// without a status at the held read time, `.green` writes a minute newer,
/// and the `.red` writes again (now older than that `.green`).
struct Four {
    red_write: Value,
    red_read_without_status: Value,
    newer_green_write: Value,
    newer_green_read: Value,
}

fn four(held: &SyncReport) -> Four {
    let sync = front_desk(held);
    let (read_at, write_at) = (sync.read.last.unwrap(), sync.write.last.unwrap());
    let mut red_read = payloads::sync_status_delivery(SyncSide::Read, "red", 7, read_at);
    let data = red_read["data"]["sync_status"].as_object_mut().unwrap();
    data.remove("read_status").expect("the sample says it");
    assert!(data.get("write_status_at").is_none(), "the read side only");
    let newer = write_at + chrono::Duration::minutes(1);
    Four {
        red_write: payloads::sync_status_delivery(SyncSide::Write, "red", 7, write_at),
        red_read_without_status: red_read,
        newer_green_write: payloads::sync_status_delivery(SyncSide::Write, "green", 7, newer),
        newer_green_read: payloads::sync_status_delivery(SyncSide::Read, "green", 7, newer),
    }
}

#[tokio::test]
async fn a_red_write_event_with_the_held_check_in_time_stops_writes() {
    let h = Harness::start().await;
    h.auth();
    let mock = sync_status(&h, Utc::now());
    let (client, fallback) = h.client();
    let mut report = client.sync_health(Some("example-subdomain")).await.unwrap();
    assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
    let four = four(&report);
    assert_eq!(
        four.red_write["data"]["sync_status"]["write_status_at"],
        json!(front_desk(&report).write.last.unwrap()),
        "the same write_status_at as held"
    );
    let down = delivered(four.red_write);
    assert_eq!(down.status_of(SyncSide::Write), Some("red"));
    assert!(report.apply_event(&down, Utc::now()));
    assert_eq!(report.write_readiness(7), WriteReadiness::Down);
    assert!(!report.write_readiness(7).can_write());
    assert!(front_desk(&report).read.is_healthy(), "reads untouched");
    assert!(!report.apply_event(&down, Utc::now()), "a duplicate");
    mock.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_red_read_event_without_a_status_in_its_data_makes_the_sync_unhealthy() {
    let h = Harness::start().await;
    h.auth();
    sync_status(&h, Utc::now());
    let (client, fallback) = h.client();
    let mut report = client.sync_health(Some("example-subdomain")).await.unwrap();
    assert!(front_desk(&report).is_healthy());
    let four = four(&report);
    assert!(
        four.red_read_without_status["data"]["sync_status"]
            .get("read_status")
            .is_none()
    );
    let down = delivered(four.red_read_without_status);
    assert_eq!(down.sync.read_status, None, "the data says nothing");
    assert!(report.apply_event(&down, Utc::now()));
    assert_eq!(front_desk(&report).read.state, State::Red);
    assert!(!front_desk(&report).is_healthy());
    assert_eq!(report.unhealthy().count(), 2, "Front desk and Uptown");
    // Writes still go through: only reads are down.
    assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_newer_green_recovers_and_an_older_red_after_it_changes_nothing() {
    let h = Harness::start().await;
    h.auth();
    sync_status(&h, Utc::now());
    let (client, fallback) = h.client();
    let held = client.sync_health(Some("example-subdomain")).await.unwrap();
    let four = four(&held);
    let mut report = held.clone();
    assert!(report.apply_event(&delivered(four.red_write.clone()), Utc::now()));
    assert_eq!(report.write_readiness(7), WriteReadiness::Down);
    // Recovered.
    let green = delivered(four.newer_green_write.clone());
    assert!(report.apply_event(&green, Utc::now()));
    assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
    // The older red again, after the green: nothing.
    let recovered = report.clone();
    assert!(!report.apply_event(&delivered(four.red_write.clone()), Utc::now()));
    assert_eq!(report, recovered);
    // The other order, from what `/sync_status` said: the same end.
    let mut other = held;
    assert!(other.apply_event(&green, Utc::now()));
    assert!(!other.apply_event(&delivered(four.red_write), Utc::now()));
    assert_eq!(
        front_desk(&other).sync,
        front_desk(&report).sync,
        "order does not matter"
    );
    fallback.assert_calls(0);
}

/// When the data and the suffix disagree, the suffix wins: it is what
/// NexHealth says happened to the side the event names.
#[tokio::test]
async fn the_suffix_wins_over_the_data_for_the_side_it_names() {
    let h = Harness::start().await;
    h.auth();
    sync_status(&h, Utc::now());
    let (client, fallback) = h.client();
    let mut report = client.sync_health(Some("example-subdomain")).await.unwrap();
    let at = front_desk(&report).write.last.unwrap() + chrono::Duration::seconds(30);
    let mut delivery = payloads::sync_status_delivery(SyncSide::Write, "red", 7, at);
    delivery["data"]["sync_status"]["write_status"] = json!("green");
    assert!(report.apply_event(&delivered(delivery), Utc::now()));
    assert_eq!(report.write_readiness(7), WriteReadiness::Down);
    // Uptown's writes (red in `/sync_status`) come back with a newer time.
    assert_eq!(report.write_readiness(8), WriteReadiness::Down);
    let back = payloads::sync_status_delivery(SyncSide::Write, "green", 8, Utc::now());
    assert!(report.apply_event(&delivered(back), Utc::now()));
    assert_eq!(report.write_readiness(8), WriteReadiness::Ready);
    fallback.assert_calls(0);
}

fn replica(base_url: &str, share: &FleetShare) -> SharedSyncHealth {
    let client = Client::builder(API_KEY)
        .base_url(base_url)
        .retry(nexhealth_api::RetryPolicy::none())
        .build()
        .unwrap();
    SharedSyncHealth::new(&client, share)
        .unwrap()
        .for_subdomain("example-subdomain")
        .refresh(Duration::from_secs(3_600))
}

/// What each replica's report says of location 7's sync (without the
/// assessment, which ages).
async fn front_desk_on(replica: &SharedSyncHealth) -> nexhealth_api::sync_health::SyncHealth {
    front_desk(&replica.report().await.unwrap()).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_four_across_two_replicas_on_redis() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let h = Harness::start().await;
    h.auth();
    let mock = sync_status(&h, Utc::now());
    let share = FleetShare::new(redis.url()).prefix("both-ways");
    let (a, b) = (
        replica(&h.server.base_url(), &share),
        replica(&h.server.base_url(), &share),
    );
    let held = a.report().await.unwrap();
    assert_eq!(
        b.report().await.unwrap().write_readiness(7),
        WriteReadiness::Ready
    );
    let four = four(&held);

    // A `.red` write at the held check-in time, handled by A: B cannot write.
    assert!(a.apply_event(&delivered(four.red_write.clone())).await);
    for replica in [&a, &b] {
        let report = replica.report().await.unwrap();
        assert_eq!(report.write_readiness(7), WriteReadiness::Down);
    }
    // A `.red` read without a status, handled by B: A sees the sync unhealthy.
    assert!(
        b.apply_event(&delivered(four.red_read_without_status))
            .await
    );
    for replica in [&a, &b] {
        let sync = front_desk_on(replica).await;
        assert_eq!(sync.read.state, State::Red);
        assert!(!sync.is_healthy());
    }
    // Newer `.green`s, one on each replica: recovered everywhere.
    assert!(a.apply_event(&delivered(four.newer_green_write)).await);
    assert!(b.apply_event(&delivered(four.newer_green_read)).await);
    for replica in [&a, &b] {
        let report = replica.report().await.unwrap();
        assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
        assert!(front_desk(&report).is_healthy(), "{report:?}");
    }
    // The older `.red` again, after the `.green`s, on B: no change anywhere.
    let before = front_desk_on(&a).await.sync;
    assert!(b.apply_event(&delivered(four.red_write)).await);
    for replica in [&a, &b] {
        let sync = front_desk_on(replica).await;
        assert_eq!(sync.sync, before);
        assert!(sync.is_healthy());
    }
    // A replica started now reads the fleet's events in Redis's order, and
    // ends where the others are.
    let c = replica(&h.server.base_url(), &share);
    assert_eq!(front_desk_on(&c).await.sync, before);
    // One `/sync_status` per replica: the rest came through Redis.
    mock.assert_calls(3);
}

/// Two syncs with different limits, each judged by its own: at its limit a
/// side is fresh, a second past it stale. `/sync_status` dated from a fixed
/// time; assessed at that time by the policy.
#[tokio::test]
async fn per_sync_thresholds_judge_each_sync_by_its_own_to_the_second() {
    let h = Harness::start().await;
    h.auth();
    let now = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
        .unwrap()
        .to_utc();
    let ago = |secs: i64| json!((now - chrono::Duration::seconds(secs)).to_rfc3339());
    let minute = 60;
    let mut body = serde_json::to_value(payloads::sync_status_at(now)).unwrap();
    // Front desk (60 min reads, 10 min writes): reads at the limit, writes a
    // second past it.
    body["data"][0]["read_status_at"] = ago(60 * minute);
    body["data"][0]["write_status_at"] = ago(10 * minute + 1);
    // Uptown (300 min reads, 60 min writes, its writes green here): reads a
    // second past the limit, writes at it.
    body["data"][1]["write_status"] = json!("green");
    body["data"][1]["read_status_at"] = ago(300 * minute + 1);
    body["data"][1]["write_status_at"] = ago(60 * minute);
    h.server.mock(|when, then| {
        when.method(httpmock::Method::GET).path("/sync_status");
        then.status(200).json_body(body);
    });
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let front = Thresholds {
        read: minutes(60),
        write: minutes(10),
    };
    let uptown = Thresholds {
        read: minutes(300),
        write: minutes(60),
    };
    let policy = ThresholdPolicy::default()
        .sync_named_in(1, "Front desk server", front)
        .sync_serving(8, uptown);
    let (client, fallback) = h.client();
    let fetched = client.sync_health_with(None, &policy).await.unwrap();
    assert_eq!(front_desk(&fetched).thresholds(), front);
    assert_eq!(fetched.for_location(8).next().unwrap().thresholds(), uptown);

    let stale = |report: &SyncReport, location: i32| {
        let sync = report.for_location(location).next().unwrap();
        (sync.read.stale, sync.write.stale)
    };
    let at_limit = fetched.clone().reassessed(now, &policy);
    assert_eq!(stale(&at_limit, 7), (false, true));
    assert_eq!(stale(&at_limit, 8), (true, false));
    assert_eq!(at_limit.write_readiness(7), WriteReadiness::Stale);
    assert_eq!(at_limit.write_readiness(8), WriteReadiness::Ready);
    let second_later = fetched
        .clone()
        .reassessed(now + chrono::Duration::seconds(1), &policy);
    assert_eq!(stale(&second_later, 7), (true, true));
    assert_eq!(stale(&second_later, 8), (true, true));
    assert_eq!(second_later.write_readiness(8), WriteReadiness::Stale);
    // NexHealth's limits for both would say otherwise: Front desk's writes
    // fresh (10 min < 25), Uptown's stale (60 min > 25).
    let flat = fetched.reassessed(now, Thresholds::default());
    assert_eq!(stale(&flat, 7), (false, false));
    assert_eq!(stale(&flat, 8), (true, true));
    // The JSON says which limit each side was judged by.
    let json = serde_json::to_value(&at_limit).unwrap();
    assert_eq!(json["syncs"][0]["write"]["limit_secs"], json!(600));
    assert_eq!(json["syncs"][1]["read"]["limit_secs"], json!(18_000));
    fallback.assert_calls(0);
}

/// `SharedSyncHealth` carries a policy: every replica judges each sync by
/// its own limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_sync_health_carries_per_sync_thresholds() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let h = Harness::start().await;
    h.auth();
    sync_status(&h, Utc::now());
    let share = FleetShare::new(redis.url()).prefix("policy");
    let strict = Thresholds {
        read: Duration::from_secs(5 * 60),
        write: Duration::from_secs(60),
    };
    let policy = ThresholdPolicy::default().sync_serving(7, strict);
    let plain = replica(&h.server.base_url(), &share);
    let judged = replica(&h.server.base_url(), &share).thresholds(policy);
    let flat = replica(&h.server.base_url(), &share).thresholds(Thresholds::default());
    // Location 7: last read 10 minutes ago, last check-in 2.
    assert_eq!(
        plain.report().await.unwrap().write_readiness(7),
        WriteReadiness::Ready
    );
    assert_eq!(
        flat.report().await.unwrap().write_readiness(7),
        WriteReadiness::Ready
    );
    let report = judged.report().await.unwrap();
    assert_eq!(front_desk(&report).thresholds(), strict);
    assert!(front_desk(&report).read.stale);
    assert_eq!(report.write_readiness(7), WriteReadiness::Stale);
    assert_eq!(
        report.for_location(8).next().unwrap().thresholds(),
        Thresholds::default()
    );
    // An event another replica handled is judged by this replica's policy.
    let back = payloads::sync_status_delivery(SyncSide::Write, "green", 7, Utc::now());
    assert!(plain.apply_event(&delivered(back)).await);
    assert_eq!(
        judged.report().await.unwrap().write_readiness(7),
        WriteReadiness::Ready
    );
}

/// The variant a sample reached, by name; the match is exhaustive, so a new
/// variant does not compile until it has a sample here.
fn variant(event: &Event) -> String {
    match event {
        Event::SyncStatusReadChange(e) => format!("read.{}", e.outcome_status().unwrap()),
        Event::SyncStatusWriteChange(e) => format!("write.{}", e.outcome_status().unwrap()),
        Event::OnboardingCreated(e) => format!("created {}", e.onboarding_id.as_deref().unwrap()),
        Event::OnboardingUpdated(e) => format!("updated {}", e.onboarding_id.as_deref().unwrap()),
        Event::OnboardingAvailabilityReady(e) => {
            format!("ready {}", e.onboarding_id.as_deref().unwrap())
        }
        Event::Unknown(envelope) => panic!("unknown: {}", envelope.event_name),
    }
}

const EVERY_VARIANT: [&str; 7] = [
    "read.red",
    "read.green",
    "write.red",
    "write.green",
    "created k3m9q2lzp0aa",
    "updated y2wxl82zldm4",
    "ready y2wxl82zldm4",
];

#[tokio::test]
async fn every_sample_delivery_is_handled_as_its_typed_event() {
    let receiver = Receiver::new(SECRET).unwrap();
    let store = MemoryStore::default();
    let last = Utc::now() - chrono::Duration::minutes(3);
    let mut seen = Vec::new();
    for delivery in payloads::webhook_deliveries(last) {
        let body = serde_json::to_vec(&delivery).unwrap();
        let mut reached = None;
        let outcome = receiver
            .handle(&store, &signed(&body), &body, |event: Event| {
                reached = Some(variant(&event));
                async { Ok::<(), std::io::Error>(()) }
            })
            .await;
        assert!(
            matches!(outcome, Outcome::Handled(_)),
            "{delivery}: {outcome:?}"
        );
        let reached = reached.expect("the handler ran");
        // The envelope NexHealth sends.
        for key in [
            "resource_type",
            "event_name",
            "event_time",
            "data",
            "delivery_errors",
        ] {
            assert!(delivery.get(key).is_some(), "{key}: {delivery}");
        }
        seen.push(reached);
    }
    assert_eq!(seen, EVERY_VARIANT);
    // The sync samples carry a status and a time for each side, at `last`.
    for delivery in &payloads::webhook_deliveries(last)[..4] {
        let (Event::SyncStatusReadChange(e) | Event::SyncStatusWriteChange(e)) = receive(delivery)
        else {
            panic!("{delivery}")
        };
        let side = e.side().unwrap();
        assert_eq!(e.time_of(side), Some(last));
        assert_eq!(e.status_of(side), e.outcome_status());
        assert_eq!(e.sync.location_ids.len(), 1);
        assert_eq!(e.envelope.subdomain.as_deref(), Some("example-subdomain"));
    }
    assert!(payloads::onboarding_delivery("appointment_created").is_none());
}

/// The simulator sends every sample over HTTP, signed as NexHealth signs; a
/// receiver handles each as its typed event and answers 200 the first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_simulator_sends_every_sample() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        let receiver = Receiver::new(SECRET).unwrap();
        let store = MemoryStore::default();
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (headers, body) = read_request(&mut socket).await;
            let tx = tx.clone();
            let outcome = receiver
                .handle(&store, &headers, &body, |event: Event| async move {
                    tx.send(variant(&event)).unwrap();
                    Ok::<(), std::io::Error>(())
                })
                .await;
            let answer = format!(
                "HTTP/1.1 {} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                outcome.status()
            );
            use tokio::io::AsyncWriteExt;
            socket.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    let sent = DeliverySimulator::new(SECRET)
        .deliver_samples(&url, Utc::now() - chrono::Duration::minutes(1))
        .await;
    server.abort();
    assert_eq!(sent.len(), EVERY_VARIANT.len());
    for (delivery, attempts) in &sent {
        assert_eq!(attempts.len(), 1, "{delivery}: {attempts:?}");
        assert_eq!(attempts[0].status, Some(200), "{delivery}");
    }
    let mut reached = Vec::new();
    while let Ok(variant) = rx.try_recv() {
        reached.push(variant);
    }
    assert_eq!(reached, EVERY_VARIANT);
}

/// One HTTP/1.1 request: its headers and its body (by `content-length`).
async fn read_request(socket: &mut tokio::net::TcpStream) -> (HeaderMap, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let mut chunk = [0_u8; 4096];
    let end = loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the request ended early");
        bytes.extend_from_slice(&chunk[..n]);
        if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let mut headers = HeaderMap::new();
    for line in head.lines().skip(1).filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let length: usize = headers["content-length"].to_str().unwrap().parse().unwrap();
    let mut body = bytes[end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the body ended early");
        body.extend_from_slice(&chunk[..n]);
    }
    (headers, body)
}

/// The directory example takes both limits on its command line.
#[test]
fn the_directory_example_takes_read_and_write_thresholds() {
    let binary = nexhealth_contract_tests::example_binary("directory", &["redis"]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&binary)
            .args(args)
            .env_remove("NEXHEALTH_API_KEY")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The stand-in's syncs were read and checked in two minutes ago.
    let (ok, plain, err) = run(&[]);
    assert!(ok, "{plain}\n{err}");
    let front = |text: &str| {
        text.lines()
            .find(|l| l.contains("Front desk server"))
            .unwrap_or_else(|| panic!("{text}"))
            .to_string()
    };
    assert!(!front(&plain).contains("STALE"), "{plain}");
    let (ok, strict, err) = run(&["--write-threshold-minutes", "1"]);
    assert!(ok, "{strict}\n{err}");
    let line = front(&strict);
    assert!(line.contains("write=green (STALE)"), "{line}");
    assert!(!line.contains("read=green (STALE)"), "{line}");
    assert!(line.trim_start().starts_with('!'), "{line}");
    let (ok, strict, err) = run(&["--read-threshold-minutes", "1.5"]);
    assert!(ok, "{strict}\n{err}");
    let line = front(&strict);
    assert!(line.contains("read=green (STALE)"), "{line}");
    assert!(!line.contains("write=green (STALE)"), "{line}");
    for bad in [
        &["--read-threshold-minutes"][..],
        &["--write-threshold-minutes", "0"],
        &["--read-threshold-minutes", "soon"],
    ] {
        let (ok, _, err) = run(bad);
        assert!(!ok, "{bad:?}");
        assert!(err.contains(bad[0]), "{bad:?}: {err}");
    }
}
