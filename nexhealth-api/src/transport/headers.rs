//! The headers NexHealth expects on every request, and the API version that
//! `Nex-Api-Version` selects ([`ApiVersion`]).

use std::fmt;
use std::str::FromStr;

use reqwest::header::{ACCEPT, HeaderName, HeaderValue};

use crate::error::Error;
use crate::generated::types::{Emr, SyncStatus};

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
/// The version sent on v20240412 operations when the caller sets none
/// ([`ApiVersion::default`]).
pub const DEFAULT_API_VERSION: &str = "v3.0.0";
/// Header name of the v20240412 version.
pub const NEX_API_VERSION: &str = "nex-api-version";

// Built at compile time: these run on every request.
const NEX_API_VERSION_NAME: HeaderName = HeaderName::from_static(NEX_API_VERSION);
const VENDOR_ACCEPT_VALUE: HeaderValue = HeaderValue::from_static(VENDOR_ACCEPT);
const JSON_ACCEPT_VALUE: HeaderValue = HeaderValue::from_static(JSON_ACCEPT);
/// The header progenitor adds from `info.version`; NexHealth does not use it.
const PROGENITOR_API_VERSION: HeaderName = HeaderName::from_static("api-version");

/// The `Nex-Api-Version` a client sends on the operations that take it (the
/// onboardings and webhook subscriptions; see
/// [`Operation::needs_api_version`](crate::operations::Operation::needs_api_version)),
/// chosen with [`ClientBuilder::api_version`](crate::ClientBuilder::api_version).
/// Operations without the header (the v2-style ones and the token exchange)
/// never carry it, whatever the version.
///
/// Parse a value from configuration with [`str::parse`]: the three names
/// NexHealth documents become their variant, any other value becomes
/// [`Other`](Self::Other) once checked.
///
/// ```
/// use nexhealth_api::headers::ApiVersion;
///
/// assert_eq!("v3.1.0".parse::<ApiVersion>().unwrap(), ApiVersion::V3_1_0);
/// assert_eq!(ApiVersion::default().as_str(), "v3.0.0");
/// assert!("v3\r\n".parse::<ApiVersion>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ApiVersion {
    /// `v3.0.0`: NexHealth's current stable version, and the default.
    #[default]
    V3_0_0,
    /// `v20240412`: the date-based name of v3.0.0. NexHealth serves the same
    /// version under both names.
    V20240412,
    /// `v3.1.0`, "Edge": **beta**, open to approved partner institutions only;
    /// NexHealth may change it without notice, and a key without access gets
    /// errors. Its answers differ from v3.0.0's: the sync status names its
    /// health record system `ehr` rather than `emr` (read either with
    /// [`SyncStatus::health_record_system`]), and locations no longer carry
    /// `last_sync_time` (it is optional in the types).
    V3_1_0,
    /// Any other value, sent as given: a version this crate does not know yet.
    /// It must be visible ASCII with no spaces; [`str::parse`] checks that, and
    /// [`ClientBuilder::build`](crate::ClientBuilder::build) refuses a value
    /// built directly that is not.
    Other(String),
}

impl ApiVersion {
    /// The value sent in `Nex-Api-Version`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(value) => value,
            _ => self.known_name().unwrap_or_default(),
        }
    }

    /// The name of a version NexHealth documents; `None` for [`Self::Other`].
    fn known_name(&self) -> Option<&'static str> {
        match self {
            Self::V3_0_0 => Some(DEFAULT_API_VERSION),
            Self::V20240412 => Some("v20240412"),
            Self::V3_1_0 => Some("v3.1.0"),
            Self::Other(_) => None,
        }
    }

    /// The header value, or why this version cannot be one.
    pub(crate) fn header_value(&self) -> Result<HeaderValue, Error> {
        match self.known_name() {
            Some(name) => Ok(HeaderValue::from_static(name)),
            None => {
                let value = self.as_str();
                check(value)?;
                HeaderValue::from_str(value).map_err(|_| not_a_version(value))
            }
        }
    }
}

fn not_a_version(value: &str) -> Error {
    Error::invalid_request(format!(
        "the API version {value:?} is not a valid `Nex-Api-Version` value: it must be visible \
         ASCII without spaces, e.g. v3.0.0, v20240412 or v3.1.0"
    ))
}

/// A version is a non-empty run of visible ASCII (so always a valid header value).
fn check(value: &str) -> Result<(), Error> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(not_a_version(value));
    }
    Ok(())
}

impl FromStr for ApiVersion {
    type Err = Error;

    /// `v3.0.0`, `v20240412` and `v3.1.0` become their variant; any other
    /// visible-ASCII value without spaces becomes [`ApiVersion::Other`];
    /// anything else is [`Error::InvalidRequest`].
    fn from_str(value: &str) -> Result<Self, Error> {
        Ok(match value {
            DEFAULT_API_VERSION => Self::V3_0_0,
            "v20240412" => Self::V20240412,
            "v3.1.0" => Self::V3_1_0,
            other => {
                check(other)?;
                Self::Other(other.to_string())
            }
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SyncStatus {
    /// The health record system the sync connects to, whichever name the
    /// answer used: `emr` (v3.0.0, v20240412) or `ehr` (v3.1.0). `None` when
    /// the answer carries neither; when it carries both, `ehr`.
    pub fn health_record_system(&self) -> Option<&Emr> {
        self.ehr.as_ref().or(self.emr.as_ref())
    }
}

/// Replaces progenitor's defaults with what NexHealth expects. `version` is
/// the client's `Nex-Api-Version`, sent on the operations that take it unless
/// the call set its own.
pub(crate) fn apply(
    request: &mut reqwest::Request,
    needs_api_version: bool,
    version: &HeaderValue,
) {
    let headers = request.headers_mut();
    headers.remove(PROGENITOR_API_VERSION);
    if needs_api_version {
        headers.insert(ACCEPT, JSON_ACCEPT_VALUE);
        if !headers.contains_key(NEX_API_VERSION_NAME) {
            headers.insert(NEX_API_VERSION_NAME, version.clone());
        }
    } else {
        headers.insert(ACCEPT, VENDOR_ACCEPT_VALUE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_parse_to_their_variant_and_print_back() {
        for (text, version) in [
            ("v3.0.0", ApiVersion::V3_0_0),
            ("v20240412", ApiVersion::V20240412),
            ("v3.1.0", ApiVersion::V3_1_0),
            ("v3.2.0-rc1", ApiVersion::Other("v3.2.0-rc1".into())),
        ] {
            let parsed: ApiVersion = text.parse().unwrap();
            assert_eq!(parsed, version);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(parsed.header_value().unwrap(), text);
        }
        assert_eq!(ApiVersion::default(), ApiVersion::V3_0_0);
    }

    #[test]
    fn values_that_are_not_a_version_are_refused() {
        for bad in [
            "",
            " ",
            "v3 .1",
            "v3.1.0\r\nX-Injected: 1",
            "v3.1.0\n",
            "vé",
        ] {
            let error = bad.parse::<ApiVersion>().unwrap_err();
            assert!(error.is_invalid_request(), "{bad:?}: {error}");
            let direct = ApiVersion::Other(bad.to_string()).header_value();
            assert!(direct.unwrap_err().is_invalid_request(), "{bad:?}");
        }
    }
}
