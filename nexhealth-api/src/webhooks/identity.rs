//! [`EventIdentity`]: what makes two deliveries the same logical event.
//!
//! NexHealth documents no event id, and it retries a delivery (any non-2xx
//! answer) for 48 hours. A retry carries a new `timestamp` header and a new
//! signature (headers, never part of the identity), and its body may carry a
//! grown top-level `delivery_errors` list and be another serialization of the
//! same JSON. The identity is therefore the SHA-256 of the delivery's JSON in
//! a canonical form that keeps what the event *is* and drops how it was sent:
//!
//! - **Left out: the top-level `delivery_errors`, and nothing else.** It is
//!   the one member of the body a retry changes. Only the delivery object's
//!   own member is left out: a `delivery_errors` anywhere deeper (inside
//!   `data`, say) is the event's content and counts like any other member.
//! - **Everything else counts:** the event name, the subdomain, `event_time`,
//!   the subscription, the whole `data`, and members whose value is `null`
//!   (`{"a":null}` is not `{}`). Two deliveries that differ in any of those
//!   are two events (a sync that went green twice has two `read_status_at`s).
//! - **Serialization never counts:** key order, whitespace, and how a string
//!   is escaped (strings compare by their decoded value: `"\u0041"` is `"A"`).
//!   Object keys are compared decoded too; of a duplicated key the last member
//!   counts, as in serde_json.
//! - **Numbers compare by value, exactly.** `1`, `1.0`, `1e0`, `10e-1` and
//!   `0.1e1` are one number, `-0` is `0`, `12` is not `1.2`. Numbers are read
//!   from the JSON text, never through `f64`/`u64`, so no value is rounded:
//!   `18446744073709551616` and `18446744073709551617` (beyond `u64`) are two
//!   events, and so are two decimals that differ past `f64`'s 17 digits.
//!
//! The canonical form is JSON with no whitespace: object members sorted by
//! their decoded key (byte order of the UTF-8, as a `String` sorts), keys and
//! strings written as `serde_json::to_vec` writes the decoded string, `true`,
//! `false` and `null` as they are, and every number as `[-]DIGITSeEXP`, where
//! DIGITS has no leading or trailing zero and EXP is a decimal integer with no
//! leading zero (`100` → `1e2`, `-0.250` → `-25e-2`, `1` → `1e0`), except
//! zero, written `0`. So `{ "b": [1.50, -0], "a": "\u0041" }` is
//! `{"a":"A","b":[15e-1,0]}`.
//!
//! [`EventIdentity::of_json`] canonicalizes the body's bytes, with a small
//! tokenizer of its own: serde_json's `Value` (without its
//! `arbitrary_precision` feature, which this crate does not turn on because
//! it would change every `Value` in the program) keeps integers beyond `u64`
//! and long decimals only as an `f64`. Like serde_json, it refuses arrays and
//! objects nested 128 deep, and it refuses anything that is not JSON.
//! [`EventIdentity::of`] takes a parsed `Value`, writes it with serde_json and
//! canonicalizes that text the same way: the two agree on every delivery
//! whose numbers a `Value` holds exactly (integers within `i64`/`u64`,
//! decimals of at most 17 significant digits).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The member of the delivery object a retry may change, left out of the
/// identity (at the top level only).
const CHANGES_BETWEEN_ATTEMPTS: &str = "delivery_errors";

/// Arrays and objects nested this deep are refused, as serde_json refuses
/// them (its recursion limit).
const DEPTH_LIMIT: usize = 128;

/// The identity of one logical event (a SHA-256, shown as hex).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventIdentity([u8; 32]);

impl EventIdentity {
    /// The identity of a delivery's body, read from its JSON text: numbers
    /// stay exact, however long. `None` when `body` is not JSON (or nests
    /// arrays and objects 128 deep).
    pub fn of_json(body: &[u8]) -> Option<Self> {
        canonical(body, DEPTH_LIMIT).map(|canonical| Self::digest(&canonical))
    }

