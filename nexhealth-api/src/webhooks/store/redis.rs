//! [`RedisStore`]: handled events in Redis, shared by a fleet, with each
//! replica's own record handed back when Redis comes back empty.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::slots::{LONGEST, Slots, State, deadline};
use super::{Abandoned, Claim, EventIdentity, HandledStore, Lease, StoreUnavailable};
use crate::transport::redis_link::{RedisLink, Target};

/// Reads (or founds) the epoch, then claims unless handled or leased. The
/// epoch `born:until` names the life of this Redis's data: when it is
/// missing, Redis lost everything (a restart without persistence, a
/// `FLUSHALL`, a failover to an empty replica), and a replica that saw
/// another before founds it with a restoring window, during which claims
/// answer `restoring` while every replica hands back what it handled.
/// KEYS: identity, epoch. ARGV: token, lease (ms), window (ms), seen (1/0).
const CLAIM: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  local restoring = now
  if ARGV[4] == '1' then restoring = now + tonumber(ARGV[3]) end
  epoch = string.format('%d:%d', now, restoring)
  redis.call('SET', KEYS[2], epoch)
end
local until_ms = tonumber(string.match(epoch, '^%d+:(%d+)$') or '')
if not until_ms then return { 'unexpected', epoch } end
if now < until_ms then return { 'restoring', epoch } end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return { 'claimed', epoch } end
local held = redis.call('GET', KEYS[1])
if held == 'done' then return { 'done', epoch } end
if held and string.sub(held, 1, 6) == 'lease:' then return { 'busy', epoch } end
return { 'unexpected', epoch }
";

/// Reads (or founds, as [`CLAIM`] does) the epoch. KEYS: epoch. ARGV:
/// window (ms), seen (1/0).
const EPOCH: &str = r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local restoring = now
  if ARGV[2] == '1' then restoring = now + tonumber(ARGV[1]) end
  epoch = string.format('%d:%d', now, restoring)
  redis.call('SET', KEYS[1], epoch)
end
return epoch
";

/// Marks handled, unless another lease holds the key now; a handled key
/// keeps the longer of its time left and `keep`. KEYS: identity. ARGV:
/// token, keep (ms).
const COMMIT: &str = r"
local held = redis.call('GET', KEYS[1])
if held == 'done' then
  local left = redis.call('PTTL', KEYS[1])
  if left >= 0 and left < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return 1
end
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
return 1
";

/// Gives the lease up, if it is still ours. KEYS: identity. ARGV: token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
";

/// A handled key keeps at least `keep`. KEYS: identity. ARGV: keep (ms).
const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) ~= 'done' then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left >= 0 and left < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
";

/// Hands back what a replica handled: each key is marked handled (over a
/// lease too: it was handled) for at least its time left. KEYS: identities.
/// ARGV: their time left (ms), in the same order.
const HAND_BACK: &str = r"
for i = 1, #KEYS do
  local held = redis.call('GET', KEYS[i])
  if held == 'done' then
    local left = redis.call('PTTL', KEYS[i])
    if left >= 0 and left < tonumber(ARGV[i]) then redis.call('PEXPIRE', KEYS[i], ARGV[i]) end
  else
    redis.call('SET', KEYS[i], 'done', 'PX', ARGV[i])
  end
end
return #KEYS
";

/// How often each replica looks at the epoch (and hands back when it changed).
const HEARTBEAT: Duration = Duration::from_millis(500);
/// When a claim that got no answer in time is withdrawn a second time.
const WITHDRAW_AGAIN: Duration = Duration::from_secs(1);
/// Identities handed back per round trip.
const HAND_BACK_BATCH: usize = 256;

