//! [`DeliverySimulator`]: sends webhook deliveries to a URL the way NexHealth
//! does, for tests of a receiver (the crate's own, and a service's). The
//! deliveries to send are in [`payloads`](crate::mock::payloads), one of every
//! event the SDK types ([`DeliverySimulator::deliver_samples`] sends them all).

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::webhooks::signature::{SIGNATURE_HEADER, Scheme, TIMESTAMP_HEADER, sign_with};

/// NexHealth's retry schedule: the time of each attempt after the first,
/// counted from the first (30 s, 1.5 min, 3.5 min, 10 min, 30 min, 2 h, 5 h,
/// 10 h, 24 h, 48 h).
///
/// Value: 30 s, 90 s, 210 s, 600 s, 1,800 s, 2 h, 5 h, 10 h, 24 h, 48 h.
pub const RETRY_SCHEDULE: [Duration; 10] = [
    Duration::from_secs(30),
    Duration::from_secs(90),
    Duration::from_secs(210),
    Duration::from_secs(600),
    Duration::from_secs(1_800),
    Duration::from_secs(7_200),
    Duration::from_secs(18_000),
    Duration::from_secs(36_000),
    Duration::from_secs(86_400),
    Duration::from_secs(172_800),
];

/// One attempt and what the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first delivery, 2 for the first retry, …
    pub number: usize,
    /// The status answered, or `None` when no answer came.
    pub status: Option<u16>,
}

/// Sends an event to a receiver as NexHealth would: each attempt signed anew
/// (a fresh `timestamp`, a fresh signature), the `delivery_errors` list grown
/// by one for each failed attempt, retried on any answer but 2xx along
/// [`RETRY_SCHEDULE`] divided by a time scale, stopped at the first 2xx.
#[derive(Debug, Clone)]
pub struct DeliverySimulator {
    http: reqwest::Client,
    secret: String,
    scheme: Scheme,
    time_scale: f64,
    skew: chrono::Duration,
}

impl DeliverySimulator {
    /// A simulator signing with `secret`, with the schedule run 10,000 times
    /// faster than NexHealth's (30 s become 3 ms; the last retry, 48 h, 17 s).
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            secret: secret.into(),
            scheme: Scheme::default(),
            time_scale: 10_000.0,
            skew: chrono::Duration::zero(),
        }
    }

    /// Runs the schedule `scale` times faster (at least 1).
    pub fn time_scale(mut self, scale: f64) -> Self {
        self.time_scale = if scale.is_finite() {
            scale.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// Signs under another scheme (to test a receiver's diagnosis).
    pub fn scheme(mut self, scheme: Scheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Dates every delivery `skew` away from this host's clock (NexHealth's
    /// clock ahead or behind).
    pub fn clock_skew(mut self, skew: chrono::Duration) -> Self {
        self.skew = skew;
        self
    }

    /// One attempt of `event` (with `delivery_errors` as given) to `url`,
    /// signed now; the raw body is `event` serialized compactly.
    pub async fn send_once(&self, url: &str, event: &Value) -> Option<u16> {
        let body = serde_json::to_vec(event).unwrap_or_default();
        self.send_body(url, body).await
    }

    /// One attempt of exactly `body` to `url`, signed now.
    pub async fn send_body(&self, url: &str, body: Vec<u8>) -> Option<u16> {
        let timestamp = (Utc::now() + self.skew).to_rfc3339();
        let signature = sign_with(self.scheme, &self.secret, &timestamp, &body);
        let header = match self.scheme {
            Scheme::RawBody => crate::webhooks::signature::ALTERNATIVE_SIGNATURE_HEADER,
            _ => SIGNATURE_HEADER,
        };
        self.http
            .post(url)
            .header(TIMESTAMP_HEADER, timestamp)
            .header(header, signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// Delivers every sample of
    /// [`payloads::webhook_deliveries(last)`](crate::mock::payloads::webhook_deliveries)
    /// (one of every event the SDK types, `.red` and `.green` included) to
    /// `url`, one after the other, each as [`deliver`](Self::deliver) does;
    /// answers each delivery with its attempts.
    pub async fn deliver_samples(
        &self,
        url: &str,
        last: chrono::DateTime<Utc>,
    ) -> Vec<(Value, Vec<Attempt>)> {
        let mut sent = Vec::new();
        for event in crate::mock::payloads::webhook_deliveries(last) {
            let attempts = self.deliver(url, &event).await;
            sent.push((event, attempts));
        }
        sent
    }

    /// Delivers `event` to `url` until a 2xx answer or the schedule's end,
    /// and reports every attempt.
    pub async fn deliver(&self, url: &str, event: &Value) -> Vec<Attempt> {
        let mut attempts = Vec::new();
        let mut errors = Vec::new();
        let mut waited = Duration::ZERO;
        for number in 1..=RETRY_SCHEDULE.len() + 1 {
            let mut delivery = event.clone();
            if let Value::Object(map) = &mut delivery {
                map.insert("delivery_errors".into(), Value::Array(errors.clone()));
            }
            let status = self.send_once(url, &delivery).await;
            attempts.push(Attempt { number, status });
            if status.is_some_and(|s| (200..300).contains(&s)) {
                break;
            }
            errors.push(json!({"attempt": number, "status": status}));
            let Some(next) = RETRY_SCHEDULE.get(number - 1) else {
                break;
            };
            let wait = next.saturating_sub(waited).div_f64(self.time_scale);
            waited = *next;
            tokio::time::sleep(wait).await;
        }
        attempts
    }
}
