use std::collections::BTreeMap;

use chrono::Utc;

use super::directory_share::*;
use super::sync_health_share::*;
use super::*;
use crate::domain::sync_health::Thresholds;
use crate::mock::{MockServerExt, RedisServer, StandIn};
use crate::sync_health::WriteReadiness;
use crate::webhooks::{Event, SyncStatusEvent};

fn client(base: &str) -> Client {
    Client::builder("fleet-unit-key")
        .base_url(base)
        .retry(crate::transport::policy::RetryPolicy::none())
        .build()
        .unwrap()
}

fn write_green(location: i64) -> SyncStatusEvent {
    let at = Utc::now().to_rfc3339();
    let raw = serde_json::json!({"event_name": "sync_status_write_change",
        "data": {"sync_status": {"write_status": "green", "write_status_at": at,
        "locations": [{"id": location}]}}});
    match Event::from_json(raw) {
        Some(Event::SyncStatusWriteChange(sync)) => sync,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn events_reach_every_replica_in_order_and_survive_an_outage() {
    let mut redis = RedisServer::start().unwrap();
    let server = StandIn::start().await;
    let share = FleetShare::new(redis.url())
        .prefix("unit")
        .redis_timeout(Duration::from_millis(100));
    let a = SharedSyncHealth::new(&client(&server.base_url()), &share).unwrap();
    let b = SharedSyncHealth::new(&client(&server.base_url()), &share)
        .unwrap()
        .refresh(Duration::from_secs(3_600));
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
    redis.stop();
    for location in [8, 9, 10] {
        assert!(!a.apply_event(&write_green(location)).await);
    }
    assert_eq!(lock(&a.pending).len(), 3);
    assert!(format!("{a:?}").contains("on_its_own: true"));
    // Applied where they arrived, from its own list.
    assert_eq!(
        a.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    redis.restart().unwrap();
    assert!(a.apply_event(&write_green(11)).await, "Redis took all four");
    assert!(lock(&a.pending).is_empty());
    assert!(format!("{a:?}").contains("on_its_own: false"));
    let key = a.events_key.clone();
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "4");
    let newest = redis.command(&format!("LINDEX {key} 0")).unwrap();
    assert!(newest.contains("[{\"id\":11}]"), "{newest}");
    let oldest = redis.command(&format!("LINDEX {key} 3")).unwrap();
    assert!(oldest.contains("[{\"id\":8}]"), "{oldest}");
    assert!(
        redis
            .command(&format!("PTTL {key}"))
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    // B's cached /sync_status, with the fleet's events.
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    // Garbage in the list is skipped; a huge element too.
    redis.command(&format!("LPUSH {key} nonsense")).unwrap();
    redis
        .command(&format!("LPUSH {key} {}", "x".repeat(MAX_EVENT_BYTES + 1)))
        .unwrap();
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    // The wrong type: read as no events; B's record still counts, and is
    // given back in a list that replaces it.
    redis.command(&format!("SET {key} nonsense")).unwrap();
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "4");
    assert!(a.apply_event(&write_green(8)).await);
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "5");
}

#[tokio::test]
async fn sync_status_is_fetched_once_per_refresh() {
    let redis = RedisServer::start().unwrap();
    let server = crate::mock::httpmock::MockServer::start_async().await;
    server.post_authenticates(|_, then| {
        then.created(&crate::mock::payloads::authenticate());
    });
    let syncs = server
        .mock_async(|when, then| {
            when.path("/sync_status");
            then.status(200)
                .header("content-type", "application/json")
                .body(serde_json::to_string(&crate::mock::payloads::sync_status()).unwrap());
        })
        .await;
    let share = FleetShare::new(redis.url()).prefix("refresh");
    let cached = SharedSyncHealth::new(&client(&server.base_url()), &share)
        .unwrap()
        .for_subdomain("example-subdomain")
        .thresholds(Thresholds::default());
    cached.report().await.unwrap();
    cached.report().await.unwrap();
    syncs.assert_calls_async(1).await;
    let eager = SharedSyncHealth::new(&client(&server.base_url()), &share)
        .unwrap()
        .refresh(Duration::ZERO);
    eager.report().await.unwrap();
    eager.report().await.unwrap();
    syncs.assert_calls_async(3).await;
}

#[tokio::test]
async fn the_directory_share_answers_wait_while_another_replica_holds_the_lease() {
    let redis = RedisServer::start().unwrap();
    let server = StandIn::start().await;
    let client = client(&server.base_url());
    let share = FleetShare::new(redis.url()).prefix("lease");
    let one = DirectoryShare::new(&share, &client, None).unwrap();
    let Ok(Read::Lease(lease)) = one.read(Duration::from_secs(60), None).await else {
        panic!("the first replica takes the lease");
    };
    let other = DirectoryShare::new(&share, &client, None).unwrap();
    assert!(matches!(
        other.read(Duration::from_secs(60), None).await,
        Ok(Read::Wait(None))
    ));
    one.publish(&lease, &[], &BTreeMap::from([(1, 2)]))
        .await
        .unwrap();
    let Ok(Read::Fresh(copy)) = other.read(Duration::from_secs(60), None).await else {
        panic!("the stored copy");
    };
    assert_eq!(copy.at_ms, lease.at_ms);
    assert_eq!(copy.replacements.get(&1), Some(&2));
    // Not newer than itself: the lease again; another replica waits on
    // the stored copy's generation.
    let Ok(Read::Lease(again)) = other.read(Duration::from_secs(60), Some(copy.at_ms)).await else {
        panic!("a lease for the next generation");
    };
    assert!(matches!(
        one.read(Duration::from_secs(60), Some(copy.at_ms)).await,
        Ok(Read::Wait(Some(at))) if at == copy.at_ms
    ));
    other.release(&again).await;
    assert!(matches!(
        one.read(Duration::ZERO, None).await,
        Ok(Read::Lease(_))
    ));
    // One for a subdomain is another copy.
    let scoped = DirectoryShare::new(&share, &client, Some("example-subdomain")).unwrap();
    assert!(matches!(
        scoped.read(Duration::from_secs(60), None).await,
        Ok(Read::Lease(_))
    ));
}

fn write_green_at(location: i64, at: chrono::DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({"event_name": "sync_status_write_change",
        "data": {"sync_status": {"write_status": "green", "write_status_at": at.to_rfc3339(),
        "locations": [{"id": location}]}}})
}

fn as_event(raw: serde_json::Value) -> SyncStatusEvent {
    match Event::from_json(raw) {
        Some(Event::SyncStatusWriteChange(sync)) => sync,
        other => panic!("{other:?}"),
    }
}

/// What a report says of each sync (its assessment changes with the clock).
fn syncs(report: &crate::sync_health::SyncReport) -> Vec<crate::generated::types::SyncStatus> {
    report
        .syncs
        .iter()
        .map(|health| health.sync.clone())
        .collect()
}

/// A applies a webhook; `lose` empties Redis; A and B report what they did
/// before, and a replica created afterwards sees the event once A or B
/// reported.
async fn applied_events_survive(prefix: &str, lose: impl FnOnce(&mut RedisServer)) {
    let mut redis = RedisServer::start().unwrap();
    let server = StandIn::start().await;
    let share = FleetShare::new(redis.url())
        .prefix(prefix)
        .redis_timeout(Duration::from_millis(200));
    let replica = || {
        SharedSyncHealth::new(&client(&server.base_url()), &share)
            .unwrap()
            .refresh(Duration::from_secs(3_600))
    };
    let (a, b) = (replica(), replica());
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down,
        "the stand-in's sync of location 8 is red on writes"
    );
    assert!(a.apply_event(&write_green(8)).await);
    let before_a = a.report().await.unwrap();
    let before_b = b.report().await.unwrap();
    assert_eq!(before_a.write_readiness(8), WriteReadiness::Ready);
    assert_eq!(before_b.write_readiness(8), WriteReadiness::Ready);
    let key = a.events_key.clone();

    lose(&mut redis);
    assert_eq!(redis.command(&format!("EXISTS {key}")).unwrap(), "0");
    // Created after the loss, before anyone reported: Redis has nothing.
    let c = replica();
    assert_eq!(
        c.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
    let after_a = a.report().await.unwrap();
    assert_eq!(syncs(&after_a), syncs(&before_a));
    assert_eq!(after_a.write_readiness(8), WriteReadiness::Ready);
    // A gave it back, once.
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "1");
    assert!(
        redis
            .command(&format!("PTTL {key}"))
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    let after_b = b.report().await.unwrap();
    assert_eq!(syncs(&after_b), syncs(&before_b));
    assert_eq!(
        c.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
    // Nothing more to give back: the list does not grow.
    for replica in [&a, &b, &c] {
        replica.report().await.unwrap();
    }
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "1");
    assert!(format!("{a:?}").contains("on_its_own: false"), "{a:?}");
}

#[tokio::test]
async fn applied_events_survive_a_flushall() {
    applied_events_survive("flushall", |redis| {
        assert_eq!(redis.command("FLUSHALL").unwrap(), "OK");
    })
    .await;
}

#[tokio::test]
async fn applied_events_survive_a_redis_restarted_empty() {
    applied_events_survive("restart", |redis| {
        redis.stop();
        redis.restart().unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_event_whose_status_time_is_a_day_ahead_is_refused() {
    let redis = RedisServer::start().unwrap();
    let server = StandIn::start().await;
    let share = FleetShare::new(redis.url()).prefix("future");
    let replica = || {
        SharedSyncHealth::new(&client(&server.base_url()), &share)
            .unwrap()
            .refresh(Duration::from_secs(3_600))
    };
    let (a, b) = (replica(), replica());
    let key = a.events_key.clone();
    let ahead = write_green_at(8, Utc::now() + chrono::Duration::days(1));
    // Stored by someone else (an older replica, tampering).
    let stored = serde_json::to_string(&ahead).unwrap();
    assert!(!stored.contains(char::is_whitespace));
    redis.command(&format!("LPUSH {key} {stored}")).unwrap();
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
    assert!(b.refused.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert!(lock(&b.record).is_empty(), "not recorded");
    // Applied here: refused too, and not stored.
    assert!(!a.apply_event(&as_event(ahead)).await);
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "1");
    assert_eq!(
        a.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
    assert!(format!("{a:?}").contains("refused_events: "), "{a:?}");
    // Never given back either.
    redis.command(&format!("DEL {key}")).unwrap();
    a.report().await.unwrap();
    b.report().await.unwrap();
    assert_eq!(redis.command(&format!("EXISTS {key}")).unwrap(), "0");
    // Within the clock skew it is a webhook like any other.
    let soon = write_green_at(8, Utc::now() + chrono::Duration::minutes(2));
    assert!(a.apply_event(&as_event(soon)).await);
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready
    );
}

#[tokio::test]
async fn giving_events_back_never_grows_the_list_past_its_bound_nor_repeats() {
    let redis = RedisServer::start().unwrap();
    let server = StandIn::start().await;
    let share = FleetShare::new(redis.url()).prefix("bound");
    let a = SharedSyncHealth::new(&client(&server.base_url()), &share)
        .unwrap()
        .refresh(Duration::from_secs(3_600));
    let key = a.events_key.clone();
    for location in [8, 9, 10] {
        assert!(a.apply_event(&write_green(location)).await);
    }
    let llen = || redis.command(&format!("LLEN {key}")).unwrap();
    // Emptied, then filled with garbage to one short of the bound: room for
    // one, the newest.
    redis.command(&format!("DEL {key}")).unwrap();
    let garbage: Vec<String> = (0..FleetShare::MAX_EVENTS - 1)
        .map(|n| format!("garbage-{n}"))
        .collect();
    redis
        .command(&format!("RPUSH {key} {}", garbage.join(" ")))
        .unwrap();
    assert_eq!(
        a.report().await.unwrap().write_readiness(8),
        WriteReadiness::Ready,
        "from the record"
    );
    assert_eq!(llen(), FleetShare::MAX_EVENTS.to_string());
    let last = redis.command(&format!("LINDEX {key} -1")).unwrap();
    assert!(last.contains("[{\"id\":10}]"), "{last}");
    a.report().await.unwrap();
    assert_eq!(llen(), FleetShare::MAX_EVENTS.to_string());
    // Over the bound already (tampering): nothing given back, nothing trimmed.
    redis.command(&format!("LPUSH {key} more-garbage")).unwrap();
    for _ in 0..3 {
        assert_eq!(
            a.report().await.unwrap().write_readiness(8),
            WriteReadiness::Ready
        );
    }
    assert_eq!(llen(), (FleetShare::MAX_EVENTS + 1).to_string());
    // A copy with its keys in another order is the same event: only the
    // other two are given back, oldest last.
    redis.command(&format!("DEL {key}")).unwrap();
    let eight = canonical(&lock(&a.record)[2].event.envelope.raw);
    let reordered = eight.replacen(
        "{\"data\":",
        "{\"event_name\":\"sync_status_write_change\",\"data\":",
        1,
    );
    let reordered = reordered.replacen(",\"event_name\":\"sync_status_write_change\"}", "}", 1);
    assert_ne!(reordered, eight);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&reordered).unwrap(),
        serde_json::from_str::<serde_json::Value>(&eight).unwrap()
    );
    redis.command(&format!("LPUSH {key} {reordered}")).unwrap();
    a.report().await.unwrap();
    assert_eq!(llen(), "3");
    assert!(
        redis
            .command(&format!("LINDEX {key} 1"))
            .unwrap()
            .contains("[{\"id\":10}]")
    );
    assert!(
        redis
            .command(&format!("LINDEX {key} 2"))
            .unwrap()
            .contains("[{\"id\":9}]")
    );
    a.report().await.unwrap();
    assert_eq!(llen(), "3");
}
