//! The directory's side of the fleet share: the stored copy of `GET /locations`
//! and the lease of the replica that fetches it for the fleet.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{FleetShare, Trouble, digest, millis};
use crate::domain::snapshot::MAX_REPLACEMENTS;
use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::InstitutionLocations;
use crate::transport::redis_link::RedisLink;

/// The largest stored directory read back (bigger counts as no copy). A
/// 10,000-location `/locations` is about 7 MiB.
pub(super) const MAX_SNAPSHOT_BYTES: usize = 32 * 1024 * 1024;

/// The largest stored replacements map read back (bigger counts as no copy):
/// room for [`MAX_REPLACEMENTS`] entries of the widest ids
/// (`"-2147483648":-2147483648,` is 26 bytes).
pub(super) const MAX_REPLACEMENTS_BYTES: usize = MAX_REPLACEMENTS * 32;

/// Reads the stored directory when it is fresh enough, else takes the lease,
/// else answers that another replica holds it. A copy whose generation is
/// not a time (not a number, infinite, negative, or more than a second
/// ahead of Redis's clock: garbage, or a clock that went back) or whose body
/// or replacements are larger than the most read back counts as no copy. A
/// lease without expiry, or longer than this replica's, is cut to this
/// replica's. KEYS: snapshot, lease. ARGV: max age (ms), only newer than (ms,
/// -1 for any), lease (ms), token, largest body (bytes), largest
/// replacements (bytes).
pub(super) const READ: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = nil
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  at = tonumber(redis.call('HGET', KEYS[1], 'at') or '')
  if at and (at ~= at or at < 0 or at > now + 1000) then at = nil end
  if at and redis.call('HSTRLEN', KEYS[1], 'body') > tonumber(ARGV[5]) then at = nil end
  if at and redis.call('HSTRLEN', KEYS[1], 'replacements') > tonumber(ARGV[6]) then at = nil end
end
if at then
  local age = math.max(0, now - at)
  if age < tonumber(ARGV[1]) and at > tonumber(ARGV[2]) then
    return { 'fresh', at, age, redis.call('HGET', KEYS[1], 'body') or '',
             redis.call('HGET', KEYS[1], 'replacements') or '{}' }
  end
end
local held = redis.call('PTTL', KEYS[2])
if held == -1 or held > tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
if redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[3]) then
  return { 'lease', now, 0, '', '' }
end
return { 'wait', at or -1, 0, '', '' }
";

/// Stores a fetched directory, and gives the lease back. The holder of the
/// lease always stores (it is the replica the fleet chose to fetch); one
/// whose lease ran out stores only over an older copy. KEYS: snapshot, lease.
/// ARGV: token, at (ms), body, replacements, expiry (ms).
pub(super) const PUBLISH: &str = r"
local held = -1
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  held = tonumber(redis.call('HGET', KEYS[1], 'at') or '') or -1
  if held ~= held then held = math.huge end
end
if redis.call('GET', KEYS[2]) == ARGV[1] or tonumber(ARGV[2]) > held then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'at', ARGV[2], 'body', ARGV[3], 'replacements', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
";

/// Drops a stored copy that could not be read, unless it was replaced since.
/// KEYS: snapshot. ARGV: its generation (ms).
pub(super) const DISCARD: &str = r"
local at = nil
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  at = tonumber(redis.call('HGET', KEYS[1], 'at') or '')
end
if at and at == at and math.floor(at) == tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
end
return 1
";

/// Gives the lease back if it is still ours. KEYS: lease. ARGV: token.
pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// The read script's answer: kind, generation or now (ms), age (ms), body,
/// replacements.
type ReadAnswer = (String, i64, i64, Vec<u8>, Vec<u8>);

/// A stored copy that does not decode, by its generation.
struct Garbage(i64);

/// A directory copy as the fleet stored it.
pub(crate) struct SharedCopy {
    /// When its fetch began, on Redis's clock (ms): its generation.
    pub(crate) at_ms: i64,
    pub(crate) age: Duration,
    pub(crate) institutions: Vec<InstitutionLocations>,
    pub(crate) replacements: BTreeMap<i32, i32>,
}

/// The fleet's lease to fetch, held by this replica.
pub(crate) struct Lease {
    token: String,
    pub(crate) at_ms: i64,
}

/// What the fleet answers a replica whose directory is due.
pub(crate) enum Read {
    /// A copy fresh enough: use it.
    Fresh(SharedCopy),
    /// No such copy, and this replica fetches for the fleet.
    Lease(Lease),
    /// Another replica is fetching; the stored copy's generation, if any.
    Wait(Option<i64>),
}

/// The directory's side of the share.
pub(crate) struct DirectoryShare {
    link: RedisLink,
    read: redis::Script,
    publish: redis::Script,
    release: redis::Script,
    discard: redis::Script,
    snapshot_key: String,
    lease_key: String,
    pub(crate) lease: Duration,
    pub(crate) redis_timeout: Duration,
    expiry: Duration,
    trouble: Trouble,
}

