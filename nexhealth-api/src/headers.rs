//! The headers NexHealth expects on every request.

use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

/// The media type that selects NexHealth's v2-style answers.
pub const VENDOR_ACCEPT: &str = "application/vnd.Nexhealth+json;version=2";
/// The version sent on v20240412 operations when the caller sets none.
pub const DEFAULT_API_VERSION: &str = "v3.0.0";
/// Header name of the v20240412 version.
pub const NEX_API_VERSION: &str = "nex-api-version";

/// Replaces progenitor's defaults with what NexHealth expects.
pub(crate) fn apply(request: &mut reqwest::Request, needs_api_version: bool) {
    let headers = request.headers_mut();
    // progenitor sends `api-version: <info.version>`; NexHealth does not use it.
    headers.remove("api-version");
    headers.insert(ACCEPT, HeaderValue::from_static(VENDOR_ACCEPT));
    let version = HeaderName::from_static(NEX_API_VERSION);
    if needs_api_version && !headers.contains_key(&version) {
        headers.insert(version, HeaderValue::from_static(DEFAULT_API_VERSION));
    }
}
