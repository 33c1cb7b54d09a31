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
use super::signature::{self, Scheme, SignatureError, TIMESTAMP_HEADER};

/// The largest body a receiver verifies unless told otherwise (1 MiB; NexHealth's
/// events are a few kilobytes). A larger one is refused before any work.
///
/// Value: 1 MiB (1,048,576 bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How far in the future a `timestamp` may be (clock skew between NexHealth
/// and this host) when a maximum age is set: 5 minutes.
///
/// Value: 300 s (5 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// How long a claim lasts while a handler runs, unless configured.
///
/// Value: 60 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long after its first delivery NexHealth may still send (and sign) a
/// retry of an event: its documented schedule ends at 48 hours.
///
/// Value: 48 hours.
pub const RETRY_HORIZON: Duration = Duration::from_secs(48 * 3_600);

/// Why a delivery was refused. Never holds the body, the signature or the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// A header the scheme needs is absent (or not text).
    MissingHeader(&'static str),
    /// No `signature` value is a SHA-256 digest.
    MalformedSignature,
    /// The signature does not match the body, timestamp and secret.
    BadSignature,
    /// The signature does not verify under the configured scheme but does
    /// under `verifies_under`: the configured scheme is a wrong guess. Still
    /// refused; switch with [`Receiver::scheme`].
    WrongScheme {
        /// The scheme the receiver is configured with.
        configured: Scheme,
        /// The scheme the delivery verifies under.
        verifies_under: Scheme,
    },
    /// The `timestamp` is older than the receiver's maximum age.
    TooOld {
        /// How old it was.
        age: Duration,
    },
    /// The `timestamp` is later than now by more than [`MAX_CLOCK_SKEW`].
    FromTheFuture {
        /// How far ahead it was.
        ahead: Duration,
    },
    /// The `timestamp` header is not a time (and a maximum age is set).
    BadTimestamp,
    /// Under [`Scheme::RawBody`] the `timestamp` header is not signed, so the
    /// age is read from the signed body's `event_time`; this body has none
    /// that is a time (and a maximum age is set).
    NoSignedTime,
    /// The body is larger than the receiver's limit; nothing was computed.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The signature verifies, but the body is not JSON.
    NotJson,
    /// The signature verifies and the body is JSON, but not an event (no
    /// `event_name`).
    NotAnEvent,
    /// The receiver has no usable secret (see [`InvalidSecret`]); nothing verifies.
    NoSecret,
}

impl Rejection {
    /// The HTTP status to answer with: 401 for a delivery that cannot be
    /// trusted, 413 for one too large to check, 400 for a trusted one that
    /// cannot be read.
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingHeader(_)
            | Self::MalformedSignature
            | Self::BadSignature
            | Self::WrongScheme { .. }
            | Self::TooOld { .. }
            | Self::FromTheFuture { .. }
            | Self::BadTimestamp
            | Self::NoSignedTime
            | Self::NoSecret => 401,
            Self::TooLarge { .. } => 413,
            Self::NotJson | Self::NotAnEvent => 400,
        }
    }

    /// A short stable name for logs and metrics (`bad_signature`, `too_old`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedSignature => "malformed_signature",
            Self::BadSignature => "bad_signature",
            Self::WrongScheme { .. } => "wrong_scheme",
            Self::TooOld { .. } => "too_old",
            Self::FromTheFuture { .. } => "from_the_future",
            Self::BadTimestamp => "bad_timestamp",
            Self::NoSignedTime => "no_signed_time",
            Self::TooLarge { .. } => "too_large",
            Self::NotJson => "not_json",
            Self::NotAnEvent => "not_an_event",
            Self::NoSecret => "no_secret",
        }
    }

    /// The same as [`kind`](Self::kind): the stable name every answer enum
    /// of the crate has.
    pub fn as_str(&self) -> &'static str {
        self.kind()
    }
}

