//! What the seed asks of an integrator: the location directory, sync health,
//! the onboarding guide and cursor streams, against httpmock.

use std::time::Duration;

use futures::TryStreamExt;
use httpmock::Method::{GET, POST};
use nexhealth_api::mock::{MockServerExt, payloads};
use nexhealth_api::onboarding::{Action, Scenario, decide};
use nexhealth_api::sync_health::WriteReadiness;
use nexhealth_api::{LocationDirectory, OnboardingQuery};
use nexhealth_contract_tests::Harness;
use serde_json::json;

fn two_institutions() -> serde_json::Value {
    let mut body = serde_json::to_value(payloads::locations()).unwrap();
    let mut other = body["data"][0].clone();
    other["id"] = json!(2);
    other["subdomain"] = json!("other-group");
    other["locations"][0]["id"] = json!(70);
    other["locations"][0]["foreign_id"] = json!("1");
    other["locations"][1]["id"] = json!(80);
    body["data"].as_array_mut().unwrap().push(other);
    body
}

#[tokio::test]
async fn a_thousand_concurrent_lookups_cost_one_call() {
    let h = Harness::start().await;
    h.auth();
    let locations = h.server.mock(|when, then| {
        when.method(GET)
            .path("/locations")
            .query_param_missing("subdomain");
        then.status(200)
            .delay(Duration::from_millis(100))
            .json_body(two_institutions());
    });
    let (client, fallback) = h.client();
    let directory = LocationDirectory::new(client);
    let lookups = (0..1_000).map(|i| {
        let directory = directory.clone();
        tokio::spawn(async move { directory.scope(if i % 2 == 0 { 7 } else { 80 }).await })
    });
    for (i, result) in futures::future::join_all(lookups)
        .await
        .into_iter()
        .enumerate()
    {
        let scope = result.unwrap().unwrap();
        if i % 2 == 0 {
            assert_eq!(
                (scope.subdomain.as_str(), scope.location_id, scope.inactive),
                ("example-subdomain", 7, false)
            );
        } else {
            assert_eq!(
                (scope.subdomain.as_str(), scope.location_id, scope.inactive),
                ("other-group", 80, true)
            );
        }
    }
    locations.assert_calls(1);
    assert_eq!(directory.fetches(), 1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn lookups_and_scopes_answer_without_a_call_when_the_directory_knows() {
    let h = Harness::start().await;
    h.auth();
    let locations = h.server.mock(|when, then| {
        when.method(GET).path("/locations");
        then.status(200).json_body(two_institutions());
    });
    let (client, fallback) = h.client();
    let directory = LocationDirectory::new(client);
    let entry = directory.location(8).await.unwrap().unwrap();
    assert!(
        entry.is_inactive(),
        "inactive locations are kept and flagged"
    );
    assert_eq!(
        directory
            .by_foreign_id("other-group", "1")
            .await
            .unwrap()
            .unwrap()
            .location
            .id,
        70
    );
    assert_eq!(
        directory
            .by_foreign_id("example-subdomain", "1")
            .await
            .unwrap()
            .unwrap()
            .location
            .id,
        7
    );
    assert_eq!(
        directory.in_subdomain("other-group").await.unwrap().len(),
        2
    );

    let error = directory
        .scope_in("example-subdomain", 70)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            nexhealth_api::Error::LocationNotInInstitution {
                location_id: 70,
                ..
            }
        ),
        "{error}"
    );
    let error = directory.scope_in("not-ours", 7).await.unwrap_err();
    assert!(
        matches!(error, nexhealth_api::Error::SubdomainNotAccessible { .. }),
        "{error}"
    );
    let error = directory.scope(999).await.unwrap_err();
    assert!(error.is_directory_miss(), "{error}");
    assert_eq!(
        directory
            .scope_in("other-group", 70)
            .await
            .unwrap()
            .location_id,
        70
    );
    locations.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn the_directory_refreshes_after_its_ttl_and_on_demand() {
    let h = Harness::start().await;
    h.auth();
    let locations = h.server.get_locations(|when, then| {
        when.subdomain("example-subdomain");
        then.ok(&payloads::locations());
    });
    let (client, fallback) = h.client();
    let directory = LocationDirectory::for_subdomain(client, "example-subdomain")
        .with_ttl(Duration::from_millis(200));
    directory.scope(7).await.unwrap();
    directory.scope(7).await.unwrap();
    locations.assert_calls(1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    directory.scope(7).await.unwrap();
    locations.assert_calls(2);
    directory.refresh().await.unwrap();
    locations.assert_calls(3);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_failed_fetch_is_reported_and_retried_on_the_next_lookup() {
    let h = Harness::start().await;
    h.auth();
    let forbidden = h.server.mock(|when, then| {
        when.method(GET).path("/locations");
        then.status(403).json_body_obj(&payloads::error(403));
    });
    let (client, _) = h.client();
    let directory = LocationDirectory::for_subdomain(client, "someone-else");
    assert!(directory.scope(7).await.unwrap_err().is_forbidden());
    assert!(directory.scope(7).await.unwrap_err().is_forbidden());
    forbidden.assert_calls(2);
}

#[tokio::test]
async fn sync_health_per_sync_and_per_location() {
    let h = Harness::start().await;
    h.auth();
    let now = chrono::Utc::now();
    let minutes_ago = |m: i64| (now - chrono::Duration::minutes(m)).to_rfc3339();
    let mut body = serde_json::to_value(payloads::sync_status()).unwrap();
    body["data"][0]["read_status_at"] = json!(minutes_ago(10));
    body["data"][0]["write_status_at"] = json!(minutes_ago(2));
    body["data"][1]["read_status_at"] = json!(minutes_ago(200));
    body["data"][1]["write_status_at"] = json!(minutes_ago(90));
    let mock = h.server.mock(|when, then| {
        when.method(GET)
            .path("/sync_status")
            .query_param("subdomain", "example-subdomain");
        then.status(200).json_body(body);
    });
    let (client, fallback) = h.client();
    let report = client.sync_health(Some("example-subdomain")).await.unwrap();
    assert!(report.syncs[0].is_healthy());
    assert!(report.syncs[1].read.stale, "200 minutes > 150");
    assert!(report.syncs[1].write.age.unwrap() >= Duration::from_secs(89 * 60));
    assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
    assert_eq!(
        report.write_readiness(8),
        WriteReadiness::Down,
        "write status is red"
    );
    assert_eq!(report.write_readiness(12345), WriteReadiness::NoSync);
    assert_eq!(report.unhealthy().count(), 1);
    mock.assert_calls(1);
    fallback.assert_calls(0);
}

fn page(ids: &[&str], next: Option<&str>, has_next: bool) -> serde_json::Value {
    let mut body = serde_json::to_value(payloads::onboardings()).unwrap();
    let template = body["data"][0].clone();
    body["data"] = ids
        .iter()
        .map(|id| {
            let mut o = template.clone();
            o["id"] = json!(id);
            o
        })
        .collect();
    body["page_info"] = json!({"has_previous_page": false, "has_next_page": has_next, "start_cursor": "s", "end_cursor": next});
    body
}

#[tokio::test]
async fn onboardings_stream_follows_cursors_lazily() {
    let h = Harness::start().await;
    h.auth();
    let first = h.server.mock(|when, then| {
        when.method(GET)
            .path("/onboardings")
            .query_param_missing("end_cursor")
            .query_param("per_page", "2");
        then.status(200)
            .json_body(page(&["a", "b"], Some("c1"), true));
    });
    let second = h.server.mock(|when, then| {
        when.method(GET)
            .path("/onboardings")
            .query_param("end_cursor", "c1");
        then.status(200)
            .json_body(page(&["c", "d"], Some("c2"), true));
    });
    let third = h.server.mock(|when, then| {
        when.method(GET)
            .path("/onboardings")
            .query_param("end_cursor", "c2");
        then.status(200).json_body(page(&["e"], Some("c3"), false));
    });
    let (client, fallback) = h.client();
    let query = OnboardingQuery {
        per_page: std::num::NonZeroU32::new(2),
        ..Default::default()
    };
    let mut stream = std::pin::pin!(client.onboardings_stream(query));
    // Lazy: the first page is fetched on the first poll, the second only when
    // the first is used up.
    let a = stream.try_next().await.unwrap().unwrap();
    let b = stream.try_next().await.unwrap().unwrap();
    first.assert_calls(1);
    second.assert_calls(0);
    let rest: Vec<_> = stream.try_collect().await.unwrap();
    let ids: Vec<&str> = [&a, &b]
        .into_iter()
        .chain(&rest)
        .map(|o| o.id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    first.assert_calls(1);
    second.assert_calls(1);
    third.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn onboardings_stream_stops_on_a_repeated_or_missing_cursor() {
    let h = Harness::start().await;
    h.auth();
    let looping = h.server.mock(|when, then| {
        when.method(GET)
            .path("/onboardings")
            .query_param("subdomain", "loop");
        then.status(200).json_body(page(&["a"], Some("same"), true));
    });
    let missing = h.server.mock(|when, then| {
        when.method(GET)
            .path("/onboardings")
            .query_param("subdomain", "missing");
        then.status(200).json_body(page(&["a"], None, true));
    });
    // A → B → A: a cursor seen two pages earlier stops the walk too.
    let cycle = |cursor: Option<&'static str>, next: &'static str| {
        h.server.mock(move |when, then| {
            let when = when
                .method(GET)
                .path("/onboardings")
                .query_param("subdomain", "cycle");
            match cursor {
                Some(cursor) => when.query_param("end_cursor", cursor),
                None => when.query_param_missing("end_cursor"),
            };
            then.status(200).json_body(page(&["x"], Some(next), true));
        })
    };
    let start = cycle(None, "A");
    let after_a = cycle(Some("A"), "B");
    let after_b = cycle(Some("B"), "A");
    // An empty cursor with a next page announced is not followed.
    let empty = h.server.mock(|when, then| {
        when.method(GET)
            .path("/onboardings")
            .query_param("subdomain", "empty");
        then.status(200).json_body(page(&["a"], Some(""), true));
    });
    let (client, fallback) = h.client();
    let query = |s: &str| OnboardingQuery {
        subdomain: Some(s.into()),
        ..Default::default()
    };
    // A stream that does not stop fails here instead of hanging the suite.
    let within = |f| tokio::time::timeout(std::time::Duration::from_secs(10), f);
    let cycled: Vec<_> = within(
        client
            .onboardings_stream(query("cycle"))
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("an A→B→A cursor loop stops")
    .unwrap();
    assert_eq!(cycled.len(), 3);
    start.assert_calls(1);
    after_a.assert_calls(1);
    after_b.assert_calls(1);
    let stopped: Vec<_> = within(
        client
            .onboardings_stream(query("empty"))
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("an empty cursor stops")
    .unwrap();
    assert_eq!(stopped.len(), 1);
    empty.assert_calls(1);
    let looped: Vec<_> = within(
        client
            .onboardings_stream(query("loop"))
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("a repeated cursor stops")
    .unwrap();
    assert_eq!(
        looped.len(),
        2,
        "the page behind the first cursor, then the repeat stops it"
    );
    looping.assert_calls(2);
    let cut: Vec<_> = client
        .onboardings_stream(query("missing"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(cut.len(), 1);
    missing.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn an_onboarding_decision_is_carried_out_through_the_client() {
    let h = Harness::start().await;
    h.auth();
    let created = h.server.mock(|when, then| {
        when.method(POST)
            .path("/onboardings")
            .json_body(json!({"onboarding": {"subdomain": "acme", "emr_name": "dentrix"}}));
        then.status(201)
            .json_body_obj(&payloads::onboarding_created());
    });
    let (client, fallback) = h.client();
    let action = decide(&Scenario::AddLocationSharedServer {
        subdomain: "acme".into(),
        new_location: "Annex".into(),
        synced_sister: None,
        emr: Some(nexhealth_api::types::EmrName::Dentrix),
    });
    assert!(matches!(action, Action::OnboardIntoInstitution(_)));
    let onboarding = client.carry_out(&action).await.unwrap().unwrap();
    assert!(onboarding.url.is_some());
    // A support request makes no call.
    let support = decide(&Scenario::ServerMigration {
        subdomain: "acme".into(),
        location_ids: vec![7],
    });
    assert_eq!(client.carry_out(&support).await.unwrap(), None);
    created.assert_calls(1);
    fallback.assert_calls(0);
}

/// A client without the harness's catch-all fallback mock, for tests that
/// replace a mock midway (httpmock answers with the first mock that matches,
/// and the fallback would shadow any mock created after it).
fn client_without_fallback(h: &Harness) -> nexhealth_api::Client {
    nexhealth_api::Client::builder(nexhealth_contract_tests::API_KEY)
        .base_url(h.server.base_url())
        .retry(nexhealth_contract_tests::fast_retries())
        .build()
        .unwrap()
}

/// `/locations` answering `body` until the returned mock is deleted.
fn locations_answer(h: &Harness, body: serde_json::Value) -> httpmock::Mock<'_> {
    h.server.mock(|when, then| {
        when.method(GET)
            .path("/locations")
            .query_param_missing("subdomain");
        then.status(200).json_body(body);
    })
}

/// A location added after the directory's fetch is found on first use, and a
/// flood of unknown ids costs one call per interval.
#[tokio::test]
async fn unknown_ids_refresh_at_most_once_per_interval() {
    let h = Harness::start().await;
    h.auth();
    let mut first = locations_answer(&h, serde_json::to_value(payloads::locations()).unwrap());
    let client = client_without_fallback(&h);
    let directory = LocationDirectory::new(client).with_unknown_refresh(Duration::from_millis(300));
    assert!(directory.location(7).await.unwrap().is_some());
    first.assert_calls(1);
    // Location 70 appears in /locations.
    let second = locations_answer(&h, two_institutions());
    first.delete();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let found = directory.location(70).await.unwrap();
    assert_eq!(found.map(|e| e.location.id), Some(70), "found on first use");
    second.assert_calls(1);
    // 1,000 lookups of ids nobody has, at once and then again: one call for
    // the interval, none for known ids, the answer "not found".
    let lookups = (0..1_000).map(|i| {
        let directory = directory.clone();
        tokio::spawn(async move { directory.location(10_000 + i).await })
    });
    for result in futures::future::join_all(lookups).await {
        assert!(result.unwrap().unwrap().is_none());
    }
    assert!(directory.location(7).await.unwrap().is_some());
    second.assert_calls(1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let lookups = (0..1_000).map(|i| {
        let directory = directory.clone();
        tokio::spawn(async move { directory.scope(20_000 + i).await })
    });
    for result in futures::future::join_all(lookups).await {
        assert!(result.unwrap().unwrap_err().to_string().contains("20"));
    }
    second.assert_calls(2);
}

/// The watch yields what changed at each refresh: NexHealth's migration (a
/// new location with the old name, the old one deactivated) as `replaced`,
/// and the stored old id resolves to the new one.
#[tokio::test]
async fn the_watch_yields_a_replacement_and_the_successor_resolves() {
    let h = Harness::start().await;
    h.auth();
    let before = serde_json::to_value(payloads::locations()).unwrap();
    let mut after = before.clone();
    after["data"][0]["locations"][0]["inactive"] = json!(true);
    let mut newcomer = after["data"][0]["locations"][0].clone();
    newcomer["id"] = json!(700);
    newcomer["inactive"] = json!(false);
    after["data"][0]["locations"]
        .as_array_mut()
        .unwrap()
        .push(newcomer);
    let mut first = locations_answer(&h, before);
    let client = client_without_fallback(&h);
    let directory = LocationDirectory::new(client);
    let (sender, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let watcher = {
        let watch = directory.watch(Duration::from_millis(50));
        tokio::spawn(async move {
            let mut watch = std::pin::pin!(watch);
            while let Some(change) = watch.try_next().await.unwrap() {
                if sender.send(change).is_err() {
                    break;
                }
            }
        })
    };
    // The baseline fetch yields nothing; the answer changes once it is taken.
    while directory.fetches() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(changes.try_recv().is_err(), "no change from the baseline");
    let _second = locations_answer(&h, after);
    first.delete();
    let change = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("a change within 5 s")
        .unwrap();
    let value = serde_json::to_value(&change).unwrap();
    assert_eq!(value["change"], json!("replaced"), "{value}");
    assert_eq!(
        (value["old"].clone(), value["new"].clone()),
        (json!(7), json!(700))
    );
    assert_eq!(directory.successor(7).await.unwrap(), Some(700));
    assert_eq!(
        directory.successor(8).await.unwrap(),
        None,
        "8 is inactive, with no successor"
    );
    watcher.abort();
}
