//! A webhook receiver on loopback: verifies each delivery with the endpoint's
//! secret and prints one JSON line per delivery on standard output.
//!
//! ```sh
//! cargo run -p nexhealth-api --example webhook_receiver -- --port 8088 --secret SECRET
//! ```
//!
//! It answers 200 for every verified delivery (also for events it ignores, as
//! NexHealth advises: non-2xx answers are retried for 48 hours and then turn the
//! endpoint off), and 401 or 400 for a rejected one. Each line is
//! `{"verified": true|false, "event": …, "resource_type": …, "subdomain": …, "reason": …}`;
//! it never holds the body, the signature or the secret. hyper is the HTTP
//! server here; the library's receiver (`nexhealth_api::webhooks`) does not
//! depend on any framework.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use nexhealth_api::webhooks::{Event, Receiver, Scheme};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut port: u16 = 8088;
    let mut secret = std::env::var("NEXHEALTH_WEBHOOK_SECRET").ok();
    let mut max_age = None;
    let mut scheme = Scheme::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => port = value()?.parse()?,
            "--secret" => secret = Some(value()?),
            "--max-age-hours" => {
                max_age = Some(Duration::from_secs(value()?.parse::<u64>()? * 3600))
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
                    "usage: webhook_receiver [--port 8088] --secret SECRET [--max-age-hours H] [--scheme NAME]"
                );
                return Ok(());
            }
            other => bail!("unknown option {other} (see --help)"),
        }
    }
    let secret = secret
        .context("--secret (or NEXHEALTH_WEBHOOK_SECRET) is required: the endpoint's secret_key")?;
    // An empty secret (a variable set but empty) is refused: it would verify forgeries.
    let mut receiver = Receiver::new(secret)?.scheme(scheme);
    if let Some(age) = max_age {
        receiver = receiver.max_age(age);
    }
    let receiver = Arc::new(receiver);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let receiver = Arc::clone(&receiver);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&receiver), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    receiver: Arc<Receiver>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let answer = |status: StatusCode| {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status;
        Ok(response)
    };
    if request.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED);
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, receiver.body_limit())
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        print_line(
            &json!({"verified": false, "event": null, "resource_type": null, "subdomain": null, "reason": "the body is too large or was cut off"}),
        );
        return answer(StatusCode::PAYLOAD_TOO_LARGE);
    };
    match receiver.receive(&parts.headers, &body) {
        Ok(event) => {
            let envelope = event.envelope();
            print_line(&json!({
                "verified": true,
                "event": envelope.event_name,
                "resource_type": envelope.resource_type,
                "subdomain": envelope.subdomain,
                "reason": if matches!(event, Event::Unknown(_)) { Some("an event this receiver does not handle; acknowledged") } else { None },
            }));
            answer(StatusCode::OK)
        }
        Err(rejection) => {
            print_line(&json!({
                "verified": false,
                "event": null,
                "resource_type": null,
                "subdomain": null,
                "reason": rejection.to_string(),
            }));
            answer(StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST))
        }
    }
}

fn print_line(value: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}
