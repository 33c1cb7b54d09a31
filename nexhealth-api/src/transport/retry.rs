//! Sending one request with the client's retry policy and rate limit, reading
//! the whole body (bounded) so that a connection dropped mid-body is retried
//! like any other transport failure.

use reqwest::StatusCode;

use crate::Error;
use crate::transport::context;
use crate::transport::limit::{DEFAULT_COOLDOWN, Limiter};
use crate::transport::policy::RetryPolicy;

/// What the loop reads from the client's settings besides the retry policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits<'a> {
    /// The rate limiter every attempt waits for, if the client has one.
    pub(crate) limiter: Option<&'a Limiter>,
    /// The largest body read.
    pub(crate) max_body_bytes: usize,
    /// The client's whole-request timeout (bounds the wait for the budget).
    pub(crate) timeout: std::time::Duration,
}

/// Statuses worth another attempt of a call that is safe to repeat.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

fn is_retryable_error(error: &reqwest::Error) -> bool {
    error.is_connect()
        || error.is_timeout()
        || error.is_request()
        || error.is_body()
        || error.is_decode()
}

/// Whether a response can be handed on unread: on a last attempt whose body
/// announces an acceptable length, progenitor reads it once. Otherwise the
/// body is read ahead ([`read_ahead`]) so that one cut off mid-way can be
/// retried like any other transport failure.
fn hand_on_unread(response: &reqwest::Response, max_body: usize, last_attempt: bool) -> bool {
    last_attempt
        && response
            .content_length()
            .is_some_and(|len| len <= max_body as u64)
}

/// Reads the body of `response` into memory (at most `max_body` bytes) and
/// hands back a response that serves it from there.
async fn read_ahead(
    mut response: reqwest::Response,
    operation: &'static str,
    max_body: usize,
) -> reqwest::Result<reqwest::Response> {
    let status = response.status();
    let version = response.version();
    let headers = std::mem::take(response.headers_mut());
    let too_large = || {
        context::stash_error(Error::InvalidResponse {
            operation,
            status: Some(status.as_u16()),
            field: None,
            reason: format!("the body is larger than the {max_body}-byte limit"),
        });
    };
    let body = match response.content_length() {
        Some(len) if len > max_body as u64 => {
            too_large();
            bytes::Bytes::new()
        }
        // The common case: the length is announced and allowed; read it in one go.
        Some(_) => response.bytes().await?,
        None => {
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > max_body {
                    too_large();
                    body.clear();
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            bytes::Bytes::from(body)
        }
    };
    let mut rebuilt = http::Response::new(body);
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    rebuilt
        .headers_mut()
        .remove(reqwest::header::CONTENT_LENGTH);
    Ok(reqwest::Response::from(rebuilt))
}

/// The least time left to a request after waiting for its budget.
const MIN_LEFT: std::time::Duration = std::time::Duration::from_millis(1);

/// A `reqwest::Error` for a request that was never sent because its budget
/// did not come in time; the typed error is stashed in the call's context,
/// where the caller's conversion finds it first. Built from an invalid request
/// so that nothing goes on the wire.
fn budget_not_granted(http: &reqwest::Client) -> reqwest::Error {
    http.get("http://")
        .build()
        .expect_err("an empty host never builds")
}

/// Sends `request` under `policy`. `retry_safe` says whether the call may be
/// repeated at all. Returns the last response or error.
pub(crate) async fn send(
    http: &reqwest::Client,
    limits: Limits<'_>,
    operation: &'static str,
    policy: &RetryPolicy,
    retry_safe: bool,
    mut request: reqwest::Request,
    attempts: &mut u32,
) -> reqwest::Result<reqwest::Response> {
    // Built on the first retry: most calls never need it.
    let mut delays = None;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let may_retry = retry_safe && attempt < policy.max_attempts();
        let spare = if may_retry { request.try_clone() } else { None };
        if let Some(limiter) = limits.limiter {
            // The wait counts against the attempt's timeout: what is left of
            // it goes to the request itself.
            let timeout = request.timeout().copied().unwrap_or(limits.timeout);
            let deadline = std::time::Instant::now() + timeout;
            match Box::pin(limiter.acquire(operation, Some(deadline))).await {
                Ok(waited) if !waited.is_zero() => {
                    *request.timeout_mut() = Some(timeout.saturating_sub(waited).max(MIN_LEFT));
                }
                Ok(_) => {}
                Err(error) => {
                    context::stash_error(error);
                    return Err(budget_not_granted(http));
                }
            }
        }
        let started = std::time::Instant::now();
        let outcome = match http.execute(request).await {
            Ok(response) if !hand_on_unread(&response, limits.max_body_bytes, spare.is_none()) => {
                // Boxed: kept inline, the body-reading state would be copied
                // along with every call's future, including those that never
                // read ahead.
                Box::pin(read_ahead(response, operation, limits.max_body_bytes)).await
            }
            outcome => outcome,
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        *attempts += 1;
        let mut next_delay = || delays.get_or_insert_with(|| policy.delays()).next();
        let wait = match &outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                context::record_status(status);
                tracing::debug!(operation, attempt, status, elapsed_ms, "attempt answered");
                if !is_retryable_status(response.status()) {
                    return outcome;
                }
                let asked = crate::api::error::retry_after(response.headers());
                if status == 429
                    && let Some(limiter) = limits.limiter
                {
                    // Every client sharing the limiter waits this out, not just this call.
                    Box::pin(limiter.pause(asked.unwrap_or(DEFAULT_COOLDOWN))).await;
                }
                match asked {
                    Some(asked) if asked > policy.max_retry_after() => return outcome,
                    Some(asked) => next_delay().map(|_| asked),
                    None => next_delay(),
                }
            }
            Err(error) => {
                tracing::debug!(
                    operation,
                    attempt,
                    elapsed_ms,
                    timeout = error.is_timeout(),
                    "attempt failed without an answer"
                );
                if !is_retryable_error(error) {
                    return outcome;
                }
                next_delay()
            }
        };
        match (spare, wait) {
            (Some(next), Some(wait)) => {
                tracing::debug!(
                    operation,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "retrying"
                );
                Box::pin(tokio::time::sleep(wait)).await;
                request = next;
            }
            _ => return outcome,
        }
    }
}
