#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The tree shows the layers, each importing only from those before it:
// `generated` (progenitor's client and types, included from the build), `error`
// (the one error type), `transport` (one request on the wire), `api` (the
// client builder, per-call options, the envelope, and the hooks that join the
// generated client to the transport), `domain` (helpers built on the API),
// `webhooks` (pushed events: receiving and verifying), `mock` (test support).
// Each layer's module says what goes there; `tests/tests/layers.rs` checks the
// direction. Modules import from a module's home, never from the re-exports
// below, which are the public face.
mod api;
mod domain;
mod error;
mod generated;
#[cfg(feature = "mock")]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;
mod transport;
pub mod webhooks;

#[cfg(feature = "introspection")]
#[doc(hidden)]
pub use api::introspect;
pub use api::operations;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use domain::fleet;
pub use domain::{changes, directory, onboarding, overview, sync_health};
pub use transport::{headers, metrics, token};

// The crates whose types appear in this crate's public API, re-exported so
// that a service can name them without a dependency of its own.
/// chrono, for the timestamps in [`types`] (`nexhealth_api::chrono::DateTime`).
pub use chrono;
/// futures, for the streams the client answers
/// ([`Client::onboardings_stream`]): `use nexhealth_api::futures::TryStreamExt`.
pub use futures;
/// opentelemetry, for the meter given to [`ClientBuilder::meter`].
pub use opentelemetry;
/// reqwest, for the client given to [`ClientBuilder::reqwest_client`].
pub use reqwest;
/// serde_json, for the free-form values in [`types`].
pub use serde_json;

pub use api::call::{CallExt, WithOptions};
pub use api::client::{
    API_KEY_VAR, BASE_URL_VAR, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEADLINE, DEFAULT_MAX_BUDGET_WAIT, DEFAULT_TIMEOUT, ensure_crypto_provider,
};
pub use api::envelope::{CallFuture, Envelope, EnvelopeMeta, Response};
pub use api::pages::OnboardingQuery;
pub use directory::LocationDirectory;
pub use error::{ApiError, Error};
pub use generated::{Client, builder, types};
pub use transport::auth::Session;
pub use transport::limit::{
    DEFAULT_COOLDOWN, DEFAULT_WINDOW_MARGIN, MAX_MARGIN, MAX_SHARED_PAUSE, RateLimit,
    RateLimitStatus, RateLimiter,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use transport::limit::{PROBE_INTERVAL, RedisRateLimit, SILENT_AFTER};
pub use transport::policy::{CallOptions, RetryPolicy};
pub use transport::retry_budget::RetryBudget;
pub use transport::secret::ApiKey;
pub use transport::state::{ClientState, DEFAULT_MAX_BODY_BYTES};
pub use webhooks::WebhookSecret;
