//! The data of one `GET /locations`: every location with its institution,
//! the subdomains, and the replacements (old location → successor) it
//! justifies. Pure data and queries, no I/O: the [`directory`](super::directory)
//! fetches and refreshes it, [`changes`](super::changes) and
//! [`sync_health`](super::sync_health) derive from it.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::error::Error;
use crate::generated::types::{InstitutionLocations, Location};

/// The most replacements (old location id → successor) a snapshot keeps,
/// and the most a copy read from the fleet may carry: a larger stored map is
/// garbage (see [`Snapshot::replacements`]).
///
/// Value: 10,000.
pub const MAX_REPLACEMENTS: usize = 10_000;

/// The two values a location-scoped call needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Scope {
    /// The institution's subdomain (`?subdomain=`).
    pub subdomain: String,
    /// The location's id (`?location_id=`).
    pub location_id: i32,
    /// NexHealth flags the location inactive: it should not be used for new work.
    pub inactive: bool,
}

/// One location and the institution it belongs to.
///
/// Serialized as its fields, the location as NexHealth sent it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// The institution's id.
    pub institution_id: i32,
    /// The institution's name.
    pub institution_name: Option<String>,
    /// The institution's subdomain.
    pub subdomain: String,
    /// The location as NexHealth described it.
    pub location: Location,
}

impl Entry {
    /// Whether NexHealth flags the location inactive.
    pub fn is_inactive(&self) -> bool {
        self.location.inactive == Some(true)
    }

    /// The values a location-scoped call needs.
    pub fn scope(&self) -> Scope {
        Scope {
            subdomain: self.subdomain.clone(),
            location_id: self.location.id,
            inactive: self.is_inactive(),
        }
    }
}

/// An immutable view of the directory at one moment.
///
/// Serialized as `{"entries": [Entry…], "subdomains": […], "fetched_secs_ago": 12}`
/// (`null` for a snapshot that was not fetched).
#[derive(Debug, Default)]
pub struct Snapshot {
    entries: Vec<Entry>,
    by_id: HashMap<i32, usize>,
    subdomains: Vec<String>,
    pub(crate) fetched_at: Option<Instant>,
    /// Old location id → the id that replaced it, over the directory's life:
    /// those this replica can justify, and those read from the fleet that
    /// hold in this copy.
    pub(crate) replacements: BTreeMap<i32, i32>,
    /// The replacements this replica can justify: those its own change
    /// detection saw happen, and those the data of a copy it held showed
    /// the evidence for. Only these outlive the next copy without evidence.
    justified: BTreeMap<i32, i32>,
    /// The fleet's generation of this copy (when its fetch began, on Redis's
    /// clock, in ms), when it came through a [`fleet`](crate::fleet) share.
    pub(crate) shared_at: Option<i64>,
}

impl Snapshot {
    /// Flattens NexHealth's institution → locations answer.
    pub fn from_institutions(institutions: Vec<InstitutionLocations>) -> Self {
        let mut snapshot = Self::default();
        for institution in institutions {
            snapshot.subdomains.push(institution.subdomain.clone());
            for location in institution.locations {
                snapshot.by_id.insert(location.id, snapshot.entries.len());
                snapshot.entries.push(Entry {
                    institution_id: institution.id,
                    institution_name: institution.name.clone(),
                    subdomain: institution.subdomain.clone(),
                    location,
                });
            }
        }
        snapshot
    }

    /// The location to use now in place of `old_id`: itself when it is still
    /// current, else the end of the chain of [`Change::Replaced`](crate::changes::Change::Replaced)
    /// the directory has seen (an id replaced, then its successor replaced,
    /// …). `None` when `old_id` is gone with no successor singled out: the
    /// directory does not guess.
    pub fn successor(&self, old_id: i32) -> Option<i32> {
        if self.is_active(old_id) {
            // Current (never replaced, or reactivated since): itself.
            return Some(old_id);
        }
        let mut id = old_id;
        // Bounded: a chain can be no longer than the replacements known.
        for _ in 0..=self.replacements.len() {
            match self.replacements.get(&id) {
                Some(&next) => id = next,
                None => break,
            }
        }
        match self.location(id) {
            Some(entry) if !entry.is_inactive() => Some(id),
            _ => None,
        }
    }

