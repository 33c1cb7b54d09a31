//! One rate-limit budget in Redis, shared by every client of every process
//! that uses the same Redis and API key (feature `redis`).
//!
//! Each request's slot is taken by one Lua script, run with EVALSHA (redis-rs
//! loads it again when a restarted Redis answers NOSCRIPT), so the check and
//! the take are one atomic step on the server: two replicas can never both
//! take the last slot. The script keeps a sliding log per window (a sorted
//! set of the times slots were taken, on Redis's own clock, so the replicas'
//! clocks do not matter) and admits a request only when *every* sliding
//! window of one second holds fewer than `per_second` entries and every
//! sliding window of one minute fewer than `per_minute`: the strictest reading
//! of NexHealth's limits. Each window is lengthened by a small margin
//! ([`RedisRateLimit::window_margin`]) for the time between taking a slot and
//! the request reaching NexHealth.
//!
//! The keys hold no API key: they are named by a SHA-256 digest of it, under
//! a configurable prefix, and expire by themselves.
//!
//! Redis trouble never becomes the service's trouble: when Redis cannot be
//! reached, is slower than [`RedisRateLimit::redis_timeout`], or answers an
//! error or garbage, the limiter falls back to an in-process limiter at
//! [`RedisRateLimit::fallback_share`] of the budget (with no bursts, so N
//! replicas at 1/N stay inside the limits together), logs one warning, tries
//! Redis again every [`PROBE_INTERVAL`], and logs one warning when it is back.
//! The hand-overs keep both windows strict. The fallback keeps the same
//! sliding logs in process, seeded with this process's share of what Redis
//! last reported for each window, so it cannot spend what the fleet spent
//! just before Redis went away. When Redis is back, the fallback's grants are
//! added to Redis's logs, and for one probe interval and one window the
//! process also keeps to its in-process share, while other replicas may still
//! be on theirs. A call on the fallback waits for the share or the next probe
//! of Redis, whichever comes first, and never past its deadline.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::Digest;

use super::sliding::SlidingLog;
use super::{Exhausted, RateLimit, sleep_within};
use crate::Error;

/// How often a limiter on its fallback tries Redis again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Takes one slot, or answers how many milliseconds to wait: `{wait, now,
/// in the second window, in the minute window}` (times in Redis's ms).
/// KEYS: second log, minute log, pause. ARGV: per second, per minute,
/// second window (ms), minute window (ms), a unique member.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pause = redis.call('PTTL', KEYS[3])
if pause > 0 then return { pause, now, 0, 0 } end
local limits = { tonumber(ARGV[1]), tonumber(ARGV[2]) }
local windows = { tonumber(ARGV[3]), tonumber(ARGV[4]) }
local wait = 0
local counts = { 0, 0 }
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - windows[i])
  counts[i] = redis.call('ZCARD', KEYS[i])
  if counts[i] >= limits[i] then
    local leaving = redis.call('ZRANGE', KEYS[i], counts[i] - limits[i], counts[i] - limits[i], 'WITHSCORES')
    wait = math.max(wait, tonumber(leaving[2]) + windows[i] - now + 1)
  end
end
if wait > 0 then return { wait, now, counts[1], counts[2] } end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[i], windows[i] + 1000)
end
return { 0, now, counts[1] + 1, counts[2] + 1 }
";

/// Hands the fallback's grants to Redis. KEYS: second log, minute log.
/// ARGV: second window (ms), minute window (ms), then score and member pairs.
const MERGE: &str = r"
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + 1000)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + 1000)
return 0
";

/// Sets the shared pause unless a longer one is already set. KEYS: pause. ARGV: ms.
const PAUSE: &str = r"
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 0
";

/// A rate limit shared through Redis (feature `redis`). Give it to
/// [`ClientBuilder::rate_limit`](crate::ClientBuilder::rate_limit):
///
/// ```no_run
/// use nexhealth_api::{Client, RateLimit, RedisRateLimit};
///
/// # fn run() -> Result<(), nexhealth_api::Error> {
/// let client = Client::builder("key")
///     .rate_limit(
///         RedisRateLimit::new("redis://127.0.0.1:6379/")
///             .limit(RateLimit::NEXHEALTH_DEFAULT)
///             .fallback_share(1.0 / 3.0), // three replicas
///     )
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRateLimit {
    url: String,
    limit: RateLimit,
    prefix: String,
    fallback_share: f64,
    redis_timeout: Duration,
    window_margin: Duration,
}

