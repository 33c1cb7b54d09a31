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
    // The wrong type: read as no events, and replaced at the next push.
    redis.command(&format!("SET {key} nonsense")).unwrap();
    assert_eq!(
        b.report().await.unwrap().write_readiness(8),
        WriteReadiness::Down
    );
    assert!(a.apply_event(&write_green(8)).await);
    assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "1");
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
