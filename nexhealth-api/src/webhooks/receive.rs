//! Receiving a delivery, framework-neutral: headers, raw body and secret in;
//! a verified [`Event`] or a typed [`Rejection`] out.
//!
//! The signature is checked on the exact raw bytes before anything is parsed.
//! Answer 2xx for every verified delivery, also for events you ignore:
//! NexHealth retries non-2xx answers for up to 48 hours and then turns the
//! endpoint off. [`Rejection::status`] gives the status for the others.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::event::Event;
use super::secret::WebhookSecret;
use super::signature::{self, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};

/// Why a delivery was refused. Never holds the body, the signature or the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A header the scheme needs is absent (or not text).
    MissingHeader(&'static str),
    /// The `signature` header is not a SHA-256 digest.
    MalformedSignature,
    /// The signature does not match the body, timestamp and secret.
    BadSignature,
    /// The `timestamp` is older than the receiver's maximum age (or later than now by more).
    TooOld {
        /// How old it was.
        age: Duration,
    },
    /// The `timestamp` header is not a time (the signature did verify).
    BadTimestamp,
    /// The verified body is not JSON.
    NotJson,
    /// The verified body is JSON but not an event (no `event_name`).
    NotAnEvent,
}

impl Rejection {
    /// The HTTP status to answer with: 401 for a delivery that cannot be
    /// trusted, 400 for a trusted one that cannot be read.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingHeader(_)
            | Self::MalformedSignature
            | Self::BadSignature
            | Self::TooOld { .. } => 401,
            Self::BadTimestamp | Self::NotJson | Self::NotAnEvent => 400,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "the `{name}` header is missing"),
            Self::MalformedSignature => f.write_str("the signature is not a SHA-256 digest"),
            Self::BadSignature => f.write_str("the signature does not match"),
            Self::TooOld { age } => write!(
                f,
                "the delivery was signed {} s ago, over the maximum age",
                age.as_secs()
            ),
            Self::BadTimestamp => f.write_str("the timestamp is not a time"),
            Self::NotJson => f.write_str("the body is not JSON"),
            Self::NotAnEvent => f.write_str("the body is not an event (no event_name)"),
        }
    }
}

impl std::error::Error for Rejection {}

/// Verifies and decodes deliveries for one endpoint.
///
/// **Maximum age.** Off by default. NexHealth retries a delivery for up to 48
/// hours, and nothing says whether a retry is signed anew or keeps its first
/// `timestamp`: a shorter default could refuse genuine retries, which would
/// then fail until NexHealth turned the endpoint off. To bound replays, set
/// [`max_age`](Self::max_age) to more than 48 hours (49 h, say) and drop
/// duplicates with the events' own times.
#[derive(Debug, Clone)]
pub struct Receiver {
    secret: WebhookSecret,
    max_age: Option<Duration>,
}

impl Receiver {
    /// A receiver for the endpoint whose `secret_key` is `secret`.
    pub fn new(secret: impl Into<WebhookSecret>) -> Self {
        Self {
            secret: secret.into(),
            max_age: None,
        }
    }

    /// Refuses deliveries signed longer ago than `age` (see the type's docs).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Verifies and decodes one delivery, now.
    pub fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Result<Event, Rejection> {
        self.receive_at(headers, body, Utc::now())
    }

    /// [`receive`](Self::receive) as of `now`.
    pub fn receive_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Event, Rejection> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(Rejection::MissingHeader(name))
        };
        let timestamp = header(TIMESTAMP_HEADER)?;
        let signature = header(SIGNATURE_HEADER)?;
        signature::verify(self.secret.expose(), timestamp, signature, body).map_err(
            |e| match e {
                SignatureError::Malformed => Rejection::MalformedSignature,
                SignatureError::Mismatch => Rejection::BadSignature,
            },
        )?;
        if let Some(max_age) = self.max_age {
            let signed_at = parse_time(timestamp).ok_or(Rejection::BadTimestamp)?;
            let age = (now - signed_at).abs().to_std().unwrap_or(Duration::MAX);
            if age > max_age {
                return Err(Rejection::TooOld { age });
            }
        }
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| Rejection::NotJson)?;
        Event::from_json(value).ok_or(Rejection::NotAnEvent)
    }
}

/// Verifies and decodes one delivery for the endpoint whose secret is `secret`
/// (no maximum age; see [`Receiver`]).
pub fn receive(
    headers: &HeaderMap,
    body: &[u8],
    secret: &WebhookSecret,
) -> Result<Event, Rejection> {
    Receiver::new(secret.clone()).receive(headers, body)
}

/// ISO 8601 (RFC 3339), or Unix seconds.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            text.parse::<i64>()
                .ok()
                .and_then(|s| DateTime::from_timestamp(s, 0))
        })
}
