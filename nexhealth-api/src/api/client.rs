//! Building the [`Client`] a service holds.

use std::time::Duration;

use reqwest::Url;

use crate::error::Error;
use crate::generated::Client;
use crate::transport::auth::Session;
use crate::transport::headers::ApiVersion;
use crate::transport::limit::{Limiter, RateLimiter};
use crate::transport::metrics::Metrics;
use crate::transport::policy::RetryPolicy;
use crate::transport::retry_budget::RetryTokens;
use crate::transport::secret::ApiKey;
use crate::transport::state::{ClientState, DEFAULT_MAX_BODY_BYTES};

/// NexHealth's API host.
pub const DEFAULT_BASE_URL: &str = "https://nexhealth.info";
/// Default time allowed to open a connection.
///
/// Value: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for a whole request, body included.
///
/// Value: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default deadline of a whole call: every attempt, every wait and the token
/// exchange (see [`ClientBuilder::deadline`]).
///
/// Value: 120 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);
/// Default longest wait of one attempt for rate-limit budget (see
/// [`ClientBuilder::max_budget_wait`]).
///
/// Value: 30 s.
pub const DEFAULT_MAX_BUDGET_WAIT: Duration = Duration::from_secs(30);
/// Environment variable read by [`Client::from_env`] for the key.
pub const API_KEY_VAR: &str = "NEXHEALTH_API_KEY";
/// Environment variable read by [`Client::from_env`] for the base URL.
pub const BASE_URL_VAR: &str = "NEXHEALTH_BASE_URL";

/// Configures a [`Client`]. Start with [`Client::builder`].
///
/// Once built, every operation is a method of the client that answers a
/// request builder: set its parameters, then `.await` it. A parameter takes
/// the type the spec gives it, so a value that cannot fit is refused by the
/// compiler rather than at run time:
///
/// ```no_run
/// # async fn run(client: nexhealth_api::Client) -> Result<(), nexhealth_api::Error> {
/// let id: i32 = 7;
/// let location = client.get_locations_id().id(id).await?;
/// # Ok(()) }
/// ```
///
/// ```compile_fail
/// # async fn run(client: nexhealth_api::Client) -> Result<(), nexhealth_api::Error> {
/// // An `i64` does not convert into the `i32` that NexHealth's ids are:
/// // convert it yourself with `i32::try_from(id)`.
/// let location = client.get_locations_id().id(5_000_000_000i64).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    key: ApiKey,
    base_url: String,
    connect_timeout: Duration,
    timeout: Duration,
    deadline: Duration,
    max_budget_wait: Duration,
    user_agent: String,
    http: Option<reqwest::Client>,
    retry: RetryPolicy,
    rate_limit: Option<RateLimiter>,
    max_body_bytes: usize,
    plain_http_to_remote: bool,
    meter: Option<opentelemetry::metrics::Meter>,
    metrics: bool,
    api_version: ApiVersion,
}