    /// Records that `new` replaced `old`, as if this replica had detected it
    /// (tests; a refresh settles its replacements with
    /// [`settle_replacements`](Self::settle_replacements)).
    #[cfg(test)]
    pub(crate) fn record_replacement(&mut self, old: i32, new: i32) {
        self.replacements.insert(old, new);
        self.justified.insert(old, new);
    }

    /// The replacements seen so far: old id → new id.
    ///
    /// Each holds in this snapshot: its old location is not an active one
    /// (an entry is dropped when its location comes back), and its successor,
    /// the end of its chain, is. They are at most one per location listed,
    /// and at most [`MAX_REPLACEMENTS`]. Those read from the fleet are checked
    /// against the copy they came with (a stored map larger than that is
    /// ignored), and when the copy still lists the old location, it must be
    /// inactive in the successor's institution under the successor's name,
    /// the evidence a [`Change::Replaced`](crate::changes::Change::Replaced) is detected on. A replica's own
    /// fetch keeps only the replacements it can justify: those it detected,
    /// and those the fetched data shows that evidence for; so a false map
    /// stored in the fleet's Redis is gone from the fleet at the next fetch.
    pub fn replacements(&self) -> &BTreeMap<i32, i32> {
        &self.replacements
    }

    /// Whether `location_id` is listed and not flagged inactive.
    fn is_active(&self, location_id: i32) -> bool {
        self.location(location_id).is_some_and(|e| !e.is_inactive())
    }

    /// The most replacements this snapshot holds: one per location listed,
    /// at most [`MAX_REPLACEMENTS`].
    fn replacement_cap(&self) -> usize {
        self.entries.len().min(MAX_REPLACEMENTS)
    }

    /// Whether this snapshot shows the evidence for `old` → `new` that change
    /// detection requires: `old` listed inactive in the institution of `new`,
    /// active, under the same name.
    fn corroborates(&self, old: i32, new: i32) -> bool {
        match (self.location(old), self.location(new)) {
            (Some(o), Some(n)) => {
                o.is_inactive()
                    && !n.is_inactive()
                    && o.institution_id == n.institution_id
                    && same_name(o, n)
            }
            _ => false,
        }
    }

    /// Whether an entry read from the fleet holds here: `old` is not an
    /// active location and `new` is; where `old` is still listed, with the
    /// evidence ([`corroborates`](Self::corroborates)).
    fn holds(&self, old: i32, new: i32) -> bool {
        if self.location(old).is_some() {
            self.corroborates(old, new)
        } else {
            self.is_active(new)
        }
    }

    /// `map` as it holds in this snapshot: entries whose old location is
    /// active here dropped (it came back), chains collapsed to their end
    /// (a loop has none), entries whose end is not an active location here
    /// dropped, and at most [`replacement_cap`](Self::replacement_cap) kept
    /// (those whose old location is listed first, then the newest ids).
    pub(crate) fn admit(&self, map: &BTreeMap<i32, i32>) -> BTreeMap<i32, i32> {
        let live: HashMap<i32, i32> = map
            .iter()
            .filter(|&(&old, _)| !self.is_active(old))
            .map(|(&old, &new)| (old, new))
            .collect();
        // The end of each chain, memoized: linear in the map's size.
        let mut ends: HashMap<i32, Option<i32>> = HashMap::with_capacity(live.len());
        for &start in live.keys() {
            let (mut id, mut path) = (start, Vec::new());
            let end = loop {
                if let Some(&end) = ends.get(&id) {
                    break end;
                }
                match live.get(&id) {
                    None => break Some(id),
                    Some(_) if path.contains(&id) => break None,
                    Some(&next) => {
                        path.push(id);
                        id = next;
                    }
                }
            };
            for id in path {
                ends.insert(id, end);
            }
        }
        let mut kept: Vec<(i32, i32)> = ends
            .into_iter()
            .filter_map(|(old, end)| end.filter(|&end| self.is_active(end)).map(|end| (old, end)))
            .collect();
        let cap = self.replacement_cap();
        if kept.len() > cap {
            kept.sort_by_key(|&(old, _)| (self.location(old).is_none(), std::cmp::Reverse(old)));
            kept.truncate(cap);
        }
        kept.into_iter().collect()
    }