/// Serialized as `{"kind": "bad_signature", "status": 401, "reason": "…"}`:
/// what a service's own logs or metrics endpoint needs, nothing of the delivery.
impl serde::Serialize for Rejection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Rejection", 3)?;
        out.serialize_field("kind", self.kind())?;
        out.serialize_field("status", &self.status())?;
        out.serialize_field("reason", &self.to_string())?;
        out.end()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "the `{name}` header is missing"),
            Self::MalformedSignature => f.write_str("the signature is not a SHA-256 digest"),
            Self::BadSignature => f.write_str("the signature does not match"),
            Self::WrongScheme {
                configured,
                verifies_under,
            } => write!(
                f,
                "the signature does not verify under the configured scheme `{configured}` but \
                 does under `{verifies_under}`: configure Receiver::scheme(Scheme::from_name(\"{verifies_under}\"))"
            ),
            Self::TooOld { age } => write!(
                f,
                "the delivery was signed {} s ago, over the maximum age (under the raw-body \
                 scheme: its event_time, the only signed time)",
                age.as_secs()
            ),
            Self::FromTheFuture { ahead } => write!(
                f,
                "the delivery is dated {} s in the future, over the {} s clock skew allowed",
                ahead.as_secs(),
                MAX_CLOCK_SKEW.as_secs()
            ),
            Self::BadTimestamp => f.write_str("the timestamp is not a time"),
            Self::NoSignedTime => f.write_str(
                "under the raw-body scheme the timestamp header is not signed, and the body has \
                 no event_time to date it: its age cannot be checked",
            ),
            Self::TooLarge { limit } => write!(f, "the body is larger than {limit} bytes"),
            Self::NotJson => f.write_str("the body is not JSON"),
            Self::NotAnEvent => f.write_str("the body is not an event (no event_name)"),
            Self::NoSecret => f.write_str("the receiver has no secret: nothing can verify"),
        }
    }
}

impl std::error::Error for Rejection {}

/// An endpoint secret a receiver cannot use: empty or only whitespace. With
/// it, anyone could sign a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSecret;

impl fmt::Display for InvalidSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the webhook secret is empty: use the endpoint's secret_key (anyone could sign \
             deliveries for an empty key)",
        )
    }
}

impl std::error::Error for InvalidSecret {}

/// A maximum age shorter than NexHealth's retry horizon
/// ([`RETRY_HORIZON`], 48 h): NexHealth's own
/// late retries would be refused as too old, and after 48 h of refusals it
/// turns the endpoint off. Choose it anyway with
/// [`Receiver::max_age_below_retry_horizon`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidMaxAge {
    /// The age asked for.
    pub asked: Duration,
}

impl fmt::Display for InvalidMaxAge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a maximum age of {} s is shorter than NexHealth's 48 h of retries: its late retries \
             would be refused and the endpoint turned off; use at least 48 h (49 h is the \
             default), or Receiver::max_age_below_retry_horizon to choose it anyway",
            self.asked.as_secs()
        )
    }
}

impl std::error::Error for InvalidMaxAge {}

/// Verifies and decodes deliveries for one endpoint.
///
/// **Maximum age.** Off by default. NexHealth retries a delivery for up to 48
/// hours, and nothing says whether a retry is signed anew or keeps its first
/// `timestamp`: a shorter default could refuse genuine retries, which would
/// then fail until NexHealth turned the endpoint off. To bound replays, set
/// [`max_age`](Self::max_age) to more than 48 hours (49 h, say) and drop
/// duplicates with the events' own times. With a maximum age, a `timestamp`
/// that is not a time is refused, and one up to [`MAX_CLOCK_SKEW`] in the
/// future is accepted.
///
/// **Under [`Scheme::RawBody`]** only the body is signed: the `timestamp`
/// header could be rewritten by anyone replaying a captured delivery, so it
/// never decides. The age is then read from the body's `event_time` (signed
/// with the body, and the same in every retry of an event); a body without
/// one is refused ([`Rejection::NoSignedTime`]) when a maximum age is set. A
/// RawBody receiver is therefore protected from replays by that age (49 h by
/// default when handling) and, within it, by the store's memory of the
/// event's identity.
///
/// **A wrong scheme is diagnosed.** A delivery that does not verify under
/// the configured [`Scheme`] is checked against the others; when one
/// verifies, it is still refused, as [`Rejection::WrongScheme`] with a
/// warning in the log (never the body or the secret), so that an operator can
/// switch with [`scheme`](Self::scheme) the same day.
#[derive(Debug, Clone)]
pub struct Receiver {
    secret: WebhookSecret,
    pub(super) max_age: Option<Duration>,
    scheme: Scheme,
    max_body_bytes: usize,
    pub(super) lease: Duration,
    /// `nexhealth.webhook.deliveries`, from the global meter provider when
    /// the receiver was made, or from [`meter`](Self::meter).
    pub(super) deliveries: opentelemetry::metrics::Counter<u64>,
}

