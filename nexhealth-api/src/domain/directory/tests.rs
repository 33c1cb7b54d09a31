use super::*;
use crate::mock::{MockServerExt, StandIn, payloads};

fn snapshot() -> Snapshot {
    Snapshot::from_institutions(payloads::locations().data)
}

fn client(base: &str) -> Client {
    Client::builder("unit-key")
        .base_url(base)
        .retry(crate::transport::policy::RetryPolicy::none())
        .build()
        .unwrap()
}

#[test]
fn a_snapshot_answers_by_id_institution_subdomain_and_foreign_id() {
    let s = snapshot();
    assert_eq!(s.entries().len(), 2);
    assert_eq!(s.subdomains(), ["example-subdomain"]);
    assert_eq!(s.location(7).unwrap().location.id, 7);
    assert!(s.location(9).is_none());
    assert_eq!(s.in_institution(1).count(), 2);
    assert_eq!(s.in_institution(2).count(), 0);
    assert_eq!(s.in_subdomain("example-subdomain").count(), 2);
    assert_eq!(s.in_subdomain("other").count(), 0);
    assert_eq!(
        s.by_foreign_id("example-subdomain", "2")
            .map(|e| e.location.id),
        Some(8)
    );
    assert!(s.by_foreign_id("other", "2").is_none());
    assert!(s.by_foreign_id("example-subdomain", "3").is_none());
    let seven = s.location(7).unwrap();
    let eight = s.location(8).unwrap();
    assert!(!seven.is_inactive() && eight.is_inactive());
    assert_eq!(
        eight.scope(),
        Scope {
            subdomain: "example-subdomain".into(),
            location_id: 8,
            inactive: true
        }
    );
    assert_eq!(s.scope(7, None).unwrap().location_id, 7);
    assert_eq!(
        s.scope(7, Some("example-subdomain")).unwrap().location_id,
        7
    );
    assert!(matches!(
        s.scope(7, Some("elsewhere")),
        Err(Error::SubdomainNotAccessible { .. })
    ));
    assert!(matches!(
        s.scope(9, None),
        Err(Error::UnknownLocation { location_id: 9 })
    ));
    // Two institutions: a location checked against the other's subdomain.
    let mut two = payloads::locations().data;
    let mut other = two[0].clone();
    other.id = 2;
    other.subdomain = "second".into();
    other.locations.truncate(0);
    two.push(other);
    let s = Snapshot::from_institutions(two);
    assert!(matches!(
        s.scope(7, Some("second")),
        Err(Error::LocationNotInInstitution { location_id: 7, .. })
    ));
}

