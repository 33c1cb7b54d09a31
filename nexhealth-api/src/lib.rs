#![doc = include_str!("../../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod call;
mod client;
mod context;
pub mod directory;
mod envelope;
mod error;
mod generated;
pub mod headers;
mod hooks;
#[cfg(feature = "introspection")]
#[doc(hidden)]
pub mod introspect;
pub mod onboarding;
pub mod operations;
mod pages;
mod policy;
mod retry;
mod secret;
mod state;
pub mod sync_health;
pub mod token;

#[cfg(feature = "mock")]
pub mod mock;

pub use auth::Session;
pub use call::{CallExt, WithOptions};
pub use client::{
    API_KEY_VAR, BASE_URL_VAR, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT, ensure_crypto_provider,
};
pub use directory::LocationDirectory;
pub use envelope::{CallFuture, Envelope, EnvelopeMeta, Response};
pub use error::{ApiError, Error};
pub use generated::{Client, builder, types};
pub use pages::OnboardingQuery;
pub use policy::{CallOptions, RateLimit, RetryPolicy};
pub use secret::ApiKey;
pub use state::{ClientState, DEFAULT_MAX_BODY_BYTES};
