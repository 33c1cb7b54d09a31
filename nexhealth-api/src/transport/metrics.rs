//! Metrics through the OpenTelemetry metrics API: what the SDK does, for
//! dashboards and alerts. The instruments come from the meter given to
//! [`ClientBuilder::meter`](crate::ClientBuilder::meter), or else from the
//! global meter provider when the client is built (install the provider
//! first). With no provider installed, every instrument is OpenTelemetry's
//! no-op: nothing is recorded and nothing measurable is spent.
//!
//! | name | kind | attributes |
//! |---|---|---|
//! | `http.client.request.duration` | histogram (s), one per HTTP attempt | `http.request.method`, `http.response.status_code`, `server.address`, `server.port`, `error.type` on failure |
//! | `nexhealth.client.operation.duration` | histogram (s), one per call, retries included | `nexhealth.operation`, `nexhealth.outcome` |
//! | `nexhealth.client.attempts` | counter | `nexhealth.operation`, `nexhealth.retry` |
//! | `nexhealth.rate_limit.wait.duration` | histogram (s), time waiting for budget | `nexhealth.limiter` (`local` or `redis`) |
//! | `nexhealth.rate_limit.fallback` | up-down counter: clients on their fallback | — |
//! | `nexhealth.rate_limit.pauses` | counter of shared pauses after a 429 | — |
//! | `nexhealth.retry.budget` | gauge: tokens left | — |
//! | `nexhealth.auth.exchanges` | counter of token exchanges | `nexhealth.outcome` |
//! | `nexhealth.webhook.deliveries` | counter | `nexhealth.outcome` |
//! | `nexhealth.directory.fetches` | counter of the directory's `GET /locations` | — |
//!
//! No attribute carries a subdomain, an id, a key, a token, a path or a
//! body: every value is one of a few fixed words, a status code, or the
//! configured host and port.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, UpDownCounter};
use opentelemetry::{InstrumentationScope, KeyValue, Value};

/// `http.client.request.duration`: one HTTP attempt, in seconds
/// (OpenTelemetry's HTTP client semantic conventions).
pub const HTTP_CLIENT_REQUEST_DURATION: &str = "http.client.request.duration";
/// `nexhealth.client.operation.duration`: one call, retries and waits
/// included, in seconds, by operation id and outcome (`ok` or the error's kind).
pub const OPERATION_DURATION: &str = "nexhealth.client.operation.duration";
/// `nexhealth.client.attempts`: HTTP attempts, by operation id and whether
/// the attempt is a retry.
pub const ATTEMPTS: &str = "nexhealth.client.attempts";
/// `nexhealth.rate_limit.wait.duration`: time an attempt waited for rate
/// budget, in seconds, by limiter (`local` or `redis`).
pub const RATE_LIMIT_WAIT: &str = "nexhealth.rate_limit.wait.duration";
/// `nexhealth.rate_limit.fallback`: clients whose shared (Redis) limiter
/// runs on its in-process fallback (0 or 1 per client; updated at each call).
pub const RATE_LIMIT_FALLBACK: &str = "nexhealth.rate_limit.fallback";
/// `nexhealth.rate_limit.pauses`: pauses set for every client sharing a
/// limiter after a 429.
pub const RATE_LIMIT_PAUSES: &str = "nexhealth.rate_limit.pauses";
/// `nexhealth.retry.budget`: tokens left in the retry budget, recorded when
/// it changes.
pub const RETRY_BUDGET: &str = "nexhealth.retry.budget";
/// `nexhealth.auth.exchanges`: exchanges of the API key for a token, by
/// outcome (`ok`, `refused`, `failed`).
pub const AUTH_EXCHANGES: &str = "nexhealth.auth.exchanges";
/// `nexhealth.webhook.deliveries`: deliveries given to
/// [`Receiver::handle`](crate::webhooks::Receiver::handle), by outcome
/// (`handled`, `duplicate`, `in_progress`, `handler_failed`,
/// `store_unavailable`, or the rejection's kind); a `store_unavailable`
/// also carries `nexhealth.store.trouble` (`full`, `unexpected_answer`,
/// `restoring` or `unavailable`, see
/// [`StoreUnavailable::kind`](crate::webhooks::StoreUnavailable::kind)).
pub const WEBHOOK_DELIVERIES: &str = "nexhealth.webhook.deliveries";
/// `nexhealth.directory.fetches`: `GET /locations` made by a
/// [`LocationDirectory`](crate::LocationDirectory).
pub const DIRECTORY_FETCHES: &str = "nexhealth.directory.fetches";

