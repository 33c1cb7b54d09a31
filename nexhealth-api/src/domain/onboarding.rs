//! NexHealth's guide to managing syncs, as a typed decision: what the
//! integrator knows goes in, the action to take comes out. Actions that are
//! API calls can be carried out by the client ([`Client::carry_out`]).
//!
//! Creating a sync for a new database goes through `POST /onboardings`; adding
//! a location to an existing sync, replacing a product key and deactivating a
//! location are done by NexHealth support or in the Developer Portal, not
//! through the API.

use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::{EmrName, Onboarding, OnboardingCreateRequest, OnboardingDetails};

/// Who to ask for what the API cannot do.
pub const SUPPORT: &str = "NexHealth support";

/// What the integrator knows about the situation.
///
/// Serialized as `{"scenario": "new_single_location", "details": {…}}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "scenario", content = "details", rename_all = "snake_case")]
pub enum Scenario {
    /// A new customer, not part of any institution you work with, with one
    /// location in its database.
    NewSingleLocation {
        /// Name for the new institution.
        institution_name: String,
        /// Its health record system, if known.
        emr: Option<EmrName>,
    },
    /// A new customer whose cloud health record system (eCW, Dentrix Ascend…)
    /// holds several locations.
    NewMultiLocationCloud {
        /// Name for the new institution.
        institution_name: String,
        /// Its health record system, if known.
        emr: Option<EmrName>,
        /// The locations that must be synced (the cloud user often sees more).
        locations_to_sync: Vec<String>,
    },
    /// An existing customer adds a location with its own server, or with a
    /// cloud health record system it shares with no other office.
    AddLocationOwnDatabase {
        /// The existing institution.
        subdomain: String,
        /// The new location's health record system, if known.
        emr: Option<EmrName>,
    },
    /// An existing customer adds a location that shares a server with sister
    /// locations.
    AddLocationSharedServer {
        /// The existing institution.
        subdomain: String,
        /// Name of the new location.
        new_location: String,
        /// A sister location on the same server that already has an active
        /// sync, if there is one.
        synced_sister: Option<String>,
        /// The shared server's health record system, if known.
        emr: Option<EmrName>,
    },
    /// An office left its practice group and keeps using your application.
    OfficeLeftGroup {
        /// Its location id in the old institution.
        location_id: i32,
        /// Name for its new institution.
        institution_name: String,
        /// Its health record system, if known.
        emr: Option<EmrName>,
    },
    /// The customer deleted the Synchronizer from its server.
    SynchronizerDeleted {
        /// The institution.
        subdomain: String,
        /// The locations served by that server.
        location_ids: Vec<i32>,
    },
    /// Same health record system and setup, moved to a new server.
    ServerMigration {
        /// The institution.
        subdomain: String,
        /// The locations served by the old server.
        location_ids: Vec<i32>,
    },
    /// Moved to another health record system (or from single- to
    /// multi-location), which changes the ids inside the database.
    EmrMigration {
        /// The institution (kept).
        subdomain: String,
        /// The location ids that will stop being current.
        old_location_ids: Vec<i32>,
        /// The new health record system, if known.
        emr: Option<EmrName>,
    },
}

impl Scenario {
    /// The variant's name in snake case (`new_single_location`,
    /// `emr_migration`, …): the `"scenario"` it serializes with.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NewSingleLocation { .. } => "new_single_location",
            Self::NewMultiLocationCloud { .. } => "new_multi_location_cloud",
            Self::AddLocationOwnDatabase { .. } => "add_location_own_database",
            Self::AddLocationSharedServer { .. } => "add_location_shared_server",
            Self::OfficeLeftGroup { .. } => "office_left_group",
            Self::SynchronizerDeleted { .. } => "synchronizer_deleted",
            Self::ServerMigration { .. } => "server_migration",
            Self::EmrMigration { .. } => "emr_migration",
        }
    }
}

/// A message for NexHealth support, with what it must say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SupportRequest {
    /// What to ask for.
    pub subject: String,
    /// The details support needs.
    pub details: Vec<String>,
}

