//! One directory and one sync picture for a fleet sharing a real
//! `redis-server` (Debian's; without it these tests fail and name it):
//! three watcher processes make about the `GET /locations` of one and each
//! prints every change; with Redis stopped the replicas work on their own and
//! go back to sharing; Redis answering nonsense costs a fetch, never a panic;
//! a webhook applied on one replica shows on another, even after an outage.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use nexhealth_api::fleet::{FleetShare, SharedSyncHealth};
use nexhealth_api::mock::{RedisServer, StandIn};
use nexhealth_api::sync_health::WriteReadiness;
use nexhealth_api::webhooks::Event;
use nexhealth_api::{Client, LocationDirectory, RetryPolicy};
use serde_json::{Value, json};

const KEY: &str = "directory-fleet-test-key";

/// One test at a time: they count requests over seconds on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("{e}"))
}

fn client(base: &str) -> Client {
    Client::builder(KEY)
        .base_url(base)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

fn share(redis: &RedisServer) -> FleetShare {
    FleetShare::new(redis.url()).redis_timeout(Duration::from_millis(150))
}

/// Runs `watchers` processes of the directory example in `--watch` mode
/// against `server` (and Redis, when given), and answers each one's changes.
async fn run_watchers(
    server: &StandIn,
    redis_url: Option<&str>,
    watchers: usize,
    every: &str,
    seconds: &str,
) -> Vec<Vec<(String, i64)>> {
    let binary = nexhealth_contract_tests::example_binary("directory", &["redis"]);
    let children: Vec<_> = (0..watchers)
        .map(|_| {
            let mut command = Command::new(&binary);
            command
                .args(["--watch", every, "--seconds", seconds])
                .env("NEXHEALTH_API_KEY", KEY)
                .env("NEXHEALTH_BASE_URL", server.base_url())
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            match redis_url {
                Some(url) => command.env("REDIS_URL", url),
                None => command.env_remove("REDIS_URL"),
            };
            command.spawn().unwrap()
        })
        .collect();
    // The stand-in answers from this test's runtime: wait without blocking it.
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    outputs
        .iter()
        .map(|out| {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                stdout.contains("Sharing the directory through Redis"),
                redis_url.is_some(),
                "{stdout}"
            );
            stdout
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(|l| {
                    let change: Value = serde_json::from_str(l).unwrap();
                    (
                        change["change"].as_str().unwrap().to_string(),
                        change["location_id"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_watchers_sharing_redis_fetch_about_as_often_as_one_and_each_prints_every_change() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    // Phase 0 for every process's overview (one `GET /locations` each) and
    // the baseline; then one step per fetch.
    let one = StandIn::with_moving_locations(2).await;
    let alone = run_watchers(&one, None, 1, "0.5", "5").await;
    assert_eq!(
        alone[0],
        nexhealth_contract_tests::scripted_location_changes()
    );
    let by_one = one.locations_served();

    let shared = StandIn::with_moving_locations(4).await;
    let fleet = run_watchers(&shared, Some(&redis.url()), 3, "0.5", "5").await;
    let by_three = shared.locations_served();
    for (n, changes) in fleet.iter().enumerate() {
        assert_eq!(
            changes,
            &nexhealth_contract_tests::scripted_location_changes(),
            "watcher {n}"
        );
    }
    // One watcher: its overview plus a fetch per tick. Three sharing: two more
    // overviews, and the fleet's one fetch per tick (a tick or two of slack).
    assert!(
        by_three <= by_one + 2 + 3,
        "3 sharing watchers made {by_three} GET /locations, 1 watcher {by_one}"
    );
    // Without Redis each watcher fetches for itself: the count that sharing saves.
    let apart = StandIn::with_moving_locations(4).await;
    run_watchers(&apart, None, 3, "0.5", "5").await;
    eprintln!(
        "GET /locations in 5 s at 0.5 s: 1 watcher {by_one}, 3 sharing Redis {by_three}, 3 apart {}",
        apart.locations_served()
    );
    assert!(
        apart.locations_served() >= 2 * by_one,
        "3 watchers apart made {}, 1 watcher {by_one}",
        apart.locations_served()
    );
}

/// Watches `directory` in the background, counting failed refreshes.
fn watch(directory: &LocationDirectory, every: Duration, errors: Arc<AtomicUsize>) {
    let stream = directory.watch(every);
    tokio::spawn(async move {
        stream
            .for_each(|change| {
                if change.is_err() {
                    errors.fetch_add(1, Ordering::SeqCst);
                }
                async {}
            })
            .await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_the_replicas_work_alone_then_share_again() {
    let _serial = SERIAL.lock().await;
    let mut redis = redis();
    // Phase 0 forever: only the count matters here.
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let every = Duration::from_millis(200);
    let errors = Arc::new(AtomicUsize::new(0));
    let replicas: Vec<LocationDirectory> = (0..3)
        .map(|_| {
            LocationDirectory::new(client(&server.base_url()))
                .shared(&share(&redis))
                .unwrap()
        })
        .collect();
    for directory in &replicas {
        watch(directory, every, errors.clone());
    }
    let window = Duration::from_secs(3);
    let ticks = (window.as_millis() / every.as_millis()) as usize;
    let count_over = |window: Duration| {
        let server = &server;
        async move {
            let before = server.locations_served();
            tokio::time::sleep(window).await;
            server.locations_served() - before
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sharing = count_over(window).await;
    assert!(
        sharing <= ticks + ticks / 2 + 1,
        "sharing: {sharing} fetches in {ticks} ticks"
    );

    redis.stop();
    let alone_before: Vec<u64> = replicas.iter().map(|d| d.fetches()).collect();
    let alone = count_over(window).await;
    for (directory, before) in replicas.iter().zip(&alone_before) {
        assert!(
            directory.fetches() - before >= (ticks / 2) as u64,
            "each replica fetched for itself: {} in {ticks} ticks",
            directory.fetches() - before
        );
        // Lookups keep working.
        assert!(directory.location(7).await.unwrap().is_some());
    }
    assert!(
        alone > sharing,
        "alone {alone} vs sharing {sharing}: Redis was not in use before?"
    );

    redis.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = count_over(window).await;
    assert!(
        again <= ticks + ticks / 2 + 1,
        "sharing again: {again} fetches in {ticks} ticks (alone: {alone})"
    );
    assert_eq!(
        errors.load(Ordering::SeqCst),
        0,
        "a Redis outage is not the watch's error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_answering_nonsense_costs_a_fetch_and_heals() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let share = share(&redis).prefix("odd");
    let first = LocationDirectory::new(client(&server.base_url()))
        .shared(&share)
        .unwrap();
    assert!(first.location(7).await.unwrap().is_some());
    assert_eq!(server.locations_served(), 1);
    let keys = redis.command("KEYS odd:*").unwrap();
    let key = keys
        .lines()
        .find(|k| k.ends_with(":directory:all"))
        .unwrap_or_else(|| panic!("{keys}"))
        .to_string();
    assert!(!key.contains(KEY), "the key id is a digest: {key}");
    assert!(
        redis
            .command(&format!("PTTL {key}"))
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0,
        "it expires"
    );
    // A second replica reads the stored copy: no fetch.
    let second = LocationDirectory::new(client(&server.base_url()))
        .shared(&share)
        .unwrap();
    assert!(second.location(8).await.unwrap().is_some());
    assert_eq!((second.fetches(), server.locations_served()), (0, 1));

    // Garbage where the copy was, then the wrong type, then a lease without expiry.
    let far = 4_000_000_000_000_i64;
    for poison in [
        format!("HSET {key} at {far} body nonsense replacements {{}}"),
        format!("HSET {key} at {far} body [{{\"id\":1}}] replacements []"),
        format!("SET {key} nonsense"),
    ] {
        redis.command(&format!("DEL {key}")).unwrap();
        redis.command(&poison).unwrap();
        let replica = LocationDirectory::new(client(&server.base_url()))
            .shared(&share)
            .unwrap();
        let found = replica.location(7).await.unwrap();
        assert!(found.is_some(), "{poison}");
        assert_eq!(replica.fetches(), 1, "{poison}: fetched for itself");
    }
    redis.command(&format!("DEL {key}")).unwrap();
    redis.command(&format!("SET {key}:lease stuck")).unwrap();
    let replica = LocationDirectory::new(client(&server.base_url()))
        .shared(&share)
        .unwrap();
    assert!(replica.location(7).await.unwrap().is_some());
    // The lease without expiry was cleared: this replica fetched for the
    // fleet, and the next one reads what it stored.
    let next = LocationDirectory::new(client(&server.base_url()))
        .shared(&share)
        .unwrap();
    assert!(next.location(7).await.unwrap().is_some());
    assert_eq!((replica.fetches(), next.fetches()), (1, 0));
}

fn write_green(location: i64) -> nexhealth_api::webhooks::SyncStatusEvent {
    let at = chrono::Utc::now().to_rfc3339();
    let raw = json!({"event_name": "sync_status_write_change", "subdomain": "example-subdomain",
        "data": {"sync_status": {"write_status": "green", "write_status_at": at,
        "read_status": "green", "read_status_at": at, "locations": [{"id": location}]}}});
    match Event::from_json(raw) {
        Some(Event::SyncStatusWriteChange(sync)) => sync,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_applied_on_one_replica_shows_on_every_replica_even_after_an_outage() {
    let _serial = SERIAL.lock().await;
    let mut redis = redis();
    let server = StandIn::start().await;
    let replica = |prefix: &str| {
        SharedSyncHealth::new(&client(&server.base_url()), &share(&redis).prefix(prefix)).unwrap()
    };
    let (a, b) = (replica("health"), replica("health"));
    // The stand-in's sync serving location 8 is red on writes.
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
    assert!(a.apply_event(&write_green(8)).await, "Redis took it");
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    // Another key's fleet (another prefix here) does not see it.
    assert_eq!(
        replica("other").report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );

    // Redis stopped: the event is applied where it arrived and kept...
    let (c, d) = (replica("outage"), replica("outage"));
    assert_eq!(
        c.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
    redis.stop();
    assert!(
        !c.apply_event(&write_green(8)).await,
        "Redis cannot take it"
    );
    assert_eq!(
        c.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    // ...and stored at the next contact, for every replica.
    redis.restart().unwrap();
    assert_eq!(
        c.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    assert_eq!(
        d.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    assert!(!format!("{d:?}").contains(KEY));
}
