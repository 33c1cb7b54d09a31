//! The bearer-token session: one shared token per client, refreshed by a
//! single caller at a time, never printed.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, DATE, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::error::{ApiError, Error};
use crate::generated::types::{AuthenticateResponse, ErrorEnvelope};
use crate::transport::headers::VENDOR_ACCEPT;
use crate::transport::policy::RetryPolicy;
use crate::transport::retry;
use crate::transport::retry::Limits;
use crate::transport::secret::ApiKey;
use crate::transport::token;

const AUTH_OPERATION: &str = "postAuthenticates";

/// The token lives only inside `header`, marked sensitive.
struct Cached {
    header: HeaderValue,
    refresh_at: Instant,
}

struct Inner {
    key: ApiKey,
    base: Url,
    cached: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    authentications: std::sync::atomic::AtomicU64,
}

/// The client's credentials and cached token. Cloning shares the token.
#[derive(Clone)]
pub struct Session(Arc<Inner>);

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has_token = self.0.cached.read().map(|c| c.is_some()).unwrap_or(false);
        f.debug_struct("Session")
            .field("key", &self.0.key)
            .field("base", &self.0.base.as_str())
            .field("token", &if has_token { "<redacted>" } else { "none" })
            .finish()
    }
}

impl Session {
    pub(crate) fn new(key: ApiKey, base: Url) -> Self {
        Self(Arc::new(Inner {
            key,
            base,
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            authentications: Default::default(),
        }))
    }

    /// How many times this session exchanged its key for a token.
    pub fn authentications(&self) -> u64 {
        self.0
            .authentications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The digest that names this key's shared state in Redis (the rate
    /// limit's, the directory's): never the key itself.
    #[cfg(feature = "redis")]
    pub(crate) fn key_id(&self) -> String {
        crate::transport::limit::key_id(self.0.key.expose())
    }

    /// True when `url` is on the configured scheme, host and port.
    pub(crate) fn is_own_origin(&self, url: &Url) -> bool {
        url.scheme() == self.0.base.scheme()
            && url.host_str() == self.0.base.host_str()
            && url.port_or_known_default() == self.0.base.port_or_known_default()
    }

    pub(crate) fn fresh_header(&self) -> Option<HeaderValue> {
        let cached = self.0.cached.read().ok()?;
        cached
            .as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| c.header.clone())
    }

    /// Drops the token if it is still the one that was refused.
    pub(crate) fn invalidate(&self, refused: Option<&HeaderValue>) {
        if let Ok(mut slot) = self.0.cached.write()
            && slot.as_ref().is_some_and(|c| Some(&c.header) == refused)
        {
            *slot = None;
        }
    }

    /// The raw key as a sensitive `Authorization` value, for POST /authenticates.
    pub(crate) fn key_header(&self) -> Result<HeaderValue, Error> {
        if self.0.key.is_blank() {
            return Err(Error::invalid_request("the API key is empty"));
        }
        let mut key = HeaderValue::from_str(self.0.key.expose()).map_err(|_| {
            Error::invalid_request("the API key contains characters not allowed in a header")
        })?;
        key.set_sensitive(true);
        Ok(key)
    }
}

/// How the token exchange itself is sent: the client's retry policy and limits.
#[derive(Clone, Copy)]
pub(crate) struct Exchange<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) retry: &'a RetryPolicy,
    pub(crate) limits: Limits<'a>,
}

impl Session {
    /// The `Authorization` value to send, authenticating first if needed.
    /// Concurrent callers wait for one exchange instead of starting their own.
    pub(crate) async fn bearer(&self, exchange: Exchange<'_>) -> Result<HeaderValue, Error> {
        if let Some(header) = self.fresh_header() {
            return Ok(header);
        }
        // Boxed: the exchange is a whole request, and kept inline its state
        // would be copied along with every call's future, though it runs
        // about once an hour.
        Box::pin(self.refresh_bearer(exchange)).await
    }

    async fn refresh_bearer(&self, exchange: Exchange<'_>) -> Result<HeaderValue, Error> {
        let _guard = self.0.refresh.lock().await;
        if let Some(header) = self.fresh_header() {
            return Ok(header);
        }
        let cached = self.authenticate(exchange).await?;
        let header = cached.header.clone();
        if let Ok(mut slot) = self.0.cached.write() {
            *slot = Some(cached);
        }
        Ok(header)
    }

    async fn authenticate(&self, exchange: Exchange<'_>) -> Result<Cached, Error> {
        let Exchange {
            http,
            retry: policy,
            limits,
        } = exchange;
        let key = self.key_header()?;
        let url = self.0.base.join("authenticates").map_err(|_| {
            Error::invalid_request("the base URL cannot be joined with /authenticates")
        })?;
        let asked_at = Instant::now();
        self.0
            .authentications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = http
            .post(url)
            .header(ACCEPT, VENDOR_ACCEPT)
            .header(AUTHORIZATION, key)
            .build()
            .map_err(|e| Error::from_reqwest(AUTH_OPERATION, e))?;
        let mut attempts = 0;
        let response = retry::send(
            http,
            limits,
            AUTH_OPERATION,
            policy,
            true,
            request,
            &mut attempts,
        )
        .await
        .inspect_err(|_| limits.metrics.exchange("failed"))
        // A typed error stashed by the retry loop (the budget did not come) wins.
        .map_err(|e| {
            crate::transport::context::take_error()
                .unwrap_or_else(|| Error::from_reqwest(AUTH_OPERATION, e))
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::from_reqwest(AUTH_OPERATION, e))?;
        tracing::debug!(
            operation = AUTH_OPERATION,
            status = status.as_u16(),
            "authenticated"
        );
        limits.metrics.exchange(match status.as_u16() {
            200 | 201 => "ok",
            401 | 403 => "refused",
            _ => "failed",
        });
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            // The one failure an operator must act on: the key is refused.
            tracing::warn!(
                operation = AUTH_OPERATION,
                status = status.as_u16(),
                "NexHealth refused the API key; check NEXHEALTH_API_KEY or the key given to the client"
            );
        }
        if status != StatusCode::CREATED && status != StatusCode::OK {
            let envelope = serde_json::from_slice::<ErrorEnvelope>(&body).ok();
            return Err(Error::from_status(ApiError::new(
                AUTH_OPERATION,
                status,
                envelope.as_ref(),
                Some(&headers),
            )));
        }
        let envelope: AuthenticateResponse =
            crate::error::decode(AUTH_OPERATION, Some(status.as_u16()), &body)?;
        let token = envelope.data.token;
        let invalid = |reason: &str| Error::InvalidResponse {
            operation: AUTH_OPERATION,
            status: Some(status.as_u16()),
            field: Some("data.token".into()),
            reason: reason.into(),
        };
        if token.trim().is_empty() {
            return Err(invalid("the token is empty"));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| invalid("the token has characters not allowed in a header"))?;
        header.set_sensitive(true);
        let server_date = headers
            .get(DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(httpdate);
        let lifetime = token::lifetime(&token, server_date);
        let refresh_at = asked_at + lifetime.saturating_sub(token::refresh_margin(lifetime));
        Ok(Cached { header, refresh_at })
    }
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(text: &str) -> Option<SystemTime> {
    let parsed = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let secs = u64::try_from(parsed.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}
