//! The main job never drops data: the overview the `directory` example prints
//! joins `/institutions`, `/locations` and `/sync_status` by institution id and
//! shows every location, saying what it could not read. Its output is what a
//! person reads, so these tests assert the printed lines.

use nexhealth_api::directory::Snapshot;
use nexhealth_api::mock::{MockServerExt, payloads};
use nexhealth_api::overview::{Listing, Overview};
use nexhealth_api::types::{Institution, InstitutionLocations, LocationSummary};
use nexhealth_contract_tests::Harness;
use nexhealth_contract_tests::prism::Prism;

fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim_end).collect()
}

/// The location lines of the overview (`      7  Default ...`).
fn location_ids(text: &str) -> Vec<i32> {
    text.lines()
        .filter(|l| l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// NexHealth's own documentation examples, as Prism serves them: `/institutions`
/// names institution 1 `example-sandbox`, `/locations` names it
/// `example-subdomain`. Joined by id, its location is shown under it.
#[tokio::test]
async fn the_documentation_examples_with_two_subdomains_for_one_institution() {
    let prism = Prism::start(false);
    let client = prism.client();
    let overview = Overview::fetch(&client).await.unwrap();
    let text = overview.to_string();
    let shown = lines(&text);
    assert_eq!(shown[0], "1 institution(s), 1 location(s)", "{text}");
    assert!(
        shown.contains(&"Institution General Practice  subdomain=example-sandbox  id=1"),
        "{text}"
    );
    assert!(
        shown
            .contains(&"  note: /locations gives this institution the subdomain example-subdomain"),
        "{text}"
    );
    assert!(shown.contains(&"  Locations (1):"), "{text}");
    assert_eq!(location_ids(&text), vec![7], "{text}");
    assert!(prism.violations().is_empty(), "{:?}", prism.violations());
}

fn institution(id: i32, subdomain: &str, name: &str) -> Institution {
    let mut institution = payloads::institutions().data.remove(0);
    institution.id = id;
    institution.subdomain = subdomain.into();
    institution.name = Some(name.into());
    institution.locations = Vec::<LocationSummary>::new();
    institution
}

fn with_locations(id: i32, subdomain: &str, location_ids: &[i32]) -> InstitutionLocations {
    let mut entry = payloads::locations().data.remove(0);
    let template = entry.locations[0].clone();
    entry.id = id;
    entry.subdomain = subdomain.into();
    entry.locations = location_ids
        .iter()
        .map(|&id| nexhealth_api::types::Location {
            id,
            name: Some(format!("Office {id}")),
            ..template.clone()
        })
        .collect();
    entry
}

/// The same institution spelled two ways, against httpmock: `/institutions`
/// says `alpha-old`, `/locations` says `alpha`. Joined by id, its locations
/// sit under the one institution, with a note; joined by subdomain they would
/// show as a second institution that `/institutions` does not list.
#[tokio::test]
async fn one_institution_spelled_two_ways_is_joined_by_id() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let mut institutions = payloads::institutions();
    institutions.data = vec![institution(1, "alpha-old", "Alpha Dental")];
    institutions.count = Some(1);
    h.server.get_institutions(|_, then| {
        then.ok(&institutions);
    });
    let mut locations = payloads::locations();
    locations.data = vec![with_locations(1, "alpha", &[11, 12])];
    // Location 12 is inactive, though its sync is green and fresh.
    locations.data[0].locations[1].inactive = Some(true);
    h.server.get_locations(|when, then| {
        when.subdomain(None);
        then.ok(&locations);
    });
    let mut syncs = payloads::sync_status();
    syncs.data[0].locations[0].id = 11;
    let mut twelve = syncs.data[0].locations[0].clone();
    twelve.id = 12;
    syncs.data[0].locations.push(twelve);
    h.server.get_sync_status(|when, then| {
        when.subdomain("alpha-old");
        then.ok(&syncs);
    });
    let (client, fallback) = h.client();
    let overview = Overview::fetch(&client).await.unwrap();
    assert_eq!(overview.institutions.len(), 1, "{overview}");
    let view = &overview.institutions[0];
    assert_eq!(view.id, 1);
    assert_eq!(view.subdomain, "alpha-old");
    assert_eq!(view.other_subdomain.as_deref(), Some("alpha"));
    let ids: Vec<i32> = view.locations.iter().map(|e| e.location.id).collect();
    assert_eq!(ids, [11, 12]);
    let report = view.syncs.as_ref().unwrap();
    assert!(report.write_readiness_of(&view.locations[0]).can_write());
    assert_eq!(
        report.write_readiness_of(&view.locations[1]),
        nexhealth_api::sync_health::WriteReadiness::Inactive
    );
    // The sync alone says location 12 could be written.
    assert!(report.write_readiness(12).can_write());
    let text = overview.to_string();
    assert!(
        lines(&text).contains(&"  note: /locations gives this institution the subdomain alpha"),
        "{text}"
    );
    let line12 = lines(&text)
        .into_iter()
        .find(|l| l.trim_start().starts_with("12 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line12.contains("no writes (inactive)"), "{line12}");
    fallback.assert_calls(0);
}

/// Two listed institutions (one with no locations, one whose `/sync_status`
/// answers 403) and a location whose institution `/institutions` does not list.
#[tokio::test]
async fn unlisted_institutions_empty_ones_and_unreadable_syncs_are_all_shown() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let mut institutions = payloads::institutions();
    institutions.data = vec![
        institution(1, "alpha", "Alpha Dental"),
        institution(2, "beta", "Beta Ortho"),
        institution(3, "gamma", "Gamma Empty"),
    ];
    institutions.count = Some(3);
    h.server.get_institutions(|_, then| {
        then.ok(&institutions);
    });
    let mut locations = payloads::locations();
    locations.data = vec![
        with_locations(1, "alpha", &[11, 12]),
        with_locations(2, "beta", &[21]),
        with_locations(9, "delta", &[91]),
    ];
    h.server.get_locations(|when, then| {
        // Every institution's locations: no subdomain filter.
        when.subdomain(None);
        then.ok(&locations);
    });
    for subdomain in ["alpha", "gamma", "delta"] {
        h.server.get_sync_status(|when, then| {
            when.subdomain(subdomain);
            then.ok(&payloads::sync_status());
        });
    }
    let forbidden = h.server.get_sync_status(|when, then| {
        when.subdomain("beta");
        then.forbidden(&payloads::error(403));
    });
    let (client, fallback) = h.client();

    let overview = Overview::fetch(&client).await.unwrap();
    let text = overview.to_string();
    let shown = lines(&text);
    assert_eq!(shown[0], "4 institution(s), 4 location(s)", "{text}");
    // Every location is shown exactly once, under its own institution.
    let mut ids = location_ids(&text);
    ids.sort();
    assert_eq!(ids, vec![11, 12, 21, 91], "{text}");
    let block = |header: &str| -> String {
        let start = text
            .find(header)
            .unwrap_or_else(|| panic!("no {header:?} in\n{text}"));
        let rest = &text[start..];
        let end = rest[1..]
            .find("\nInstitution ")
            .map_or(rest.len(), |e| e + 1);
        rest[..end].to_string()
    };
    let beta = block("Institution Beta Ortho  subdomain=beta  id=2");
    assert!(
        beta.contains("  Syncs: unavailable (this API key cannot reach it (403))"),
        "{beta}"
    );
    assert!(beta.contains("  Locations (1):"), "{beta}");
    assert_eq!(location_ids(&beta), vec![21], "{beta}");
    let gamma = block("Institution Gamma Empty  subdomain=gamma  id=3");
    assert!(gamma.contains("  Locations (0):"), "{gamma}");
    let delta =
        block("subdomain=delta  id=9  [not listed by /institutions; as /locations describes it]");
    assert_eq!(location_ids(&delta), vec![91], "{delta}");
    assert_eq!(
        overview
            .institutions
            .iter()
            .filter(|i| i.listing == Listing::OnlyInLocations)
            .count(),
        1
    );
    forbidden.assert_calls(1);
    fallback.assert_calls(0);

    // The directory joins the same way: by institution id.
    let snapshot = Snapshot::from_institutions(locations.data.clone());
    let alpha: Vec<i32> = snapshot.in_institution(1).map(|e| e.location.id).collect();
    assert_eq!(alpha, vec![11, 12]);
    assert_eq!(snapshot.in_institution(3).count(), 0);
    assert_eq!(snapshot.location(91).unwrap().institution_id, 9);
    assert_eq!(snapshot.scope(91, Some("delta")).unwrap().location_id, 91);
}

/// `/institutions` unreadable: the overview still shows every location, and
/// says which endpoint it could not read.
#[tokio::test]
async fn an_unreadable_institutions_list_still_shows_every_location() {
    let h = Harness::start().await;
    let _auth = h.auth();
    h.server.get_institutions(|_, then| {
        then.internal_server_error(&payloads::error(500));
    });
    h.server.get_locations(|_, then| {
        then.ok(&payloads::locations());
    });
    h.server.get_sync_status(|_, then| {
        then.ok(&payloads::sync_status());
    });
    let (client, fallback) = h.client();
    let text = Overview::fetch(&client).await.unwrap().to_string();
    let shown = lines(&text);
    assert_eq!(shown[0], "1 institution(s), 2 location(s)", "{text}");
    assert!(
        shown[1].starts_with("/institutions: unavailable (") && shown[1].contains("500"),
        "{text}"
    );
    let mut ids = location_ids(&text);
    ids.sort();
    assert_eq!(ids, vec![7, 8], "{text}");
    fallback.assert_calls(0);
}