impl Receiver {
    /// A receiver for the endpoint whose `secret_key` is `secret`; an empty or
    /// whitespace secret is refused.
    pub fn new(secret: impl Into<WebhookSecret>) -> Result<Self, InvalidSecret> {
        let secret = secret.into();
        if secret.expose().trim().is_empty() {
            return Err(InvalidSecret);
        }
        Ok(Self {
            secret,
            max_age: None,
            scheme: Scheme::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            lease: DEFAULT_LEASE,
            deliveries: crate::transport::metrics::webhook_deliveries(
                &crate::transport::metrics::global_meter(),
            ),
        })
    }

    /// Counts [`handle`](Self::handle)'s deliveries
    /// (`nexhealth.webhook.deliveries`, see [`crate::metrics`]) with `meter`
    /// instead of the global provider's meter as it was when the receiver
    /// was made.
    pub fn meter(mut self, meter: &opentelemetry::metrics::Meter) -> Self {
        self.deliveries = crate::transport::metrics::webhook_deliveries(meter);
        self
    }

    /// Refuses deliveries signed longer ago than `age` (see the type's
    /// docs). An age shorter than NexHealth's 48 h retry horizon is refused
    /// ([`InvalidMaxAge`]): NexHealth's own late retries would be refused.
    pub fn max_age(self, age: Duration) -> Result<Self, InvalidMaxAge> {
        if age < RETRY_HORIZON {
            return Err(InvalidMaxAge { asked: age });
        }
        Ok(self.max_age_below_retry_horizon(age))
    }

