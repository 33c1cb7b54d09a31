//! The headers NexHealth expects on every request.

use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

/// The media type that selects NexHealth's v2-style answers.
pub const VENDOR_ACCEPT: &str = "application/vnd.Nexhealth+json;version=2";
/// The version sent on v20240412 operations when the caller sets none.
pub const DEFAULT_API_VERSION: &str = "v3.0.0";
/// Header name of the v20240412 version.
pub const NEX_API_VERSION: &str = "nex-api-version";

// Built at compile time: these run on every request.
const NEX_API_VERSION_NAME: HeaderName = HeaderName::from_static(NEX_API_VERSION);
const VENDOR_ACCEPT_VALUE: HeaderValue = HeaderValue::from_static(VENDOR_ACCEPT);
const DEFAULT_API_VERSION_VALUE: HeaderValue = HeaderValue::from_static(DEFAULT_API_VERSION);
/// The header progenitor adds from `info.version`; NexHealth does not use it.
const PROGENITOR_API_VERSION: HeaderName = HeaderName::from_static("api-version");

/// Replaces progenitor's defaults with what NexHealth expects.
pub(crate) fn apply(request: &mut reqwest::Request, needs_api_version: bool) {
    let headers = request.headers_mut();
    headers.remove(PROGENITOR_API_VERSION);
    headers.insert(ACCEPT, VENDOR_ACCEPT_VALUE);
    if needs_api_version && !headers.contains_key(NEX_API_VERSION_NAME) {
        headers.insert(NEX_API_VERSION_NAME, DEFAULT_API_VERSION_VALUE);
    }
}