/// Handled events in Redis (feature `redis`), shared by every replica: a
/// claim is one atomic script (`SET NX PX` under the epoch check). The
/// same connection options as the rate limit: `redis://` or `rediss://`
/// (rustls), a cluster (every key carries the prefix as one hash tag, so a
/// fleet's keys live on one node), a timeout per round trip, a fresh
/// connection after any failure. When Redis cannot answer, every method
/// says [`StoreUnavailable`] and the delivery is answered with a retryable
/// status: NexHealth sends it again.
///
/// **Redis restarted empty.** Each replica keeps a bounded record of the
/// events it handled ([`RedisStore::DEFAULT_RECORD`], each until its keep
/// time ends) and answers a retry of one of them as a duplicate without
/// asking Redis. A key `{prefix}:epoch` names the life of Redis's data;
/// when it is gone, the first replica to notice founds a new one with a
/// restoring window ([`RedisStore::RESTORING_WINDOW`]) during which claims
/// answer [`StoreUnavailable::RESTORING`] (503: NexHealth retries), and
/// every replica, which looks at the epoch every 500 ms, hands its record
/// back. After the window, a retry of any event a live replica handled is a
/// duplicate on every replica. What a replica that is gone for good
/// handled is lost with it unless Redis persists (AOF).
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    link: RedisLink,
    prefix: String,
    claim: redis::Script,
    epoch_script: redis::Script,
    commit: redis::Script,
    release: redis::Script,
    extend: redis::Script,
    hand_back: redis::Script,
    /// What this replica handled, until each keep time ends.
    record: Mutex<Slots>,
    record_capacity: usize,
    /// The epoch this replica last handed its record to.
    epoch: Mutex<Option<String>>,
    /// Serialises hand-backs (the heartbeat's and a claim's).
    handing_back: tokio::sync::Mutex<()>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.heartbeat).take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &"<redacted>")
            .field("prefix", &self.shared.prefix)
            .field("recorded", &lock(&self.shared.record).len())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A duration as Redis milliseconds: at least 1, at most [`LONGEST`] (a
/// `PX` Redis refuses would fail every commit).
fn millis(d: Duration) -> u64 {
    d.min(LONGEST).as_millis().max(1) as u64
}

impl RedisStore {
    /// Default prefix of the keys.
    pub const DEFAULT_PREFIX: &'static str = "nexhealth-api:webhook";
    /// Default wait for one round trip.
    ///
    /// Value: 500 ms.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
    /// How long claims answer "restoring" after Redis came back empty, while
    /// every replica hands back its record (each looks every 500 ms).
    ///
    /// Value: 2 s.
    pub const RESTORING_WINDOW: Duration = Duration::from_secs(2);
    /// Default bound on each replica's record of what it handled (about
    /// [`BYTES_PER_ENTRY`](super::BYTES_PER_ENTRY) each); past it, the
    /// entries that run out soonest are dropped from the record (Redis
    /// still holds them).
    ///
    /// Value: 209,715 (as [`MemoryStore::DEFAULT_CAPACITY`](super::MemoryStore::DEFAULT_CAPACITY)).
    pub const DEFAULT_RECORD: usize = super::MemoryStore::DEFAULT_CAPACITY as usize;

    /// A store in the Redis at `url` (`redis://` or `rediss://`).
    pub fn new(url: &str) -> Result<Self, crate::error::Error> {
        Self::build(Target::Single(url.to_string()), None, Self::DEFAULT_TIMEOUT)
    }

    /// A store in the Redis Cluster reachable at any of `nodes`.
    pub fn cluster<I, S>(nodes: I) -> Result<Self, crate::error::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let nodes = nodes.into_iter().map(Into::into).collect();
        Self::build(Target::Cluster(nodes), None, Self::DEFAULT_TIMEOUT)
    }

    /// A store with every option: the target, PEM roots for `rediss://`,
    /// the timeout of one round trip (clamped to 1 ms ..= 60 s).
    pub fn with_options(
        url: &str,
        root_certificates: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Self, crate::error::Error> {
        Self::build(Target::Single(url.to_string()), root_certificates, timeout)
    }

    fn build(
        target: Target,
        root_certificates: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Self, crate::error::Error> {
        let timeout = timeout.clamp(Duration::from_millis(1), Duration::from_secs(60));
        let link = RedisLink::new(target, root_certificates, timeout).map_err(|reason| {
            crate::error::Error::invalid_request(format!("the webhook store's Redis: {reason}"))
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                link,
                prefix: Self::DEFAULT_PREFIX.to_string(),
                claim: redis::Script::new(CLAIM),
                epoch_script: redis::Script::new(EPOCH),
                commit: redis::Script::new(COMMIT),
                release: redis::Script::new(RELEASE),
                extend: redis::Script::new(EXTEND),
                hand_back: redis::Script::new(HAND_BACK),
                record: Mutex::new(Slots::default()),
                record_capacity: Self::DEFAULT_RECORD,
                epoch: Mutex::new(None),
                handing_back: tokio::sync::Mutex::new(()),
                heartbeat: Mutex::new(None),
            }),
        })
    }

    fn shared_mut(&mut self) -> &mut Shared {
        Arc::get_mut(&mut self.shared).expect("configured before it is cloned or used")
    }

    /// The prefix of the keys (default `nexhealth-api:webhook`); the keys
    /// are `{prefix}:<identity>` and `{prefix}:epoch`. Set it before the
    /// store is cloned or used.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.prefix = prefix.into();
        }
        self
    }

    /// The most identities this replica keeps in its own record (default
    /// [`Self::DEFAULT_RECORD`]; at least 1). Set it before the store is
    /// cloned or used.
    pub fn record_capacity(mut self, capacity: usize) -> Self {
        if Arc::get_mut(&mut self.shared).is_some() {
            self.shared_mut().record_capacity = capacity.max(1);
        }
        self
    }

    /// The identities in this replica's record now.
    pub fn recorded(&self) -> usize {
        let mut record = lock(&self.shared.record);
        record.purge(Instant::now());
        record.len()
    }
}