    /// [`max_age`](Self::max_age) without the check against NexHealth's
    /// retry horizon: the caller accepts that NexHealth's retries older than
    /// `age` are refused (401), and, after 48 h of failures, that NexHealth
    /// turns the endpoint off.
    pub fn max_age_below_retry_horizon(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Verifies under `scheme` instead of the default (see [`Scheme`]).
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// The largest body verified (default [`DEFAULT_MAX_BODY_BYTES`]); a larger
    /// one is refused before any work. Check it on `Content-Length` and while
    /// reading too, so that the body is never read whole.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// How long a claim on an event lasts while its handler runs (default
    /// [`DEFAULT_LEASE`], 60 s; see
    /// [`handle`](Self::handle)). A handler that runs longer may see the
    /// event handled a second time by a retry elsewhere.
    pub fn handling_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The largest body this receiver verifies.
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
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
        self.verify_at(headers, body, now)?;
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| Rejection::NotJson)?;
        Event::from_json(value).ok_or(Rejection::NotAnEvent)
    }

    /// Checks size, signature and age, as of `now`: the delivery can be trusted.
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), Rejection> {
        if body.len() > self.max_body_bytes {
            return Err(Rejection::TooLarge {
                limit: self.max_body_bytes,
            });
        }
        if self.secret.expose().trim().is_empty() {
            return Err(Rejection::NoSecret);
        }
        let timestamp = text(headers, TIMESTAMP_HEADER);
        let outcome = match (self.scheme.uses_timestamp(), timestamp) {
            (true, None) => Err(Rejection::MissingHeader(TIMESTAMP_HEADER)),
            (_, timestamp) => verify_under(
                self.scheme,
                &self.secret,
                headers,
                timestamp.unwrap_or(""),
                body,
            ),
        };
        if let Err(rejection) = outcome {
            return Err(self.diagnose(headers, body, timestamp, rejection));
        }
        if let Some(max_age) = self.max_age {
            // Only a signed time may decide: under RawBody the header is
            // not signed, the body (and its event_time) is.
            let signed_at = if self.scheme.uses_timestamp() {
                timestamp
                    .and_then(parse_time)
                    .ok_or(Rejection::BadTimestamp)?
            } else {
                body_event_time(body).ok_or(Rejection::NoSignedTime)?
            };
            if signed_at > now {
                let ahead = (signed_at - now).to_std().unwrap_or(Duration::MAX);
                if ahead > MAX_CLOCK_SKEW {
                    return Err(Rejection::FromTheFuture { ahead });
                }
            } else {
                let age = (now - signed_at).to_std().unwrap_or(Duration::MAX);
                if age > max_age {
                    return Err(Rejection::TooOld { age });
                }
            }
        }
        Ok(())
    }

    /// A delivery refused under the configured scheme: does it verify under another?
    fn diagnose(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        timestamp: Option<&str>,
        rejection: Rejection,
    ) -> Rejection {
        let refused_signature = matches!(
            rejection,
            Rejection::BadSignature | Rejection::MalformedSignature | Rejection::MissingHeader(_)
        );
        if !refused_signature {
            return rejection;
        }
        let verifies_under = Scheme::ALL.into_iter().find(|&other| {
            other != self.scheme
                && (!other.uses_timestamp() || timestamp.is_some())
                && verify_under(other, &self.secret, headers, timestamp.unwrap_or(""), body).is_ok()
        });
        match verifies_under {
            Some(verifies_under) => {
                tracing::warn!(
                    configured = self.scheme.name(),
                    verifies_under = verifies_under.name(),
                    "webhook delivery refused: it does not verify under the configured signing \
                     scheme but does under another; configure Receiver::scheme if NexHealth signs that way"
                );
                Rejection::WrongScheme {
                    configured: self.scheme,
                    verifies_under,
                }
            }
            None => rejection,
        }
    }
}

/// A header's value as text, if present and text.
fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies every signature `scheme` reads (all values of its headers).
fn verify_under(
    scheme: Scheme,
    secret: &WebhookSecret,
    headers: &HeaderMap,
    timestamp: &str,
    body: &[u8],
) -> Result<(), Rejection> {
    let values: Vec<&str> = scheme
        .signature_headers()
        .iter()
        .flat_map(|name| headers.get_all(*name).iter())
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return Err(Rejection::MissingHeader(scheme.signature_headers()[0]));
    }
    signature::verify_any(scheme, secret.expose(), timestamp, values, body).map_err(|e| match e {
        SignatureError::Malformed => Rejection::MalformedSignature,
        SignatureError::Mismatch => Rejection::BadSignature,
    })
}

/// Verifies and decodes one delivery for the endpoint whose secret is `secret`
/// (no maximum age; see [`Receiver`]). An empty secret verifies nothing.
pub fn receive(
    headers: &HeaderMap,
    body: &[u8],
    secret: &WebhookSecret,
) -> Result<Event, Rejection> {
    receive_within(headers, body, secret, None)
}

/// [`receive`] with a maximum age (see [`Receiver::max_age`]).
pub fn receive_within(
    headers: &HeaderMap,
    body: &[u8],
    secret: &WebhookSecret,
    max_age: Option<Duration>,
) -> Result<Event, Rejection> {
    let receiver = Receiver::new(secret.clone()).map_err(|_| Rejection::NoSecret)?;
    match max_age {
        // A plain receive stores nothing: any age the caller chose applies.
        Some(age) => receiver.max_age_below_retry_horizon(age),
        None => receiver,
    }
    .receive(headers, body)
}

/// The `event_time` of a (verified) body, if it is a time.
fn body_event_time(body: &[u8]) -> Option<DateTime<Utc>> {
    #[derive(serde::Deserialize)]
    struct Dated<'a> {
        #[serde(borrow)]
        event_time: Option<std::borrow::Cow<'a, str>>,
    }
    let dated: Dated<'_> = serde_json::from_slice(body).ok()?;
    parse_time(dated.event_time.as_deref()?)
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
