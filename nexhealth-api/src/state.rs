//! What every clone of a client shares: the session, the retry policy, the
//! rate limiter and the body-size limit.

use std::sync::Arc;

use crate::auth::Session;
use crate::policy::{Limiter, RetryPolicy};

/// The largest response body read by default (64 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The generated client's inner state.
#[derive(Clone, Debug)]
pub struct ClientState {
    pub(crate) session: Session,
    pub(crate) retry: RetryPolicy,
    pub(crate) limiter: Option<Arc<Limiter>>,
    pub(crate) max_body_bytes: usize,
}
