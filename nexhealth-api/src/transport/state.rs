//! What every clone of a client shares: the session, the retry policy, the
//! rate limiter and the body-size limit.

use std::sync::Arc;

use reqwest::header::HeaderValue;

use crate::Error;
use crate::transport::auth::{Exchange, Session};
use crate::transport::limit::Limiter;
use crate::transport::policy::RetryPolicy;
use crate::transport::retry::Limits;

/// The largest response body read by default (64 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What every clone of a [`Client`](crate::Client) shares. Opaque: build a
/// client with [`Client::builder`](crate::Client::builder); reach the session
/// with [`Client::session`](crate::Client::session).
#[derive(Clone, Debug)]
pub struct ClientState {
    pub(crate) session: Session,
    pub(crate) retry: RetryPolicy,
    pub(crate) limiter: Option<Arc<Limiter>>,
    pub(crate) max_body_bytes: usize,
    /// The whole-request timeout the client was built with: the longest an
    /// attempt waits for its rate-limit budget when the call sets none.
    pub(crate) timeout: std::time::Duration,
}

impl ClientState {
    /// The limits the retry loop applies.
    pub(crate) fn limits(&self) -> Limits<'_> {
        Limits {
            limiter: self.limiter.as_deref(),
            max_body_bytes: self.max_body_bytes,
            timeout: self.timeout,
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