/// Every instrument's name.
///
/// Value: the ten names above, in that order.
pub const ALL: [&str; 10] = [
    HTTP_CLIENT_REQUEST_DURATION,
    OPERATION_DURATION,
    ATTEMPTS,
    RATE_LIMIT_WAIT,
    RATE_LIMIT_FALLBACK,
    RATE_LIMIT_PAUSES,
    RETRY_BUDGET,
    AUTH_EXCHANGES,
    WEBHOOK_DELIVERIES,
    DIRECTORY_FETCHES,
];

/// Histogram buckets for call and attempt durations, in seconds (the HTTP
/// semantic conventions' advice).
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Buckets for waits for budget: up to the minute window.
const WAIT_BUCKETS: [f64; 12] = [
    0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// The meter of this crate from the global provider, now.
pub(crate) fn global_meter() -> Meter {
    opentelemetry::global::meter_with_scope(scope())
}

/// This crate's instrumentation scope.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("nexhealth-api")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// The counter of webhook deliveries, from `meter`.
pub(crate) fn webhook_deliveries(meter: &Meter) -> Counter<u64> {
    meter
        .u64_counter(WEBHOOK_DELIVERIES)
        .with_description("Webhook deliveries, by outcome")
        .build()
}

/// One client's instruments (shared by its clones).
pub(crate) struct Metrics {
    http_duration: Histogram<f64>,
    operation_duration: Histogram<f64>,
    attempts: Counter<u64>,
    budget_wait: Histogram<f64>,
    fallback: UpDownCounter<i64>,
    pauses: Counter<u64>,
    retry_budget: Gauge<f64>,
    auth_exchanges: Counter<u64>,
    directory_fetches: Counter<u64>,
    server_address: Value,
    server_port: i64,
    /// Whether this client counts itself in `nexhealth.rate_limit.fallback`.
    on_fallback: AtomicBool,
    /// `false`: [`ClientBuilder::no_metrics`](crate::ClientBuilder::no_metrics), nothing is recorded.
    enabled: bool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("server_address", &self.server_address.as_str())
            .field("server_port", &self.server_port)
            .finish()
    }
}

impl Metrics {
    /// The instruments from `meter`, for the API at `base`.
    pub(crate) fn new(meter: &Meter, base: &reqwest::Url, enabled: bool) -> Self {
        Self {
            enabled,
            http_duration: meter
                .f64_histogram(HTTP_CLIENT_REQUEST_DURATION)
                .with_unit("s")
                .with_description("Duration of HTTP client requests")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            operation_duration: meter
                .f64_histogram(OPERATION_DURATION)
                .with_unit("s")
                .with_description("Duration of NexHealth calls, retries and waits included")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            attempts: meter
                .u64_counter(ATTEMPTS)
                .with_description("HTTP attempts of NexHealth calls")
                .build(),
            budget_wait: meter
                .f64_histogram(RATE_LIMIT_WAIT)
                .with_unit("s")
                .with_description("Time an attempt waited for rate-limit budget")
                .with_boundaries(WAIT_BUCKETS.to_vec())
                .build(),
            fallback: meter
                .i64_up_down_counter(RATE_LIMIT_FALLBACK)
                .with_description("Clients whose shared rate limiter runs on its fallback")
                .build(),
            pauses: meter
                .u64_counter(RATE_LIMIT_PAUSES)
                .with_description("Shared pauses set after a 429")
                .build(),
            retry_budget: meter
                .f64_gauge(RETRY_BUDGET)
                .with_description("Tokens left in the retry budget")
                .build(),
            auth_exchanges: meter
                .u64_counter(AUTH_EXCHANGES)
                .with_description("Exchanges of the API key for a bearer token")
                .build(),
            directory_fetches: meter
                .u64_counter(DIRECTORY_FETCHES)
                .with_description("GET /locations made by location directories")
                .build(),
            // Reference-counted: cloned for every attempt without allocating.
            server_address: Value::String(opentelemetry::StringValue::from(
                std::sync::Arc::<str>::from(base.host_str().unwrap_or_default()),
            )),
            server_port: base.port_or_known_default().map_or(0, i64::from),
            on_fallback: AtomicBool::new(false),
        }
    }

