//! The headers NexHealth expects on every request.

use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

/// The media type that selects NexHealth's v2-style answers, sent as `Accept`
/// on every operation that has no `Nex-Api-Version` (and on the token exchange).
pub const VENDOR_ACCEPT: &str = "application/vnd.Nexhealth+json;version=2";
/// `Accept` on the versioned (v20240412) operations, the onboardings.
///
/// NexHealth's published description says those operations produce
/// `application/json` and select their version with `Nex-Api-Version`; a
/// server that negotiates by that description (Stoplight Prism does) answers
/// the vendor type with 406. We send `application/json` alone rather than both
/// types: the vendor type's `version=2` would contradict the `Nex-Api-Version`
/// sent beside it, and NexHealth does not document which of the two wins.
pub const JSON_ACCEPT: &str = "application/json";
/// The version sent on v20240412 operations when the caller sets none.
pub const DEFAULT_API_VERSION: &str = "v3.0.0";
/// Header name of the v20240412 version.
pub const NEX_API_VERSION: &str = "nex-api-version";

// Built at compile time: these run on every request.
const NEX_API_VERSION_NAME: HeaderName = HeaderName::from_static(NEX_API_VERSION);
const VENDOR_ACCEPT_VALUE: HeaderValue = HeaderValue::from_static(VENDOR_ACCEPT);
const JSON_ACCEPT_VALUE: HeaderValue = HeaderValue::from_static(JSON_ACCEPT);
const DEFAULT_API_VERSION_VALUE: HeaderValue = HeaderValue::from_static(DEFAULT_API_VERSION);
/// The header progenitor adds from `info.version`; NexHealth does not use it.
const PROGENITOR_API_VERSION: HeaderName = HeaderName::from_static("api-version");

/// Replaces progenitor's defaults with what NexHealth expects.
pub(crate) fn apply(request: &mut reqwest::Request, needs_api_version: bool) {
    let headers = request.headers_mut();
    headers.remove(PROGENITOR_API_VERSION);
    if needs_api_version {
        headers.insert(ACCEPT, JSON_ACCEPT_VALUE);
        if !headers.contains_key(NEX_API_VERSION_NAME) {
            headers.insert(NEX_API_VERSION_NAME, DEFAULT_API_VERSION_VALUE);
        }
    } else {
        headers.insert(ACCEPT, VENDOR_ACCEPT_VALUE);
    }
}