#[test]
fn a_successor_follows_the_chain_to_an_active_location_and_never_guesses() {
    let mut s = snapshot();
    assert_eq!(s.successor(7), Some(7), "current: itself");
    assert_eq!(s.successor(8), None, "inactive, no successor");
    assert_eq!(s.successor(5), None, "unknown");
    s.record_replacement(5, 6);
    s.record_replacement(6, 7);
    assert_eq!(s.successor(5), Some(7), "5 → 6 → 7");
    assert_eq!(s.replacements().len(), 2);
    s.record_replacement(3, 8);
    assert_eq!(s.successor(3), None, "the end of the chain is inactive");
    // A loop ends: bounded by the replacements known.
    s.record_replacement(1, 2);
    s.record_replacement(2, 1);
    assert_eq!(s.successor(1), None);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["replacements"]["5"], 6);
    assert_eq!(json["fetched_secs_ago"], serde_json::Value::Null);
    assert_eq!(json["entries"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_directory_fetches_once_per_ttl_and_refresh_always_fetches() {
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let directory = LocationDirectory::new(client(&server.base_url()));
    assert_eq!(directory.fetches(), 0);
    let first = directory.snapshot().await.unwrap();
    let again = directory.snapshot().await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "within the TTL: the same copy");
    assert_eq!(server.locations_served(), 1);
    directory.refresh().await.unwrap();
    assert_eq!((directory.fetches(), server.locations_served()), (2, 2));
    let serialized = serde_json::to_value(&*directory.snapshot().await.unwrap()).unwrap();
    assert_eq!(serialized["fetched_secs_ago"], 0);
    // A zero TTL: every snapshot fetches.
    let eager = directory.clone().with_ttl(Duration::ZERO);
    eager.snapshot().await.unwrap();
    eager.snapshot().await.unwrap();
    assert_eq!(eager.fetches(), 2);
    assert_eq!(directory.fetches(), 2, "a new directory: its own cache");
    let shown = format!("{eager:?}");
    assert!(
        shown.contains("ttl: 0ns") && shown.contains("fetches: 2"),
        "{shown}"
    );
}

/// Mocks the token exchange and a `GET /locations` answering the
/// spec's example after `delay`.
pub(super) async fn slow_locations(
    server: &crate::mock::httpmock::MockServer,
    delay: Duration,
) -> crate::mock::httpmock::Mock<'_> {
    server.post_authenticates(|_, then| {
        then.created(&payloads::authenticate());
    });
    server
        .mock_async(|when, then| {
            when.path("/locations");
            then.status(200)
                .delay(delay)
                .header("content-type", "application/json")
                .body(serde_json::to_string(&payloads::locations()).unwrap());
        })
        .await
}

