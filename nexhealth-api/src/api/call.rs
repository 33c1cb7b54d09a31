//! Per-call settings: `client.get_locations().timeout(d).retry(policy).await`.

use std::future::IntoFuture;
use std::time::Duration;

use crate::transport::policy::{CallOptions, RetryPolicy};

tokio::task_local! {
    static OPTIONS: CallOptions;
}

/// The options of the call running on this task, if any were set.
pub(crate) fn current() -> Option<CallOptions> {
    OPTIONS.try_with(Clone::clone).ok()
}

mod sealed {
    pub trait Sealed {}
}
#[doc(hidden)]
pub use sealed::Sealed;

/// Per-call settings on every request builder of the client.
pub trait CallExt: IntoFuture + Sealed + Sized {
    /// Uses `policy` instead of the client's retry policy for this call.
    fn retry(self, policy: RetryPolicy) -> WithOptions<Self> {
        WithOptions::new(self).retry(policy)
    }
    /// Uses `timeout` instead of the client's whole-request timeout, for
    /// each attempt.
    fn timeout(self, timeout: Duration) -> WithOptions<Self> {
        WithOptions::new(self).timeout(timeout)
    }
    /// Uses `deadline` instead of the client's
    /// [`deadline`](crate::ClientBuilder::deadline): the whole call, retries,
    /// waits and token exchange included, ends by then.
    fn deadline(self, deadline: Duration) -> WithOptions<Self> {
        WithOptions::new(self).deadline(deadline)
    }
    /// Allows retrying a call that is not idempotent. Only for callers who can
    /// tolerate a duplicate (a retried `POST /onboardings` may create two links).
    fn retry_unsafe(self) -> WithOptions<Self> {
        WithOptions::new(self).retry_unsafe()
    }
}

impl<T: IntoFuture + Sealed> CallExt for T {}

/// A request builder with per-call settings; `.await` it.
#[derive(Debug)]
pub struct WithOptions<B> {
    inner: B,
    options: CallOptions,
}

impl<B> WithOptions<B> {
    fn new(inner: B) -> Self {
        Self {
            inner,
            options: CallOptions::default(),
        }
    }
    /// See [`CallExt::retry`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }
    /// See [`CallExt::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }
    /// See [`CallExt::deadline`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.options.deadline = Some(deadline);
        self
    }
    /// See [`CallExt::retry_unsafe`].
    pub fn retry_unsafe(mut self) -> Self {
        self.options.retry_unsafe = true;
        self
    }
}

impl<B: IntoFuture> IntoFuture for WithOptions<B> {
    type Output = B::Output;
    type IntoFuture = tokio::task::futures::TaskLocalFuture<CallOptions, B::IntoFuture>;
    fn into_future(self) -> Self::IntoFuture {
        OPTIONS.scope(self.options, self.inner.into_future())
    }
}