impl ClientBuilder {
    /// A builder with the key from `NEXHEALTH_API_KEY` ([`API_KEY_VAR`]) and,
    /// when set and not empty, the base URL from `NEXHEALTH_BASE_URL`
    /// ([`BASE_URL_VAR`]); everything else can still be configured:
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use nexhealth_api::{ClientBuilder, RateLimit};
    ///
    /// # fn run() -> Result<(), nexhealth_api::Error> {
    /// let client = ClientBuilder::from_env()?
    ///     .rate_limit(RateLimit::NEXHEALTH_DEFAULT.divided_among(3))
    ///     .timeout(Duration::from_secs(10))
    ///     .build()?;
    /// # let _ = client; Ok(()) }
    /// ```
    ///
    /// Fails with [`Error::InvalidRequest`] naming the variable when the key
    /// is missing, empty or not UTF-8, and when the base URL is not UTF-8. The
    /// base URL itself is checked by [`build`](Self::build).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var_os(name))
    }

    /// [`from_env`](Self::from_env) over any source of variables.
    fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Self, Error> {
        let not_unicode =
            |name: &str| Error::invalid_request(format!("{name} is set but is not valid UTF-8"));
        let key = match var(API_KEY_VAR) {
            Some(value) => value.into_string().map_err(|_| not_unicode(API_KEY_VAR))?,
            None => String::new(),
        };
        if key.trim().is_empty() {
            return Err(Error::invalid_request(format!(
                "{API_KEY_VAR} is not set or empty: set it to your NexHealth API key (keys are \
                 issued in NexHealth's Developer Portal, https://developers.nexhealth.com), or \
                 build the client with Client::builder(key)"
            )));
        }
        let mut builder = Self::new(key.into());
        if let Some(url) = var(BASE_URL_VAR) {
            let url = url.into_string().map_err(|_| not_unicode(BASE_URL_VAR))?;
            if !url.trim().is_empty() {
                builder = builder.base_url(url);
            }
        }
        Ok(builder)
    }

    fn new(key: ApiKey) -> Self {
        Self {
            key,
            base_url: DEFAULT_BASE_URL.to_string(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            deadline: DEFAULT_DEADLINE,
            max_budget_wait: DEFAULT_MAX_BUDGET_WAIT,
            user_agent: concat!("nexhealth-api-rust/", env!("CARGO_PKG_VERSION")).to_string(),
            http: None,
            retry: RetryPolicy::default(),
            rate_limit: Some(RateLimiter::Local(
                crate::transport::limit::RateLimit::NEXHEALTH_DEFAULT,
            )),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            plain_http_to_remote: false,
            meter: None,
            metrics: true,
            api_version: ApiVersion::default(),
        }
    }

    /// The `Nex-Api-Version` sent on every operation that takes it (default
    /// [`ApiVersion::V3_0_0`], NexHealth's current version): the onboardings
    /// and webhook subscriptions, those whose
    /// [`Operation::needs_api_version`](crate::operations::Operation::needs_api_version)
    /// is true. The v2-style operations (institutions, locations, sync status,
    /// webhook endpoints) and the token exchange never carry the header. A call that sets its own
    /// (`.nex_api_version("v20240412")` on its builder) sends that instead.
    ///
    /// [`ApiVersion::V3_1_0`] is NexHealth's "Edge" version: **beta, for
    /// approved partner institutions only**, and subject to change. It lets a
    /// service opt in without a fork of the spec; the types decode its answers
    /// as well as v3.0.0's (the sync status's `ehr` as well as `emr`, through
    /// [`SyncStatus::health_record_system`](crate::types::SyncStatus::health_record_system)).
    ///
    /// ```no_run
    /// use nexhealth_api::headers::ApiVersion;
    ///
    /// # fn run() -> Result<(), nexhealth_api::Error> {
    /// let client = nexhealth_api::Client::builder("key")
    ///     .api_version(ApiVersion::V3_1_0)
    ///     .build()?;
    /// // From configuration: any value NexHealth may add, checked as a header value.
    /// let version: ApiVersion = "v3.1.0".parse()?;
    /// # let _ = (client, version); Ok(()) }
    /// ```
    ///
    /// [`build`](Self::build) refuses an [`ApiVersion::Other`] that is not
    /// visible ASCII without spaces.
    pub fn api_version(mut self, version: ApiVersion) -> Self {
        self.api_version = version;
        self
    }

    /// Records the client's metrics ([`crate::metrics`]) with `meter`.
    /// Without it, the client takes the global meter provider's meter when
    /// it is built: install a provider (`opentelemetry::global::set_meter_provider`)
    /// before building clients, or give the meter here.
    pub fn meter(mut self, meter: opentelemetry::metrics::Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Records no metrics for this client, whatever provider is installed.
    pub fn no_metrics(mut self) -> Self {
        self.metrics = false;
        self
    }

    /// How failed calls are retried (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Keeps this client (and its clones) under `limit`, waiting before a
    /// request rather than collecting 429s. On by default, in process, at
    /// [`RateLimit::NEXHEALTH_DEFAULT`](crate::RateLimit::NEXHEALTH_DEFAULT).
    /// A [`RateLimit`](crate::RateLimit) limits this process (for N replicas
    /// without Redis, [`RateLimit::divided_among`](crate::RateLimit::divided_among));
    /// with the `redis` feature, a `RedisRateLimit` shares one budget between
    /// every process that uses the same Redis and API key.
    pub fn rate_limit(mut self, limit: impl Into<RateLimiter>) -> Self {
        self.rate_limit = Some(limit.into());
        self
    }

    /// Sends without any client-side rate limit: every call goes at once and
    /// NexHealth's 429s are the only limit. For a key whose budget another
    /// component already manages, or for benchmarks.
    pub fn no_rate_limit(mut self) -> Self {
        self.rate_limit = None;
        self
    }

    /// The longest one attempt waits for rate-limit budget (default
    /// [`DEFAULT_MAX_BUDGET_WAIT`], 30 s). A call whose budget would come
    /// later fails at once with
    /// [`Error::BudgetUnavailable`](crate::Error::BudgetUnavailable), saying
    /// when budget frees up, so that a service can shed load instead of
    /// queueing it.
    pub fn max_budget_wait(mut self, wait: Duration) -> Self {
        self.max_budget_wait = wait;
        self
    }

    /// The longest a whole call may take, from its first poll to its answer:
    /// every attempt, every wait for budget or `Retry-After`, backoff, the
    /// token exchange and the replay after a 401 (default
    /// [`DEFAULT_DEADLINE`], 120 s). A call past it fails with
    /// [`Error::Timeout`](crate::Error::Timeout), or with
    /// [`Error::BudgetUnavailable`](crate::Error::BudgetUnavailable) when it
    /// is clear in advance that budget would come too late. Per call:
    /// [`CallExt::deadline`](crate::CallExt::deadline). `Duration::MAX` is no deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The largest response body read; a larger one is an invalid response
    /// (default 64 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The API's base URL (default [`DEFAULT_BASE_URL`]). Credentials are sent only there.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Lets a plain `http://` base URL on a host that is not loopback be used.
    /// The API key and the bearer token then cross the network in clear text,
    /// readable by anyone on the path: only for a network you control (a
    /// TLS-terminating sidecar on the same host, say). Without this,
    /// [`build`](Self::build) refuses such a URL before anything is sent;
    /// `http://` to `localhost`, `127.0.0.0/8` or `::1` is always allowed.
    pub fn danger_send_credentials_over_plain_http(mut self) -> Self {
        self.plain_http_to_remote = true;
        self
    }

    /// Time allowed to open a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one attempt of a request, body included (default
    /// 30 s); the call's [`deadline`](Self::deadline) bounds all attempts.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Use a ready `reqwest::Client`; the timeouts and user agent set here are then not applied.
    /// Keep its redirect policy off: NexHealth does not redirect.
    pub fn reqwest_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings and builds the client. Nothing is sent yet.
    pub fn build(self) -> Result<Client, Error> {
        if self.key.is_blank() {
            return Err(Error::invalid_request("the API key is empty"));
        }
        if reqwest::header::HeaderValue::from_str(self.key.expose()).is_err() {
            return Err(Error::invalid_request(
                "the API key contains characters not allowed in a header (a line break?)",
            ));
        }
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("timeout", self.timeout),
            ("deadline", self.deadline),
        ] {
            if value.is_zero() {
                return Err(Error::invalid_request(format!(
                    "`{name}` is zero: every call would fail before it starts"
                )));
            }
        }
        let api_version_header = self.api_version.header_value()?;
        let base = parse_base_url(&self.base_url)?;
        if base.scheme() == "http" && !is_loopback(&base) && !self.plain_http_to_remote {
            return Err(Error::invalid_request(
                "the base URL is plain http:// to a host that is not loopback: the API key and \
                 token would cross the network in clear text. Use https://, or opt in with \
                 ClientBuilder::danger_send_credentials_over_plain_http",
            ));
        }
        if base.scheme() == "https"
            && !cfg!(any(feature = "rustls-aws-lc", feature = "rustls-ring"))
        {
            return Err(Error::invalid_request(
                "this build of nexhealth-api has no TLS: enable its `rustls-aws-lc` (default) or \
                 `rustls-ring` feature to reach an https:// base URL",
            ));
        }
        ensure_crypto_provider();
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .timeout(self.timeout)
                .user_agent(self.user_agent)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|_| Error::invalid_request("the HTTP client could not be built"))?,
        };
        let base_str = base.as_str().trim_end_matches('/').to_string();
        let meter = self
            .meter
            .unwrap_or_else(crate::transport::metrics::global_meter);
        let metrics = std::sync::Arc::new(Metrics::new(&meter, &base, self.metrics));
        let state = ClientState {
            metrics,
            session: Session::new(self.key.clone(), base),
            retry_tokens: self
                .retry
                .retry_budget()
                .map(|budget| std::sync::Arc::new(RetryTokens::new(budget))),
            retry: self.retry,
            limiter: match self.rate_limit {
                Some(setting) => Some(std::sync::Arc::new(Limiter::new(
                    setting,
                    self.key.expose(),
                )?)),
                None => None,
            },
            max_body_bytes: self.max_body_bytes,
            timeout: self.timeout,
            deadline: self.deadline,
            max_budget_wait: self.max_budget_wait,
            api_version: self.api_version,
            api_version_header,
        };
        Ok(Client::new_with_client(&base_str, http, state))
    }
}

