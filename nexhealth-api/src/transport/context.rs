//! Per-call state shared between the hooks and the code that turns a
//! progenitor result into ours: the last status seen on the wire and a typed
//! error that a hook could only report as a string.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::transport::metrics::Metrics;

#[derive(Default)]
pub(crate) struct CallContext {
    pub(crate) status: Cell<Option<u16>>,
    pub(crate) error: RefCell<Option<Error>>,
    /// When the call must be over, fixed when it starts (`None` inside: no deadline).
    deadline: Cell<Option<Option<Instant>>>,
    /// The `Retry-After` of the last answer that had one, for an error whose
    /// body could not be read as an envelope.
    pub(crate) retry_after: Cell<Option<std::time::Duration>>,
    /// The client's instruments and when the call began (its first hook):
    /// the call's duration is recorded with its final outcome.
    pub(crate) started: RefCell<Option<(std::sync::Arc<Metrics>, Instant)>>,
}

tokio::task_local! {
    static CALL: CallContext;
}

/// Runs `fut` with a fresh context and hands back what the hooks recorded.
pub(crate) async fn scope<F: Future>(fut: F) -> (F::Output, CallContext) {
    let mut scoped = std::pin::pin!(CALL.scope(CallContext::default(), fut));
    let out = scoped.as_mut().await;
    let ctx = scoped.as_mut().take_value().unwrap_or_default();
    (out, ctx)
}

/// The call's deadline: fixed `total` from the first time it is asked for in
/// the call (its first hook), the same for every attempt after. A `total` too
/// long to add to now (`Duration::MAX`) is no deadline.
pub(crate) fn deadline(total: Duration) -> Option<Instant> {
    let fresh = || Instant::now().checked_add(total);
    CALL.try_with(|c| match c.deadline.get() {
        Some(fixed) => fixed,
        None => {
            let deadline = fresh();
            c.deadline.set(Some(deadline));
            deadline
        }
    })
    .unwrap_or_else(|_| fresh())
}

/// The call began now, on a client with `metrics` (the first hook only).
pub(crate) fn start(metrics: &std::sync::Arc<Metrics>) {
    let _ = CALL.try_with(|c| {
        let mut started = c.started.borrow_mut();
        if started.is_none() {
            *started = Some((metrics.clone(), Instant::now()));
        }
    });
}

impl CallContext {
    /// Records the call's duration and outcome (`ok` or the error's kind).
    pub(crate) fn finish(&self, operation: &'static str, outcome: Result<(), &Error>) {
        finish(self.started.borrow_mut().take(), operation, outcome);
    }
}

/// Records a call that began at `started` (see [`start`]) with its outcome.
pub(crate) fn finish(
    started: Option<(std::sync::Arc<Metrics>, Instant)>,
    operation: &'static str,
    outcome: Result<(), &Error>,
) {
    if let Some((metrics, started)) = started {
        metrics.call(
            operation,
            started.elapsed().as_secs_f64(),
            outcome.map_or_else(Error::kind, |()| "ok"),
        );
    }
}

pub(crate) fn record_retry_after(retry_after: Option<Duration>) {
    let _ = CALL.try_with(|c| c.retry_after.set(retry_after));
}

pub(crate) fn record_status(status: u16) {
    let _ = CALL.try_with(|c| c.status.set(Some(status)));
}

pub(crate) fn stash_error(error: Error) {
    let _ = CALL.try_with(|c| *c.error.borrow_mut() = Some(error));
}

/// Takes the typed error a lower layer stashed, if any.
pub(crate) fn take_error() -> Option<Error> {
    CALL.try_with(|c| c.error.borrow_mut().take())
        .ok()
        .flatten()
}