/// What to do.
///
/// Serialized as `{"action": "ask_support", "details": …}`, the details as the
/// variant holds them (a two-value variant as a two-element array).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "action", content = "details", rename_all = "snake_case")]
pub enum Action {
    /// `POST /onboardings` with an institution name: a new institution and sync.
    OnboardNewInstitution(OnboardingCreateRequest),
    /// `POST /onboardings` with a subdomain: a new sync in an existing institution.
    OnboardIntoInstitution(OnboardingCreateRequest),
    /// `POST /onboardings` for a new institution, then tell support which
    /// locations to sync.
    OnboardThenTellSupport(OnboardingCreateRequest, SupportRequest),
    /// Do not create a sync: support adds the location to the existing one.
    AskSupport(SupportRequest),
    /// Reinstall the Synchronizer on the server with a new product key from
    /// support. The sync and location ids stay; data is stale until then.
    ReinstallWithNewProductKey {
        /// The request for the key.
        request: SupportRequest,
        /// Locations whose data is stale until the reinstall.
        stale_location_ids: Vec<i32>,
    },
    /// Deactivate the old location in the Developer Portal (not an API call),
    /// then onboard a new institution.
    DeactivateThenOnboard {
        /// The location to deactivate in the portal.
        deactivate_location_id: i32,
        /// The onboarding of the new institution.
        onboarding: OnboardingCreateRequest,
    },
    /// Onboard a new sync in the same institution; once installed it creates
    /// new locations whose ids (and patient, provider, appointment ids) differ.
    /// Replace the stored ids.
    OnboardAndReplaceLocationIds {
        /// The onboarding of the new sync.
        onboarding: OnboardingCreateRequest,
        /// The stored location ids to replace once the new ones appear.
        replace_location_ids: Vec<i32>,
    },
}

impl Action {
    /// The variant's name in snake case (`onboard_new_institution`,
    /// `ask_support`, …): the `"action"` it serializes with.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::OnboardNewInstitution(_) => "onboard_new_institution",
            Self::OnboardIntoInstitution(_) => "onboard_into_institution",
            Self::OnboardThenTellSupport(..) => "onboard_then_tell_support",
            Self::AskSupport(_) => "ask_support",
            Self::ReinstallWithNewProductKey { .. } => "reinstall_with_new_product_key",
            Self::DeactivateThenOnboard { .. } => "deactivate_then_onboard",
            Self::OnboardAndReplaceLocationIds { .. } => "onboard_and_replace_location_ids",
        }
    }

    /// The `POST /onboardings` body, when the action includes that call.
    pub fn onboarding_request(&self) -> Option<&OnboardingCreateRequest> {
        match self {
            Self::OnboardNewInstitution(r)
            | Self::OnboardIntoInstitution(r)
            | Self::OnboardThenTellSupport(r, _)
            | Self::DeactivateThenOnboard { onboarding: r, .. }
            | Self::OnboardAndReplaceLocationIds { onboarding: r, .. } => Some(r),
            Self::AskSupport(_) | Self::ReinstallWithNewProductKey { .. } => None,
        }
    }

    /// The message for support, when the action needs one.
    pub fn support_request(&self) -> Option<&SupportRequest> {
        match self {
            Self::OnboardThenTellSupport(_, s) | Self::AskSupport(s) => Some(s),
            Self::ReinstallWithNewProductKey { request, .. } => Some(request),
            _ => None,
        }
    }
}

fn new_institution(name: &str, emr: Option<EmrName>) -> OnboardingCreateRequest {
    OnboardingCreateRequest {
        onboarding: OnboardingDetails {
            institution_name: Some(name.to_string()),
            emr_name: emr,
            institution_email: None,
            institution_website: None,
            institution_zip_code: None,
            subdomain: None,
        },
    }
}

fn into_institution(subdomain: &str, emr: Option<EmrName>) -> OnboardingCreateRequest {
    OnboardingCreateRequest {
        onboarding: OnboardingDetails {
            subdomain: Some(subdomain.to_string()),
            emr_name: emr,
            institution_email: None,
            institution_name: None,
            institution_website: None,
            institution_zip_code: None,
        },
    }
}

