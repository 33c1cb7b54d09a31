//! One rate-limit budget in Redis, shared by every client of every process
//! that uses the same Redis and API key (feature `redis`).
//!
//! **Taking a slot.** One Lua script (EVALSHA; redis-rs loads it again when a
//! restarted Redis answers NOSCRIPT) checks and takes a slot in one atomic
//! step on the server, so two replicas never both take the last one. It keeps
//! one sliding log (a sorted set of grants, on Redis's own clock, so the
//! replicas' clocks do not matter) and admits a request only when fewer than
//! `per_second` grants lie in the last second and fewer than `per_minute` in
//! the last minute, exactly as the in-process limiter does. Each grant is
//! counted at its slot plus this process's margin (see [`MAX_MARGIN`]): a
//! replica whose requests take longer to arrive spaces everyone's after its own.
//!
//! **Replicas.** Every process registers in Redis with the share of the
//! budget it would spend on its own, and refreshes that every
//! [`PROBE_INTERVAL`] from a background task. A process not seen for
//! [`SILENT_AFTER`] may be cut off from Redis and spending its share: until it
//! is back, or forgotten after [`RedisRateLimit::replica_expiry`], the
//! others' budget is reduced by that share. The default share is one over the
//! most replicas seen in the last expiry.
//!
//! **Redis trouble never becomes the service's trouble.** When Redis cannot
//! be reached, is slower than [`RedisRateLimit::redis_timeout`], is read-only
//! (a replica after a failover), or answers an error, garbage, or a value the
//! script cannot return, the process falls back to its share in process,
//! logs one warning, and reconnects from scratch. The fallback:
//! - grants nothing for [`SILENT_AFTER`] after its last contact with Redis,
//!   the time the others need to set its share aside;
//! - starts from its share of what the fleet had spent at the last answer,
//!   plus everything the fleet could have spent since (a full second's
//!   budget for every second begun since that answer; a whole minute's when
//!   there was none), so a stale view only makes it more careful;
//! - gives each grant a unique identity, kept with this process's other
//!   grants of the last minute.
//!
//! The background task keeps probing; when Redis answers, the process hands
//! every grant of its last minute to Redis (`ZADD NX`: what Redis kept is
//! not counted twice, what a restarted Redis lost is restored), and for
//! [`SILENT_AFTER`] plus one probe interval also keeps to its in-process
//! share, while the others hand theirs over. A seed's placeholders are never
//! handed over.
//!
//! The keys hold no API key: they are named by a SHA-256 digest of it, under
//! a configurable prefix and one hash tag (a cluster keeps them on one node),
//! and expire by themselves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use sha2::Digest;

use super::log::{Entry, SlidingLog, WINDOWS};
use super::margin::{MAX_MARGIN, Margin};
use super::{DEFAULT_WINDOW_MARGIN, Grant, MAX_SHARED_PAUSE, RateLimit, Unavailable, extend_pause};
use crate::error::Error;
use crate::transport::redis_link::{RedisLink, Target};

/// How often each process tells Redis it is alive, and how often one on its
/// fallback tries Redis again.
///
/// Value: 250 ms.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// How long a process may go unseen before the others set its share of the
/// budget aside; also how long a process that lost Redis waits before it
/// spends its share.
///
/// Value: 1 s.
pub const SILENT_AFTER: Duration = Duration::from_secs(1);

/// Added to [`SILENT_AFTER`] before a fallback spends: the others' view of
/// "unseen" runs on Redis's clock, after this process's last answer.
const GRACE_SLACK: Duration = Duration::from_millis(100);

/// Shares travel as parts per million.
const PPM: i64 = 1_000_000;
/// The longest wait the acquire script answers outside a pause: a grant
/// counted up to [`MAX_MARGIN`] late leaves the minute window by then.
const MAX_SCRIPT_WAIT_MS: i64 = 60_000 + MAX_MARGIN.as_millis() as i64 + 1_000;
/// More grants in a window or more replicas than this is not an answer the
/// scripts give: it is garbage.
const MAX_COUNT: i64 = 10_000_000;
/// The furthest ahead of now a grant can be counted: a margin, and a slot
/// handed over from a fallback that reserved it a pause ahead.
const MAX_AHEAD_MS: i64 =
    MAX_MARGIN.as_millis() as i64 + MAX_SHARED_PAUSE.as_millis() as i64 + 61_000;

