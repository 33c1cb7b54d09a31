//! The directory a person reads: every institution with its syncs and its
//! locations, joined from three endpoints (`/institutions`, `/locations`,
//! `/sync_status`) without ever dropping what one of them said.
//!
//! The join key is the **institution id**, which NexHealth never changes. A
//! subdomain can differ between two answers (NexHealth's own documentation
//! examples give institution 1 two subdomains; an institution renamed between
//! two calls does the same), so it is shown, never joined on. A location whose
//! institution `/institutions` does not list still appears, under its
//! institution as `/locations` describes it, marked as such. An institution
//! whose sync status cannot be read still shows its locations, with the reason.
//!
//! [`Overview`] renders as text (`Display`): what the `directory` example prints.

use std::fmt;

use crate::domain::snapshot::{Entry, Snapshot};
use crate::domain::sync_health::{Side, State, SyncReport, WriteReadiness};
use crate::error::Error;
use crate::generated::Client;

/// Where an institution in the overview came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Listed by `/institutions`.
    Listed,
    /// Not listed by `/institutions` (or that endpoint could not be read):
    /// known only from `/locations`.
    OnlyInLocations,
}

impl Listing {
    /// `listed` or `only_in_locations`; also what it serializes as.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Listed => "listed",
            Self::OnlyInLocations => "only_in_locations",
        }
    }
}

super::serialize::serialize_as_str!(Listing);

/// One institution with what could be read about it.
///
/// Serialized as its fields, with [`syncs`](Self::syncs) split in two:
/// `"syncs"` holds the report (or `null`) and `"syncs_unavailable"` the reason
/// it could not be read (or `null`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstitutionView {
    /// NexHealth's id: the join key.
    pub id: i32,
    /// The name (from `/institutions` when listed there).
    pub name: Option<String>,
    /// The subdomain (from `/institutions` when listed there).
    pub subdomain: String,
    /// Where this institution came from.
    pub listing: Listing,
    /// The subdomain `/locations` gives the same institution, when it differs.
    pub other_subdomain: Option<String>,
    /// The sync report for [`subdomain`](Self::subdomain), or why there is none.
    #[serde(flatten, serialize_with = "syncs_or_reason")]
    pub syncs: Result<SyncReport, String>,
    /// Its locations, from `/locations`.
    pub locations: Vec<Entry>,
}

fn syncs_or_reason<S: serde::Serializer>(
    syncs: &Result<SyncReport, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = serializer.serialize_map(Some(2))?;
    out.serialize_entry("syncs", &syncs.as_ref().ok())?;
    out.serialize_entry("syncs_unavailable", &syncs.as_ref().err())?;
    out.end()
}

/// Every institution, sync and location a key can read, joined by institution id.
///
/// Serialized as `{"institutions": [InstitutionView…], "unavailable":
/// [{"endpoint": "/institutions", "reason": "…"}]}`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overview {
    /// The institutions, in `/institutions` order, then those only `/locations` names.
    pub institutions: Vec<InstitutionView>,
    /// Endpoints that could not be read, with the reason (shown, not fatal).
    #[serde(serialize_with = "endpoints_and_reasons")]
    pub unavailable: Vec<(&'static str, String)>,
}

fn endpoints_and_reasons<S: serde::Serializer>(
    unavailable: &[(&'static str, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(serde::Serialize)]
    struct Unavailable<'a> {
        endpoint: &'a str,
        reason: &'a str,
    }
    serializer.collect_seq(
        unavailable
            .iter()
            .map(|(endpoint, reason)| Unavailable { endpoint, reason }),
    )
}

/// A short, safe reason for a failed call (no body, no key).
pub fn reason(error: &Error) -> String {
    if error.is_forbidden() {
        "this API key cannot reach it (403)".into()
    } else {
        error.to_string()
    }
}

impl Overview {
    /// Reads `/institutions`, `/locations`, and `/sync_status` for each
    /// institution. Fails only when neither `/institutions` nor `/locations`
    /// can be read; any other failure is kept as a reason in the overview.
    pub async fn fetch(client: &Client) -> Result<Self, Error> {
        let institutions = client.get_institutions().await.map(|r| r.into_data());
        let locations = client.get_locations().await.map(|r| r.into_data());
        let (institutions, locations) = match (institutions, locations) {
            (Err(e), Err(_)) => return Err(e),
            (i, l) => (i, l),
        };
        let mut unavailable = Vec::new();
        let institutions = institutions.unwrap_or_else(|e| {
            unavailable.push(("/institutions", reason(&e)));
            Vec::new()
        });
        let snapshot = match locations {
            Ok(locations) => Snapshot::from_institutions(locations),
            Err(e) => {
                unavailable.push(("/locations", reason(&e)));
                Snapshot::default()
            }
        };

        let mut views: Vec<InstitutionView> = institutions
            .into_iter()
            .map(|i| InstitutionView {
                id: i.id,
                name: i.name,
                subdomain: i.subdomain,
                listing: Listing::Listed,
                other_subdomain: None,
                syncs: Err(String::new()),
                locations: Vec::new(),
            })
            .collect();
        for entry in snapshot.entries() {
            let view = match views.iter_mut().position(|v| v.id == entry.institution_id) {
                Some(i) => &mut views[i],
                None => {
                    views.push(InstitutionView {
                        id: entry.institution_id,
                        name: entry.institution_name.clone(),
                        subdomain: entry.subdomain.clone(),
                        listing: Listing::OnlyInLocations,
                        other_subdomain: None,
                        syncs: Err(String::new()),
                        locations: Vec::new(),
                    });
                    views.last_mut().expect("just pushed")
                }
            };
            if entry.subdomain != view.subdomain {
                view.other_subdomain = Some(entry.subdomain.clone());
            }
            view.locations.push(entry.clone());
        }
        for view in &mut views {
            view.syncs = client
                .sync_health(Some(&view.subdomain))
                .await
                .map_err(|e| reason(&e));
        }
        Ok(Self {
            institutions: views,
            unavailable,
        })
    }

    /// How many locations the overview shows.
    pub fn location_count(&self) -> usize {
        self.institutions.iter().map(|i| i.locations.len()).sum()
    }
}

impl fmt::Display for Overview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} institution(s), {} location(s)",
            self.institutions.len(),
            self.location_count()
        )?;
        for (endpoint, reason) in &self.unavailable {
            writeln!(f, "{endpoint}: unavailable ({reason})")?;
        }
        for institution in &self.institutions {
            write!(f, "{institution}")?;
        }
        Ok(())
    }
}

