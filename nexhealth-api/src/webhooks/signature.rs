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
//! variants). Several signatures may come at once (repeated headers, or a
//! list in one header, as when a secret is rotated): any valid one verifies,
//! an empty one never does. Receivers that sign the raw body under
//! `X-Nexhealth-Signature` contradict both sources; their scheme is kept as
//! [`Scheme::RawBody`] only to diagnose a wrong guess (and to switch to it by
//! configuration, should NexHealth's deliveries verify only under it).
//! The comparison runs in constant time (`hmac::Mac::verify_slice`), and the
//! MAC is computed as the body streams by, with no copy of it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "signature";
/// The header that carries the signing time.
pub const TIMESTAMP_HEADER: &str = "timestamp";
/// The header some public receivers read a raw-body signature from.
pub const ALTERNATIVE_SIGNATURE_HEADER: &str = "x-nexhealth-signature";

/// How a delivery may be signed. [`Scheme::TimestampBase64Body`] is what the
/// reference describes and the default; the others are the alternatives that
/// public receivers use, kept so that a wrong guess is diagnosed from the first
/// delivery and fixed with configuration
/// ([`Receiver::scheme`](crate::webhooks::Receiver::scheme)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Scheme {
    /// HMAC-SHA256 over `"{timestamp}.{base64(raw body)}"`, in the `signature`
    /// header, with the time in the `timestamp` header.
    #[default]
    TimestampBase64Body,
    /// HMAC-SHA256 over the raw body, in the `X-NexHealth-Signature` header
    /// (or `signature`), no timestamp.
    RawBody,
    /// HMAC-SHA256 over `"{timestamp}.{raw body}"`, in the `signature` header.
    TimestampRawBody,
}

impl Scheme {
    /// Every scheme, the default first.
    ///
    /// Value: the three schemes, `TimestampBase64Body` first.
    pub const ALL: [Scheme; 3] = [
        Scheme::TimestampBase64Body,
        Scheme::RawBody,
        Scheme::TimestampRawBody,
    ];

    /// The same as [`name`](Self::name): the stable name every answer enum
    /// of the crate has.
    pub fn as_str(self) -> &'static str {
        self.name()
    }

    /// A stable name for logs and configuration: `timestamp-base64-body`,
    /// `raw-body`, `timestamp-raw-body`.
    pub fn name(self) -> &'static str {
        match self {
            Self::TimestampBase64Body => "timestamp-base64-body",
            Self::RawBody => "raw-body",
            Self::TimestampRawBody => "timestamp-raw-body",
        }
    }

    /// The scheme with this [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name.trim())
    }

    /// Whether the signed message includes the `timestamp` header.
    pub fn uses_timestamp(self) -> bool {
        !matches!(self, Self::RawBody)
    }

    /// The headers the signature is read from, in order.
    pub fn signature_headers(self) -> &'static [&'static str] {
        match self {
            Self::RawBody => &[ALTERNATIVE_SIGNATURE_HEADER, SIGNATURE_HEADER],
            _ => &[SIGNATURE_HEADER],
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No value is a hex or base64 SHA-256 digest (an empty one never is).
    Malformed,
    /// Well-formed digests, none of this body, timestamp and secret.
    Mismatch,
}

/// The MAC of a delivery, computed over the body as it streams by: the
/// base64 form is encoded a block at a time into a buffer on the stack, so
/// the body is never copied, whatever its size.
fn mac(scheme: Scheme, secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts a key of any length: this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    if scheme.uses_timestamp() {
        mac.update(timestamp.as_bytes());
        mac.update(b".");
    }
    match scheme {
        Scheme::TimestampBase64Body => {
            // 3,072 input bytes make exactly 4,096 base64 bytes, no padding
            // until the last block.
            let mut encoded = [0u8; 4_096];
            for block in body.chunks(3_072) {
                let n = STANDARD
                    .encode_slice(block, &mut encoded)
                    .unwrap_or_else(|_| unreachable!("4,096 bytes hold 3,072 encoded"));
                mac.update(&encoded[..n]);
            }
        }
        Scheme::RawBody | Scheme::TimestampRawBody => mac.update(body),
    }
    mac
}

/// The `signature` header NexHealth would send for `body` signed at
/// `timestamp` with `secret` (lower-case hex). For tests of a receiver.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    sign_with(Scheme::default(), secret, timestamp, body)
}

