//! [`WebhookSecret`]: an endpoint's signing secret, never shown.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// The secret NexHealth signs an endpoint's deliveries with (`secret_key`).
/// `Debug` shows `<redacted>` and serializing writes `"<redacted>"`, so that
/// logging or caching an endpoint as JSON never leaks it; the value is
/// reached only through [`expose`](Self::expose), to verify a delivery or to
/// store it in a secret store.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

/// What a serialized secret becomes.
pub(crate) const REDACTED: &str = "<redacted>";

impl Serialize for WebhookSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl WebhookSecret {
    /// Wraps a secret (as stored by your service, for example).
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for WebhookSecret {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<&str> for WebhookSecret {
    fn from(secret: &str) -> Self {
        Self(secret.to_string())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl schemars::JsonSchema for WebhookSecret {
    fn schema_name() -> String {
        "WebhookSecretKey".to_string()
    }

    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_shows_the_secret() {
        let secret = super::WebhookSecret::new("whsec-very-secret");
        assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
        assert_eq!(secret.expose(), "whsec-very-secret");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"<redacted>\"");
        let read: super::WebhookSecret = serde_json::from_str("\"whsec-very-secret\"").unwrap();
        assert_eq!(read, secret);
    }
}