    /// The identity of a delivery's parsed JSON: [`EventIdentity::of_json`]
    /// of the `Value` as serde_json writes it. Equal to `of_json` of the body
    /// unless the body has a number the `Value` rounded to an `f64` (an
    /// integer beyond `u64`, a decimal longer than 17 digits). A `Value` is
    /// already in memory, so no nesting limit applies.
    pub fn of(delivery: &Value) -> Self {
        // A `Value` always serializes (its keys are strings).
        let json = serde_json::to_vec(delivery).unwrap_or_default();
        match canonical(&json, usize::MAX) {
            Some(canonical) => Self::digest(&canonical),
            // serde_json writes JSON, so this does not happen.
            None => Self::digest(&json),
        }
    }

    /// Lower-case hex, 64 characters: the key a store keeps.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn digest(canonical: &[u8]) -> Self {
        Self(Sha256::digest(canonical).into())
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

/// The canonical form of the JSON text `input` (see the module docs), or
/// `None` when it is not JSON or nests `depth_limit` arrays and objects.
fn canonical(input: &[u8], depth_limit: usize) -> Option<Vec<u8>> {
    let mut reader = Reader {
        input,
        pos: 0,
        depth_limit,
    };
    let mut out = Vec::with_capacity(input.len());
    reader.skip_whitespace();
    reader.value(0, &mut out)?;
    reader.skip_whitespace();
    (reader.pos == input.len()).then_some(out)
}

/// A recursive reader of JSON text (RFC 8259) that writes its canonical form.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    depth_limit: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        if next {
            self.pos += 1;
        }
        next
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// One value, inside `depth` arrays and objects.
    fn value(&mut self, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(depth + 1, out),
            b'[' => self.array(depth + 1, out),
            b'"' => {
                let decoded = self.string()?;
                out.extend(serde_json::to_vec(&decoded).ok()?);
                Some(())
            }
            b't' => self.literal(b"true", out),
            b'f' => self.literal(b"false", out),
            b'n' => self.literal(b"null", out),
            b'-' | b'0'..=b'9' => self.number(out),
            _ => None,
        }
    }

    /// An object, the `depth`th array or object from the top (1: the
    /// delivery itself).
    fn object(&mut self, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        if depth >= self.depth_limit {
            return None;
        }
        self.pos += 1; // `{`
        // Sorted by decoded key; a later duplicate replaces an earlier one.
        let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        self.skip_whitespace();
        if !self.eat(b'}') {
            loop {
                self.skip_whitespace();
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                self.skip_whitespace();
                if !self.eat(b':') {
                    return None;
                }
                self.skip_whitespace();
                let mut member = Vec::new();
                self.value(depth, &mut member)?;
                if !(depth == 1 && key == CHANGES_BETWEEN_ATTEMPTS) {
                    members.insert(key, member);
                }
                self.skip_whitespace();
                if self.eat(b'}') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }
        out.push(b'{');
        for (i, (key, member)) in members.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend(serde_json::to_vec(&key).ok()?);
            out.push(b':');
            out.extend(member);
        }
        out.push(b'}');
        Some(())
    }

    /// An array, the `depth`th array or object from the top.
    fn array(&mut self, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        if depth >= self.depth_limit {
            return None;
        }
        self.pos += 1; // `[`
        out.push(b'[');
        self.skip_whitespace();
        if !self.eat(b']') {
            loop {
                self.skip_whitespace();
                self.value(depth, out)?;
                self.skip_whitespace();
                if self.eat(b']') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
                out.push(b',');
            }
        }
        out.push(b']');
        Some(())
    }

    /// A string token, decoded by serde_json (which checks its escapes,
    /// surrogates and control characters).
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        self.pos += 1; // `"`
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.pos += 2,
                _ => self.pos += 1,
            }
        }
        self.pos += 1; // `"`
        let token = std::str::from_utf8(&self.input[start..self.pos]).ok()?;
        serde_json::from_str(token).ok()
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if !self.input[self.pos..].starts_with(word) {
            return None;
        }
        self.pos += word.len();
        out.extend_from_slice(word);
        Some(())
    }

    /// A run of decimal digits, possibly empty.
    fn digits(&mut self) -> &'a [u8] {
        let input = self.input;
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        &input[start..self.pos]
    }

    /// A number, `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`,
    /// written as `[-]DIGITSeEXP` (or `0`).
    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let negative = self.eat(b'-');
        let integer = self.digits();
        if integer.is_empty() || (integer.len() > 1 && integer[0] == b'0') {
            return None;
        }
        let fraction = if self.eat(b'.') {
            let fraction = self.digits();
            if fraction.is_empty() {
                return None;
            }
            fraction
        } else {
            &[]
        };
        let (exponent_negative, exponent) = if self.eat(b'e') || self.eat(b'E') {
            let exponent_negative = self.eat(b'-');
            if !exponent_negative {
                self.eat(b'+');
            }
            let exponent = self.digits();
            if exponent.is_empty() {
                return None;
            }
            (exponent_negative, exponent)
        } else {
            (false, &[][..])
        };

        // The value is ±(integer fraction) · 10^(exponent − fraction.len()).
        let all = integer.iter().chain(fraction);
        let digits: Vec<u8> = all.copied().skip_while(|&d| d == b'0').collect();
        let Some(last) = digits.iter().rposition(|&d| d != b'0') else {
            out.push(b'0'); // Zero, however written and signed.
            return Some(());
        };
        let trailing_zeros = digits.len() - (last + 1);
        // Both lengths are at most the input's: far inside an i128.
        let shift = trailing_zeros as i128 - fraction.len() as i128;
        if negative {
            out.push(b'-');
        }
        out.extend_from_slice(&digits[..=last]);
        out.push(b'e');
        out.extend(shifted_exponent(exponent_negative, exponent, shift));
        Some(())
    }
}

