//! Sending one request with the client's retry policy and rate limit, reading
//! the whole body (bounded) so that a connection dropped mid-body is retried
//! like any other transport failure.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::error::Error;
use crate::transport::context;
use crate::transport::limit::{DEFAULT_COOLDOWN, Limiter};
use crate::transport::metrics::{self, Metrics};
use crate::transport::policy::RetryPolicy;
use crate::transport::retry_budget::{RetryKind, RetryTokens};

/// What the loop reads from the client's settings besides the retry policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits<'a> {
    /// The rate limiter every attempt waits for, if the client has one.
    pub(crate) limiter: Option<&'a Limiter>,
    /// The client's retry budget, if it has one.
    pub(crate) retry_tokens: Option<&'a RetryTokens>,
    /// The client's instruments.
    pub(crate) metrics: &'a Metrics,
    /// The largest body read.
    pub(crate) max_body_bytes: usize,
    /// The whole-request timeout of each attempt, unless the request sets one.
    pub(crate) timeout: std::time::Duration,
    /// The deadline of the whole call, unless the call set one when it started.
    pub(crate) deadline: std::time::Duration,
    /// The longest one attempt waits for rate-limit budget.
    pub(crate) max_budget_wait: std::time::Duration,
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

/// The least time an attempt is given.
const MIN_LEFT: Duration = Duration::from_millis(1);

/// Refuses to send: stashes `error` in the call's context, where the caller's
/// conversion finds it first, and answers a `reqwest::Error` built from an
/// invalid request, so that nothing goes on the wire.
fn not_sent(http: &reqwest::Client, error: Error) -> reqwest::Error {
    context::stash_error(error);
    // Not input-dependent: a URL without a host never builds.
    http.get("http://")
        .build()
        .expect_err("an empty host never builds")
}

/// The earlier of two optional instants (`None` is "never").
fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The tokens a retry took from the budget, until that retry is sent: a call
/// dropped (or giving up) before then gives them back, so that calls
/// cancelled while they wait out a `Retry-After` cost the budget nothing.
struct Unsent<'a> {
    tokens: &'a RetryTokens,
    metrics: &'a Metrics,
    cost: u32,
}

impl Unsent<'_> {
    /// The retry goes on the wire: the tokens stay spent.
    fn sent(self) {
        std::mem::forget(self);
    }
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        self.tokens.refund(self.cost);
        self.metrics.retry_tokens(self.tokens.left());
    }
}