impl Shared {
    fn key(&self, identity: &EventIdentity) -> String {
        format!("{{{}}}:{}", self.prefix, identity.to_hex())
    }

    fn epoch_key(&self) -> String {
        format!("{{{}}}:epoch", self.prefix)
    }

    /// Whether this replica knows Redis had data before: it saw an epoch,
    /// or it holds a record.
    fn seen(&self) -> bool {
        lock(&self.epoch).is_some() || {
            let mut record = lock(&self.record);
            record.purge(Instant::now());
            record.len() > 0
        }
    }

    fn recorded_done(&self, identity: &EventIdentity) -> bool {
        let now = Instant::now();
        lock(&self.record).get(identity, now) == Some(&State::Done)
    }

    fn record(&self, identity: &EventIdentity, keep: Duration) {
        let now = Instant::now();
        let until = deadline(now, keep);
        let mut record = lock(&self.record);
        record.purge(now);
        if record.deadline_of(identity, now).is_none_or(|d| d < until) {
            record.put(*identity, State::Done, until);
        }
        while record.len() > self.record_capacity {
            record.pop_soonest();
        }
    }

    /// Hands the record to Redis if `epoch` is not the one it was last
    /// handed to (Redis lost its data since, or this replica never handed it).
    async fn sync_epoch(&self, epoch: String) -> Result<(), &'static str> {
        if lock(&self.epoch).as_deref() == Some(epoch.as_str()) {
            return Ok(());
        }
        let _one = self.handing_back.lock().await;
        if lock(&self.epoch).as_deref() == Some(epoch.as_str()) {
            return Ok(());
        }
        let done = lock(&self.record).done(Instant::now());
        for batch in done.chunks(HAND_BACK_BATCH) {
            let mut invocation = self.hand_back.prepare_invoke();
            for (identity, _) in batch {
                invocation.key(self.key(identity));
            }
            for (_, left) in batch {
                invocation.arg(millis(*left));
            }
            self.link.run::<i64>(&invocation).await?;
        }
        if !done.is_empty() {
            tracing::info!(
                handed_back = done.len(),
                "webhook store: Redis lost its data; this replica handed back the events it handled"
            );
        }
        *lock(&self.epoch) = Some(epoch);
        Ok(())
    }

    /// One look at the epoch (the heartbeat).
    async fn beat(&self) {
        let mut invocation = self.epoch_script.key(self.epoch_key());
        invocation
            .arg(millis(RedisStore::RESTORING_WINDOW))
            .arg(if self.seen() { "1" } else { "0" });
        if let Ok(epoch) = self.link.run::<String>(&invocation).await {
            // Failing here is Redis in trouble again: the next beat retries.
            let _ = self.sync_epoch(epoch).await;
        }
    }

    fn spawn<F>(self: &Arc<Self>, work: impl FnOnce(Arc<Self>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(work(self.clone()));
        }
    }

    /// Starts the heartbeat once per runtime (again if its runtime ended).
    fn ensure_heartbeat(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut heartbeat = lock(&self.heartbeat);
        if heartbeat.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(self);
        *heartbeat = Some(runtime.spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let Some(shared) = weak.upgrade() else { return };
                shared.beat().await;
            }
        }));
    }

    async fn run_release(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
    ) -> Result<(), &'static str> {
        let mut invocation = self.release.key(self.key(identity));
        invocation.arg(&lease.0);
        self.link.run::<i64>(&invocation).await.map(drop)
    }

    async fn run_commit(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
        keep: Duration,
    ) -> Result<(), &'static str> {
        self.record(identity, keep);
        let mut invocation = self.commit.key(self.key(identity));
        invocation.arg(&lease.0).arg(millis(keep));
        self.link.run::<i64>(&invocation).await.map(drop)
    }
}