/// [`sign`] under another scheme (`timestamp` is ignored by [`Scheme::RawBody`]).
pub fn sign_with(scheme: Scheme, secret: &str, timestamp: &str, body: &[u8]) -> String {
    hex::encode(mac(scheme, secret, timestamp, body).finalize().into_bytes())
}

/// The digests a header value carries: one, or a list separated by commas or
/// spaces (key rotation), each hex or base64, with or without a `sha256=` or
/// `v1=` prefix. Empty items are skipped; malformed ones are not digests.
fn digests<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<[u8; 32]> {
    values
        .into_iter()
        .flat_map(|v| v.split([',', ' ', '\t']))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .filter_map(|item| {
            let item = item
                .strip_prefix("sha256=")
                .or_else(|| item.strip_prefix("v1="))
                .unwrap_or(item);
            let bytes = if item.len() == 64 {
                hex::decode(item).ok()?
            } else {
                STANDARD.decode(item).ok()?
            };
            <[u8; 32]>::try_from(bytes.as_slice()).ok()
        })
        .collect()
}

/// Checks one `signature` header value over the exact raw `body` and the
/// `timestamp` header's value, under the default scheme, in constant time.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Result<(), SignatureError> {
    verify_any(Scheme::default(), secret, timestamp, [signature], body)
}

/// Checks every signature the header values carry (repeated headers, or a
/// list in one): `Ok` when any one is this body's, under `scheme`. Each
/// comparison covers the whole digest in constant time.
pub fn verify_any<'a>(
    scheme: Scheme,
    secret: &str,
    timestamp: &str,
    signatures: impl IntoIterator<Item = &'a str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let candidates = digests(signatures);
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mac = mac(scheme, secret, timestamp, body);
    let mut matched = false;
    for candidate in &candidates {
        // Every candidate is compared, matched or not: the time does not say which.
        matched |= mac.clone().verify_slice(candidate).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
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

    #[test]
    fn streaming_base64_matches_encoding_the_whole_body() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for len in [0, 1, 2, 3, 3_071, 3_072, 3_073, 6_144, 10_000] {
            let body = &body[..len];
            let mut whole = <Hmac<Sha256> as Mac>::new_from_slice(b"k").unwrap();
            whole.update(b"t.");
            whole.update(STANDARD.encode(body).as_bytes());
            assert_eq!(
                sign("k", "t", body),
                hex::encode(whole.finalize().into_bytes()),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn any_one_of_several_signatures_verifies_and_never_an_empty_one() {
        let good = sign("s3cret", "t", b"{}");
        let other = sign("old-secret", "t", b"{}");
        let list = format!("{other}, {good}");
        assert_eq!(
            verify_any(Scheme::default(), "s3cret", "t", [list.as_str()], b"{}"),
            Ok(())
        );
        assert_eq!(
            verify_any(
                Scheme::default(),
                "s3cret",
                "t",
                [other.as_str(), good.as_str()],
                b"{}"
            ),
            Ok(())
        );
        for empty in ["", " ", ",", "sha256=", "v1="] {
            assert_eq!(
                verify_any(Scheme::default(), "s3cret", "t", [empty], b"{}"),
                Err(SignatureError::Malformed),
                "{empty:?}"
            );
        }
        assert_eq!(
            verify_any(
                Scheme::default(),
                "s3cret",
                "t",
                [other.as_str(), ""],
                b"{}"
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_digest_right_only_in_its_first_half_does_not_verify() {
        let good = hex::decode(sign("s3cret", "t", b"{}")).unwrap();
        let mut half = good.clone();
        for byte in &mut half[16..] {
            *byte ^= 0xff;
        }
        let mut last = good;
        last[31] ^= 1;
        for digest in [half, last] {
            assert_eq!(
                verify("s3cret", "t", &hex::encode(digest), b"{}"),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn each_scheme_signs_differently_and_verifies_only_itself() {
        for scheme in Scheme::ALL {
            let signature = sign_with(scheme, "k", "t", b"{\"a\":1}");
            assert_eq!(Scheme::from_name(scheme.name()), Some(scheme));
            for other in Scheme::ALL {
                let outcome = verify_any(other, "k", "t", [signature.as_str()], b"{\"a\":1}");
                assert_eq!(outcome.is_ok(), other == scheme, "{scheme} under {other}");
            }
        }
    }
}