/// Registers this process, forgets processes unseen for the expiry, and sums
/// the shares of those unseen for `SILENT_AFTER`. KEYS: log, replicas,
/// shares, pause. ARGV: replica, share (ppm), silent after (ms), expiry (ms).
const PRESENCE: &str = include_str!("lua/presence.lua");

/// Takes one slot, or answers how many milliseconds to wait:
/// `{wait, now, in the last second, in the last minute, replicas, reserved
/// share (ppm), paused (0 or 1), how far ahead of now the newest grant is
/// counted (ms)}`. ARGV after the presence ones: per second,
/// per minute, the grant's member, this process's margin (ms).
const ACQUIRE: &str = include_str!("lua/acquire.lua");

/// The heartbeat: `{now, in the last second, in the last minute, replicas,
/// reserved, ahead}`.
const STATUS: &str = include_str!("lua/status.lua");

/// Hands grants to Redis, adding only those it does not hold, and withdraws
/// grants whose answer never arrived (never used). KEYS: log. ARGV: how many
/// to withdraw, their members, then pairs of age (ms before now; negative for
/// a slot still to come) and member.
const MERGE: &str = include_str!("lua/merge.lua");

/// Sets the shared pause unless a longer one is already set. KEYS: pause. ARGV: ms.
const PAUSE: &str = include_str!("lua/pause.lua");

/// A process leaving: its share is no longer set aside. KEYS: replicas,
/// shares. ARGV: replica.
const LEAVE: &str = include_str!("lua/leave.lua");

/// A rate limit shared through Redis (feature `redis`). Give it to
/// [`ClientBuilder::rate_limit`](crate::ClientBuilder::rate_limit):
///
/// ```no_run
/// use nexhealth_api::{Client, RateLimit, RedisRateLimit};
///
/// # fn run() -> Result<(), nexhealth_api::Error> {
/// let client = Client::builder("key")
///     .rate_limit(RedisRateLimit::new("rediss://:password@redis.internal:6380/"))
///     .build()?;
/// # Ok(()) }
/// ```
///
/// `rediss://` speaks TLS through rustls (no OpenSSL), trusting the system's
/// roots or those given to [`root_certificates`](Self::root_certificates).
/// For Redis Cluster, [`RedisRateLimit::cluster`].
#[derive(Clone)]
pub struct RedisRateLimit {
    target: Target,
    limit: RateLimit,
    prefix: String,
    fallback_share: Option<f64>,
    redis_timeout: Duration,
    window_margin: Duration,
    replica_expiry: Duration,
    root_certificates: Option<Vec<u8>>,
}

/// The URLs may carry a password: never shown.
impl std::fmt::Debug for RedisRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimit")
            .field("target", &self.target.redacted())
            .field("limit", &self.limit)
            .field("prefix", &self.prefix)
            .field("fallback_share", &self.fallback_share)
            .field("redis_timeout", &self.redis_timeout)
            .field("window_margin", &self.window_margin)
            .field("replica_expiry", &self.replica_expiry)
            .field("root_certificates", &self.root_certificates.is_some())
            .finish()
    }
}

impl RedisRateLimit {
    /// Default wait for one Redis round trip before falling back.
    ///
    /// Value: 250 ms.
    pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
    /// Default least margin each grant is counted with (see [`window_margin`](Self::window_margin)).
    ///
    /// Value: 100 ms.
    pub const DEFAULT_WINDOW_MARGIN: Duration = DEFAULT_WINDOW_MARGIN;
    /// Default time after which an unseen process is forgotten and its share
    /// of the budget no longer set aside.
    ///
    /// Value: 120 s.
    pub const DEFAULT_REPLICA_EXPIRY: Duration = Duration::from_secs(120);
    /// Default prefix of the keys.
    pub const DEFAULT_PREFIX: &'static str = "nexhealth-api:rate";

