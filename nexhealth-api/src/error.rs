//! The one error type of the SDK.
//!
//! Nothing here carries a request or response body, a query string, the API key
//! or the token: only the operation id, the status, the field that failed to
//! decode and the messages NexHealth put in its error envelope.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::generated::types::{ErrorEnvelope, Messages};

/// What NexHealth said when it refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    operation: &'static str,
    status: StatusCode,
    messages: Vec<String>,
    retry_after: Option<Duration>,
}

impl ApiError {
    pub(crate) fn new(
        operation: &'static str,
        status: StatusCode,
        envelope: Option<&ErrorEnvelope>,
        headers: Option<&HeaderMap>,
    ) -> Self {
        let messages = envelope
            .map(|e| collect_messages(e.description.as_ref(), e.error.as_deref()))
            .unwrap_or_default();
        let retry_after = headers.and_then(retry_after);
        Self {
            operation,
            status,
            messages,
            retry_after,
        }
    }

    /// The same error with the `Retry-After` its answer carried, when the
    /// headers were read elsewhere (an answer without an error envelope).
    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        if self.retry_after.is_none() {
            self.retry_after = retry_after;
        }
        self
    }

    /// The operation that failed (the spec's operationId).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The HTTP status NexHealth answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// NexHealth's own messages (`error` then `description`), possibly empty.
    pub fn messages(&self) -> &[String] {
        &self.messages
    }

    /// The wait NexHealth asked for in `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: HTTP {}", self.operation, self.status.as_u16())?;
        if !self.messages.is_empty() {
            write!(f, ": {}", self.messages.join("; "))?;
        }
        Ok(())
    }
}

/// Flattens an envelope's `error` list and `description` into one list.
pub(crate) fn collect_messages(
    description: Option<&Messages>,
    error: Option<&[String]>,
) -> Vec<String> {
    let mut out: Vec<String> = error.unwrap_or_default().to_vec();
    match description {
        Some(Messages::String(s)) => out.push(s.clone()),
        Some(Messages::Array(items)) => out.extend(items.iter().cloned()),
        None => {}
    }
    out.retain(|m| !m.trim().is_empty());
    out
}

/// The wait asked for in a `Retry-After` header, counted from now: delay
/// seconds, or an HTTP-date (see [`retry_after_at`]).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, chrono::Utc::now())
}