fn ids(ids: &[i32]) -> String {
    ids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The action NexHealth's guide prescribes for `scenario`.
pub fn decide(scenario: &Scenario) -> Action {
    match scenario {
        Scenario::NewSingleLocation { institution_name, emr } => {
            Action::OnboardNewInstitution(new_institution(institution_name, *emr))
        }
        Scenario::NewMultiLocationCloud {
            institution_name,
            emr,
            locations_to_sync,
        } => Action::OnboardThenTellSupport(
            new_institution(institution_name, *emr),
            SupportRequest {
                subject: format!("Locations to sync for new institution {institution_name}"),
                details: std::iter::once(
                    "Cloud credentials were submitted through the onboarding link; please sync only these locations:".to_string(),
                )
                .chain(locations_to_sync.iter().map(|l| format!("- {l}")))
                .collect(),
            },
        ),
        Scenario::AddLocationOwnDatabase { subdomain, emr } => {
            Action::OnboardIntoInstitution(into_institution(subdomain, *emr))
        }
        Scenario::AddLocationSharedServer {
            subdomain,
            new_location,
            synced_sister: Some(sister),
            ..
        } => Action::AskSupport(SupportRequest {
            subject: format!("Add location {new_location} to an existing sync"),
            details: vec![
                format!("Institution: {subdomain}"),
                format!("Existing location on the same server, already synced: {sister}"),
                format!("New location to add: {new_location}"),
            ],
        }),
        Scenario::AddLocationSharedServer {
            subdomain,
            synced_sister: None,
            emr,
            ..
        } => Action::OnboardIntoInstitution(into_institution(subdomain, *emr)),
        Scenario::OfficeLeftGroup {
            location_id,
            institution_name,
            emr,
        } => Action::DeactivateThenOnboard {
            deactivate_location_id: *location_id,
            onboarding: new_institution(institution_name, *emr),
        },
        Scenario::SynchronizerDeleted { subdomain, location_ids } => Action::ReinstallWithNewProductKey {
            request: SupportRequest {
                subject: "New product key to reinstall a deleted Synchronizer".into(),
                details: vec![
                    format!("Institution: {subdomain}"),
                    format!("Locations served by the server: {}", ids(location_ids)),
                    "The Synchronizer was removed from the server and must be reinstalled.".into(),
                ],
            },
            stale_location_ids: location_ids.clone(),
        },
        Scenario::ServerMigration { subdomain, location_ids } => Action::ReinstallWithNewProductKey {
            request: SupportRequest {
                subject: "New product key after a server migration".into(),
                details: vec![
                    format!("Institution: {subdomain}"),
                    format!("Locations served by the server: {}", ids(location_ids)),
                    "Same health record system and setup on a new server; the sync and locations stay.".into(),
                ],
            },
            stale_location_ids: location_ids.clone(),
        },
        Scenario::EmrMigration {
            subdomain,
            old_location_ids,
            emr,
        } => Action::OnboardAndReplaceLocationIds {
            onboarding: into_institution(subdomain, *emr),
            replace_location_ids: old_location_ids.clone(),
        },
    }
}

impl Client {
    /// Makes the API call an action includes (`POST /onboardings`), if any.
    /// Support requests and portal steps are returned to the caller untouched.
    pub async fn carry_out(&self, action: &Action) -> Result<Option<Onboarding>, Error> {
        match action.onboarding_request() {
            Some(request) => Ok(Some(
                self.post_onboardings()
                    .body(request.clone())
                    .await?
                    .into_data(),
            )),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scenario_gets_the_guides_action() {
        let new = decide(&Scenario::NewSingleLocation {
            institution_name: "Smile".into(),
            emr: Some(EmrName::Opendental),
        });
        assert_eq!(
            new.onboarding_request()
                .unwrap()
                .onboarding
                .institution_name
                .as_deref(),
            Some("Smile")
        );
        assert!(new.support_request().is_none());

        let cloud = decide(&Scenario::NewMultiLocationCloud {
            institution_name: "Group".into(),
            emr: Some(EmrName::Dentrixascend),
            locations_to_sync: vec!["North".into(), "South".into()],
        });
        assert!(matches!(cloud, Action::OnboardThenTellSupport(..)));
        assert!(
            cloud
                .support_request()
                .unwrap()
                .details
                .contains(&"- South".to_string())
        );

        let own = decide(&Scenario::AddLocationOwnDatabase {
            subdomain: "acme".into(),
            emr: None,
        });
        assert_eq!(
            own.onboarding_request()
                .unwrap()
                .onboarding
                .subdomain
                .as_deref(),
            Some("acme")
        );

        let shared_synced = decide(&Scenario::AddLocationSharedServer {
            subdomain: "acme".into(),
            new_location: "Annex".into(),
            synced_sister: Some("Main".into()),
            emr: None,
        });
        assert!(
            shared_synced.onboarding_request().is_none(),
            "no new sync when a sister is synced"
        );
        let details = &shared_synced.support_request().unwrap().details;
        assert!(
            details.iter().any(|d| d.contains("Main"))
                && details.iter().any(|d| d.contains("Annex"))
        );

        let shared_unsynced = decide(&Scenario::AddLocationSharedServer {
            subdomain: "acme".into(),
            new_location: "Annex".into(),
            synced_sister: None,
            emr: None,
        });
        assert!(matches!(shared_unsynced, Action::OnboardIntoInstitution(_)));

        let left = decide(&Scenario::OfficeLeftGroup {
            location_id: 7,
            institution_name: "Solo".into(),
            emr: None,
        });
        assert!(matches!(
            left,
            Action::DeactivateThenOnboard {
                deactivate_location_id: 7,
                ..
            }
        ));

        for scenario in [
            Scenario::SynchronizerDeleted {
                subdomain: "acme".into(),
                location_ids: vec![7],
            },
            Scenario::ServerMigration {
                subdomain: "acme".into(),
                location_ids: vec![7, 8],
            },
        ] {
            let action = decide(&scenario);
            assert!(matches!(action, Action::ReinstallWithNewProductKey { .. }));
            assert!(
                action.onboarding_request().is_none(),
                "same sync, no new onboarding"
            );
        }

        let emr = decide(&Scenario::EmrMigration {
            subdomain: "acme".into(),
            old_location_ids: vec![7],
            emr: Some(EmrName::Dentrix),
        });
        match emr {
            Action::OnboardAndReplaceLocationIds {
                onboarding,
                replace_location_ids,
            } => {
                assert_eq!(
                    onboarding.onboarding.subdomain.as_deref(),
                    Some("acme"),
                    "the institution is kept"
                );
                assert_eq!(replace_location_ids, vec![7]);
            }
            other => panic!("{other:?}"),
        }
    }

    fn details(action: &Action) -> &OnboardingDetails {
        &action
            .onboarding_request()
            .expect("an onboarding")
            .onboarding
    }

    #[test]
    fn a_new_institution_is_named_and_keeps_its_health_record_system() {
        let new = decide(&Scenario::NewSingleLocation {
            institution_name: "Smile".into(),
            emr: Some(EmrName::Opendental),
        });
        assert!(matches!(new, Action::OnboardNewInstitution(_)));
        let d = details(&new);
        assert_eq!(d.institution_name.as_deref(), Some("Smile"));
        assert_eq!(d.emr_name, Some(EmrName::Opendental));
        assert_eq!(d.subdomain, None, "a new institution has no subdomain yet");
    }

    #[test]
    fn an_office_that_left_its_group_onboards_under_a_new_name_not_a_subdomain() {
        let left = decide(&Scenario::OfficeLeftGroup {
            location_id: 8,
            institution_name: "Uptown Dental".into(),
            emr: Some(EmrName::Dentrix),
        });
        let Action::DeactivateThenOnboard {
            deactivate_location_id,
            onboarding,
        } = &left
        else {
            panic!("{left:?}");
        };
        assert_eq!(*deactivate_location_id, 8);
        assert_eq!(
            onboarding.onboarding.institution_name.as_deref(),
            Some("Uptown Dental")
        );
        assert_eq!(onboarding.onboarding.subdomain, None);
        assert_eq!(onboarding.onboarding.emr_name, Some(EmrName::Dentrix));
    }

    #[test]
    fn a_location_with_its_own_database_onboards_into_the_existing_institution() {
        let own = decide(&Scenario::AddLocationOwnDatabase {
            subdomain: "acme".into(),
            emr: Some(EmrName::Dentrix),
        });
        assert!(matches!(own, Action::OnboardIntoInstitution(_)));
        let d = details(&own);
        assert_eq!(d.subdomain.as_deref(), Some("acme"));
        assert_eq!(d.institution_name, None);
        assert_eq!(d.emr_name, Some(EmrName::Dentrix));
    }

    #[test]
    fn a_deleted_synchronizer_asks_support_naming_the_locations() {
        let action = decide(&Scenario::SynchronizerDeleted {
            subdomain: "acme".into(),
            location_ids: vec![7, 8],
        });
        let request = action.support_request().expect("a message for support");
        assert!(
            request
                .details
                .contains(&"Locations served by the server: 7, 8".to_string()),
            "{request:?}"
        );
        assert!(action.onboarding_request().is_none());
    }

    #[test]
    fn as_str_is_the_serialized_tag() {
        let scenarios = [
            Scenario::NewSingleLocation {
                institution_name: "A".into(),
                emr: None,
            },
            Scenario::SynchronizerDeleted {
                subdomain: "a".into(),
                location_ids: vec![1],
            },
            Scenario::EmrMigration {
                subdomain: "a".into(),
                old_location_ids: vec![1],
                emr: None,
            },
        ];
        for scenario in &scenarios {
            let value = serde_json::to_value(scenario).unwrap();
            assert_eq!(value["scenario"], scenario.as_str());
            let action = decide(scenario);
            assert_eq!(
                serde_json::to_value(&action).unwrap()["action"],
                action.as_str()
            );
        }
        assert_eq!(scenarios[1].as_str(), "synchronizer_deleted");
        assert_eq!(
            decide(&scenarios[1]).as_str(),
            "reinstall_with_new_product_key"
        );
    }
}