/// `±exponent + shift` as a decimal integer with no leading zero, exactly,
/// however many digits `exponent` has.
fn shifted_exponent(negative: bool, exponent: &[u8], shift: i128) -> Vec<u8> {
    let start = exponent.iter().position(|&d| d != b'0');
    let magnitude = &exponent[start.unwrap_or(exponent.len())..];
    if magnitude.len() <= 36 {
        // Below 10^36: fits in an i128 with `shift` added.
        let value = magnitude
            .iter()
            .fold(0i128, |n, &d| n * 10 + i128::from(d - b'0'));
        let value = if negative { -value } else { value };
        return (value + shift).to_string().into_bytes();
    }
    // |exponent| ≥ 10^36 > |shift|: the sign stays, the magnitude moves by
    // `shift` away from or towards zero.
    let mut digits = magnitude.to_vec();
    let towards_infinity = if negative { -shift } else { shift };
    let mut rest = towards_infinity.unsigned_abs();
    if towards_infinity >= 0 {
        for digit in digits.iter_mut().rev() {
            let sum = u128::from(*digit - b'0') + rest % 10;
            rest = rest / 10 + sum / 10;
            *digit = b'0' + (sum % 10) as u8;
        }
        while rest > 0 {
            digits.insert(0, b'0' + (rest % 10) as u8);
            rest /= 10;
        }
    } else {
        for digit in digits.iter_mut().rev() {
            let take = (rest % 10) as u8;
            rest /= 10;
            let value = *digit - b'0';
            *digit = if value >= take {
                b'0' + value - take
            } else {
                rest += 1;
                b'0' + value + 10 - take
            };
        }
        let start = digits.iter().position(|&d| d != b'0').unwrap_or(0);
        digits.drain(..start);
    }
    if negative {
        digits.insert(0, b'-');
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical_text(json: &str) -> String {
        String::from_utf8(canonical(json.as_bytes(), DEPTH_LIMIT).unwrap()).unwrap()
    }

    fn of_json(json: &str) -> EventIdentity {
        EventIdentity::of_json(json.as_bytes()).unwrap_or_else(|| panic!("not JSON: {json}"))
    }

    fn of_text(json: &str) -> EventIdentity {
        EventIdentity::of(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn the_canonical_form_is_exactly_this() {
        let delivery = r#"{ "b" : { "d" : "\u0065\u00e9\/\n", "c" : [1, 2.50, -0, 1E2, -0.0250, null, true, false, {}, []],
                             "delivery_errors": [] },
                             "a" : 1, "delivery_errors": [1], "n": null, "event_time": "2026-08-14T10:00:00Z" }"#;
        let expected = r#"{"a":1e0,"b":{"c":[1e0,25e-1,0,1e2,-25e-3,null,true,false,{},[]],"d":"eé/\n","delivery_errors":[]},"event_time":"2026-08-14T10:00:00Z","n":null}"#;
        assert_eq!(canonical_text(delivery), expected);
        let identity = of_json(delivery);
        let digest: [u8; 32] = Sha256::digest(expected.as_bytes()).into();
        assert_eq!(identity, EventIdentity(digest));
        assert_eq!(identity, of_text(delivery));
        assert_eq!(identity.to_string(), identity.to_hex());
        assert_eq!(identity.to_hex().len(), 64);
        assert_eq!(
            format!("{identity:?}"),
            format!("EventIdentity({})", &identity.to_hex()[..16])
        );
        // Without separators [1,2] and [12] would be one event.
        assert_ne!(
            EventIdentity::of(&json!([1, 2])),
            EventIdentity::of(&json!([12]))
        );
        assert_eq!(canonical_text(r#"{"b":1,"a":2}"#), r#"{"a":2e0,"b":1e0}"#);
    }

    #[test]
    fn key_order_whitespace_and_delivery_errors_do_not_count() {
        let first = r#"{"event_name":"sync_status_read_change","subdomain":"acme","delivery_errors":[],
                "data":{"sync_status":{"read_status":"green","locations":[{"id":7}]}}}"#;
        let retry = r#"{ "data" : { "sync_status" : { "locations" : [ { "id" : 7 } ], "read_status" : "green" } },
                 "subdomain" : "acme", "event_name" : "sync_status_read_change",
                 "delivery_errors" : [ {"status": 500, "at": "2026-08-14T10:00:30Z"} ] }"#;
        assert_eq!(of_json(first), of_json(retry));
        assert_eq!(of_text(first), of_text(retry));
        assert_eq!(of_json(first), of_text(retry));
    }

    #[test]
    fn any_reordering_is_the_same_event() {
        let members = [
            r#""event_name":"sync_status_read_change""#,
            r#""subdomain":"acme""#,
            r#""event_time":"2026-08-14T10:00:00Z""#,
            r#""data":{"b":[1,{"y":null,"x":2.0}],"a":"\u0041"}"#,
            r#""delivery_errors":[]"#,
        ];
        let identity = of_json(&format!("{{{}}}", members.join(",")));
        // Every permutation (Heap's algorithm), each with other whitespace.
        let mut order: Vec<usize> = (0..members.len()).collect();
        let mut counters = vec![0; members.len()];
        let mut seen = 0;
        let mut i = 0;
        loop {
            let spacing = ["", " ", "\n\t", " \r\n "][seen % 4];
            let text: Vec<&str> = order.iter().map(|&m| members[m]).collect();
            let delivery = format!(
                "{spacing}{{{spacing}{}{spacing}}}{spacing}",
                text.join(&format!("{spacing},{spacing}"))
            );
            assert_eq!(of_json(&delivery), identity, "{delivery}");
            assert_eq!(of_text(&delivery), identity, "{delivery}");
            seen += 1;
            while i < members.len() && counters[i] >= i {
                counters[i] = 0;
                i += 1;
            }
            if i == members.len() {
                break;
            }
            order.swap(if i % 2 == 0 { 0 } else { counters[i] }, i);
            counters[i] += 1;
            i = 0;
        }
        assert_eq!(seen, 120);
    }

    #[test]
    fn a_top_level_delivery_errors_does_not_count() {
        let without = r#"{"event_name":"e","data":{"id":1}}"#;
        let first = r#"{"event_name":"e","data":{"id":1},"delivery_errors":[]}"#;
        let grown = r#"{"delivery_errors":[{"status":500},{"status":503}],"event_name":"e","data":{"id":1}}"#;
        let other = r#"{"event_name":"e","data":{"id":1},"delivery_errors":null}"#;
        for retry in [first, grown, other] {
            assert_eq!(of_json(retry), of_json(without), "{retry}");
            assert_eq!(of_text(retry), of_json(without), "{retry}");
        }
        // It is left out, not skipped unread.
        assert_eq!(
            EventIdentity::of_json(br#"{"event_name":"e","delivery_errors":[}"#),
            None
        );
    }

    #[test]
    fn a_nested_delivery_errors_counts() {
        let base = r#"{"event_name":"e","data":{"id":1,"delivery_errors":[]}}"#;
        let identity = of_json(base);
        for other in [
            r#"{"event_name":"e","data":{"id":1}}"#,
            r#"{"event_name":"e","data":{"id":1,"delivery_errors":[{"status":500}]}}"#,
            r#"{"event_name":"e","data":{"id":1,"delivery_errors":null}}"#,
        ] {
            assert_ne!(of_json(other), identity, "{other}");
            assert_ne!(of_text(other), identity, "{other}");
        }
        assert_ne!(
            of_json(r#"[{"delivery_errors":[1]}]"#),
            of_json(r#"[{"delivery_errors":[2]}]"#)
        );
        assert_eq!(identity, of_text(base));
    }

    #[test]
    fn a_null_member_counts() {
        assert_ne!(of_json(r#"{"a":null}"#), of_json("{}"));
        assert_ne!(
            of_json(r#"{"event_name":"e","data":{"id":1,"cancelled_at":null}}"#),
            of_json(r#"{"event_name":"e","data":{"id":1}}"#)
        );
        assert_ne!(
            EventIdentity::of(&json!({"data": {"note": null}})),
            EventIdentity::of(&json!({"data": {}}))
        );
        assert_ne!(of_json("[null]"), of_json("[]"));
    }

    #[test]
    fn event_time_counts() {
        let first = r#"{"event_name":"e","event_time":"2026-08-14T10:00:00Z","data":{"id":1}}"#;
        let later = r#"{"event_name":"e","event_time":"2026-08-14T10:05:00Z","data":{"id":1}}"#;
        let without = r#"{"event_name":"e","data":{"id":1}}"#;
        assert_ne!(of_json(first), of_json(later));
        assert_ne!(of_json(first), of_json(without));
        assert_ne!(of_text(first), of_text(later));
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
            json!({"event_name": "sync_status_read_change", "subdomain": "acme",
                   "data": {"read_status_at": "2026-08-14T10:00:00Z", "ids": [1, 2], "x": false}}),
        ] {
            assert_ne!(EventIdentity::of(&other), identity, "{other}");
        }
        assert_ne!(of_json("true"), of_json("false"));
        assert_ne!(of_json("null"), of_json("false"));
        assert_ne!(of_json(r#""1""#), of_json("1"));
    }

    #[test]
    fn strings_and_keys_compare_decoded() {
        assert_eq!(of_json(r#""\u0041""#), of_json(r#""A""#));
        assert_eq!(of_json(r#""\/\u00e9""#), of_json(r#""/é""#));
        assert_eq!(of_json(r#""\ud83d\ude00""#), of_json("\"\u{1F600}\""));
        assert_eq!(of_json(r#"{"\u0061":1}"#), of_json(r#"{"a":1}"#));
        assert_ne!(of_json(r#""a""#), of_json(r#""A""#));
        assert_ne!(of_json(r#""a ""#), of_json(r#""a""#));
        assert_eq!(canonical_text(r#""\u0041\t\"""#), r#""A\t\"""#);
    }

    #[test]
    fn of_a_duplicated_key_the_last_counts() {
        let duplicated = r#"{"a":1,"b":0,"\u0061":2}"#;
        assert_eq!(canonical_text(duplicated), r#"{"a":2e0,"b":0}"#);
        assert_eq!(of_json(duplicated), of_json(r#"{"b":0,"a":2}"#));
        assert_ne!(of_json(duplicated), of_json(r#"{"b":0,"a":1}"#));
        assert_eq!(of_json(duplicated), of_text(duplicated));
    }

    #[test]
    fn numbers_compare_by_value() {
        let groups: &[&[&str]] = &[
            &[
                "1", "1.0", "1e0", "10e-1", "0.1e1", "1E0", "1e+0", "100e-2", "0.01e2", "1.000",
            ],
            &["0", "-0", "0.0", "-0.0", "0e5", "0E-5", "-0e0", "0.000e+7"],
            &["-1.5", "-15e-1", "-0.15e1", "-1.50", "-150E-2"],
            &["100", "1e2", "100.0", "1E2", "10e1", "0.1e3", "1e02"],
            &["0.1", "1e-1", "0.10", "10e-2", "0.01e1"],
            &["123456789", "1.23456789e8", "123456789000e-3"],
        ];
        for group in groups {
            let identity = of_json(group[0]);
            for number in *group {
                assert_eq!(of_json(number), identity, "{number} vs {}", group[0]);
                let text = format!(r#"{{"data":{{"n":{number}}}}}"#);
                assert_eq!(of_json(&text), of_text(&text), "{text}");
            }
        }
        for (a, b) in [
            ("1", "2"),
            ("0.1", "1"),
            ("-1", "1"),
            ("1e2", "1e-2"),
            ("12", "1.2"),
            ("10", "1"),
            ("0", "1e-400"),
            ("1.0000000000000000000000001", "1"),
        ] {
            assert_ne!(of_json(a), of_json(b), "{a} vs {b}");
        }
        for (number, canonical) in [
            ("100", "1e2"),
            ("-0.0", "0"),
            ("0.0250", "25e-3"),
            ("120", "12e1"),
            ("-7", "-7e0"),
            ("1.5E+3", "15e2"),
            ("1e-400", "1e-400"),
            ("18446744073709551615", "18446744073709551615e0"),
        ] {
            assert_eq!(canonical_text(number), canonical, "{number}");
        }
        assert_eq!(
            EventIdentity::of(&json!({"n": 1})),
            EventIdentity::of(&json!({"n": 1.0}))
        );
    }

    #[test]
    fn integers_beyond_u64_stay_exact() {
        let a = "18446744073709551616"; // u64::MAX + 1
        let b = "18446744073709551617";
        assert_ne!(of_json(a), of_json(b));
        assert_eq!(of_json(a), of_json(a));
        assert_eq!(of_json(a), of_json("18446744073709551616.000"));
        assert_eq!(canonical_text(b), "18446744073709551617e0");
        let delivery = |id: &str| format!(r#"{{"event_name":"e","data":{{"id":{id}}}}}"#);
        assert_ne!(of_json(&delivery(a)), of_json(&delivery(b)));
        assert_eq!(of_json(&delivery(a)), of_json(&delivery(a)));
        assert_eq!(
            of_json(&delivery("-123456789012345678901234567890")),
            of_json(&delivery("-1.23456789012345678901234567890e29"))
        );
        assert_ne!(
            of_json(&delivery("123456789012345678901234567890")),
            of_json(&delivery("123456789012345678901234567891"))
        );
    }

    #[test]
    fn exponents_stay_exact_however_long() {
        let nines = "9".repeat(39);
        let big = format!("1{}", "0".repeat(39)); // 10^39
        // 10 · 10^(10^39 − 1) = 1 · 10^(10^39).
        assert_eq!(
            of_json(&format!("1e{big}")),
            of_json(&format!("10e{nines}"))
        );
        assert_eq!(canonical_text(&format!("10e{nines}")), format!("1e{big}"));
        // 0.1 · 10^−(10^39 − 1) = 1 · 10^−(10^39).
        assert_eq!(
            canonical_text(&format!("0.1e-{nines}")),
            format!("1e-{big}")
        );
        // 100 · 10^−(10^39) = 1 · 10^−(10^39 − 2).
        let below = format!("{}8", "9".repeat(38));
        assert_eq!(
            canonical_text(&format!("100e-{big}")),
            format!("1e-{below}")
        );
        assert_eq!(
            canonical_text(&format!("1.5e{below}")),
            format!("15e{}7", "9".repeat(38))
        );
        assert_eq!(canonical_text(&format!("-0e{big}")), "0");
        // A borrow under a digit that is not zero: 10^38 + 1 − 3 = 10^38 − 2.
        let odd = format!("1{}1", "0".repeat(37));
        assert_eq!(
            canonical_text(&format!("0.001e{odd}")),
            format!("1e{}8", "9".repeat(37))
        );
        assert_eq!(
            canonical_text("1e000000000000000000000000000000000000000002"),
            "1e2"
        );
        assert_ne!(of_json(&format!("1e{big}")), of_json(&format!("1e-{big}")));
        assert_ne!(of_json(&format!("1e{big}")), of_json(&format!("1e{nines}")));
    }

    #[test]
    fn of_a_value_equals_of_its_text_for_ordinary_payloads() {
        for delivery in [
            r#"{"event_name":"sync_status_read_change","subdomain":"acme","event_time":"2026-08-14T10:00:00.123Z",
                "delivery_errors":[{"status":500}],
                "data":{"sync_status":{"read_status":"green","read_status_at":"2026-08-14T10:00:00Z",
                "locations":[{"id":7,"lat":40.7128,"lng":-74.006,"rating":4.50,"big":18446744073709551615,
                "small":-9223372036854775808,"tiny":1e-7,"huge":2.5e10,"zero":-0.0,"name":"caf\u00e9"}]}}}"#,
            r#"[1, 2.5, "x", null, {"delivery_errors": 3}]"#,
            r#""just a string""#,
            "0.30000000000000004",
            "{}",
        ] {
            assert_eq!(of_json(delivery), of_text(delivery), "{delivery}");
        }
    }

    #[test]
    fn anything_but_json_is_none() {
        let invalid: &[&[u8]] = &[
            b"",
            b"   ",
            b"{",
            b"}",
            b"[1,]",
            b"[,1]",
            br#"{"a":1,}"#,
            br#"{"a" 1}"#,
            br#"{"a":}"#,
            br#"{a:1}"#,
            br#"{"a":1}}"#,
            br#"{"a":1 "b":2}"#,
            b"[1 2]",
            b"01",
            b"-01",
            b"1.",
            b".5",
            b"+1",
            b"1e",
            b"1e+",
            b"-",
            b"0x1",
            b"tru",
            b"nul",
            b"True",
            b"NaN",
            b"Infinity",
            br#""abc"#,
            br#""\x""#,
            br#""\u12""#,
            br#""\ud800""#,
            b"\"\\",
            b"\"\x01\"",
            b"\"\xff\"",
            b"\xef\xbb\xbf{}",
            b"[1] 2",
            b"{} x",
            b"'a'",
        ];
        for body in invalid {
            let shown = String::from_utf8_lossy(body);
            assert!(serde_json::from_slice::<Value>(body).is_err(), "{shown}");
            assert_eq!(EventIdentity::of_json(body), None, "{shown}");
        }
        assert!(EventIdentity::of_json(b" \t\r\n{ } \n").is_some());
    }

    #[test]
    fn nesting_128_deep_is_none_as_in_serde_json() {
        for (depth, accepted) in [(1, true), (127, true), (128, false), (129, false)] {
            for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
                let body = format!("{}0{}", open.repeat(depth), close.repeat(depth));
                let serde = serde_json::from_str::<Value>(&body).is_ok();
                assert_eq!(serde, accepted, "serde_json at {depth}");
                assert_eq!(
                    EventIdentity::of_json(body.as_bytes()).is_some(),
                    accepted,
                    "{depth} deep"
                );
            }
        }
        let deep = "[".repeat(1_000_000);
        assert_eq!(EventIdentity::of_json(deep.as_bytes()), None);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(EventIdentity::of_json(deep.as_bytes()), None);
        // A `Value` built in memory has no limit.
        let mut value = json!(1);
        for _ in 0..200 {
            value = json!([value]);
        }
        assert_ne!(EventIdentity::of(&value), EventIdentity::of(&json!([1])));
    }
}