/// The wait asked for in a `Retry-After` header as seen at `now`: either
/// delay seconds (anything up to 2^64 - 1), or an HTTP-date (RFC 9110
/// section 10.2.3: the IMF-fixdate `Wed, 21 Oct 2099 07:28:00 GMT`, or the
/// obsolete RFC 850 and asctime forms), answered as the time from `now` to
/// that date, zero for a date already past. `None` for anything else.
///
/// Never panics: a date is at most year 9999 and the difference is taken in
/// chrono's range, so the longest answer is some 8,000 years.
pub(crate) fn retry_after_at(
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = http_date(value)?;
    // A negative difference (a date in the past) does not convert: zero.
    Some(
        date.signed_duration_since(now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// Parses the three forms of an HTTP-date as UTC.
fn http_date(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    // IMF-fixdate (RFC 2822 accepts `GMT` and the fixed layout).
    if let Ok(date) = DateTime::parse_from_rfc2822(value) {
        return Some(date.with_timezone(&Utc));
    }
    // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
    // (`Sun Nov  6 08:49:37 1994`), both UTC.
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|naive| naive.and_utc())
}

/// Everything that can go wrong in a call. Match on it, or use the predicates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request never got an answer: DNS, connect, TLS, or a dropped connection.
    #[error("{operation}: could not reach NexHealth: {source}")]
    Transport {
        /// The operation that failed.
        operation: &'static str,
        /// The underlying error, with its URL removed.
        #[source]
        source: reqwest::Error,
    },
    /// No answer within the connect or request timeout, or the call's
    /// deadline passed (see [`ClientBuilder::deadline`](crate::ClientBuilder::deadline)).
    #[error("{operation}: timed out")]
    Timeout {
        /// The operation that failed.
        operation: &'static str,
    },
    /// The client's rate limiter has no budget for this call before its
    /// deadline or the client's
    /// [`max_budget_wait`](crate::ClientBuilder::max_budget_wait). Nothing was
    /// sent and no budget was taken. [`is_rate_limited`](Self::is_rate_limited)
    /// holds for it, and [`retry_after`](Self::retry_after) says when budget
    /// frees up: a service can answer its own caller 503 with `Retry-After`.
    #[error("{operation}: no rate-limit budget before the deadline (free in {} ms)", available_in.as_millis())]
    BudgetUnavailable {
        /// The operation that was not sent.
        operation: &'static str,
        /// When budget is expected to be free, from the moment of the error.
        available_in: Duration,
    },
    /// 401: the API key or token was not accepted (after one re-authentication).
    #[error("unauthorized: {0}")]
    Unauthorized(ApiError),
    /// 403: the key is valid but cannot reach that subdomain or location.
    #[error("forbidden: {0}")]
    Forbidden(ApiError),
    /// 404: no such resource (also a location id outside the institution).
    #[error("not found: {0}")]
    NotFound(ApiError),
    /// 429: over NexHealth's rate limit for this key.
    #[error("rate limited: {0}")]
    RateLimited(ApiError),
    /// 5xx: NexHealth (or a proxy in front of it) failed.
    #[error("server error: {0}")]
    Server(ApiError),
    /// 400: NexHealth rejected the request as malformed.
    #[error("bad request: {0}")]
    BadRequest(ApiError),
    /// A status the spec does not document for this operation.
    #[error("unexpected status: {0}")]
    UnexpectedStatus(ApiError),
    /// The SDK refused to send the request (empty key or subdomain, bad base URL, …).
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong with the input.
        message: String,
    },
    /// The location directory knows no such location for this key.
    #[error("location {location_id} is not in the directory of locations this key can reach")]
    UnknownLocation {
        /// The location asked for.
        location_id: i32,
    },
    /// The location directory knows the location, in another institution.
    #[error("location {location_id} is not in institution `{subdomain}`")]
    LocationNotInInstitution {
        /// The location asked for.
        location_id: i32,
        /// The institution it was asked in.
        subdomain: String,
    },
    /// The location directory shows the key cannot reach this subdomain.
    #[error("this API key cannot reach institution `{subdomain}`")]
    SubdomainNotAccessible {
        /// The subdomain asked for.
        subdomain: String,
    },
    /// A success answer that does not match the spec.
    #[error("{operation}: invalid response{}: {reason}", field.as_deref().map(|f| format!(" at `{f}`")).unwrap_or_default())]
    InvalidResponse {
        /// The operation that failed.
        operation: &'static str,
        /// The HTTP status of the answer, when known.
        status: Option<u16>,
        /// The path of the field that failed to decode, e.g. `data[0].locations[2].id`.
        field: Option<String>,
        /// Why it failed, without the offending value.
        reason: String,
    },
}