#[test]
fn the_defaults_are_nexhealth_s_advice_and_bounded() {
    assert_eq!(DEFAULT_TTL, Duration::from_secs(900));
    assert_eq!(DEFAULT_UNKNOWN_REFRESH, Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_ids_costs_one_fetch_and_known_ids_never_wait() {
    let server = crate::mock::httpmock::MockServer::start_async().await;
    let slow = slow_locations(&server, Duration::from_millis(400)).await;
    let directory = LocationDirectory::new(client(&server.base_url()))
        .with_unknown_refresh(Duration::from_millis(1));
    directory.snapshot().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    // 1,000 lookups of unknown ids at once: one refresh for all of them.
    let lookups = (0..1_000).map(|n| {
        let directory = directory.clone();
        async move { directory.location(100_000 + n).await }
    });
    let flood = tokio::spawn(futures::future::join_all(lookups));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A known id is answered while that refresh is in flight.
    let started = Instant::now();
    assert!(directory.location(7).await.unwrap().is_some());
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    let answers = flood.await.unwrap();
    assert!(answers.iter().all(|a| matches!(a, Ok(None))));
    slow.assert_calls_async(2).await;
    assert_eq!(directory.fetches(), 2);
}

#[tokio::test]
async fn an_unknown_id_refreshes_once_per_interval() {
    let server = StandIn::with_moving_locations(1).await;
    let directory = LocationDirectory::new(client(&server.base_url()))
        .with_unknown_refresh(Duration::from_secs(3_600));
    // Known after the first fetch: no refresh.
    assert!(directory.location(7).await.unwrap().is_some());
    assert_eq!(directory.fetches(), 1);
    // Just fetched: 9 is not looked for again within the interval.
    assert!(directory.location(9).await.unwrap().is_none());
    assert_eq!(directory.fetches(), 1);
    // With no interval, an unknown id refreshes, and 9 (added) is found.
    let server = StandIn::with_moving_locations(1).await;
    let eager = LocationDirectory::new(client(&server.base_url()))
        .with_unknown_refresh(Duration::ZERO)
        .with_ttl(Duration::from_secs(3_600));
    eager.snapshot().await.unwrap();
    assert_eq!(eager.scope(9).await.unwrap().location_id, 9);
    assert_eq!(eager.fetches(), 2);
    assert_eq!(
        eager
            .scope_in("example-subdomain", 9)
            .await
            .unwrap()
            .location_id,
        9
    );
    assert_eq!(eager.fetches(), 2, "known now");
    assert!(matches!(
        eager.scope_in("elsewhere", 9).await,
        Err(Error::SubdomainNotAccessible { .. })
    ));
    assert!(matches!(
        eager.scope(12_345).await,
        Err(Error::UnknownLocation { .. })
    ));
    assert_eq!(eager.fetches(), 3, "an unknown id refreshed (now phase 2)");
    assert_eq!(
        eager
            .by_foreign_id("example-subdomain", "9")
            .await
            .unwrap()
            .map(|e| e.location.id),
        Some(9)
    );
    assert_eq!(
        eager.in_subdomain("example-subdomain").await.unwrap().len(),
        4
    );
    assert_eq!(
        eager.successor(7).await.unwrap(),
        Some(70),
        "migrated in phase 2"
    );
}

#[tokio::test]
async fn refreshes_answer_the_changes_and_record_replacements() {
    let server = StandIn::with_moving_locations(1).await;
    let directory = LocationDirectory::new(client(&server.base_url()));
    let (_, first) = directory.refresh_changes().await.unwrap();
    assert!(first.is_empty(), "the first fetch is the baseline");
    let (_, added) = directory.refresh_changes().await.unwrap();
    assert!(matches!(added[..], [Change::Added { .. }]), "{added:?}");
    let (snapshot, migrated) = directory.refresh_changes().await.unwrap();
    assert!(
        migrated.iter().any(|c| matches!(
            c,
            Change::Replaced {
                old: 7,
                new: 70,
                ..
            }
        )),
        "{migrated:?}"
    );
    assert_eq!(snapshot.successor(7), Some(70));
    assert_eq!(directory.successor(7).await.unwrap(), Some(70));
    // Remembered at later refreshes.
    let (later, _) = directory.refresh_changes().await.unwrap();
    assert_eq!(later.replacements().get(&7), Some(&70));
}

#[tokio::test]
async fn a_directory_of_one_institution_asks_for_its_subdomain_only() {
    let server = crate::mock::httpmock::MockServer::start_async().await;
    let scoped = server
        .mock_async(|when, then| {
            when.path("/locations")
                .query_param("subdomain", "example-subdomain");
            then.status(200)
                .header("content-type", "application/json")
                .body(serde_json::to_string(&payloads::locations()).unwrap());
        })
        .await;
    server.post_authenticates(|_, then| {
        then.created(&payloads::authenticate());
    });
    let directory =
        LocationDirectory::for_subdomain(client(&server.base_url()), "example-subdomain");
    assert!(directory.location(7).await.unwrap().is_some());
    scoped.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_watch_yields_each_change_and_goes_on_after_a_failed_refresh() {
    use futures::StreamExt;
    let server = crate::mock::httpmock::MockServer::start_async().await;
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = served.clone();
    let mut phases = crate::mock::location_phases();
    phases.truncate(2);
    let bodies: Vec<String> = phases
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    server
        .mock_async(move |when, then| {
            when.path("/locations");
            then.respond_with(move |_: &crate::mock::httpmock::HttpMockRequest| {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Baseline, a failure, then phase 1.
                let (status, body) = match n {
                    0 => (200, bodies[0].clone()),
                    1 => (500, "{}".to_string()),
                    _ => (200, bodies[1].clone()),
                };
                crate::mock::httpmock::HttpMockResponse::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(body)
                    .build()
            });
        })
        .await;
    server.post_authenticates(|_, then| {
        then.created(&payloads::authenticate());
    });
    let directory = LocationDirectory::new(client(&server.base_url()));
    let started = Instant::now();
    let items: Vec<Result<Change, Error>> = tokio::time::timeout(
        Duration::from_secs(10),
        directory.watch(Duration::from_millis(50)).take(2).collect(),
    )
    .await
    .expect("two items within 10 s");
    assert!(items[0].is_err(), "{items:?}");
    assert!(matches!(items[1], Ok(Change::Added { .. })), "{items:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "ticks apart"
    );
}