    /// A shared limit through the Redis at `url`
    /// (`redis://[:password@]host:port/[db]`, or `rediss://` for TLS), at
    /// [`RateLimit::NEXHEALTH_DEFAULT`].
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_target(Target::Single(url.into()))
    }

    /// A shared limit through the Redis Cluster reachable at any of `nodes`
    /// (`redis://host:port` or `rediss://host:port` each). The keys share one
    /// hash tag, so each script runs on the one node that holds them.
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_target(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    fn with_target(target: Target) -> Self {
        Self {
            target,
            limit: RateLimit::NEXHEALTH_DEFAULT,
            prefix: Self::DEFAULT_PREFIX.to_string(),
            fallback_share: None,
            redis_timeout: Self::DEFAULT_REDIS_TIMEOUT,
            window_margin: Self::DEFAULT_WINDOW_MARGIN,
            replica_expiry: Self::DEFAULT_REPLICA_EXPIRY,
            root_certificates: None,
        }
    }

    /// The budget every process shares (default NexHealth's).
    pub fn limit(mut self, limit: RateLimit) -> Self {
        self.limit = limit;
        self
    }

    /// The prefix of the keys in Redis (default `nexhealth-api:rate`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The share of the budget this process spends on its own while it cannot
    /// reach Redis, and that the others set aside while it is unseen. Default:
    /// one over the most processes seen in Redis during the last
    /// [`replica_expiry`](Self::replica_expiry). Set it when the fleet's size
    /// is known (`1.0 / N`); the shares of all processes must add up to at
    /// most 1. Clamped to (0, 1]; anything else keeps the default.
    pub fn fallback_share(mut self, share: f64) -> Self {
        self.fallback_share = (share.is_finite() && share > 0.0).then(|| share.min(1.0));
        self
    }

    /// The longest one Redis round trip may take before the call falls back
    /// (default 250 ms, at least 1 ms).
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis_timeout = timeout.clamp(Duration::from_millis(1), Duration::from_secs(60));
        self
    }

    /// The least time each grant is counted after its slot, for the time
    /// between taking a slot and the request reaching NexHealth (default
    /// 100 ms). The margin grows past it when this process measures slower
    /// answers, up to [`MAX_MARGIN`].
    pub fn window_margin(mut self, margin: Duration) -> Self {
        self.window_margin = margin;
        self
    }

    /// How long a process unseen in Redis keeps its share set aside (default
    /// 120 s, at least [`SILENT_AFTER`] twice). A process cut off from Redis
    /// for longer while the others are not may exceed the limit by its share;
    /// a process that stopped without leaving (a crash) costs the others its
    /// share for this long.
    pub fn replica_expiry(mut self, expiry: Duration) -> Self {
        self.replica_expiry = expiry.clamp(SILENT_AFTER * 2, Duration::from_secs(24 * 3_600));
        self
    }

    /// Trusts these PEM root certificates (instead of the system's) for
    /// `rediss://` URLs.
    pub fn root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into());
        self
    }
}

/// The digest that names one API key's budget: the key itself never reaches Redis.
pub(crate) fn key_id(api_key: &str) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"nexhealth-api rate limit\0")
        .chain_update(api_key.as_bytes())
        .finalize();
    hex::encode(&digest[..12])
}

struct Keys {
    log: String,
    replicas: String,
    shares: String,
    pause: String,
}

struct Scripts {
    acquire: redis::Script,
    status: redis::Script,
    merge: redis::Script,
    pause: redis::Script,
    leave: redis::Script,
}

struct State {
    /// On the in-process fallback.
    active: bool,
    since: Instant,
    /// Just back from the fallback: also keeping to the in-process share.
    guarded_until: Option<Instant>,
    /// A fallback spends nothing before this.
    grace_until: Instant,
    /// When the last answer from Redis arrived, and when the last script was
    /// sent (Redis may have run it, and seen this process, without answering).
    last_contact: Option<Instant>,
    last_sent: Option<Instant>,
    /// When the last answer was asked for, and the fleet's grants it reported
    /// (last second, last minute).
    last_answer_at: Option<Instant>,
    last_counts: [u64; 2],
    /// How far ahead the newest grant was counted at the last answer.
    last_ahead: Duration,
    /// The most processes seen in Redis lately, and when.
    replicas_seen: (u64, Instant),
    /// A 429's pause, for the in-process side.
    paused_until: Option<Instant>,
    /// The in-process share: the fallback's grants and the seed's placeholders.
    log: SlidingLog,
    /// This process's grants of the last minute (through Redis or not), to
    /// hand to Redis after an outage.
    mine: VecDeque<Entry>,
    /// Grants asked for whose answer never came: Redis may hold them, unused.
    abandoned: Vec<u64>,
    next_id: u64,
}

struct Shared {
    link: RedisLink,
    scripts: Scripts,
    keys: Keys,
    limit: RateLimit,
    configured_share: Option<f64>,
    timeout: Duration,
    expiry: Duration,
    margin: Margin,
    /// This process's name in Redis, and the prefix of its grants' names.
    replica: String,
    state: Mutex<State>,
    fallbacks: AtomicU64,
}