/// The URL may carry a password: never shown.
impl std::fmt::Debug for RedisRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimit")
            .field("url", &"<redacted>")
            .field("limit", &self.limit)
            .field("prefix", &self.prefix)
            .field("fallback_share", &self.fallback_share)
            .field("redis_timeout", &self.redis_timeout)
            .field("window_margin", &self.window_margin)
            .finish()
    }
}

impl RedisRateLimit {
    /// Default wait for one Redis round trip before falling back.
    pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
    /// Default lengthening of each window (see [`window_margin`](Self::window_margin)).
    pub const DEFAULT_WINDOW_MARGIN: Duration = Duration::from_millis(50);
    /// Default prefix of the keys.
    pub const DEFAULT_PREFIX: &'static str = "nexhealth-api:rate";

    /// A shared limit through the Redis at `url` (`redis://[:password@]host:port/[db]`),
    /// at [`RateLimit::NEXHEALTH_DEFAULT`], falling back to the whole budget in-process.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            limit: RateLimit::NEXHEALTH_DEFAULT,
            prefix: Self::DEFAULT_PREFIX.to_string(),
            fallback_share: 1.0,
            redis_timeout: Self::DEFAULT_REDIS_TIMEOUT,
            window_margin: Self::DEFAULT_WINDOW_MARGIN,
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

    /// The share of the budget this process takes while Redis is unavailable:
    /// `1.0 / N` for N replicas keeps the fleet inside the limits. Clamped to
    /// (0, 1]; default 1.
    pub fn fallback_share(mut self, share: f64) -> Self {
        self.fallback_share = if share.is_finite() && share > 0.0 {
            share.min(1.0)
        } else {
            1.0
        };
        self
    }

    /// The longest one Redis round trip may take before the call falls back
    /// (default 250 ms).
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis_timeout = timeout;
        self
    }

    /// How much longer than one second and one minute the windows are kept,
    /// for the time between taking a slot and the request reaching NexHealth
    /// (default 50 ms; the budget used is then about 95 % of the limit).
    pub fn window_margin(mut self, margin: Duration) -> Self {
        self.window_margin = margin;
        self
    }
}

/// The digest that names one API key's budget: the key itself never reaches Redis.
pub(crate) fn key_id(api_key: &str) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"nexhealth-api rate limit\0")
        .chain_update(api_key.as_bytes())
        .finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

struct Fallback {
    active: bool,
    since: Instant,
    probe_at: Instant,
    /// Until then, Redis's grants are also held to the in-process share.
    guarded_until: Instant,
    /// The fleet's grants in each window at the last answer, and when.
    last_counts: [u64; 2],
    last_answer: Option<Instant>,
    /// A 429's pause, for the in-process side.
    paused_until: Option<Instant>,
}

/// One answer of the acquire script.
struct Answer {
    wait_ms: u64,
    now_ms: u64,
    counts: [u64; 2],
}

pub(crate) struct RedisLimiter {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    acquire: redis::Script,
    pause: redis::Script,
    merge: redis::Script,
    keys: [String; 3],
    limit: RateLimit,
    windows_ms: [u64; 2],
    timeout: Duration,
    share: f64,
    local: SlidingLog,
    state: Mutex<Fallback>,
    member: String,
    counter: AtomicU64,
    fallbacks: AtomicU64,
}

