//! A webhook receiver on loopback, as a production one would be: verifies
//! each delivery with the endpoint's secret, handles each logical event once
//! (across replicas with `--redis`), and prints one JSON line per delivery.
//!
//! ```sh
//! cargo run -p nexhealth-api --example webhook_receiver -- --port 8088 --secret SECRET [--redis redis://127.0.0.1:6379/]
//! ```
//!
//! Answers: 200 for a handled event and for a duplicate of one (also for
//! events it ignores, as NexHealth advises: non-2xx answers are retried for 48
//! hours and then turn the endpoint off); 503 when the event is being handled
//! elsewhere or the store cannot answer, 500 when the handler failed (NexHealth
//! retries both); 401, 413 or 400 for a rejected delivery. Each line is
//! `{"verified", "handled", "duplicate", "event", "outcome", "status", "reason"}`;
//! it never holds the body, the signature or the secret.
//!
//! Limits: 10 s to read a request's headers, 10 s for its body, the receiver's
//! body limit (1 MiB) checked on `Content-Length` and while reading, and at
//! most 256 connections at once. `--fail-first N` makes the handler fail the
//! first N events it runs (to test retries). hyper is the HTTP server here;
//! the library's receiver does not depend on any framework.
//!
//! With an API key (`NEXHEALTH_API_KEY`, and `NEXHEALTH_BASE_URL` if set) it
//! also turns back on, at start and every hour, the webhook endpoints
//! NexHealth turned off after 48 hours of failed deliveries (those whose
//! target is a `--target-url`, or all of the key's), prints one line per check
//! on stderr, and records how many it found inactive in the gauge
//! `nexhealth_webhook_endpoints_inactive` (on `--metrics`). Without a key it
//! does not check.

#[path = "support/metrics.rs"]
mod metrics;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use nexhealth_api::webhooks::handle::Outcome;
use nexhealth_api::webhooks::manage::EndpointFilter;
use nexhealth_api::webhooks::{HandledStore, MemoryStore, Receiver, RedisStore, Scheme};
use serde_json::json;

const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 256;
/// How often the endpoints are checked, after the check at start.
const ENDPOINT_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

struct App<S> {
    receiver: Receiver,
    store: S,
    fail_first: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut port: u16 = 8088;
    let mut secret = std::env::var("NEXHEALTH_WEBHOOK_SECRET").ok();
    let mut max_age = None;
    let mut scheme = Scheme::default();
    let mut redis = None;
    let mut fail_first = 0;
    let mut metrics_addr = None;
    let mut target_urls = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => port = value()?.parse()?,
            "--secret" => secret = Some(value()?),
            "--redis" => redis = Some(value()?),
            "--fail-first" => fail_first = value()?.parse()?,
            "--metrics" => metrics_addr = Some(value()?),
            "--target-url" => target_urls.push(value()?),
            "--max-age-hours" => {
                max_age = Some(Duration::from_secs(
                    value()?.parse::<u64>()?.min(10_000) * 3600,
                ))
            }
            "--scheme" => {
                let name = value()?;
                scheme = Scheme::from_name(&name).with_context(|| {
                    let names: Vec<_> = Scheme::ALL.iter().map(|s| s.name()).collect();
                    format!("unknown scheme {name}: one of {}", names.join(", "))
                })?;
            }
            "--help" | "-h" => {
                println!(
                    "usage: webhook_receiver [--port 8088] --secret SECRET [--redis URL] \
                     [--max-age-hours H] [--scheme NAME] [--fail-first N] [--metrics ADDR] \
                     [--target-url URL]..."
                );
                return Ok(());
            }
            other => bail!("unknown option {other} (see --help)"),
        }
    }
    let secret = secret
        .context("--secret (or NEXHEALTH_WEBHOOK_SECRET) is required: the endpoint's secret_key")?;
    // Prometheus text at http://ADDR/metrics (`nexhealth_webhook_deliveries_total`
    // by outcome), installed before the receiver takes its meter.
    let _metrics = match &metrics_addr {
        Some(addr) => Some(metrics::serve(addr).await?),
        None => None,
    };
    // With a key, and after the metrics provider (the gauge and the client take its meter).
    if std::env::var_os(nexhealth_api::API_KEY_VAR).is_some_and(|key| !key.is_empty()) {
        let filter = if target_urls.is_empty() {
            EndpointFilter::All
        } else {
            EndpointFilter::TargetUrls(target_urls)
        };
        tokio::spawn(keep_endpoints_active(
            nexhealth_api::Client::from_env()?,
            filter,
        ));
    }
    // An empty secret (a variable set but empty) is refused: it would verify forgeries.
    let mut receiver = Receiver::new(secret)?.scheme(scheme);
    if let Some(age) = max_age {
        receiver = receiver.max_age(age)?;
    }
    match redis {
        Some(url) => serve(receiver, RedisStore::new(&url)?, fail_first, port).await,
        None => serve(receiver, MemoryStore::default(), fail_first, port).await,
    }
}