/// One answer of the acquire script, checked.
struct Answer {
    /// The id the grant was asked under (its member in Redis).
    id: u64,
    wait_ms: u64,
    /// Redis's clock when the script ran (ms).
    #[cfg_attr(not(test), allow(dead_code))]
    now_ms: i64,
    status: Status,
}

/// What any answer says of the fleet.
struct Status {
    counts: [u64; 2],
    replicas: u64,
    /// How far ahead of Redis's now the newest grant is counted.
    ahead: Duration,
}

/// The most of this process's grants kept for a hand-over (far above any
/// minute's budget; only a runaway could reach it).
const MAX_MINE: usize = 1_000_000;

pub(crate) struct RedisLimiter {
    shared: Arc<Shared>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl RedisLimiter {
    pub(crate) fn new(config: RedisRateLimit, api_key: &str) -> Result<Self, Error> {
        let link = RedisLink::new(
            config.target,
            config.root_certificates,
            config.redis_timeout,
        )
        .map_err(|reason| Error::invalid_request(format!("the rate limit's Redis: {reason}")))?;
        let id = key_id(api_key);
        // One hash tag, so that the keys live on one node of a cluster.
        let base = format!("{}:{{{id}}}", config.prefix);
        let now = Instant::now();
        let limit = config.limit;
        let shared = Shared {
            link,
            scripts: Scripts {
                acquire: redis::Script::new(&format!("{PRESENCE}{ACQUIRE}")),
                status: redis::Script::new(&format!("{PRESENCE}{STATUS}")),
                merge: redis::Script::new(MERGE),
                pause: redis::Script::new(PAUSE),
                leave: redis::Script::new(LEAVE),
            },
            keys: Keys {
                log: format!("{base}:log"),
                replicas: format!("{base}:replicas"),
                shares: format!("{base}:shares"),
                pause: format!("{base}:pause"),
            },
            limit,
            configured_share: config.fallback_share,
            timeout: config.redis_timeout,
            expiry: config.replica_expiry,
            margin: Margin::new(config.window_margin),
            replica: format!(
                "{:x}-{:x}",
                std::process::id(),
                crate::transport::random_u64()
            ),
            state: Mutex::new(State {
                active: false,
                since: now,
                guarded_until: None,
                grace_until: now,
                last_contact: None,
                last_sent: None,
                last_answer_at: None,
                last_counts: [0, 0],
                last_ahead: Duration::ZERO,
                replicas_seen: (1, now),
                paused_until: None,
                log: SlidingLog::new(share_of(limit, 1.0)),
                mine: VecDeque::new(),
                abandoned: Vec::new(),
                next_id: 1,
            }),
            fallbacks: AtomicU64::new(0),
        };
        Ok(Self {
            shared: Arc::new(shared),
            heartbeat: Mutex::new(None),
        })
    }

    /// Starts (or restarts, after its runtime ended) the background probe.
    fn ensure_heartbeat(&self) {
        let mut slot = self.heartbeat.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            *slot = Some(runtime.spawn(heartbeat(Arc::downgrade(&self.shared))));
        }
    }

    pub(crate) async fn acquire(&self, bound: Option<Instant>) -> Result<Grant, Unavailable> {
        self.ensure_heartbeat();
        let shared = &*self.shared;
        loop {
            let (active, guarded) = {
                let state = shared.lock();
                let now = Instant::now();
                (
                    state.active,
                    state.guarded_until.is_some_and(|until| now < until),
                )
            };
            if active {
                match shared.take_local(bound, true).await? {
                    Some(slot) => return Ok(slot.keep()),
                    // Redis came back while this call waited.
                    None => continue,
                }
            }
            // Just back: the in-process share as well as Redis's grant.
            let local = match guarded {
                true => shared.take_local(bound, false).await?,
                false => None,
            };
            let asked_at = Instant::now();
            match shared.try_acquire().await {
                Ok(answer) => {
                    shared.answered(&answer.status, asked_at);
                    if answer.wait_ms == 0 {
                        shared.record_grant(answer.id, Instant::now());
                        if let Some(local) = local {
                            local.keep();
                        }
                        return Ok(Grant { slot: asked_at });
                    }
                    drop(local);
                    let wait = Duration::from_millis(answer.wait_ms);
                    if bound.is_some_and(|bound| asked_at + wait > bound) {
                        return Err(Unavailable {
                            free_in: wait.saturating_sub(asked_at.elapsed()),
                        });
                    }
                    tokio::time::sleep_until((asked_at + wait).into()).await;
                }
                Err(reason) => {
                    drop(local);
                    shared.fall_back(reason);
                }
            }
        }
    }

