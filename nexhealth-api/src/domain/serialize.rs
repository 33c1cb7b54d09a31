//! How the domain's answer types look in JSON: durations as whole seconds
//! (`age_secs: 5400`), enums as their `as_str()` names, so that a service can
//! return them from its own health endpoint without mapping them by hand.

use std::time::Duration;

use serde::Serializer;

/// A duration as whole seconds.
pub(crate) fn secs<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(value.as_secs())
}

/// An optional duration as whole seconds, or `null`.
pub(crate) fn opt_secs<S: Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_some(&value.as_secs()),
        None => serializer.serialize_none(),
    }
}

/// Implements `Serialize` for an enum as the string its `as_str()` answers.
macro_rules! serialize_as_str {
    ($($ty:ty),* $(,)?) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )*};
}
pub(crate) use serialize_as_str;
