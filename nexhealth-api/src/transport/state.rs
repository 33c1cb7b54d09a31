//! What every clone of a client shares: the session, the retry policy, the
//! rate limiter, the body-size limit and the API version.

use std::sync::Arc;

use reqwest::header::HeaderValue;

use crate::error::Error;
use crate::transport::auth::{Exchange, Session};
use crate::transport::headers::ApiVersion;
use crate::transport::limit::Limiter;
use crate::transport::metrics::Metrics;
use crate::transport::policy::RetryPolicy;
use crate::transport::retry::Limits;
use crate::transport::retry_budget::RetryTokens;

/// The largest response body read by default (64 MiB).
///
/// Value: 64 MiB (67,108,864 bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What every clone of a [`Client`](crate::Client) shares. Opaque: build a
/// client with [`Client::builder`](crate::Client::builder); reach the session
/// with [`Client::session`](crate::Client::session).
#[derive(Clone, Debug)]
pub struct ClientState {
    pub(crate) session: Session,
    pub(crate) retry: RetryPolicy,
    /// The retry budget every clone shares, when the policy has one.
    pub(crate) retry_tokens: Option<Arc<RetryTokens>>,
    /// The client's instruments.
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limiter: Option<Arc<Limiter>>,
    pub(crate) max_body_bytes: usize,
    /// The whole-request timeout of each attempt, when the call sets none.
    pub(crate) timeout: std::time::Duration,
    /// The deadline of a whole call, when the call sets none.
    pub(crate) deadline: std::time::Duration,
    /// The longest one attempt waits for rate-limit budget.
    pub(crate) max_budget_wait: std::time::Duration,
    /// The `Nex-Api-Version` sent on the operations that take it.
    pub(crate) api_version: ApiVersion,
    /// [`Self::api_version`] as a header value, checked when the client was built.
    pub(crate) api_version_header: HeaderValue,
}

impl ClientState {
    /// The limits the retry loop applies.
    pub(crate) fn limits(&self) -> Limits<'_> {
        Limits {
            limiter: self.limiter.as_deref(),
            retry_tokens: self.retry_tokens.as_deref(),
            metrics: &self.metrics,
            max_body_bytes: self.max_body_bytes,
            timeout: self.timeout,
            deadline: self.deadline,
            max_budget_wait: self.max_budget_wait,
        }
    }

    /// The `Authorization` value to send, authenticating first if needed.
    pub(crate) async fn bearer(&self, http: &reqwest::Client) -> Result<HeaderValue, Error> {
        let exchange = Exchange {
            http,
            retry: &self.retry,
            limits: self.limits(),
        };
        self.session.bearer(exchange).await
    }
}