    pub(crate) fn observe(&self, grant: &Grant, answered: Instant) {
        self.shared.margin.observe(grant.slot, answered);
    }

    pub(crate) fn margin(&self) -> Duration {
        self.shared.margin.current()
    }

    pub(crate) async fn pause(&self, pause: Duration) {
        let shared = &*self.shared;
        let active = {
            let mut state = shared.lock();
            extend_pause(&mut state.paused_until, pause);
            state.active
        };
        if active {
            return;
        }
        let ms = pause.min(MAX_SHARED_PAUSE).as_millis().max(1) as u64;
        let mut invocation = shared.scripts.pause.key(&shared.keys.pause);
        invocation.arg(ms);
        match shared.run::<i64>(&invocation).await {
            Ok(_) => tracing::debug!(
                pause_ms = ms,
                "shared rate limit: every replica pauses after a 429"
            ),
            Err(reason) => shared.fall_back(reason),
        }
    }

    pub(crate) fn fallback_active(&self) -> bool {
        self.shared.lock().active
    }

    /// How many times this limiter fell back to the in-process limit.
    pub(crate) fn fallbacks(&self) -> u64 {
        self.shared.fallbacks.load(Ordering::Relaxed)
    }
}

impl Drop for RedisLimiter {
    /// Stops the probe and, when a runtime is there to run it, tells Redis
    /// this process left, so that the others stop setting its share aside.
    fn drop(&mut self) {
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        if self.shared.lock().last_contact.is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = Arc::clone(&self.shared);
            runtime.spawn(async move { shared.leave().await });
        }
    }
}

/// Every [`PROBE_INTERVAL`] while the limiter lives: tells Redis this process
/// is alive, learns the fleet's counts, falls back when Redis is away and
/// hands the fallback's grants over when it is back.
async fn heartbeat(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.beat().await;
    }
}

/// `limit` scaled by `share`: at least 1 a window.
fn share_of(limit: RateLimit, share: f64) -> [usize; 2] {
    let part = |n: u32| ((f64::from(n) * share).floor() as usize).max(1);
    [part(limit.per_second.get()), part(limit.per_minute.get())]
}

/// A slot of the in-process share, given back if the call is dropped first.
struct LocalSlot<'a> {
    shared: &'a Shared,
    id: Option<u64>,
    slot: Instant,
}

impl LocalSlot<'_> {
    fn keep(mut self) -> Grant {
        self.id = None;
        Grant { slot: self.slot }
    }
}

