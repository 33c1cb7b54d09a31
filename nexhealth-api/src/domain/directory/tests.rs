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

/// Serves the `/locations` answers `phases` in order, the last one again
/// after that.
pub(super) async fn serving_in_order(
    server: &crate::mock::httpmock::MockServer,
    phases: Vec<crate::generated::types::LocationListResponse>,
) {
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bodies: Vec<String> = phases
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    server
        .mock_async(move |when, then| {
            when.path("/locations");
            then.respond_with(move |_: &crate::mock::httpmock::HttpMockRequest| {
                let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                crate::mock::httpmock::HttpMockResponse::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(bodies[n.min(bodies.len() - 1)].clone())
                    .build()
            });
        })
        .await;
    server.post_authenticates(|_, then| {
        then.created(&payloads::authenticate());
    });
}

/// Phase 2 of [`crate::mock::location_phases`] (7 replaced by 70), then 7
/// active again.
pub(super) fn migrated_then_reactivated() -> Vec<crate::generated::types::LocationListResponse> {
    let mut phases = crate::mock::location_phases();
    phases.truncate(3);
    let mut back = phases[2].clone();
    for location in &mut back.data[0].locations {
        if location.id == 7 {
            location.inactive = Some(false);
        }
    }
    phases.push(back);
    phases.remove(0);
    phases
}

/// The snapshot of `answer` that follows `previous`, settled as a refresh
/// settles it (`shared`: the map read with it from the fleet).
fn following(
    previous: &Snapshot,
    answer: &crate::generated::types::LocationListResponse,
    shared: Option<&std::collections::BTreeMap<i32, i32>>,
) -> Snapshot {
    let mut next = Snapshot::from_institutions(answer.data.clone());
    next.fetched_at = Some(Instant::now());
    let changes = if previous.fetched_at.is_some() {
        crate::domain::changes::changes(previous, &next)
    } else {
        Vec::new()
    };
    next.settle_replacements(
        previous,
        changes.iter().filter_map(Change::replacement),
        shared,
    );
    next
}

#[test]
fn a_reactivated_location_has_no_successor_and_its_replacement_is_pruned() {
    let phases = migrated_then_reactivated();
    let before = following(&Snapshot::default(), &phases[0], None);
    let migrated = following(&before, &phases[1], None);
    assert_eq!(migrated.successor(7), Some(70));
    assert_eq!(migrated.replacements().get(&7), Some(&70));
    // 7 is active again: itself, and the entry is gone.
    let back = following(&migrated, &phases[2], None);
    assert_eq!(back.successor(7), Some(7));
    assert!(back.replacements().is_empty(), "{:?}", back.replacements());
    // Even a snapshot that still carries the entry answers 7 for 7.
    let mut stale = Snapshot::from_institutions(phases[2].data.clone());
    stale.record_replacement(7, 70);
    assert_eq!(stale.successor(7), Some(7));
    // A copy read from the fleet that says 7 → 70 does not bring it back.
    let shared = std::collections::BTreeMap::from([(7, 70)]);
    let read = following(&migrated, &phases[2], Some(&shared));
    assert_eq!(read.successor(7), Some(7));
    assert!(read.replacements().is_empty(), "{:?}", read.replacements());
}

#[tokio::test]
async fn a_directory_answers_a_reactivated_location_for_itself() {
    let server = crate::mock::httpmock::MockServer::start_async().await;
    serving_in_order(&server, migrated_then_reactivated()).await;
    let directory = LocationDirectory::new(client(&server.base_url()));
    directory.refresh().await.unwrap();
    let (_, migrated) = directory.refresh_changes().await.unwrap();
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
    assert_eq!(directory.successor(7).await.unwrap(), Some(70));
    let (snapshot, back) = directory.refresh_changes().await.unwrap();
    assert!(
        back.contains(&Change::Reactivated { location_id: 7 }),
        "{back:?}"
    );
    assert_eq!(directory.successor(7).await.unwrap(), Some(7));
    assert_eq!(snapshot.replacements().get(&7), None);
    // And it stays so at later refreshes.
    let (later, _) = directory.refresh_changes().await.unwrap();
    assert_eq!(later.successor(7), Some(7));
    assert!(
        later.replacements().is_empty(),
        "{:?}",
        later.replacements()
    );
}

#[test]
fn replacements_read_from_the_fleet_hold_in_their_copy_or_are_dropped() {
    use std::collections::BTreeMap;
    // The spec's example: 7 "Default" active, 8 "Uptown" inactive.
    let answer = payloads::locations();
    let read = |shared: BTreeMap<i32, i32>| {
        let copy = following(&Snapshot::default(), &answer, Some(&shared));
        copy.replacements().clone()
    };
    // Ids from the payloads that are no successor: 1 is an institution, 2 nothing.
    assert!(read(BTreeMap::from([(1, 2)])).is_empty());
    // 8 is listed and inactive, but not under 7's name: no evidence.
    assert!(read(BTreeMap::from([(8, 7)])).is_empty());
    // An active location has no successor; an inactive one is none.
    assert!(read(BTreeMap::from([(7, 8)])).is_empty());
    assert!(read(BTreeMap::from([(5, 8)])).is_empty());
    // A location the copy does not list, to an active one: kept.
    assert_eq!(read(BTreeMap::from([(5, 7)])), BTreeMap::from([(5, 7)]));
    // Chains end at their end; a loop has none.
    let mut chain = Snapshot::from_institutions(answer.data.clone());
    chain.record_replacement(5, 6);
    chain.record_replacement(6, 7);
    chain.record_replacement(1, 2);
    chain.record_replacement(2, 1);
    assert_eq!(
        chain.admit(chain.replacements()),
        BTreeMap::from([(5, 7), (6, 7)])
    );
    // More entries than the copy has locations (2): garbage, all ignored.
    assert!(read(BTreeMap::from([(3, 7), (4, 7), (5, 7)])).is_empty());
    let flood: BTreeMap<i32, i32> = (100_000..1_100_000).map(|id| (id, 7)).collect();
    assert!(read(flood).is_empty());
}

#[test]
fn a_fetch_keeps_only_the_replacements_this_replica_can_justify() {
    use std::collections::BTreeMap;
    let phases = crate::mock::location_phases();
    // Read from the fleet with the migrated copy: 7 → 70 (with its
    // evidence: 7 listed inactive under 70's name) and 5 → 9 (not listed:
    // nothing to check it with).
    let shared = BTreeMap::from([(7, 70), (5, 9)]);
    let read = following(&Snapshot::default(), &phases[2], Some(&shared));
    assert_eq!(read.replacements(), &shared);
    // This replica's own fetch: 7 → 70 is still shown, 5 → 9 cannot be
    // justified and is not carried over.
    let fetched = following(&read, &phases[2], None);
    assert_eq!(fetched.replacements(), &BTreeMap::from([(7, 70)]));
    // What it detected itself outlives its evidence: 7 no longer listed.
    let mut gone = phases[2].clone();
    gone.data[0].locations.retain(|l| l.id != 7);
    let detected = following(
        &following(&Snapshot::default(), &phases[1], None),
        &phases[2],
        None,
    );
    let later = following(&detected, &gone, None);
    assert_eq!(later.successor(7), Some(70));
    // So does one whose evidence it saw in a copy it read; the unlisted
    // one it only read does not.
    let later = following(&read, &gone, None);
    assert_eq!(later.replacements(), &BTreeMap::from([(7, 70)]));
}
