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
//! The hand-overs keep the per-second window strict: the fallback starts one
//! window after Redis's last grants (so the call that finds Redis gone waits
//! at most the Redis timeout plus about one second), and for one probe
//! interval and one window after Redis is back, its grants are also held to
//! the in-process share, while other replicas may still be on theirs. The
//! minute window can briefly hold more than its budget at a hand-over if the
//! fleet was running at the minute limit.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::Digest;

use super::local::LocalLimiter;
use super::{Exhausted, RateLimit, sleep_within};
use crate::Error;

/// How often a limiter on its fallback tries Redis again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Takes one slot, or answers how many milliseconds to wait.
/// KEYS: second log, minute log, pause. ARGV: per second, per minute,
/// second window (ms), minute window (ms), a unique member.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pause = redis.call('PTTL', KEYS[3])
if pause > 0 then return pause end
local limits = { tonumber(ARGV[1]), tonumber(ARGV[2]) }
local windows = { tonumber(ARGV[3]), tonumber(ARGV[4]) }
local wait = 0
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - windows[i])
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limits[i] then
    local leaving = redis.call('ZRANGE', KEYS[i], count - limits[i], count - limits[i], 'WITHSCORES')
    wait = math.max(wait, tonumber(leaving[2]) + windows[i] - now + 1)
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[i], windows[i] + 1000)
end
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
}

pub(crate) struct RedisLimiter {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    acquire: redis::Script,
    pause: redis::Script,
    keys: [String; 3],
    limit: RateLimit,
    windows_ms: [u64; 2],
    timeout: Duration,
    share: f64,
    local: LocalLimiter,
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
            keys: [
                format!("{base}:s"),
                format!("{base}:m"),
                format!("{base}:pause"),
            ],
            limit: config.limit,
            windows_ms: [1_000 + margin, 60_000 + margin],
            timeout: config.redis_timeout,
            share: config.fallback_share,
            local: LocalLimiter::strict_share(config.limit, config.fallback_share),
            state: Mutex::new(Fallback {
                active: false,
                since: now,
                probe_at: now,
                guarded_until: now,
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

    /// One round trip of the acquire script: 0, or milliseconds to wait.
    async fn try_acquire(&self) -> Result<u64, &'static str> {
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
                .invoke_async::<i64>(&mut connection)
                .await
        };
        match tokio::time::timeout(self.timeout, round_trip).await {
            Ok(Ok(wait)) if wait >= 0 => Ok(wait as u64),
            Ok(Ok(_)) => Err("Redis answered a negative wait"),
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
            // Redis may have granted a whole second's budget just now: the
            // in-process share starts once that has left the window.
            self.local.pause(Duration::from_millis(self.windows_ms[0]));
            tracing::warn!(
                reason,
                fallback_share = self.share,
                "shared rate limit: Redis unavailable, using the in-process limit until it is back"
            );
        }
        state.probe_at = now + PROBE_INTERVAL;
    }

    fn recovered(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.active {
            state.active = false;
            // Other replicas may still be on their fallback, unknown to Redis:
            // until they have all probed, this one also keeps to its share.
            state.guarded_until =
                Instant::now() + PROBE_INTERVAL + Duration::from_millis(self.windows_ms[0]);
            tracing::warn!(
                after_ms = state.since.elapsed().as_millis() as u64,
                "shared rate limit: Redis is back, the budget is shared again"
            );
        }
    }

    pub(crate) async fn acquire(&self, deadline: Option<Instant>) -> Result<(), Exhausted> {
        loop {
            if self.skip_redis() {
                return self.local.acquire(deadline).await;
            }
            match self.try_acquire().await {
                Ok(0) => {
                    self.recovered();
                    if self.guarded() {
                        return self.local.acquire(deadline).await;
                    }
                    return Ok(());
                }
                Ok(wait) => {
                    self.recovered();
                    sleep_within(Duration::from_millis(wait), deadline).await?;
                }
                Err(reason) => {
                    self.fall_back(reason);
                    return self.local.acquire(deadline).await;
                }
            }
        }
    }

    pub(crate) async fn pause(&self, pause: Duration) {
        self.local.pause(pause);
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