impl Drop for LocalSlot<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let mut state = self.shared.lock();
            state.log.remove(id);
            if let Some(index) = state.mine.iter().rposition(|e| e.id == id) {
                state.mine.remove(index);
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn share(&self, state: &State) -> f64 {
        self.configured_share
            .unwrap_or(1.0 / state.replicas_seen.0.max(1) as f64)
    }

    /// One script round trip within the timeout; any failure is a reason to fall back.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, &'static str> {
        self.lock().last_sent = Some(Instant::now());
        self.link.run(invocation).await
    }

    fn presence<'a>(
        &'a self,
        script: &'a redis::Script,
        share: f64,
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.key(&self.keys.log);
        invocation
            .key(&self.keys.replicas)
            .key(&self.keys.shares)
            .key(&self.keys.pause)
            .arg(&self.replica)
            .arg((share * PPM as f64).round() as i64)
            .arg(SILENT_AFTER.as_millis() as u64)
            .arg(self.expiry.as_millis() as u64);
        invocation
    }

    /// One round trip of the acquire script, its answer checked.
    async fn try_acquire(&self) -> Result<Answer, &'static str> {
        let (share, id) = {
            let mut state = self.lock();
            let id = state.next_id;
            state.next_id += 1;
            (self.share(&state), id)
        };
        let mut invocation = self.presence(&self.scripts.acquire, share);
        invocation
            .arg(self.limit.per_second.get())
            .arg(self.limit.per_minute.get())
            .arg(format!("{}-{id}", self.replica))
            .arg(self.margin.current().as_millis() as u64);
        let answer: Vec<i64> = match self.run(&invocation).await {
            Ok(answer) => answer,
            Err(reason) => {
                let mut state = self.lock();
                if state.abandoned.len() < MAX_MINE {
                    state.abandoned.push(id);
                }
                return Err(reason);
            }
        };
        match answer.as_slice() {
            &[wait, now, second, minute, replicas, reserved, paused, ahead] => {
                let most = if paused == 1 {
                    MAX_SHARED_PAUSE.as_millis() as i64
                } else {
                    MAX_SCRIPT_WAIT_MS
                };
                let status = check_status(now, [second, minute], replicas, reserved, ahead)?;
                if !(0..=most).contains(&wait) || !(0..=1).contains(&paused) {
                    return Err("Redis answered a wait the script cannot give");
                }
                Ok(Answer {
                    id,
                    wait_ms: wait as u64,
                    now_ms: now,
                    status,
                })
            }
            _ => Err("Redis answered something else than the script's answer"),
        }
    }

    /// One round trip of the heartbeat script, its answer checked.
    async fn status(&self) -> Result<Status, &'static str> {
        let share = self.share(&self.lock());
        let invocation = self.presence(&self.scripts.status, share);
        let answer: Vec<i64> = self.run(&invocation).await?;
        match answer.as_slice() {
            &[now, second, minute, replicas, reserved, ahead] => {
                check_status(now, [second, minute], replicas, reserved, ahead)
            }
            _ => Err("Redis answered something else than the script's answer"),
        }
    }

    /// Notes what an answer said of the fleet.
    fn answered(&self, status: &Status, asked_at: Instant) {
        let now = Instant::now();
        let mut state = self.lock();
        state.last_contact = Some(now);
        state.last_answer_at = Some(asked_at);
        state.last_counts = status.counts;
        state.last_ahead = status.ahead;
        let (most, at) = state.replicas_seen;
        if status.replicas >= most || now.saturating_duration_since(at) > self.expiry {
            state.replicas_seen = (status.replicas.max(1), now);
        }
    }

    /// Keeps a grant Redis gave, for a hand-over should Redis lose it.
    fn record_grant(&self, id: u64, answered: Instant) {
        let margin = self.margin.current();
        let mut state = self.lock();
        push_mine(
            &mut state.mine,
            Entry {
                // Redis counted it from a moment between asking and the answer:
                // the later end is the careful one.
                at: answered + margin,
                id,
            },
        );
    }

    /// Reserves a slot of the in-process share, waiting for it at most until
    /// `bound`. `fallback`: only while on the fallback (`None` once Redis is
    /// back), and the grant is one of this process's to hand over.
    async fn take_local(
        &self,
        bound: Option<Instant>,
        fallback: bool,
    ) -> Result<Option<LocalSlot<'_>>, Unavailable> {
        loop {
            let now = Instant::now();
            let (slot, id) = {
                let mut state = self.lock();
                if fallback && !state.active {
                    return Ok(None);
                }
                let mut not_before = state.paused_until.unwrap_or(now);
                if fallback {
                    not_before = not_before.max(state.grace_until);
                }
                let id = state.next_id;
                state.next_id += 1;
                let margin = self.margin.current();
                let slot = match state.log.reserve(now, not_before, bound, margin, id) {
                    Ok(reserved) => reserved.at,
                    Err(free_in) => return Err(Unavailable { free_in }),
                };
                if fallback {
                    let counted = Entry {
                        at: slot + margin,
                        id,
                    };
                    push_mine(&mut state.mine, counted);
                }
                (slot, id)
            };
            let local = LocalSlot {
                shared: self,
                id: Some(id),
                slot,
            };
            if slot > now {
                tokio::time::sleep_until(slot.into()).await;
                if self
                    .lock()
                    .paused_until
                    .is_some_and(|until| until > Instant::now())
                {
                    continue;
                }
            }
            return Ok(Some(local));
        }
    }

    /// Redis is away: this process goes on with its share, in process.
    fn fall_back(&self, reason: &'static str) {
        let mut state = self.lock();
        if state.active {
            return;
        }
        let now = Instant::now();
        state.active = true;
        state.since = now;
        state.guarded_until = None;
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        let share = self.share(&state);
        let limits = share_of(self.limit, share);
        state.log = SlidingLog::new(limits);
        // Redis last saw this process when it ran its last script: at the
        // latest, a timeout after that script was sent. The others set this
        // process's share aside from SILENT_AFTER later: until then they may
        // spend the whole budget, and this process spends nothing.
        let last_seen = match (state.last_contact, state.last_sent) {
            (Some(contact), Some(sent)) => Some(contact.max(sent + self.timeout)),
            (contact, sent) => contact.or(sent.map(|s| s + self.timeout)),
        };
        let reserved_from = last_seen
            .map_or(now, |seen| seen + SILENT_AFTER + GRACE_SLACK)
            .max(now);
        state.grace_until = reserved_from;
        // What the fleet had spent at the last answer, and what it could spend
        // from then until the others set this share aside: a full second's
        // budget for each second begun. Counted as this process's share of it,
        // until the last of those grants leaves the windows: each replica
        // counts its grants a margin after their slots, and Redis said how far
        // ahead the newest one was.
        let per_second = u64::from(self.limit.per_second.get());
        let per_minute = u64::from(self.limit.per_minute.get());
        let (known, known_at, since) = match state.last_answer_at {
            Some(at) if now.saturating_duration_since(at) < WINDOWS[1] => {
                let seconds = reserved_from.saturating_duration_since(at).as_secs() + 1;
                (
                    state.last_counts[1].min(per_minute),
                    at,
                    per_second.saturating_mul(seconds).min(per_minute),
                )
            }
            // Nothing known of the last minute: all of it may be spent.
            _ => (0, now, per_minute),
        };
        let scaled = |n: u64| ((n as f64 * share).ceil() as usize).min(limits[1]);
        let ahead = state
            .last_ahead
            .max(self.margin.current())
            .min(Duration::from_millis(MAX_AHEAD_MS as u64));
        let placeholder = |at: Instant| Entry {
            at: at + ahead,
            id: 0,
        };
        for _ in 0..scaled(since) {
            state.log.insert(placeholder(reserved_from));
        }
        for _ in 0..scaled(known) {
            state.log.insert(placeholder(known_at));
        }
        drop(state);
        self.link.forget();
        tracing::warn!(
            reason,
            fallback_share = share,
            "shared rate limit: Redis unavailable, using this process's share in process until it is back"
        );
    }

    /// The probe: registers this process and learns the fleet's counts; on
    /// the fallback, a good answer hands the grants over.
    async fn beat(&self) {
        // On the fallback, handing the grants over is the probe: Redis counts
        // them before this process shows itself again (the others set its
        // share aside until then).
        if self.lock().active && !self.recover().await {
            return;
        }
        let asked_at = Instant::now();
        match self.status().await {
            Ok(status) => self.answered(&status, asked_at),
            Err(reason) => self.fall_back(reason),
        }
    }

    /// Hands every grant of this process's last minute to Redis (those it
    /// holds already are left as they are) and withdraws those never used;
    /// then leaves the fallback. Grants taken on the fallback while a batch
    /// travels go in the next batch. Answers whether Redis is back.
    async fn recover(&self) -> bool {
        let mut from_id = 0;
        let mut handed_over = 0;
        for _ in 0..4 {
            let (batch, abandoned) = {
                let mut state = self.lock();
                if !state.active {
                    return true;
                }
                let now = Instant::now();
                prune_mine(&mut state.mine, now);
                let batch: Vec<Entry> = state
                    .mine
                    .iter()
                    .filter(|e| e.id >= from_id)
                    .copied()
                    .collect();
                if from_id > 0 && batch.is_empty() && state.abandoned.is_empty() {
                    state.active = false;
                    state.guarded_until = Some(now + SILENT_AFTER + PROBE_INTERVAL);
                    let after = now.saturating_duration_since(state.since);
                    drop(state);
                    tracing::info!(
                        after_ms = after.as_millis() as u64,
                        handed_over,
                        "shared rate limit: Redis is back, the budget is shared again"
                    );
                    return true;
                }
                from_id = state.next_id;
                (batch, std::mem::take(&mut state.abandoned))
            };
            let mut invocation = self.scripts.merge.key(&self.keys.log);
            invocation.arg(abandoned.len());
            for id in &abandoned {
                invocation.arg(format!("{}-{id}", self.replica));
            }
            // Ages from now: Redis's clock when the script runs is later still,
            // so each grant is counted no earlier than it was taken.
            let sent = Instant::now();
            for grant in &batch {
                let age = match sent.checked_duration_since(grant.at) {
                    Some(past) => past.as_millis() as i64,
                    None => -(grant.at.saturating_duration_since(sent).as_millis() as i64),
                };
                invocation
                    .arg(age)
                    .arg(format!("{}-{}", self.replica, grant.id));
            }
            if self.run::<i64>(&invocation).await.is_err() {
                self.lock().abandoned.extend(abandoned);
                return false;
            }
            handed_over += batch.len();
        }
        false
    }

    /// Tells Redis this process left.
    async fn leave(&self) {
        let mut invocation = self.scripts.leave.key(&self.keys.replicas);
        invocation.key(&self.keys.shares).arg(&self.replica);
        let _ = self.run::<i64>(&invocation).await;
    }
}

