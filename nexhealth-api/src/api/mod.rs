//! The API surface: the generated [`Client`](crate::Client) and what turns its
//! calls into ours.
//!
//! [`generated`] includes progenitor's output; [`client`] builds a client;
//! [`call`] and [`envelope`] make every request builder awaitable with
//! per-call options and unwrap NexHealth's envelope; [`error`] is the one
//! error type; [`operations`] holds what the spec says about each operation;
//! [`pages`] walks cursor pages. A new endpoint needs nothing here but the
//! spec: the glue is generated.

pub(crate) mod call;
pub(crate) mod client;
pub(crate) mod envelope;
pub(crate) mod error;
pub(crate) mod generated;
#[cfg(feature = "introspection")]
pub mod introspect;
pub mod operations;
pub(crate) mod pages;