fn unavailable(reason: &'static str) -> StoreUnavailable {
    StoreUnavailable { reason }
}

impl HandledStore for RedisStore {
    async fn claim(
        &self,
        identity: &EventIdentity,
        lease: Duration,
    ) -> Result<Claim, StoreUnavailable> {
        let shared = &self.shared;
        shared.ensure_heartbeat();
        // This replica handled it: a duplicate, whatever Redis remembers.
        if shared.recorded_done(identity) {
            return Ok(Claim::Handled);
        }
        let fresh = Lease::fresh();
        let mut invocation = shared.claim.key(shared.key(identity));
        invocation
            .key(shared.epoch_key())
            .arg(&fresh.0)
            .arg(millis(lease))
            .arg(millis(RedisStore::RESTORING_WINDOW))
            .arg(if shared.seen() { "1" } else { "0" });
        let (answer, epoch): (String, String) = match shared.link.run(&invocation).await {
            Ok(answer) => answer,
            Err(reason) => {
                // The script may have run after the wait ended: withdraw
                // the claim it may have taken (only ours: the token is new).
                let identity = *identity;
                // Twice: the late claim and the first withdrawal travel on
                // different connections, in either order.
                shared.spawn(move |shared| async move {
                    let _ = shared.run_release(&identity, &fresh).await;
                    tokio::time::sleep(WITHDRAW_AGAIN).await;
                    let _ = shared.run_release(&identity, &fresh).await;
                });
                return Err(unavailable(reason));
            }
        };
        // Redis's data changed life since this replica last handed its
        // record: hand it back before acting on the answer.
        if let Err(reason) = shared.sync_epoch(epoch).await {
            if answer == "claimed" {
                let _ = shared.run_release(identity, &fresh).await;
            }
            return Err(unavailable(reason));
        }
        match answer.as_str() {
            "claimed" => Ok(Claim::Claimed(fresh)),
            "done" => Ok(Claim::Handled),
            "busy" => Ok(Claim::Busy),
            "restoring" => Err(unavailable(StoreUnavailable::RESTORING)),
            _ => Err(unavailable(StoreUnavailable::UNEXPECTED_ANSWER)),
        }
    }

    async fn commit(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
        keep: Duration,
    ) -> Result<(), StoreUnavailable> {
        self.shared
            .run_commit(identity, lease, keep)
            .await
            .map_err(unavailable)
    }

    async fn release(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
    ) -> Result<(), StoreUnavailable> {
        self.shared
            .run_release(identity, lease)
            .await
            .map_err(unavailable)
    }

    async fn extend(
        &self,
        identity: &EventIdentity,
        keep: Duration,
    ) -> Result<(), StoreUnavailable> {
        let shared = &self.shared;
        if shared.recorded_done(identity) {
            shared.record(identity, keep);
        }
        let mut invocation = shared.extend.key(shared.key(identity));
        invocation.arg(millis(keep));
        shared
            .link
            .run::<i64>(&invocation)
            .await
            .map(drop)
            .map_err(unavailable)
    }

    fn abandon(&self, identity: &EventIdentity, lease: &Lease, how: Abandoned) {
        let identity = *identity;
        let lease = lease.clone();
        if let Abandoned::Handled { keep } = how {
            self.shared.record(&identity, keep);
        }
        self.shared.spawn(move |shared| async move {
            let _ = match how {
                Abandoned::Unfinished => shared.run_release(&identity, &lease).await,
                Abandoned::Handled { keep } => shared.run_commit(&identity, &lease, keep).await,
            };
        });
    }
}