/// Checks the part of an answer every script shares.
fn check_status(
    now: i64,
    [second, minute]: [i64; 2],
    replicas: i64,
    reserved: i64,
    ahead: i64,
) -> Result<Status, &'static str> {
    let count = 0..=MAX_COUNT;
    if now <= 0
        || !count.contains(&second)
        || !count.contains(&minute)
        || !(1..=MAX_COUNT).contains(&replicas)
        || !(0..=PPM).contains(&reserved)
        || !(0..=MAX_AHEAD_MS).contains(&ahead)
    {
        return Err("Redis answered values the script cannot give");
    }
    Ok(Status {
        counts: [second as u64, minute as u64],
        replicas: replicas as u64,
        ahead: Duration::from_millis(ahead as u64),
    })
}

fn push_mine(mine: &mut VecDeque<Entry>, entry: Entry) {
    prune_mine(mine, Instant::now());
    if mine.len() >= MAX_MINE {
        mine.pop_front();
    }
    mine.push_back(entry);
}

/// Forgets grants that left the minute window.
fn prune_mine(mine: &mut VecDeque<Entry>, now: Instant) {
    while mine
        .front()
        .is_some_and(|e| now.saturating_duration_since(e.at) >= WINDOWS[1])
    {
        mine.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_id_is_a_digest_not_the_key() {
        let id = key_id("secret-api-key-123");
        assert_eq!(id.len(), 24);
        assert!(!id.contains("secret"));
        assert_ne!(id, key_id("secret-api-key-124"));
        assert_ne!(id, key_id(""));
        assert_eq!(id, key_id("secret-api-key-123"));
    }

    #[test]
    fn answers_outside_what_the_scripts_give_are_garbage() {
        assert!(check_status(1, [0, 0], 1, 0, 0).is_ok());
        assert!(check_status(1, [MAX_COUNT, MAX_COUNT], MAX_COUNT, PPM, MAX_AHEAD_MS).is_ok());
        for bad in [
            (0, [0, 0], 1, 0, 0),
            (1, [-1, 0], 1, 0, 0),
            (1, [0, MAX_COUNT + 1], 1, 0, 0),
            (1, [0, 0], 0, 0, 0),
            (1, [0, 0], 1, PPM + 1, 0),
            (1, [0, 0], 1, -1, 0),
            (1, [0, 0], 1, 0, -1),
            (1, [0, 0], 1, 0, MAX_AHEAD_MS + 1),
        ] {
            assert!(
                check_status(bad.0, bad.1, bad.2, bad.3, bad.4).is_err(),
                "{bad:?}"
            );
        }
    }

    /// The script's window edges, on a real Redis: the next slot comes exactly
    /// one window after the grant that leaves (Redis's own milliseconds).
    #[cfg(feature = "mock")]
    #[tokio::test]
    async fn the_window_edges_are_exact_to_the_millisecond() {
        let redis = crate::mock::RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
        for (limit, window_ms) in [
            (RateLimit::new(1, 100), 1_000),
            (RateLimit::new(100, 1), 60_000),
        ] {
            let setting = RedisRateLimit::new(redis.url())
                .limit(limit)
                .window_margin(Duration::ZERO)
                .prefix(format!("edge-{window_ms}"));
            let limiter = RedisLimiter::new(setting, "key").unwrap();
            let first = limiter.shared.try_acquire().await.ok().unwrap();
            let second = limiter.shared.try_acquire().await.ok().unwrap();
            assert_eq!(first.wait_ms, 0);
            assert!(second.wait_ms > 0);
            assert_eq!(
                second.now_ms + second.wait_ms as i64,
                first.now_ms + window_ms,
                "{window_ms} ms window"
            );
        }
    }

    #[test]
    fn a_share_is_at_least_one_a_window() {
        assert_eq!(share_of(RateLimit::NEXHEALTH_DEFAULT, 0.25), [25, 500]);
        assert_eq!(share_of(RateLimit::new(3, 10), 0.1), [1, 1]);
    }
}