impl fmt::Display for InstitutionView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_deref().unwrap_or("(unnamed)");
        write!(
            f,
            "\nInstitution {name}  subdomain={}  id={}",
            self.subdomain, self.id
        )?;
        if self.listing == Listing::OnlyInLocations {
            write!(
                f,
                "  [not listed by /institutions; as /locations describes it]"
            )?;
        }
        writeln!(f)?;
        if let Some(other) = &self.other_subdomain {
            writeln!(
                f,
                "  note: /locations gives this institution the subdomain {other}"
            )?;
        }
        let report = match &self.syncs {
            Ok(report) => {
                write_syncs(f, report)?;
                Some(report)
            }
            Err(reason) => {
                writeln!(f, "  Syncs: unavailable ({reason})")?;
                None
            }
        };
        write_locations(f, &self.locations, report)
    }
}

fn age(side: &Side) -> String {
    match side.age {
        Some(age) if age.as_secs() >= 86_400 => format!("{}d ago", age.as_secs() / 86_400),
        Some(age) if age.as_secs() >= 3_600 => format!("{}h ago", age.as_secs() / 3_600),
        Some(age) => format!("{}m ago", age.as_secs() / 60),
        None => "never".into(),
    }
}

fn state(side: &Side) -> String {
    let state = match &side.state {
        State::Green => "green".to_string(),
        State::Red => "RED".to_string(),
        State::Other(other) => other.clone(),
        State::Unknown => "?".to_string(),
    };
    if side.stale {
        format!("{state} (STALE)")
    } else {
        state
    }
}

fn write_syncs(f: &mut fmt::Formatter<'_>, report: &SyncReport) -> fmt::Result {
    writeln!(f, "  Syncs ({}):", report.syncs.len())?;
    for health in &report.syncs {
        let sync = &health.sync;
        let emr = sync.health_record_system();
        let emr_name = emr
            .and_then(|e| e.display_name.as_deref().or(e.name.as_deref()))
            .unwrap_or("unknown EMR");
        let emr_kind = emr.and_then(|e| e.type_.as_deref()).unwrap_or("?");
        let locations: Vec<String> = health.location_ids().map(|id| id.to_string()).collect();
        writeln!(
            f,
            "    {} {:<18} {emr_name} ({emr_kind})  read={} last {}  write={} last {}  locations=[{}]",
            if health.is_healthy() { " " } else { "!" },
            sync.sync_source_name.as_deref().unwrap_or("(unnamed sync)"),
            state(&health.read),
            age(&health.read),
            state(&health.write),
            age(&health.write),
            locations.join(", "),
        )?;
    }
    Ok(())
}

fn flag(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn write_locations(
    f: &mut fmt::Formatter<'_>,
    locations: &[Entry],
    report: Option<&SyncReport>,
) -> fmt::Result {
    writeln!(f, "  Locations ({}):", locations.len())?;
    for entry in locations {
        let l = &entry.location;
        // Joined on the location id, which both /sync_status and /locations carry.
        let readiness = match report {
            Some(report) => Some(report.write_readiness_of(entry)),
            None if entry.is_inactive() => Some(WriteReadiness::Inactive),
            None => None,
        };
        let writes = match readiness {
            Some(WriteReadiness::Inactive) => "no writes (inactive)",
            Some(WriteReadiness::Ready) => "writes ok",
            Some(WriteReadiness::Stale) => "writes at risk (stale)",
            Some(WriteReadiness::Down) => "WRITES FAIL (write status red)",
            Some(WriteReadiness::NoSync) => "no sync",
            None => "writes unknown",
        };
        writeln!(
            f,
            "    {:>6}  {:<16} {:<8}  {writes:<30} map_by_operatory={}  insert_appt_client={}  appt_types_map_by_operatory={}  set_availability_by_operatory={}",
            l.id,
            l.name.as_deref().unwrap_or("(unnamed)"),
            if entry.is_inactive() {
                "inactive"
            } else {
                "active"
            },
            flag(l.map_by_operatory),
            flag(l.insert_appt_client),
            flag(l.appt_types_map_by_operatory),
            flag(l.set_availability_by_operatory),
        )?;
    }
    Ok(())
}
