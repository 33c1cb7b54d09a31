//! The one place where every generated call is shaped before it is sent and
//! sent: NexHealth's headers, the bearer token, input checks, per-call
//! options, retries, the single re-authentication after a 401, and tracing.

use std::time::Instant;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use tracing::Instrument;

use crate::api::call;
use crate::api::operations::{self, Operation};
use crate::error::Error;
use crate::generated::Client;
use crate::transport::state::ClientState;
use crate::transport::{context, headers, retry};

/// The token exchange: sent with the raw key, never retried after a 401.
const AUTHENTICATE: &str = "postAuthenticates";

/// Query parameters that must not be empty when present.
const NON_EMPTY_QUERY: [&str; 1] = ["subdomain"];

fn check_query(request: &reqwest::Request) -> Result<(), Error> {
    for (name, value) in request.url().query_pairs() {
        if NON_EMPTY_QUERY.contains(&name.as_ref()) && value.trim().is_empty() {
            return Err(Error::invalid_request(format!(
                "`{name}` must not be empty"
            )));
        }
    }
    Ok(())
}

fn operation(info: &OperationInfo) -> Option<&'static Operation> {
    operations::find(info.operation_id)
}

impl ClientHooks<ClientState> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let op = operation(info);
        context::start(&self.inner().metrics);
        headers::apply(
            request,
            op.is_some_and(|op| op.needs_api_version),
            &self.inner().api_version_header,
        );
        let options = call::current().unwrap_or_default();
        if let Some(timeout) = options.timeout {
            *request.timeout_mut() = Some(timeout);
        }
        // The call's deadline starts now, before the token exchange it may need.
        context::deadline(options.deadline.unwrap_or(self.inner().deadline));
        let refuse = |e: Error| {
            let message = e.to_string();
            context::stash_error(e);
            progenitor_client::Error::Custom(message)
        };
        check_query(request).map_err(refuse)?;
        // A zero per-call timeout or deadline would fail the call for a reason
        // that is not the server's or the budget's: say what it is.
        for (name, value) in [("timeout", options.timeout), ("deadline", options.deadline)] {
            if value.is_some_and(|v| v.is_zero()) {
                return Err(refuse(Error::invalid_request(format!(
                    "the call's `{name}` is zero: it would end before it starts"
                ))));
            }
        }
        let state = self.inner();
        if !state.session.is_own_origin(request.url()) {
            return Err(refuse(Error::invalid_request(
                "refusing to send credentials to a host other than the configured base URL",
            )));
        }
        let credential = if op.is_some_and(|op| op.id == AUTHENTICATE) {
            state.session.key_header()
        } else {
            state.bearer(self.client()).await
        };
        request
            .headers_mut()
            .insert(AUTHORIZATION, credential.map_err(refuse)?);
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let op = operation(info);
        let name = op.map_or(info.operation_id, |op| op.id);
        let options = call::current().unwrap_or_default();
        let state = self.inner();
        let policy = options.retry.unwrap_or_else(|| state.retry.clone());
        let retry_safe = op.is_some_and(|op| op.idempotent) || options.retry_unsafe;
        let span = tracing::info_span!(
            "nexhealth_call",
            operation = name,
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            budget_wait_ms = tracing::field::Empty,
            limiter_fallback = tracing::field::Empty,
        );
        let started = Instant::now();
        async move {
            // Kept for one replay after a 401; it carries the refused token.
            let spare = (name != AUTHENTICATE)
                .then(|| request.try_clone())
                .flatten();
            let http = self.client();
            let mut attempts = 0;
            let mut result = retry::send(
                http,
                state.limits(),
                name,
                &policy,
                retry_safe,
                request,
                &mut attempts,
            )
            .await;
            if matches!(&result, Ok(r) if r.status() == StatusCode::UNAUTHORIZED)
                && let Some(again) = spare
            {
                // Boxed: a rare path whose state would otherwise be copied
                // along with every call's future.
                let replay = Replay {
                    http,
                    state,
                    name,
                    policy: &policy,
                    retry_safe,
                };
                if let Some(replayed) = Box::pin(replay.run(again, &mut attempts)).await {
                    result = replayed;
                }
            }
            let span = tracing::Span::current();
            if let Ok(response) = &result {
                span.record("status", response.status().as_u16());
            }
            span.record("attempts", attempts);
            span.record("duration_ms", started.elapsed().as_millis() as u64);

            // DEBUG, success or not: the caller gets the outcome as a value,
            // and a service's `info` logs stay quiet while it is healthy.
            tracing::debug!(
                operation = name,
                ok = matches!(&result, Ok(r) if r.status().is_success()),
                "nexhealth call finished"
            );
            result
        }
        .instrument(span)
        .await
    }
}

/// The one replay of a call whose token was refused.
struct Replay<'a> {
    http: &'a reqwest::Client,
    state: &'a ClientState,
    name: &'static str,
    policy: &'a crate::transport::policy::RetryPolicy,
    retry_safe: bool,
}

impl Replay<'_> {
    /// The token may have been revoked or expired early: drops it, gets a new
    /// one (shared with concurrent callers) and sends `again` once more.
    /// `None` when no new token could be had (the 401 stands).
    async fn run(
        self,
        mut again: reqwest::Request,
        attempts: &mut u32,
    ) -> Option<reqwest::Result<reqwest::Response>> {
        let Self {
            http,
            state,
            name,
            policy,
            retry_safe,
        } = self;
        state.session.invalidate(again.headers().get(AUTHORIZATION));
        match state.bearer(http).await {
            Ok(bearer) => {
                again.headers_mut().insert(AUTHORIZATION, bearer);
                Some(
                    retry::send(
                        http,
                        state.limits(),
                        name,
                        policy,
                        retry_safe,
                        again,
                        attempts,
                    )
                    .await,
                )
            }
            Err(e) => {
                tracing::debug!(operation = name, "re-authentication failed");
                if !e.is_unauthorized() {
                    context::stash_error(e);
                }
                None
            }
        }
    }
}
