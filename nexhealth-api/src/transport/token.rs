//! How long a bearer token may be used, read from the token itself.
//!
//! The lifetime is `exp - iat` when the token has both claims: both come from
//! NexHealth's clock, so a skewed local clock does not matter. It is then
//! counted on our monotonic clock from the moment we asked for the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Used when the token does not say (production tokens live one hour).
///
/// Value: 55 minutes.
pub const FALLBACK_LIFETIME: Duration = Duration::from_secs(55 * 60);
/// The longest lifetime we trust (sandbox tokens live 24 hours).
///
/// Value: 24 hours.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The most we refresh ahead of expiry.
///
/// Value: 5 minutes.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

#[derive(serde::Deserialize)]
struct Claims {
    exp: Option<i64>,
    iat: Option<i64>,
}

fn claims(token: &str) -> Option<Claims> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The lifetime of `token`. `server_date` is the `Date` header of the answer
/// that carried it, used when the token has `exp` but no `iat`.
pub fn lifetime(token: &str, server_date: Option<SystemTime>) -> Duration {
    let Some(claims) = claims(token) else {
        return FALLBACK_LIFETIME;
    };
    let Some(exp) = claims.exp else {
        return FALLBACK_LIFETIME;
    };
    let issued = claims.iat.or_else(|| {
        server_date
            .unwrap_or_else(SystemTime::now)
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
    });
    match issued.and_then(|iat| exp.checked_sub(iat)) {
        Some(secs) if secs > 0 => Duration::from_secs(secs.unsigned_abs()).min(MAX_LIFETIME),
        _ => FALLBACK_LIFETIME,
    }
}

/// How long before expiry to refresh: a tenth of the lifetime, at most five minutes.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_REFRESH_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.sig",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn lifetime_is_exp_minus_iat_whatever_the_local_clock() {
        assert_eq!(
            lifetime(&jwt(r#"{"iat":1000,"exp":4600}"#), None),
            Duration::from_secs(3600)
        );
        // A server clock far in the past does not shorten it.
        assert_eq!(
            lifetime(&jwt(r#"{"iat":10,"exp":3610}"#), None),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn exp_without_iat_is_measured_from_the_server_date() {
        let date = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            lifetime(&jwt(r#"{"exp":1600}"#), Some(date)),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn unreadable_or_nonsense_tokens_fall_back() {
        assert_eq!(lifetime("not-a-jwt", None), FALLBACK_LIFETIME);
        assert_eq!(lifetime(&jwt("{}"), None), FALLBACK_LIFETIME);
        assert_eq!(
            lifetime(&jwt(r#"{"iat":5000,"exp":4000}"#), None),
            FALLBACK_LIFETIME
        );
        assert_eq!(
            lifetime(&jwt(r#"{"iat":0,"exp":99999999}"#), None),
            MAX_LIFETIME
        );
    }

    #[test]
    fn margin_is_bounded() {
        assert_eq!(
            refresh_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(refresh_margin(MAX_LIFETIME), MAX_REFRESH_MARGIN);
    }
}