/// With the `rustls-ring` feature: makes ring rustls's process-wide crypto
/// provider unless the application installed one already. Called by
/// [`ClientBuilder::build`]. That feature leaves reqwest without a provider of
/// its own, in every crate of the program that uses reqwest (Cargo unifies
/// features): call this at start-up, before any other code builds a
/// `reqwest::Client`. With the default `rustls-aws-lc` feature reqwest brings
/// its own provider and this does nothing.
pub fn ensure_crypto_provider() {
    #[cfg(feature = "rustls-ring")]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either provider is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`: where plain http stays on the machine.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn parse_base_url(text: &str) -> Result<Url, Error> {
    let text = text.trim();
    // `nexhealth.info` or `localhost:8080`: a host written without `scheme://`.
    if !text.is_empty() && !text.contains("://") {
        return Err(Error::invalid_request(
            "the base URL has no scheme: write it as https://host, e.g. https://nexhealth.info",
        ));
    }
    let mut url =
        Url::parse(text).map_err(|_| Error::invalid_request("the base URL is not a valid URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(Error::invalid_request(
            "the base URL must be http(s)://host[:port][/path]",
        ));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(Error::invalid_request(
            "the base URL must not carry a query, fragment or credentials",
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl Client {
    /// Starts configuring a client for `api_key`.
    pub fn builder(api_key: impl Into<ApiKey>) -> ClientBuilder {
        ClientBuilder::new(api_key.into())
    }

    /// A client for `api_key` with default settings.
    pub fn from_api_key(api_key: impl Into<ApiKey>) -> Result<Self, Error> {
        Self::builder(api_key).build()
    }

    /// A client from `NEXHEALTH_API_KEY` and, if set, `NEXHEALTH_BASE_URL`,
    /// with default settings: the short form of
    /// [`ClientBuilder::from_env`]`()?.build()`.
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::from_env()?.build()
    }

    /// The base URL every call goes to.
    pub fn base_url(&self) -> &str {
        use progenitor_client::ClientInfo;
        self.baseurl()
    }

    /// What the client's rate limiter is doing (`None` without one): whether
    /// its budget is shared through Redis and whether it is on its fallback.
    pub fn rate_limit_status(&self) -> Option<crate::transport::limit::RateLimitStatus> {
        use progenitor_client::ClientInfo;
        self.inner().limiter.as_ref().map(|l| l.status())
    }

    /// The tokens left in the client's retry budget (`None` when its policy
    /// has none): a retry costs [`RetryBudget::retry_cost`](crate::RetryBudget::retry_cost),
    /// and no retry is made while fewer are left.
    pub fn retry_budget_left(&self) -> Option<f64> {
        use progenitor_client::ClientInfo;
        self.inner().retry_tokens.as_ref().map(|t| t.left())
    }

    /// The `Nex-Api-Version` this client sends on the operations that take it
    /// (see [`ClientBuilder::api_version`]).
    pub fn nex_api_version(&self) -> &ApiVersion {
        use progenitor_client::ClientInfo;
        &self.inner().api_version
    }

    /// The shared session (credentials and cached token) of this client.
    pub fn session(&self) -> &Session {
        use progenitor_client::ClientInfo;
        &self.inner().session
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base_url("https://nexhealth.info").is_ok());
        assert_eq!(
            parse_base_url("http://127.0.0.1:8080/api").unwrap().path(),
            "/api/"
        );
        for bad in [
            "nexhealth.info",
            "ftp://x",
            "https://x/?a=1",
            "https://u:p@x",
            "",
        ] {
            assert!(
                parse_base_url(bad).unwrap_err().is_invalid_request(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_https_client_builds() {
        let client = Client::from_api_key("key").expect("TLS configuration builds");
        assert_eq!(client.base_url(), DEFAULT_BASE_URL);
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://localhost:8080/",
            "http://LOCALHOST/",
            "http://127.0.0.1/",
            "http://127.8.9.10:1/",
            "http://[::1]:9/",
        ] {
            assert!(is_loopback(&parse_base_url(url).unwrap()), "{url}");
        }
        for url in [
            "http://10.0.0.1/",
            "http://localhost.example.com/",
            "http://[::2]/",
            "http://nexhealth.info/",
        ] {
            assert!(!is_loopback(&parse_base_url(url).unwrap()), "{url}");
        }
    }

    fn vars(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.into())
        }
    }

    #[test]
    fn a_builder_from_the_environment_reads_both_variables_and_stays_configurable() {
        let builder = ClientBuilder::from_vars(vars(&[
            (API_KEY_VAR, "key-from-env"),
            (BASE_URL_VAR, "http://127.0.0.1:9/v2"),
        ]))
        .unwrap();
        assert_eq!(builder.key.expose(), "key-from-env");
        let client = builder
            .timeout(Duration::from_secs(3))
            .no_rate_limit()
            .build()
            .unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:9/v2");
        use progenitor_client::ClientInfo;
        assert_eq!(client.inner().timeout, Duration::from_secs(3));
        assert!(client.inner().limiter.is_none());
    }

    #[test]
    fn an_empty_base_url_variable_means_the_default() {
        let client = ClientBuilder::from_vars(vars(&[(API_KEY_VAR, "k"), (BASE_URL_VAR, " ")]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(client.base_url(), DEFAULT_BASE_URL);
    }

    #[test]
    fn a_missing_or_empty_key_names_the_variable() {
        for pairs in [
            &[][..],
            &[(API_KEY_VAR, "")][..],
            &[(API_KEY_VAR, "  ")][..],
        ] {
            let pairs: &'static [(&str, &str)] = pairs;
            let error = ClientBuilder::from_vars(vars(pairs)).unwrap_err();
            assert!(error.is_invalid_request());
            assert!(error.to_string().contains(API_KEY_VAR), "{error}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn variables_that_are_not_utf8_are_named() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || Some(std::ffi::OsString::from_vec(vec![0x6b, 0xff]));
        for broken in [API_KEY_VAR, BASE_URL_VAR] {
            let error = ClientBuilder::from_vars(|name| {
                if name == broken {
                    bad()
                } else {
                    Some("fine".into())
                }
            })
            .unwrap_err();
            assert!(error.is_invalid_request());
            let text = error.to_string();
            assert!(text.contains(broken) && text.contains("UTF-8"), "{text}");
        }
    }

    #[test]
    fn settings_that_would_fail_every_call_are_refused_at_build() {
        let refused = |builder: ClientBuilder, words: &str| {
            let error = builder.build().unwrap_err();
            assert!(error.is_invalid_request(), "{error}");
            assert!(error.to_string().contains(words), "{error}");
        };
        refused(
            Client::builder("key\r\nX-Injected: 1"),
            "not allowed in a header",
        );
        refused(
            Client::builder("k").timeout(Duration::ZERO),
            "`timeout` is zero",
        );
        refused(
            Client::builder("k").deadline(Duration::ZERO),
            "`deadline` is zero",
        );
        refused(
            Client::builder("k").connect_timeout(Duration::ZERO),
            "`connect_timeout` is zero",
        );
        assert!(Client::builder("k").timeout(Duration::MAX).build().is_ok());
    }

    #[test]
    fn the_api_version_defaults_to_v3_0_0_and_is_checked_at_build() {
        let client = Client::builder("k").build().unwrap();
        assert_eq!(client.nex_api_version(), &ApiVersion::V3_0_0);
        use progenitor_client::ClientInfo;
        assert_eq!(client.inner().api_version_header, "v3.0.0");
        let client = Client::builder("k")
            .api_version(ApiVersion::V3_1_0)
            .build()
            .unwrap();
        assert_eq!(client.nex_api_version(), &ApiVersion::V3_1_0);
        assert_eq!(client.inner().api_version_header, "v3.1.0");
        let error = Client::builder("k")
            .api_version(ApiVersion::Other("v3.1.0\r\nX-Injected: 1".into()))
            .build()
            .unwrap_err();
        assert!(error.is_invalid_request(), "{error}");
        assert!(error.to_string().contains("Nex-Api-Version"), "{error}");
    }

    #[test]
    fn empty_keys_are_refused_before_anything_is_sent() {
        assert!(Client::from_api_key("  ").unwrap_err().is_invalid_request());
    }
}