    /// One HTTP attempt: its answer's status, or the kind of failure.
    pub(crate) fn attempt(
        &self,
        operation: &'static str,
        method: &reqwest::Method,
        retry: bool,
        seconds: f64,
        outcome: Result<reqwest::StatusCode, &'static str>,
    ) {
        if !self.enabled {
            return;
        }
        let method = match *method {
            reqwest::Method::GET => "GET",
            reqwest::Method::POST => "POST",
            reqwest::Method::PUT => "PUT",
            reqwest::Method::PATCH => "PATCH",
            reqwest::Method::DELETE => "DELETE",
            _ => "_OTHER",
        };
        let method = KeyValue::new("http.request.method", method);
        let address = KeyValue::new("server.address", self.server_address.clone());
        let port = KeyValue::new("server.port", self.server_port);
        // On the stack: nothing allocated for a call that succeeds.
        match outcome {
            Ok(status) if status.as_u16() < 400 => {
                let code = KeyValue::new("http.response.status_code", i64::from(status.as_u16()));
                self.http_duration
                    .record(seconds, &[method, address, port, code]);
            }
            Ok(status) => {
                let code = KeyValue::new("http.response.status_code", i64::from(status.as_u16()));
                let error = KeyValue::new("error.type", status.as_str().to_string());
                self.http_duration
                    .record(seconds, &[method, address, port, code, error]);
            }
            Err(kind) => {
                let error = KeyValue::new("error.type", kind);
                self.http_duration
                    .record(seconds, &[method, address, port, error]);
            }
        }
        self.attempts.add(
            1,
            &[
                KeyValue::new("nexhealth.operation", operation),
                KeyValue::new("nexhealth.retry", retry),
            ],
        );
    }

    /// One call, from its first hook to its answer.
    pub(crate) fn call(&self, operation: &'static str, seconds: f64, outcome: &'static str) {
        if !self.enabled {
            return;
        }
        self.operation_duration.record(
            seconds,
            &[
                KeyValue::new("nexhealth.operation", operation),
                KeyValue::new("nexhealth.outcome", outcome),
            ],
        );
    }

    /// An attempt's wait for budget, and whether the limiter is on its
    /// fallback now (counted once per client while it is).
    pub(crate) fn budget(&self, limiter: &'static str, seconds: f64, on_fallback: bool) {
        if !self.enabled {
            return;
        }
        self.budget_wait
            .record(seconds, &[KeyValue::new("nexhealth.limiter", limiter)]);
        if self.on_fallback.swap(on_fallback, Ordering::Relaxed) != on_fallback {
            self.fallback.add(if on_fallback { 1 } else { -1 }, &[]);
        }
    }

    /// A shared pause was set after a 429.
    pub(crate) fn paused(&self) {
        if !self.enabled {
            return;
        }
        self.pauses.add(1, &[]);
    }

    /// The retry budget's tokens now.
    pub(crate) fn retry_tokens(&self, left: f64) {
        if !self.enabled {
            return;
        }
        self.retry_budget.record(left, &[]);
    }

    /// One token exchange: `ok`, `refused` (401/403) or `failed`.
    pub(crate) fn exchange(&self, outcome: &'static str) {
        if !self.enabled {
            return;
        }
        self.auth_exchanges
            .add(1, &[KeyValue::new("nexhealth.outcome", outcome)]);
    }

    /// A location directory called `GET /locations`.
    pub(crate) fn directory_fetch(&self) {
        if !self.enabled {
            return;
        }
        self.directory_fetches.add(1, &[]);
    }
}

impl Drop for Metrics {
    /// A client dropped while on its fallback no longer counts.
    fn drop(&mut self) {
        if self.on_fallback.load(Ordering::Relaxed) {
            self.fallback.add(-1, &[]);
        }
    }
}

/// The `error.type` of an attempt that got no answer.
pub(crate) fn failure_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_builder() {
        "not_sent"
    } else {
        "transport"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instrument_has_its_own_name() {
        assert_eq!(ALL.len(), 10);
        let mut unique = ALL.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
    }
}
