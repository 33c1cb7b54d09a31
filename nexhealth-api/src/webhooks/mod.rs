//! Webhooks: NexHealth's pushed events, for the syncs and onboardings the
//! SDK covers.
//!
//! Managing them is part of the generated client (`get_webhook_endpoints`,
//! `post_webhook_endpoints_id_webhook_subscriptions`, …) plus the helpers in
//! [`manage`] that do what an integrator means. Receiving them is
//! framework-neutral: [`receive()`] (or a [`Receiver`]) takes a delivery's headers, its raw body and
//! the endpoint's secret, verifies the signature ([`signature`]) and answers a
//! typed [`Event`] or a typed [`Rejection`]. [`Receiver::handle`] also runs the
//! service's handler at most once per logical event across a fleet, with a
//! [`HandledStore`] ([`MemoryStore`], or [`RedisStore`] with the `redis`
//! feature); see [`handle`].

pub mod event;
pub mod handle;
mod identity;
pub mod manage;
pub mod receive;
mod secret;
pub mod signature;
pub mod store;

pub use event::{Event, EventEnvelope, SyncStatusEvent};
pub use handle::Outcome;
pub use identity::EventIdentity;
pub use receive::{InvalidMaxAge, InvalidSecret, Receiver, Rejection, receive, receive_within};
pub use secret::WebhookSecret;
pub use signature::Scheme;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::RedisStore;
pub use store::{Abandoned, HandledStore, MemoryStore, StoreUnavailable};