impl RedisLimiter {
    pub(crate) fn new(config: RedisRateLimit, api_key: &str) -> Result<Self, Error> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|_| Error::invalid_request("the Redis URL of the rate limit is not valid"))?;
        let id = key_id(api_key);
        // One hash tag, so that the three keys live on one node of a cluster.
        let base = format!("{}:{{{id}}}", config.prefix);
        let margin = config.window_margin.as_millis() as u64;
        let now = Instant::now();
        Ok(Self {
            client,
            connection: tokio::sync::OnceCell::new(),
            acquire: redis::Script::new(ACQUIRE),
            pause: redis::Script::new(PAUSE),
            merge: redis::Script::new(MERGE),
            keys: [
                format!("{base}:s"),
                format!("{base}:m"),
                format!("{base}:pause"),
            ],
            limit: config.limit,
            windows_ms: [1_000 + margin, 60_000 + margin],
            timeout: config.redis_timeout,
            share: config.fallback_share,
            local: SlidingLog::share_of(config.limit, config.fallback_share, config.window_margin),
            state: Mutex::new(Fallback {
                active: false,
                since: now,
                probe_at: now,
                guarded_until: now,
                last_counts: [0, 0],
                last_answer: None,
                paused_until: None,
            }),
            member: format!("{}-{:x}", std::process::id(), random()),
            counter: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        })
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
    }

    /// One round trip of the acquire script.
    async fn try_acquire(&self) -> Result<Answer, &'static str> {
        let member = format!(
            "{}-{}",
            self.member,
            self.counter.fetch_add(1, Ordering::Relaxed)
        );
        let round_trip = async {
            let mut connection = self.connection().await?;
            self.acquire
                .key(&self.keys[0])
                .key(&self.keys[1])
                .key(&self.keys[2])
                .arg(self.limit.per_second.get())
                .arg(self.limit.per_minute.get())
                .arg(self.windows_ms[0])
                .arg(self.windows_ms[1])
                .arg(member)
                .invoke_async::<Vec<i64>>(&mut connection)
                .await
        };
        match tokio::time::timeout(self.timeout, round_trip).await {
            Ok(Ok(answer)) => match answer.as_slice() {
                [wait, now, second, minute] if answer.iter().all(|v| *v >= 0) => Ok(Answer {
                    wait_ms: *wait as u64,
                    now_ms: *now as u64,
                    counts: [*second as u64, *minute as u64],
                }),
                _ => Err("Redis answered something else than the script's answer"),
            },
            Ok(Err(e))
                if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() =>
            {
                Err("Redis cannot be reached")
            }
            Ok(Err(_)) => Err("Redis answered an error"),
            Err(_) => Err("Redis did not answer in time"),
        }
    }

    /// Whether to skip Redis for now (on the fallback, before the next probe).
    fn skip_redis(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.active && Instant::now() < s.probe_at)
            .unwrap_or(false)
    }

    fn fall_back(&self, reason: &'static str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        if !state.active {
            state.active = true;
            state.since = now;
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            // The fleet may have spent much of its budget just now: this
            // process starts from its share of what Redis last reported.
            let recent = state
                .last_answer
                .is_some_and(|at| at.elapsed() < Duration::from_millis(self.windows_ms[1]));
            let counts = if recent { state.last_counts } else { [0, 0] };
            self.local.seed(counts, self.share);
            tracing::warn!(
                reason,
                fallback_share = self.share,
                "shared rate limit: Redis unavailable, using the in-process limit until it is back"
            );
        }
        state.probe_at = now + PROBE_INTERVAL;
    }

    /// Notes a good answer; back from the fallback, hands the fallback's
    /// grants to Redis so that its windows count them.
    async fn answered(&self, answer: &Answer, asked_at: Instant) {
        let was_active = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            state.last_counts = answer.counts;
            state.last_answer = Some(asked_at);
            let was_active = state.active;
            if was_active {
                state.active = false;
                // Other replicas may still be on their fallback, unknown to
                // Redis: until they have all probed, this one also keeps to its share.
                state.guarded_until =
                    Instant::now() + PROBE_INTERVAL + Duration::from_millis(self.windows_ms[0]);
                tracing::warn!(
                    after_ms = state.since.elapsed().as_millis() as u64,
                    "shared rate limit: Redis is back, the budget is shared again"
                );
            }
            was_active
        };
        if was_active {
            self.merge(answer.now_ms, asked_at).await;
        }
    }

    /// Adds the fallback's grants still in the minute window to Redis's logs.
    async fn merge(&self, now_ms: u64, now: Instant) {
        let grants = self.local.grants();
        if grants.is_empty() {
            return;
        }
        let mut invocation = self.merge.key(&self.keys[0]);
        invocation.key(&self.keys[1]);
        invocation.arg(self.windows_ms[0]).arg(self.windows_ms[1]);
        for (i, at) in grants.iter().enumerate() {
            let age = now.saturating_duration_since(*at).as_millis() as u64;
            invocation
                .arg(now_ms.saturating_sub(age))
                .arg(format!("{}-fallback-{i}", self.member));
        }
        let round_trip = async {
            let mut connection = self.connection().await?;
            invocation.invoke_async::<i64>(&mut connection).await
        };
        if !matches!(
            tokio::time::timeout(self.timeout, round_trip).await,
            Ok(Ok(_))
        ) {
            tracing::debug!(
                "shared rate limit: the fallback's grants could not be handed to Redis"
            );
        }
    }

    /// The pause a 429 set, still to wait.
    fn local_pause(&self) -> Option<Duration> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.paused_until)
            .map(|until| until.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// Takes a slot of the in-process share, waiting at most until `until`.
    async fn take_local(&self, until: Option<Instant>) -> Result<(), Exhausted> {
        loop {
            if let Some(pause) = self.local_pause() {
                sleep_within(pause, until).await?;
            }
            match self.local.try_take() {
                Ok(()) => return Ok(()),
                Err(wait) => sleep_within(wait, until).await?,
            }
        }
    }

    pub(crate) async fn acquire(&self, deadline: Option<Instant>) -> Result<(), Exhausted> {
        loop {
            if self.skip_redis() {
                // On the fallback: the in-process share, until the next probe.
                let probe_at = self
                    .state
                    .lock()
                    .map(|s| s.probe_at)
                    .unwrap_or_else(|_| Instant::now());
                let until = match deadline {
                    Some(deadline) if deadline < probe_at => deadline,
                    _ => probe_at,
                };
                match self.take_local(Some(until)).await {
                    Ok(()) => return Ok(()),
                    Err(Exhausted) if until == probe_at && deadline != Some(probe_at) => {
                        // Not granted before the probe: sleep to it and ask Redis again.
                        sleep_within(probe_at.saturating_duration_since(Instant::now()), deadline)
                            .await?;
                        continue;
                    }
                    Err(exhausted) => return Err(exhausted),
                }
            }
            let asked_at = Instant::now();
            match self.try_acquire().await {
                Ok(answer) => {
                    self.answered(&answer, asked_at).await;
                    if answer.wait_ms > 0 {
                        sleep_within(Duration::from_millis(answer.wait_ms), deadline).await?;
                        continue;
                    }
                    if self.guarded() {
                        // Just back: Redis's grant and the in-process share.
                        return self.take_local(deadline).await;
                    }
                    return Ok(());
                }
                Err(reason) => self.fall_back(reason),
            }
        }
    }

    pub(crate) async fn pause(&self, pause: Duration) {
        if let Ok(mut state) = self.state.lock() {
            let until = Instant::now() + pause;
            if state.paused_until.is_none_or(|current| current < until) {
                state.paused_until = Some(until);
            }
        }
        if self.skip_redis() {
            return;
        }
        let round_trip = async {
            let mut connection = self.connection().await?;
            self.pause
                .key(&self.keys[2])
                .arg(pause.as_millis().max(1) as u64)
                .invoke_async::<i64>(&mut connection)
                .await
        };
        match tokio::time::timeout(self.timeout, round_trip).await {
            Ok(Ok(_)) => tracing::debug!(
                pause_ms = pause.as_millis() as u64,
                "shared rate limit: every replica pauses after a 429"
            ),
            Ok(Err(_)) => self.fall_back("Redis answered an error"),
            Err(_) => self.fall_back("Redis did not answer in time"),
        }
    }

    /// Just back from the fallback: still keeping to the in-process share.
    fn guarded(&self) -> bool {
        self.state
            .lock()
            .map(|s| Instant::now() < s.guarded_until)
            .unwrap_or(false)
    }

    pub(crate) fn fallback_active(&self) -> bool {
        self.state.lock().map(|s| s.active).unwrap_or(false)
    }

    /// How many times this limiter fell back to the in-process limit.
    pub(crate) fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }
}

/// A random number for this process's slot names.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_id_is_a_digest_not_the_key() {
        let id = super::key_id("secret-api-key-123");
        assert_eq!(id.len(), 24);
        assert!(!id.contains("secret"));
        assert_ne!(id, super::key_id("secret-api-key-124"));
        assert_eq!(id, super::key_id("secret-api-key-123"));
    }
}
