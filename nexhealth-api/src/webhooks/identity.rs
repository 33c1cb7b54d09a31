//! [`EventIdentity`]: what makes two deliveries the same logical event.
//!
//! NexHealth documents no event id, and it retries a delivery (any non-2xx
//! answer) for 48 hours. A retry carries a new `timestamp` header and a new
//! signature, and may carry a grown `delivery_errors` list and another JSON
//! serialization of the same event (key order, whitespace). The identity is
//! therefore the SHA-256 of the delivery's JSON in canonical form (object
//! keys sorted, no whitespace, numbers and strings as JSON writes them) with
//! every `delivery_errors` member left out, at any depth. Everything else is
//! in it: the event name, the subdomain, `event_time`, the subscription and
//! the whole `data`. Two deliveries that differ in any of those are two
//! events (a sync that went green twice has two `read_status_at`s).

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The members a retry may change, left out of the identity.
const CHANGES_BETWEEN_ATTEMPTS: &[&str] = &["delivery_errors"];

/// The identity of one logical event (a SHA-256, shown as hex).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventIdentity([u8; 32]);

impl EventIdentity {
    /// The identity of a delivery's JSON.
    pub fn of(delivery: &Value) -> Self {
        let mut canonical = Vec::new();
        write_canonical(delivery, &mut canonical);
        Self(Sha256::digest(&canonical).into())
    }

    /// Lower-case hex, 64 characters: the key a store keeps.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for EventIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventIdentity({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for EventIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| !CHANGES_BETWEEN_ATTEMPTS.contains(&k.as_str()))
                .collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // A string always serializes.
                out.extend(serde_json::to_vec(key).unwrap_or_default());
                out.push(b':');
                write_canonical(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_whitespace_and_delivery_errors_do_not_count() {
        let first: Value = serde_json::from_str(
            r#"{"event_name":"sync_status_read_change","subdomain":"acme","delivery_errors":[],
                "data":{"sync_status":{"read_status":"green","locations":[{"id":7}]}}}"#,
        )
        .unwrap();
        let retry: Value = serde_json::from_str(
            r#"{ "data" : { "sync_status" : { "locations" : [ { "id" : 7 } ], "read_status" : "green" } },
                 "subdomain" : "acme", "event_name" : "sync_status_read_change",
                 "delivery_errors" : [ {"status": 500, "at": "2026-08-14T10:00:30Z"} ] }"#,
        )
        .unwrap();
        assert_eq!(EventIdentity::of(&first), EventIdentity::of(&retry));
        assert_eq!(EventIdentity::of(&first).to_hex().len(), 64);
    }

    #[test]
    fn the_canonical_form_is_exactly_this() {
        let value: Value = serde_json::from_str(
            r#"{ "b" : { "d" : "e", "c" : [1, 2] }, "a" : 1, "delivery_errors": [1] }"#,
        )
        .unwrap();
        let mut canonical = Vec::new();
        write_canonical(&value, &mut canonical);
        assert_eq!(
            String::from_utf8(canonical).unwrap(),
            r#"{"a":1,"b":{"c":[1,2],"d":"e"}}"#
        );
        let identity = EventIdentity::of(&value);
        let expected: [u8; 32] = Sha256::digest(br#"{"a":1,"b":{"c":[1,2],"d":"e"}}"#).into();
        assert_eq!(identity, EventIdentity(expected));
        assert_eq!(identity.to_string(), identity.to_hex());
        // Without separators [1,2] and [12] would be one event.
        assert_ne!(
            EventIdentity::of(&json!([1, 2])),
            EventIdentity::of(&json!([12]))
        );
    }

    #[test]
    fn anything_else_makes_another_event() {
        let base = json!({"event_name": "sync_status_read_change", "subdomain": "acme",
                          "data": {"read_status_at": "2026-08-14T10:00:00Z", "ids": [1, 2]}});
        let identity = EventIdentity::of(&base);
        for other in [
            json!({"event_name": "sync_status_write_change", "subdomain": "acme",
                   "data": {"read_status_at": "2026-08-14T10:00:00Z", "ids": [1, 2]}}),
            json!({"event_name": "sync_status_read_change", "subdomain": "other",
                   "data": {"read_status_at": "2026-08-14T10:00:00Z", "ids": [1, 2]}}),
            json!({"event_name": "sync_status_read_change", "subdomain": "acme",
                   "data": {"read_status_at": "2026-08-14T11:00:00Z", "ids": [1, 2]}}),
            json!({"event_name": "sync_status_read_change", "subdomain": "acme",
                   "data": {"read_status_at": "2026-08-14T10:00:00Z", "ids": [2, 1]}}),
            json!({"event_name": "sync_status_read_change", "subdomain": "acme",
                   "data": {"read_status_at": "2026-08-14T10:00:00Z", "ids": ["1", 2]}}),
        ] {
            assert_ne!(EventIdentity::of(&other), identity, "{other}");
        }
        assert_eq!(format!("{identity:?}").len(), "EventIdentity()".len() + 16);
    }
}
