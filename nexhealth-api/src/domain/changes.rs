//! What changed between two snapshots of the directory, typed, including the
//! migration NexHealth's guide describes: a practice that moves to another
//! health record system gets a new sync and a **new location**, and the old
//! location stops being current ("update your API calls to reflect the new
//! location ID"). That is [`Change::Replaced`]: a location that appeared in
//! the same institution at the same refresh as another was deactivated or
//! stopped being visible, matched on the evidence the API gives, with that
//! evidence and a confidence. Where the evidence does not single out one
//! successor, nothing is guessed: the old location is reported as
//! deactivated or removed, with the candidates it could have gone to.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::domain::snapshot::{Entry, Snapshot, same_name};
use crate::domain::sync_health::SyncReport;

/// How sure a [`Change::Replaced`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The only new location of the institution with no name match, behind a
    /// sync that is new at this refresh.
    Low,
    /// The only new location of the institution with the old one's name.
    Medium,
    /// The same name, and a new sync behind the new location.
    High,
}

impl Confidence {
    /// `low`, `medium` or `high`; also what it serializes as.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// How the old location went at the refresh where it was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Went {
    /// Still listed, now flagged inactive.
    Deactivated,
    /// No longer in `/locations` for this key.
    NoLongerVisible,
}

/// The evidence behind a [`Change::Replaced`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The new location carries the old one's name (ignoring case and
    /// surrounding spaces).
    pub same_name: bool,
    /// How the old location went.
    pub old_location: Went,
    /// The new location is served by a sync that the previous `/sync_status`
    /// did not have (`None`: no sync reports were compared).
    pub new_sync: Option<bool>,
    /// The sync that served the old location is gone, or no longer serves it
    /// (`None`: no sync reports were compared).
    pub old_sync_gone: Option<bool>,
}

/// The configuration fields of a location whose changes are reported.
///
/// Value: `insert_appt_client`, `map_by_operatory`, `appt_types_map_by_operatory`,
/// `tz`, `foreign_id`.
pub const FLAG_FIELDS: [&str; 5] = [
    "insert_appt_client",
    "map_by_operatory",
    "appt_types_map_by_operatory",
    "tz",
    "foreign_id",
];

/// One change between two snapshots.
///
/// Serialized with `"change"` naming the kind (`added`, `removed`,
/// `deactivated`, `reactivated`, `renamed`, `moved`, `flags`, `replaced`) and
/// `"location_id"` (for `replaced`: the new location; `"old"` and `"new"` name
/// both).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A location that was not there before.
    Added {
        /// The new location.
        location_id: i32,
        /// Its institution.
        institution_id: i32,
        /// Its name.
        name: Option<String>,
    },
    /// A location no longer visible, with no successor singled out.
    Removed {
        /// The location that went.
        location_id: i32,
        /// Its institution.
        institution_id: i32,
        /// Locations added to the same institution at the same refresh, when
        /// the evidence could not choose among them (empty: none appeared).
        candidates: Vec<i32>,
    },
    /// A location now flagged inactive, with no successor singled out.
    Deactivated {
        /// The location.
        location_id: i32,
        /// As for [`Change::Removed`].
        candidates: Vec<i32>,
    },
    /// A location no longer flagged inactive.
    Reactivated {
        /// The location.
        location_id: i32,
    },
    /// A new name.
    Renamed {
        /// The location.
        location_id: i32,
        /// The name before.
        before: Option<String>,
        /// The name now.
        after: Option<String>,
    },
    /// Now listed under another institution.
    Moved {
        /// The location.
        location_id: i32,
        /// The institution before.
        from_institution: i32,
        /// The institution now.
        to_institution: i32,
    },
    /// A configuration field changed (one of [`FLAG_FIELDS`]).
    Flags {
        /// The location.
        location_id: i32,
        /// The field.
        field: &'static str,
        /// Its value before (`null` when absent).
        before: Value,
        /// Its value now.
        after: Value,
    },
    /// A new location took the place of an old one (see the module).
    Replaced {
        /// The new location (the one to use now).
        location_id: i32,
        /// The old location.
        old: i32,
        /// The new location.
        new: i32,
        /// Why.
        evidence: Evidence,
        /// How sure.
        confidence: Confidence,
    },
}

