//! The API surface: what turns the generated [`Client`](crate::Client)'s
//! calls into ours.
//!
//! [`client`] builds a client; [`hooks`] joins every generated call to the
//! transport (headers, token, retries, limits, tracing); [`call`] and
//! [`envelope`] make every request builder awaitable with per-call options
//! and unwrap NexHealth's envelope; [`operations`] holds what the spec says
//! about each operation; [`pages`] walks cursor pages. A new endpoint needs
//! nothing here but the spec: the glue is generated.

pub(crate) mod call;
pub(crate) mod client;
pub(crate) mod envelope;
pub(crate) mod hooks;
#[cfg(feature = "introspection")]
pub mod introspect;
pub mod operations;
pub(crate) mod pages;