impl Error {
    /// A short stable name of the error's kind, for logs and metrics:
    /// `transport`, `timeout`, `budget_unavailable`, `unauthorized`,
    /// `forbidden`, `not_found`, `rate_limited`, `server`, `bad_request`,
    /// `unexpected_status`, `invalid_request`, `unknown_location`,
    /// `location_not_in_institution`, `subdomain_not_accessible` or
    /// `invalid_response`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transport { .. } => "transport",
            Self::Timeout { .. } => "timeout",
            Self::BudgetUnavailable { .. } => "budget_unavailable",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::RateLimited(_) => "rate_limited",
            Self::Server(_) => "server",
            Self::BadRequest(_) => "bad_request",
            Self::UnexpectedStatus(_) => "unexpected_status",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::UnknownLocation { .. } => "unknown_location",
            Self::LocationNotInInstitution { .. } => "location_not_in_institution",
            Self::SubdomainNotAccessible { .. } => "subdomain_not_accessible",
            Self::InvalidResponse { .. } => "invalid_response",
        }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
        }
    }

    /// A parameter the generated builder could not take, in words that name
    /// the parameter and the values it accepts. progenitor reports these as
    /// "conversion to `T` for NAME failed" and "NAME was not initialized".
    pub(crate) fn invalid_parameter(message: String) -> Self {
        if let Some(rest) = message.strip_prefix("conversion to `")
            && let Some((target, tail)) = rest.split_once("` for ")
            && let Some(name) = tail.strip_suffix(" failed")
        {
            let target = target.replace(' ', "");
            let target = target.trim_start_matches("::");
            let accepted = match target.rsplit("::").next().unwrap_or(target) {
                "NonZeroU32" => "a whole number from 1 to 4294967295".to_string(),
                "NonZeroU64" => "a whole number from 1 to 18446744073709551615".to_string(),
                "i32" => format!("a whole number from {} to {}", i32::MIN, i32::MAX),
                "i64" => format!("a whole number from {} to {}", i64::MIN, i64::MAX),
                other => format!("a value of type `{other}`"),
            };
            return Self::invalid_request(format!("`{name}` must be {accepted}"));
        }
        if let Some(name) = message.strip_suffix(" was not initialized") {
            return Self::invalid_request(format!("`{name}` is required and was not set"));
        }
        Self::invalid_request(message)
    }

    pub(crate) fn from_reqwest(operation: &'static str, error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout { operation }
        } else {
            Self::Transport {
                operation,
                source: error.without_url(),
            }
        }
    }

    /// Classifies an error status.
    pub(crate) fn from_status(api: ApiError) -> Self {
        match api.status.as_u16() {
            400 => Self::BadRequest(api),
            401 => Self::Unauthorized(api),
            403 => Self::Forbidden(api),
            404 => Self::NotFound(api),
            429 => Self::RateLimited(api),
            500..=599 => Self::Server(api),
            _ => Self::UnexpectedStatus(api),
        }
    }

    /// The NexHealth answer behind this error, for status errors.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Unauthorized(e)
            | Self::Forbidden(e)
            | Self::NotFound(e)
            | Self::RateLimited(e)
            | Self::Server(e)
            | Self::BadRequest(e)
            | Self::UnexpectedStatus(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status, when NexHealth answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::InvalidResponse { status, .. } => {
                status.and_then(|s| StatusCode::from_u16(s).ok())
            }
            other => other.api_error().map(ApiError::status),
        }
    }

    /// NexHealth's messages, when it sent any.
    pub fn messages(&self) -> &[String] {
        self.api_error().map(ApiError::messages).unwrap_or_default()
    }

    /// The operation that failed, when known.
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            Self::Transport { operation, .. }
            | Self::Timeout { operation }
            | Self::BudgetUnavailable { operation, .. }
            | Self::InvalidResponse { operation, .. } => Some(operation),
            other => other.api_error().map(ApiError::operation),
        }
    }

    /// True for transport failures (no answer at all, timeouts excluded).
    pub fn is_transport(&self) -> bool {
        matches!(self, Self::Transport { .. })
    }
    /// True when the call timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
    /// True for 401.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Unauthorized(_))
    }
    /// True for 403: the key cannot reach that subdomain or location.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Forbidden(_))
    }
    /// True for 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
    /// True for 429, and when the client's own limiter had no budget in
    /// time ([`is_budget_unavailable`](Self::is_budget_unavailable)): either
    /// way, this key is out of budget for now; [`retry_after`](Self::retry_after)
    /// says for how long when it is known.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::RateLimited(_) | Self::BudgetUnavailable { .. })
    }
    /// True when the client's rate limiter had no budget before the call's
    /// deadline: the call was not sent.
    pub fn is_budget_unavailable(&self) -> bool {
        matches!(self, Self::BudgetUnavailable { .. })
    }
    /// How long to wait before trying again, when known: NexHealth's
    /// `Retry-After` (as sent, unbounded: bound it before sleeping on it), or
    /// when the client's own limiter expects budget to be free.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::BudgetUnavailable { available_in, .. } => Some(*available_in),
            other => other.api_error().and_then(ApiError::retry_after),
        }
    }
    /// True for 5xx.
    pub fn is_server(&self) -> bool {
        matches!(self, Self::Server(_))
    }
    /// True for NexHealth's 400.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, Self::BadRequest(_))
    }
    /// True when the SDK refused to send the request.
    pub fn is_invalid_request(&self) -> bool {
        matches!(self, Self::InvalidRequest { .. })
    }
    /// True when the location directory answered, without a call, that a
    /// location is unknown, in another institution, or that a subdomain is
    /// out of reach.
    pub fn is_directory_miss(&self) -> bool {
        matches!(
            self,
            Self::UnknownLocation { .. }
                | Self::LocationNotInInstitution { .. }
                | Self::SubdomainNotAccessible { .. }
        )
    }
    /// True when an answer did not match the spec.
    pub fn is_invalid_response(&self) -> bool {
        matches!(self, Self::InvalidResponse { .. })
    }
}