impl Change {
    /// The replacement (old location id, new location id) a
    /// [`Change::Replaced`] links, if it is one.
    pub(crate) fn replacement(&self) -> Option<(i32, i32)> {
        match self {
            Self::Replaced { old, new, .. } => Some((*old, *new)),
            _ => None,
        }
    }
}

impl Change {
    /// The kind's name: the `"change"` it serializes with.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Added { .. } => "added",
            Self::Removed { .. } => "removed",
            Self::Deactivated { .. } => "deactivated",
            Self::Reactivated { .. } => "reactivated",
            Self::Renamed { .. } => "renamed",
            Self::Moved { .. } => "moved",
            Self::Flags { .. } => "flags",
            Self::Replaced { .. } => "replaced",
        }
    }

    /// The location the change is about (for a replacement, the new one).
    pub fn location_id(&self) -> i32 {
        match self {
            Self::Added { location_id, .. }
            | Self::Removed { location_id, .. }
            | Self::Deactivated { location_id, .. }
            | Self::Reactivated { location_id }
            | Self::Renamed { location_id, .. }
            | Self::Moved { location_id, .. }
            | Self::Flags { location_id, .. }
            | Self::Replaced { location_id, .. } => *location_id,
        }
    }
}

fn flag(entry: &Entry, field: &str) -> Value {
    let l = &entry.location;
    let value = match field {
        "insert_appt_client" => l.insert_appt_client.map(Value::Bool),
        "map_by_operatory" => l.map_by_operatory.map(Value::Bool),
        "appt_types_map_by_operatory" => l.appt_types_map_by_operatory.map(Value::Bool),
        "tz" => l.tz.clone().map(Value::String),
        "foreign_id" => l.foreign_id.clone().map(Value::String),
        _ => None,
    };
    value.unwrap_or(Value::Null)
}

/// The sync names serving `location_id` in `report`.
fn syncs_of(report: &SyncReport, location_id: i32) -> BTreeSet<String> {
    report
        .for_location(location_id)
        .map(|s| s.sync.sync_source_name.clone().unwrap_or_default())
        .collect()
}

/// The changes from `before` to `after`, in location-id order, replacements
/// matched on names only. See [`changes_with_syncs`] for the sync evidence.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    changes_with_syncs(before, after, None)
}