/// At start and every hour: turns back on the endpoints NexHealth turned off
/// and records how many it found. (The SDK also logs each one at WARN through
/// `tracing`, for a service that installs a subscriber; this example has none.)
async fn keep_endpoints_active(client: nexhealth_api::Client, filter: EndpointFilter) {
    let inactive = nexhealth_api::opentelemetry::global::meter("webhook_receiver")
        .u64_gauge("nexhealth.webhook.endpoints.inactive")
        .with_description("Webhook endpoints found turned off by NexHealth at the last check")
        .build();
    let mut every = tokio::time::interval(ENDPOINT_CHECK_INTERVAL);
    loop {
        every.tick().await;
        match client.ensure_webhook_endpoints_active(&filter).await {
            Ok(report) => {
                inactive.record(report.inactive.len() as u64, &[]);
                let failed: Vec<_> = report.failed.iter().map(|f| f.endpoint_id).collect();
                eprintln!(
                    "endpoint check: {} inactive, {} turned back on, still off: {failed:?}",
                    report.inactive.len(),
                    report.reactivated.len()
                );
            }
            Err(error) => eprintln!("endpoint check failed: {error}"),
        }
    }
}

/// Accepts connections on `port` and handles each delivery with `store`.
async fn serve<S: HandledStore + 'static>(
    receiver: Receiver,
    store: S,
    fail_first: u64,
    port: u16,
) -> anyhow::Result<()> {
    let app = Arc::new(App {
        receiver,
        store,
        fail_first: AtomicU64::new(fail_first),
    });
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    loop {
        let permit = Arc::clone(&connections).acquire_owned().await?;
        let (stream, _) = listener.accept().await?;
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&app), request));
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

async fn handle<S: HandledStore>(
    app: Arc<App<S>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |status: u16| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        Ok(response)
    };
    if request.method() != Method::POST {
        return answer(405);
    }
    let limit = app.receiver.body_limit();
    let refuse = |reason: &str, status: u16| {
        print_line(
            &json!({"verified": false, "handled": false, "duplicate": false, "event": null,
                           "outcome": "too_large", "status": status, "reason": reason}),
        );
        answer(status)
    };
    let announced = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit as u64) {
        return refuse("the body is larger than the limit", 413);
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await;
    let Ok(Ok(body)) = read.map(|r| r.map(|b| b.to_bytes())) else {
        return refuse("the body is too large, too slow or was cut off", 413);
    };
    let mut event_name = None;
    let outcome = app
        .receiver
        .handle(&app.store, &parts.headers, &body, |event| {
            event_name = Some(event.envelope().event_name.clone());
            let fail = app
                .fail_first
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            async move {
                if fail {
                    Err("the handler failed (--fail-first)")
                } else {
                    Ok(())
                }
            }
        })
        .await;
    let reason = match &outcome {
        Outcome::Rejected(rejection) => Some(rejection.to_string()),
        Outcome::HandlerFailed(_, error) => Some((*error).to_string()),
        Outcome::StoreUnavailable(unavailable) => Some(unavailable.to_string()),
        _ => None,
    };
    print_line(&json!({
        "verified": outcome.verified(),
        "handled": matches!(outcome, Outcome::Handled(_)),
        "duplicate": matches!(outcome, Outcome::Duplicate(_)),
        "event": event_name,
        "outcome": outcome.kind(),
        "status": outcome.status(),
        "reason": reason,
    }));
    answer(outcome.status())
}

fn print_line(value: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}