/// Decodes `bytes` as `T`; on failure, an invalid response naming the field
/// that failed, without quoting its value.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    operation: &'static str,
    status: Option<u16>,
    bytes: &[u8],
) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        Error::InvalidResponse {
            operation,
            status,
            field: (path != ".").then_some(path),
            reason: describe_json_error(e.inner()),
        }
    })
}

/// Describes a JSON decoding failure without quoting the offending value.
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let place = format!("line {} column {}", e.line(), e.column());
    match e.classify() {
        Category::Eof => format!("the body ended early ({place})"),
        Category::Syntax => format!("the body is not valid JSON ({place})"),
        Category::Io => "the body could not be read".to_string(),
        Category::Data => {
            let text = e.to_string();
            let text = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(m, _)| m);
            if let Some(field) = text.strip_prefix("missing field ") {
                format!("missing field {field}")
            } else if let Some((_, expected)) = text.split_once("expected ") {
                format!("wrong type or value, expected {expected}")
            } else {
                "value does not match the spec".to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};
    use reqwest::header::HeaderValue;

    fn at(value: &str, now: DateTime<Utc>) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        retry_after_at(&headers, now)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2099, 10, 21, 7, 27, 0).unwrap()
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(at("0", now()), Some(Duration::ZERO));
        assert_eq!(at(" 120 ", now()), Some(Duration::from_secs(120)));
        assert_eq!(
            at("18446744073709551615", now()),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(retry_after_at(&HeaderMap::new(), now()), None);
        for garbage in ["", "-1", "1.5", "soon", "Wed, 32 Oct 2099 07:28:00 GMT"] {
            assert_eq!(at(garbage, now()), None, "{garbage:?}");
        }
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_from_now() {
        // IMF-fixdate, the form servers send: one minute after `now`.
        assert_eq!(
            at("Wed, 21 Oct 2099 07:28:00 GMT", now()),
            Some(Duration::from_secs(60))
        );
        // The obsolete RFC 850 and asctime forms.
        let in_1994 = Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 0).unwrap();
        assert_eq!(
            at("Sunday, 06-Nov-94 08:49:37 GMT", in_1994),
            Some(Duration::from_secs(37))
        );
        assert_eq!(
            at("Sun Nov  6 08:49:37 1994", in_1994),
            Some(Duration::from_secs(37))
        );
        // Sub-second precision of `now` is kept.
        let late = now() + chrono::TimeDelta::milliseconds(59_750);
        assert_eq!(
            at("Wed, 21 Oct 2099 07:28:00 GMT", late),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn retry_after_dates_in_the_past_or_absurd_never_panic() {
        // Past (and exactly now): no wait.
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            at("Wed, 21 Oct 2099 07:27:00 GMT", now()),
            Some(Duration::ZERO)
        );
        // Year 9999 from the earliest and latest `now` chrono holds.
        let far = at("Fri, 31 Dec 9999 23:59:59 GMT", DateTime::<Utc>::MIN_UTC).unwrap();
        assert!(far > Duration::from_secs(262_000 * 365 * 86_400), "{far:?}");
        assert_eq!(
            at("Fri, 31 Dec 9999 23:59:59 GMT", DateTime::<Utc>::MAX_UTC),
            Some(Duration::ZERO)
        );
        let ahead = at("Fri, 31 Dec 9999 23:59:59 GMT", now()).unwrap();
        assert!(
            ahead > Duration::from_secs(7_900 * 365 * 86_400),
            "{ahead:?}"
        );
        // Years before 1900 or negative, and an offset other than GMT.
        assert!(at("Mon, 01 Jan 0001 00:00:00 GMT", now()) == Some(Duration::ZERO));
        assert_eq!(at("Wed, 21 Oct -2099 07:28:00 GMT", now()), None);
        assert_eq!(
            at("Wed, 21 Oct 2099 09:28:00 +0200", now()),
            Some(Duration::from_secs(60))
        );
        // The live parse sees a date far ahead as far ahead.
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2099 07:28:00 GMT"),
        );
        assert!(retry_after(&headers).unwrap() > Duration::from_secs(60 * 365 * 86_400));
    }
}
