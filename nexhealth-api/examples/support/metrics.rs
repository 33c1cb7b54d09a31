//! `--metrics ADDR` for the examples: an OpenTelemetry SDK meter provider
//! with the Prometheus exporter, installed as the global provider (so every
//! client built afterwards records into it), and `GET /metrics` in
//! Prometheus's text format on ADDR. A service does the same with its own
//! HTTP server.

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};

/// The metrics endpoint: dropping it does not stop the server (it runs until
/// the process ends).
pub struct Metrics {
    /// The provider, kept so that it is not shut down early.
    _provider: SdkMeterProvider,
}

/// Installs the provider and serves `/metrics` on `addr` (call it before
/// building clients).
pub async fn serve(addr: &str) -> anyhow::Result<Metrics> {
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .context("the Prometheus exporter")?;
    let provider = SdkMeterProvider::builder().with_reader(exporter).build();
    nexhealth_api::opentelemetry::global::set_meter_provider(provider.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics {addr}: cannot listen there"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let registry = registry.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&registry, &request)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    eprintln!("metrics: http://{bound}/metrics");
    Ok(Metrics {
        _provider: provider,
    })
}

fn answer(registry: &prometheus::Registry, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if encoder.encode(&registry.gather(), &mut body).is_err() {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return response;
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    if let Ok(kind) = encoder.format_type().parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, kind);
    }
    response
}