/// The least wait after a 429: its `Retry-After` when it is longer, else
/// [`DEFAULT_COOLDOWN`] (also for `Retry-After: 0`, which would otherwise
/// retry at once into the same limit).
fn cooldown_after_429(asked: Option<Duration>) -> Duration {
    asked.unwrap_or(DEFAULT_COOLDOWN).max(DEFAULT_COOLDOWN)
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
    // Fixed when the call started (its first hook), or now.
    let deadline = context::deadline(limits.deadline);
    // Built on the first retry: most calls never need it.
    let mut delays = None;
    let mut attempt: u32 = 0;
    // The retry budget, unless this call's policy draws on none; and what
    // this call's retries took from it.
    let tokens = limits
        .retry_tokens
        .filter(|_| policy.retry_budget().is_some());
    let mut spent: u32 = 0;
    // The tokens of the retry about to be sent, given back if it never is.
    let mut unsent: Option<Unsent<'_>> = None;
    loop {
        attempt += 1;
        let may_retry = retry_safe && attempt < policy.max_attempts();
        let spare = if may_retry { request.try_clone() } else { None };
        let timeout = request.timeout().copied().unwrap_or(limits.timeout);
        let mut grant = None;
        if let Some(limiter) = limits.limiter {
            let now = Instant::now();
            // Budget that comes after the deadline is of no use, and no
            // attempt waits longer than the client allows.
            let bound = earlier(
                deadline.and_then(|d| d.checked_sub(MIN_LEFT)),
                now.checked_add(limits.max_budget_wait),
            );
            let acquired = Box::pin(limiter.acquire(operation, bound)).await;
            limits.metrics.budget(
                limiter.kind(),
                now.elapsed().as_secs_f64(),
                limiter.fallback_active(),
            );
            match acquired {
                Ok(granted) => grant = Some(granted),
                Err(error) => return Err(not_sent(http, error)),
            }
        }
        // What is left of the deadline bounds the attempt.
        match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
            Some(left) if left.is_zero() => {
                return Err(not_sent(http, Error::Timeout { operation }));
            }
            Some(left) if left < timeout => *request.timeout_mut() = Some(left.max(MIN_LEFT)),
            _ => {}
        }
        let started = Instant::now();
        let method = request.method().clone();
        if let Some(unsent) = unsent.take() {
            unsent.sent();
        }
        let outcome = http.execute(request).await;
        if let (Some(limiter), Some(grant), Ok(_)) = (limits.limiter, &grant, &outcome) {
            // The answer's head is here: the request reached NexHealth before now.
            limiter.observe(grant, Instant::now());
        }
        let outcome = match outcome {
            Ok(response) if !hand_on_unread(&response, limits.max_body_bytes, spare.is_none()) => {
                // Boxed: kept inline, the body-reading state would be copied
                // along with every call's future, including those that never
                // read ahead.
                Box::pin(read_ahead(response, operation, limits.max_body_bytes)).await
            }
            outcome => outcome,
        };
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        limits.metrics.attempt(
            operation,
            &method,
            attempt > 1,
            elapsed.as_secs_f64(),
            match &outcome {
                Ok(response) => Ok(response.status()),
                Err(error) => Err(metrics::failure_kind(error)),
            },
        );
        *attempts += 1;
        let mut next_delay = || delays.get_or_insert_with(|| policy.delays()).next();
        let wait = match &outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                context::record_status(status);
                tracing::debug!(operation, attempt, status, elapsed_ms, "attempt answered");
                if !is_retryable_status(response.status()) {
                    // Answered by a working server (anything but a 5xx):
                    // what the retries cost comes back. A 500 after a 503
                    // is the same outage, and refunds nothing.
                    if let Some(tokens) = tokens.filter(|_| status < 500) {
                        tokens.succeeded(spent);
                        limits.metrics.retry_tokens(tokens.left());
                    }
                    return outcome;
                }
                // Parsed once; may be anything up to 2^64 - 1 seconds.
                let asked = crate::error::retry_after(response.headers());
                context::record_retry_after(asked);
                if status == 429
                    && let Some(limiter) = limits.limiter
                {
                    // Every client sharing the limiter waits this out (bounded
                    // by MAX_SHARED_PAUSE), not just this call: at least the
                    // cooldown, even for `Retry-After: 0`.
                    Box::pin(limiter.pause(cooldown_after_429(asked))).await;
                    limits.metrics.paused();
                }
                let wait = match asked {
                    Some(asked) if asked > policy.max_retry_after() => return outcome,
                    Some(asked) => next_delay().map(|_| asked),
                    None => next_delay(),
                };
                if status == 429 && limits.limiter.is_none() {
                    // No limiter holds the next attempt back: the wait does.
                    wait.map(|wait| wait.max(cooldown_after_429(asked)))
                } else {
                    wait
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
        // A wait that would end past the deadline: the last answer stands.
        let wait = wait.filter(|wait| {
            deadline.is_none_or(|d| Instant::now().checked_add(*wait).is_some_and(|end| end < d))
        });
        // A retry draws on the budget: none left, the last answer stands.
        let kind = match &outcome {
            Err(error) if error.is_timeout() => RetryKind::Timeout,
            _ => RetryKind::Error,
        };
        let wait = match (wait, tokens, &spare) {
            (Some(wait), Some(tokens), Some(_)) => {
                let spend = tokens.try_spend(kind);
                limits.metrics.retry_tokens(tokens.left());
                match spend {
                    Some(cost) => {
                        spent = spent.saturating_add(cost);
                        unsent = Some(Unsent {
                            tokens,
                            metrics: limits.metrics,
                            cost,
                        });
                        Some(wait)
                    }
                    None => {
                        tracing::debug!(operation, attempt, "retry budget empty: no retry");
                        None
                    }
                }
            }
            (wait, _, _) => wait,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::retry_budget::RetryBudget;

    fn metrics() -> Metrics {
        let base = reqwest::Url::parse("http://localhost/").unwrap();
        Metrics::new(&metrics::global_meter(), &base, false)
    }

    #[test]
    fn a_retry_never_sent_gives_its_tokens_back() {
        let tokens = RetryTokens::new(RetryBudget {
            capacity: 20,
            refill_per_second: 0,
            ..RetryBudget::default()
        });
        let metrics = metrics();
        let unsent = |cost| Unsent {
            tokens: &tokens,
            metrics: &metrics,
            cost,
        };
        // Dropped while waiting: given back.
        let cost = tokens.try_spend(RetryKind::Timeout).unwrap();
        assert_eq!(tokens.left(), 10.0);
        drop(unsent(cost));
        assert_eq!(tokens.left(), 20.0);
        // Sent: spent for good.
        let cost = tokens.try_spend(RetryKind::Error).unwrap();
        unsent(cost).sent();
        assert_eq!(tokens.left(), 15.0);
    }

    #[test]
    fn a_429_cools_down_at_least_the_default_cooldown() {
        assert_eq!(cooldown_after_429(None), DEFAULT_COOLDOWN);
        assert_eq!(cooldown_after_429(Some(Duration::ZERO)), DEFAULT_COOLDOWN);
        assert_eq!(
            cooldown_after_429(Some(Duration::from_millis(400))),
            DEFAULT_COOLDOWN
        );
        assert_eq!(
            cooldown_after_429(Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(cooldown_after_429(Some(Duration::MAX)), Duration::MAX);
    }
}