impl std::fmt::Debug for DirectoryShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryShare")
            .field("lease", &self.lease)
            .field("on_its_own", &self.trouble.active())
            .finish()
    }
}

impl DirectoryShare {
    pub(crate) fn new(
        share: &FleetShare,
        client: &Client,
        subdomain: Option<&str>,
    ) -> Result<Self, Error> {
        let scope = subdomain.map_or_else(|| "all".to_string(), digest);
        let key = format!("{}:directory:{scope}", share.base(client));
        Ok(Self {
            link: share.link("directory")?,
            read: redis::Script::new(READ),
            publish: redis::Script::new(PUBLISH),
            release: redis::Script::new(RELEASE),
            discard: redis::Script::new(DISCARD),
            lease_key: format!("{key}:lease"),
            snapshot_key: key,
            lease: share.lease,
            redis_timeout: share.redis_timeout,
            expiry: share.expiry,
            trouble: Trouble::default(),
        })
    }

    /// Asks for a copy younger than `max_age` and, when `newer_than` is
    /// given, of a later generation than it. A stored copy that does not
    /// decode, or whose replacements are more than [`MAX_REPLACEMENTS`], is
    /// dropped and asked for again: this replica then takes the lease, and
    /// its fetch replaces the garbage for the whole fleet. The replacements
    /// are not checked here: the directory checks them against the copy.
    pub(crate) async fn read(
        &self,
        max_age: Duration,
        newer_than: Option<i64>,
    ) -> Result<Read, &'static str> {
        match self.read_once(max_age, newer_than).await {
            Err(Garbage(at)) => {
                tracing::debug!("the fleet's directory copy does not decode: dropped");
                let mut invocation = self.discard.key(&self.snapshot_key);
                invocation.arg(at);
                self.link.run::<i64>(&invocation).await?;
                self.read_once(max_age, newer_than)
                    .await
                    .map_err(|_| "Redis answered an error or garbage")?
            }
            Ok(read) => read,
        }
    }

    /// One read: `Err(Garbage)` when the stored copy does not decode.
    async fn read_once(
        &self,
        max_age: Duration,
        newer_than: Option<i64>,
    ) -> Result<Result<Read, &'static str>, Garbage> {
        let token = format!("{:x}", crate::transport::random_u64());
        let mut invocation = self.read.key(&self.snapshot_key);
        invocation
            .key(&self.lease_key)
            .arg(millis(max_age).min(i64::MAX as u64))
            .arg(newer_than.unwrap_or(-1))
            .arg(millis(self.lease))
            .arg(&token)
            .arg(MAX_SNAPSHOT_BYTES)
            .arg(MAX_REPLACEMENTS_BYTES);
        let answer: Result<ReadAnswer, _> = self.link.run(&invocation).await;
        let (kind, at, age, body, replacements) = match answer {
            Ok(answer) => answer,
            Err(reason) => return Ok(Err(reason)),
        };
        Ok(match kind.as_str() {
            "fresh" => {
                let institutions = serde_json::from_slice(&body).map_err(|_| Garbage(at))?;
                let replacements: BTreeMap<i32, i32> =
                    serde_json::from_slice(&replacements).map_err(|_| Garbage(at))?;
                // More than a directory keeps: garbage, whatever it says.
                if replacements.len() > MAX_REPLACEMENTS {
                    return Err(Garbage(at));
                }
                Ok(Read::Fresh(SharedCopy {
                    at_ms: at,
                    age: Duration::from_millis(age.clamp(0, i64::MAX) as u64),
                    institutions,
                    replacements,
                }))
            }
            "lease" => Ok(Read::Lease(Lease { token, at_ms: at })),
            "wait" => Ok(Read::Wait((at >= 0).then_some(at))),
            _ => Err("Redis answered an error or garbage"),
        })
    }

    /// Stores what the lease holder fetched, and gives the lease back.
    pub(crate) async fn publish(
        &self,
        lease: &Lease,
        institutions: &[InstitutionLocations],
        replacements: &BTreeMap<i32, i32>,
    ) -> Result<(), &'static str> {
        let body = serde_json::to_vec(institutions).map_err(|_| "the directory is not JSON")?;
        let replacements =
            serde_json::to_vec(replacements).map_err(|_| "the directory is not JSON")?;
        let mut invocation = self.publish.key(&self.snapshot_key);
        invocation
            .key(&self.lease_key)
            .arg(&lease.token)
            .arg(lease.at_ms)
            .arg(body)
            .arg(replacements)
            .arg(millis(self.expiry));
        self.link.run::<i64>(&invocation).await.map(drop)
    }

    /// Gives the lease back after a failed fetch: another replica may try.
    pub(crate) async fn release(&self, lease: &Lease) {
        let mut invocation = self.release.key(&self.lease_key);
        invocation.arg(&lease.token);
        if let Err(reason) = self.link.run::<i64>(&invocation).await {
            self.trouble(reason);
        }
    }

    pub(crate) fn trouble(&self, reason: &'static str) {
        self.trouble.seen("location directory", reason);
    }

    pub(crate) fn cleared(&self) {
        self.trouble.cleared("location directory");
    }
}