    /// Sets the replacements of this snapshot, the copy that follows
    /// `previous` with the replacements `detected` between them (old → new): what this replica can justify (the
    /// replacements it justified before and those it detected now, and any
    /// other `previous` or `shared` one that this copy corroborates), and,
    /// for a copy read from the fleet, the `shared` ones that hold in it. A
    /// `shared` map larger than the snapshot's cap is garbage and ignored.
    pub(crate) fn settle_replacements(
        &mut self,
        previous: &Snapshot,
        detected: impl IntoIterator<Item = (i32, i32)>,
        shared: Option<&BTreeMap<i32, i32>>,
    ) {
        let shared = shared.filter(|map| map.len() <= self.replacement_cap());
        let mut justified = previous.justified.clone();
        justified.extend(detected);
        let others = previous
            .replacements
            .iter()
            .chain(shared.into_iter().flatten());
        for (&old, &new) in others {
            if !justified.contains_key(&old) && self.corroborates(old, new) {
                justified.insert(old, new);
            }
        }
        self.justified = self.admit(&justified);
        let mut all = self.justified.clone();
        if let Some(shared) = shared {
            let held: BTreeMap<i32, i32> = shared
                .iter()
                .filter(|&(&old, &new)| self.holds(old, new))
                .map(|(&old, &new)| (old, new))
                .collect();
            for (old, new) in self.admit(&held) {
                all.entry(old).or_insert(new);
            }
        }
        self.replacements = self.admit(&all);
    }

    /// Every location, inactive ones included.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The subdomains this key can reach.
    pub fn subdomains(&self) -> &[String] {
        &self.subdomains
    }

    /// A location by NexHealth id.
    pub fn location(&self, location_id: i32) -> Option<&Entry> {
        self.by_id.get(&location_id).map(|&i| &self.entries[i])
    }

    /// The locations of the institution with NexHealth id `institution_id`:
    /// the join key to use with `/institutions`.
    pub fn in_institution(&self, institution_id: i32) -> impl Iterator<Item = &Entry> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.institution_id == institution_id)
    }

    /// The locations whose institution `/locations` files under `subdomain`.
    pub fn in_subdomain<'a>(&'a self, subdomain: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.subdomain == subdomain)
    }

    /// A location by its id in the practice's health record system.
    pub fn by_foreign_id(&self, subdomain: &str, foreign_id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.subdomain == subdomain && e.location.foreign_id.as_deref() == Some(foreign_id)
        })
    }

    /// The scope of `location_id`, checked against `subdomain` when given:
    /// answers "not accessible" or "not in this institution" without a call.
    pub fn scope(&self, location_id: i32, subdomain: Option<&str>) -> Result<Scope, Error> {
        if let Some(subdomain) = subdomain
            && !self.subdomains.iter().any(|s| s == subdomain)
        {
            return Err(Error::SubdomainNotAccessible {
                subdomain: subdomain.to_string(),
            });
        }
        match (self.location(location_id), subdomain) {
            (Some(entry), Some(subdomain)) if entry.subdomain != subdomain => {
                Err(Error::LocationNotInInstitution {
                    location_id,
                    subdomain: subdomain.to_string(),
                })
            }
            (Some(entry), _) => Ok(entry.scope()),
            (None, _) => Err(Error::UnknownLocation { location_id }),
        }
    }
}

impl serde::Serialize for Snapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Snapshot", 4)?;
        out.serialize_field("entries", &self.entries)?;
        out.serialize_field("subdomains", &self.subdomains)?;
        out.serialize_field("replacements", &self.replacements)?;
        out.serialize_field(
            "fetched_secs_ago",
            &self.fetched_at.map(|at| at.elapsed().as_secs()),
        )?;
        out.end()
    }
}

/// Whether two entries carry the same name (trimmed, any case): the evidence
/// a replacement is detected on.
pub(crate) fn same_name(a: &Entry, b: &Entry) -> bool {
    match (&a.location.name, &b.location.name) {
        (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        _ => false,
    }
}
