//! Per-call state shared between the hooks and the code that turns a
//! progenitor result into ours: the last status seen on the wire and a typed
//! error that a hook could only report as a string.

use std::cell::{Cell, RefCell};

use crate::Error;

#[derive(Default)]
pub(crate) struct CallContext {
    pub(crate) status: Cell<Option<u16>>,
    pub(crate) error: RefCell<Option<Error>>,
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