/// [`changes`], with the `/sync_status` reports taken with each snapshot as
/// more evidence for replacements (a new sync behind the new location; the
/// old location's sync gone).
pub fn changes_with_syncs(
    before: &Snapshot,
    after: &Snapshot,
    syncs: Option<(&SyncReport, &SyncReport)>,
) -> Vec<Change> {
    let mut out = Vec::new();
    // Locations that went (deactivated, or no longer visible) and those that
    // came, by institution.
    let mut went: Vec<(&Entry, Went)> = Vec::new();
    let mut came: BTreeMap<i32, Vec<&Entry>> = BTreeMap::new();
    for old in before.entries() {
        match after.location(old.location.id) {
            None => went.push((old, Went::NoLongerVisible)),
            Some(new) => {
                let id = old.location.id;
                if !old.is_inactive() && new.is_inactive() {
                    went.push((old, Went::Deactivated));
                } else if old.is_inactive() && !new.is_inactive() {
                    out.push(Change::Reactivated { location_id: id });
                }
                if old.location.name != new.location.name {
                    out.push(Change::Renamed {
                        location_id: id,
                        before: old.location.name.clone(),
                        after: new.location.name.clone(),
                    });
                }
                if old.institution_id != new.institution_id {
                    out.push(Change::Moved {
                        location_id: id,
                        from_institution: old.institution_id,
                        to_institution: new.institution_id,
                    });
                }
                for field in FLAG_FIELDS {
                    let (b, a) = (flag(old, field), flag(new, field));
                    if b != a {
                        out.push(Change::Flags {
                            location_id: id,
                            field,
                            before: b,
                            after: a,
                        });
                    }
                }
            }
        }
    }
    for new in after.entries() {
        if before.location(new.location.id).is_none() {
            came.entry(new.institution_id).or_default().push(new);
        }
    }
    let new_sync = |new: &Entry| {
        syncs.map(|(b, a)| {
            let now = syncs_of(a, new.location.id);
            let all_before: BTreeSet<String> = b
                .syncs
                .iter()
                .map(|s| s.sync.sync_source_name.clone().unwrap_or_default())
                .collect();
            now.iter().any(|name| !all_before.contains(name))
        })
    };
    let old_sync_gone = |old: &Entry| {
        syncs.map(|(b, a)| {
            let then = syncs_of(b, old.location.id);
            !then.is_empty() && syncs_of(a, old.location.id).is_empty()
        })
    };
    // Match each departure to at most one arrival, and each arrival to at
    // most one departure; anything ambiguous is left unmatched.
    let mut proposals: Vec<(i32, i32, Evidence, Confidence)> = Vec::new();
    for (old, how) in &went {
        let candidates = came.get(&old.institution_id).cloned().unwrap_or_default();
        let named: Vec<&&Entry> = candidates.iter().filter(|c| same_name(old, c)).collect();
        let choice = match named.as_slice() {
            [only] => Some((**only, true)),
            [] if candidates.len() == 1 && new_sync(candidates[0]) == Some(true) => {
                Some((candidates[0], false))
            }
            _ => None,
        };
        if let Some((new, same)) = choice {
            let evidence = Evidence {
                same_name: same,
                old_location: *how,
                new_sync: new_sync(new),
                old_sync_gone: old_sync_gone(old),
            };
            let confidence = match (same, evidence.new_sync) {
                (true, Some(true)) => Confidence::High,
                (true, _) => Confidence::Medium,
                (false, _) => Confidence::Low,
            };
            proposals.push((old.location.id, new.location.id, evidence, confidence));
        }
    }
    let count = |pick: fn(&(i32, i32, Evidence, Confidence)) -> i32, id: i32| {
        proposals.iter().filter(|p| pick(p) == id).count()
    };
    let accepted: Vec<(i32, i32, Evidence, Confidence)> = proposals
        .iter()
        .filter(|p| count(|p| p.0, p.0) == 1 && count(|p| p.1, p.1) == 1)
        .cloned()
        .collect();
    let replaced_old: BTreeSet<i32> = accepted.iter().map(|p| p.0).collect();
    let replaced_new: BTreeSet<i32> = accepted.iter().map(|p| p.1).collect();
    for (old, how) in &went {
        let id = old.location.id;
        if replaced_old.contains(&id) {
            continue;
        }
        let candidates: Vec<i32> = came
            .get(&old.institution_id)
            .into_iter()
            .flatten()
            .map(|c| c.location.id)
            .filter(|c| !replaced_new.contains(c))
            .collect();
        out.push(match how {
            Went::Deactivated => Change::Deactivated {
                location_id: id,
                candidates,
            },
            Went::NoLongerVisible => Change::Removed {
                location_id: id,
                institution_id: old.institution_id,
                candidates,
            },
        });
    }
    for new in came.values().flatten() {
        if !replaced_new.contains(&new.location.id) {
            out.push(Change::Added {
                location_id: new.location.id,
                institution_id: new.institution_id,
                name: new.location.name.clone(),
            });
        }
    }
    for (old, new, evidence, confidence) in accepted {
        out.push(Change::Replaced {
            location_id: new,
            old,
            new,
            evidence,
            confidence,
        });
    }
    out.sort_by_key(|c| (c.location_id(), c.as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sync_health::Thresholds;
    use crate::generated::types::{InstitutionLocations, SyncStatus};
    use serde_json::json;

    /// `(location id, name, inactive)`.
    type Office<'a> = (i32, &'a str, bool);

    /// A snapshot of institutions `(id, [Office])`.
    fn snapshot(institutions: &[(i32, &[Office<'_>])]) -> Snapshot {
        let answer: Vec<InstitutionLocations> = institutions
            .iter()
            .map(|(id, locations)| {
                serde_json::from_value(json!({
                    "id": id,
                    "name": format!("Institution {id}"),
                    "subdomain": format!("inst-{id}"),
                    "locations": locations.iter().map(|(lid, name, inactive)| json!({
                        "id": lid, "name": name, "inactive": inactive,
                        "institution_id": id, "tz": "America/New_York",
                        "map_by_operatory": true, "insert_appt_client": true,
                    })).collect::<Vec<_>>(),
                }))
                .expect("a /locations answer")
            })
            .collect();
        Snapshot::from_institutions(answer)
    }

    fn kinds(changes: &[Change]) -> Vec<(&'static str, i32)> {
        changes
            .iter()
            .map(|c| (c.as_str(), c.location_id()))
            .collect()
    }

    #[test]
    fn every_plain_change_kind() {
        let before = snapshot(&[
            (
                1,
                &[
                    (7, "Default", false),
                    (8, "Uptown", true),
                    (9, "Old name", false),
                    (10, "Gone", false),
                ],
            ),
            (2, &[(11, "Mover", false)]),
        ]);
        let after = snapshot(&[
            (
                1,
                &[
                    (7, "Default", true),
                    (8, "Uptown", false),
                    (9, "New name", false),
                    (12, "Fresh", false),
                ],
            ),
            (3, &[(11, "Mover", false)]),
        ]);
        let changes = changes(&before, &after);
        // 12 is the only newcomer of institution 1 but has neither 7's nor
        // 10's name and no sync evidence: no replacement is guessed.
        assert_eq!(
            kinds(&changes),
            [
                ("deactivated", 7),
                ("reactivated", 8),
                ("renamed", 9),
                ("removed", 10),
                ("moved", 11),
                ("added", 12),
            ]
        );
        assert!(changes.contains(&Change::Deactivated {
            location_id: 7,
            candidates: vec![12]
        }));
        assert!(changes.contains(&Change::Renamed {
            location_id: 9,
            before: Some("Old name".into()),
            after: Some("New name".into())
        }));
        assert!(changes.contains(&Change::Moved {
            location_id: 11,
            from_institution: 2,
            to_institution: 3
        }));
        assert!(changes.contains(&Change::Removed {
            location_id: 10,
            institution_id: 1,
            candidates: vec![12]
        }));
        assert!(
            super::changes(&after, &after).is_empty(),
            "a snapshot against itself"
        );
    }

    #[test]
    fn configuration_changes_carry_before_and_after() {
        let before = snapshot(&[(1, &[(7, "Default", false)])]);
        let after = snapshot(&[(1, &[(7, "Default", false)])]);
        let mut answer = after.entries()[0].clone();
        answer.location.insert_appt_client = Some(false);
        answer.location.tz = Some("America/Chicago".into());
        answer.location.foreign_id = Some("F-2".into());
        answer.location.appt_types_map_by_operatory = Some(true);
        answer.location.map_by_operatory = None;
        let after = Snapshot::from_institutions(vec![
            serde_json::from_value(json!({
                "id": 1, "subdomain": "inst-1", "locations": [answer.location],
            }))
            .unwrap(),
        ]);
        let changes = changes(&before, &after);
        let flags: Vec<(&str, Value, Value)> = changes
            .iter()
            .map(|c| match c {
                Change::Flags {
                    field,
                    before,
                    after,
                    ..
                } => (*field, before.clone(), after.clone()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            flags,
            [
                ("insert_appt_client", json!(true), json!(false)),
                ("map_by_operatory", json!(true), Value::Null),
                ("appt_types_map_by_operatory", Value::Null, json!(true)),
                ("tz", json!("America/New_York"), json!("America/Chicago")),
                ("foreign_id", Value::Null, json!("F-2")),
            ]
        );
    }

    fn sync_report(syncs: &[(&str, &[i32])]) -> SyncReport {
        let syncs: Vec<SyncStatus> = syncs
            .iter()
            .map(|(name, ids)| {
                serde_json::from_value(json!({
                    "sync_source_name": name, "institution_id": 1,
                    "read_status": "green", "write_status": "green",
                    "locations": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                }))
                .unwrap()
            })
            .collect();
        SyncReport::assess(syncs, chrono::Utc::now(), Thresholds::default())
    }

    /// The guide's migration: a new sync and a new location with the old
    /// name; the old location deactivated.
    #[test]
    fn a_migration_to_another_health_record_system_is_a_replacement() {
        let before = snapshot(&[(1, &[(7, "Default", false), (8, "Uptown", false)])]);
        let after = snapshot(&[(
            1,
            &[
                (7, "Default", true),
                (8, "Uptown", false),
                (70, "Default", false),
            ],
        )]);
        let by_name = changes(&before, &after);
        assert_eq!(kinds(&by_name), [("replaced", 70)]);
        let Change::Replaced {
            old,
            new,
            evidence,
            confidence,
            ..
        } = &by_name[0]
        else {
            unreachable!()
        };
        assert_eq!((*old, *new, *confidence), (7, 70, Confidence::Medium));
        assert!(evidence.same_name);
        assert_eq!(evidence.old_location, Went::Deactivated);
        assert_eq!(evidence.new_sync, None);

        let syncs_before = sync_report(&[("Dentrix server", &[7]), ("Uptown cloud", &[8])]);
        let syncs_after = sync_report(&[("Open Dental server", &[70]), ("Uptown cloud", &[8])]);
        let with_syncs = changes_with_syncs(&before, &after, Some((&syncs_before, &syncs_after)));
        let Change::Replaced {
            evidence,
            confidence,
            ..
        } = &with_syncs[0]
        else {
            panic!("{with_syncs:?}")
        };
        assert_eq!(*confidence, Confidence::High);
        assert_eq!(evidence.new_sync, Some(true));
        assert_eq!(evidence.old_sync_gone, Some(true));

        // The id a service stored resolves to the new one.
        let mut resolved = after;
        resolved.record_replacement(7, 70);
        assert_eq!(resolved.successor(7), Some(70));
        assert_eq!(resolved.successor(8), Some(8));
        assert_eq!(resolved.successor(999), None);
    }

    #[test]
    fn a_new_name_behind_a_new_sync_is_a_low_confidence_replacement_and_without_it_no_guess() {
        let before = snapshot(&[(1, &[(7, "Default", false)])]);
        let after = snapshot(&[(1, &[(70, "Main office", false)])]);
        assert_eq!(
            kinds(&changes(&before, &after)),
            [("removed", 7), ("added", 70)]
        );
        let with_syncs = changes_with_syncs(
            &before,
            &after,
            Some((
                &sync_report(&[("Dentrix", &[7])]),
                &sync_report(&[("Open Dental", &[70])]),
            )),
        );
        let Change::Replaced {
            confidence,
            evidence,
            ..
        } = &with_syncs[0]
        else {
            panic!("{with_syncs:?}")
        };
        assert_eq!(*confidence, Confidence::Low);
        assert!(!evidence.same_name);
        assert_eq!(evidence.old_location, Went::NoLongerVisible);
    }

    #[test]
    fn two_candidates_with_the_old_name_are_ambiguous_and_nothing_is_guessed() {
        let before = snapshot(&[(1, &[(7, "Default", false)])]);
        let after = snapshot(&[(
            1,
            &[
                (7, "Default", true),
                (70, "Default", false),
                (71, "default ", false),
            ],
        )]);
        let changes = changes(&before, &after);
        assert_eq!(
            kinds(&changes),
            [("deactivated", 7), ("added", 70), ("added", 71)]
        );
        assert!(changes.contains(&Change::Deactivated {
            location_id: 7,
            candidates: vec![70, 71]
        }));
    }

    #[test]
    fn two_old_locations_claiming_one_newcomer_are_ambiguous_too() {
        let before = snapshot(&[(1, &[(7, "Default", false), (9, "Default", false)])]);
        let after = snapshot(&[(1, &[(70, "Default", false)])]);
        assert_eq!(
            kinds(&changes(&before, &after)),
            [("removed", 7), ("removed", 9), ("added", 70)]
        );
    }

    #[test]
    fn a_location_that_only_disappears_says_so_and_has_no_successor() {
        let before = snapshot(&[
            (1, &[(7, "Default", false)]),
            (2, &[(20, "Default", false)]),
        ]);
        // A same-named newcomer in another institution is not a candidate.
        let after = snapshot(&[(2, &[(20, "Default", false), (21, "Default", false)])]);
        let changes = changes(&before, &after);
        assert!(changes.contains(&Change::Removed {
            location_id: 7,
            institution_id: 1,
            candidates: vec![]
        }));
        assert!(
            changes
                .iter()
                .all(|c| !matches!(c, Change::Replaced { .. }))
        );
        assert_eq!(after.successor(7), None);
    }

    #[test]
    fn changes_serialize_with_their_kind_and_location() {
        let before = snapshot(&[(1, &[(7, "Default", false)])]);
        let after = snapshot(&[(1, &[(7, "Default", true), (70, "Default", false)])]);
        let value = serde_json::to_value(&changes(&before, &after)[0]).unwrap();
        assert_eq!(value["change"], json!("replaced"));
        assert_eq!(value["location_id"], json!(70));
        assert_eq!(
            (value["old"].clone(), value["new"].clone()),
            (json!(7), json!(70))
        );
        assert_eq!(value["confidence"], json!("medium"));
        assert_eq!(value["evidence"]["same_name"], json!(true));
        assert_eq!(value["evidence"]["old_location"], json!("deactivated"));
    }

    #[test]
    fn confidence_names() {
        let names: Vec<&str> = [Confidence::Low, Confidence::Medium, Confidence::High]
            .into_iter()
            .map(Confidence::as_str)
            .collect();
        assert_eq!(names, ["low", "medium", "high"]);
        assert_eq!(
            serde_json::to_value(Confidence::High).unwrap(),
            json!("high")
        );
    }

    #[test]
    fn a_change_of_case_in_a_name_is_a_rename() {
        let before = snapshot(&[(1, &[(7, "Default", false)])]);
        let after = snapshot(&[(1, &[(7, "DEFAULT", false)])]);
        assert_eq!(kinds(&changes(&before, &after)), [("renamed", 7)]);
    }

    /// Sync evidence says no when there is none: a newcomer no sync serves
    /// yet is not behind a new sync, and an old location no sync served had
    /// no sync to lose.
    #[test]
    fn sync_evidence_is_false_where_there_is_no_sync() {
        let before = snapshot(&[(1, &[(7, "Default", false), (8, "Uptown", false)])]);
        let after = snapshot(&[(
            1,
            &[
                (7, "Default", true),
                (8, "Uptown", false),
                (70, "Default", false),
            ],
        )]);
        let syncs_before = sync_report(&[("Uptown cloud", &[8])]);
        let syncs_after = sync_report(&[("Uptown cloud", &[8])]);
        let changes = changes_with_syncs(&before, &after, Some((&syncs_before, &syncs_after)));
        let Change::Replaced {
            evidence,
            confidence,
            ..
        } = &changes[0]
        else {
            panic!("{changes:?}")
        };
        assert_eq!(evidence.new_sync, Some(false));
        assert_eq!(evidence.old_sync_gone, Some(false));
        assert_eq!(*confidence, Confidence::Medium);
        // Served by a sync that was there before: not a new sync either.
        let syncs_after = sync_report(&[("Uptown cloud", &[8, 70])]);
        let changes = changes_with_syncs(&before, &after, Some((&syncs_before, &syncs_after)));
        let Change::Replaced { evidence, .. } = &changes[0] else {
            panic!("{changes:?}")
        };
        assert_eq!(evidence.new_sync, Some(false));
    }
}
