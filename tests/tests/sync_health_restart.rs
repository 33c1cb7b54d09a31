//! Shared sync health against a real `redis-server` (Debian's; without it
//! these tests fail and name it) that is killed and started again empty, as a
//! Redis without persistence restarts: no replica forgets a webhook-applied
//! change, and a replica started after the restart sees it once another
//! replica reported. A stored event dated a day ahead is never applied.

use std::time::Duration;

use nexhealth_api::fleet::{FleetShare, SharedSyncHealth};
use nexhealth_api::mock::{RedisServer, StandIn};
use nexhealth_api::sync_health::{SyncReport, WriteReadiness};
use nexhealth_api::webhooks::{Event, SyncStatusEvent};
use nexhealth_api::{Client, RetryPolicy};
use serde_json::{Value, json};

const KEY: &str = "sync-health-restart-test-key";

/// One test at a time: each runs a redis-server on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn client(base: &str) -> Client {
    Client::builder(KEY)
        .base_url(base)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

fn write_green(location: i64, at: chrono::DateTime<chrono::Utc>) -> Value {
    let at = at.to_rfc3339();
    json!({"event_name": "sync_status_write_change", "subdomain": "example-subdomain",
        "data": {"sync_status": {"write_status": "green", "write_status_at": at,
        "locations": [{"id": location}]}}})
}

fn event(raw: Value) -> SyncStatusEvent {
    match Event::from_json(raw) {
        Some(Event::SyncStatusWriteChange(sync)) => sync,
        other => panic!("{other:?}"),
    }
}

/// What a report says of each sync, without its assessment (which ages).
fn syncs(report: &SyncReport) -> Vec<String> {
    report
        .syncs
        .iter()
        .map(|health| format!("{:?}", health.sync))
        .collect()
}

/// The one events key of `prefix` (the API key is named by a digest).
fn events_key(redis: &RedisServer, prefix: &str) -> String {
    let keys = redis
        .command(&format!("KEYS {prefix}:*:sync-events"))
        .unwrap();
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys[0].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_loses_no_webhook_applied_change() {
    let _serial = SERIAL.lock().await;
    let mut redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let server = StandIn::start().await;
    let share = FleetShare::new(redis.url())
        .prefix("restart")
        .redis_timeout(Duration::from_millis(200));
    let replica = || {
        SharedSyncHealth::new(&client(&server.base_url()), &share)
            .unwrap()
            .refresh(Duration::from_secs(3_600))
    };
    let (a, b) = (replica(), replica());
    // The stand-in's sync serving location 8 is red on writes.
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
    assert!(
        a.apply_event(&event(write_green(8, chrono::Utc::now())))
            .await,
        "Redis took it"
    );
    let before_a = a.report().await.unwrap();
    let before_b = b.report().await.unwrap();
    assert_eq!(before_a.write_readiness(8), WriteReadiness::Ready);
    assert_eq!(before_b.write_readiness(8), WriteReadiness::Ready);

    // Killed, and started again on the same port with nothing.
    redis.stop();
    redis.restart().unwrap();
    assert_eq!(redis.command("DBSIZE").unwrap(), "0");
    let c = replica();
    assert_eq!(
        c.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down,
        "nobody reported since the restart: Redis holds nothing yet"
    );
    let after_a = a.report().await.unwrap();
    let after_b = b.report().await.unwrap();
    assert_eq!(syncs(&after_a), syncs(&before_a));
    assert_eq!(syncs(&after_b), syncs(&before_b));
    assert_eq!(after_a.write_readiness(8), WriteReadiness::Ready);
    assert_eq!(after_b.write_readiness(8), WriteReadiness::Ready);
    // A gave it back: the replica started after the restart sees it.
    assert_eq!(
        c.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    let key = events_key(&redis, "restart");
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "1");
    for replica in [&a, &b, &c] {
        replica.report().await.unwrap();
    }
    assert_eq!(
        redis.command(&format!("LLEN {key}")).unwrap(),
        "1",
        "given back once, not at every report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_event_dated_a_day_ahead_is_not_applied() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let server = StandIn::start().await;
    let share = FleetShare::new(redis.url()).prefix("ahead");
    let replica = || {
        SharedSyncHealth::new(&client(&server.base_url()), &share)
            .unwrap()
            .refresh(Duration::from_secs(3_600))
    };
    let (a, b) = (replica(), replica());
    // A real event makes the key; the one from the future goes in front.
    assert!(
        a.apply_event(&event(write_green(
            9,
            chrono::Utc::now() - chrono::Duration::minutes(1)
        )))
        .await
    );
    let key = events_key(&redis, "ahead");
    let ahead = write_green(8, chrono::Utc::now() + chrono::Duration::days(1));
    let stored = serde_json::to_string(&ahead).unwrap();
    assert!(!stored.contains(char::is_whitespace));
    redis.command(&format!("LPUSH {key} {stored}")).unwrap();
    for replica in [&a, &b] {
        let report = replica.report().await.unwrap();
        assert_eq!(report.write_readiness(8), WriteReadiness::Down);
    }
    // Applied directly, it is refused too.
    assert!(!b.apply_event(&event(ahead)).await);
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "2");
    assert_eq!(
        a.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
}
