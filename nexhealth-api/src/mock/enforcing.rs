//! [`EnforcingStandIn`]: the stand-in server, enforcing a rate limit the way
//! the strictest reading of NexHealth's would: over sliding windows.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use httpmock::{HttpMockRequest, HttpMockResponse, MockServer};

use crate::mock::payloads;
use crate::mock::stand_in::{Route, routes};
use crate::transport::limit::RateLimit;

/// What an [`EnforcingStandIn`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnforcementStats {
    /// Requests answered normally.
    pub accepted: u64,
    /// Requests answered 429 because a window was full.
    pub rejected: u64,
    /// Requests answered 429 on purpose ([`EnforcingStandIn::inject_429`]).
    pub injected: u64,
    /// The most accepted requests in any sliding window of one second.
    pub max_per_second: u64,
    /// The most accepted requests in any sliding window of one minute.
    pub max_per_minute: u64,
}

#[derive(Default)]
struct Windows {
    /// Arrival times of accepted requests, oldest first (the last minute is enough).
    recent: VecDeque<Instant>,
    /// Every accepted arrival, for the statistics.
    all: Vec<Instant>,
    rejected: u64,
    /// `Retry-After` values of 429s to answer next, whatever the windows say.
    inject: VecDeque<String>,
    injected: u64,
}

/// A stand-in that answers every operation with the spec's examples (the
/// same answers as [`StandIn`](crate::mock::StandIn)) but enforces `limit` over sliding
/// windows: a request that would make any window of one second hold more
/// than `per_second` accepted requests, or any window of one minute more than
/// `per_minute`, is answered 429 with `Retry-After: 1`. The token exchange
/// counts like any request, as it does at NexHealth.
pub struct EnforcingStandIn {
    server: MockServer,
    windows: Arc<Mutex<Windows>>,
}

impl EnforcingStandIn {
    /// Starts the server on a free loopback port.
    pub async fn start(limit: RateLimit) -> Self {
        let server = MockServer::start_async().await;
        let windows = Arc::new(Mutex::new(Windows::default()));
        let routes = routes();
        let shared = Arc::clone(&windows);
        server
            .mock_async(move |_, then| {
                then.respond_with(move |request: &HttpMockRequest| {
                    answer(&shared, limit, &routes, request)
                });
            })
            .await;
        Self { server, windows }
    }

    /// The base URL to give [`crate::ClientBuilder::base_url`].
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Answers the next request 429 with this `Retry-After` value (a hostile
    /// one, say `18446744073709551615`), whatever the windows hold. Counted in
    /// [`EnforcementStats::injected`], not as a rejection.
    pub fn inject_429(&self, retry_after: &str) {
        self.windows
            .lock()
            .expect("not poisoned")
            .inject
            .push_back(retry_after.to_string());
    }

    /// What the server saw so far.
    pub fn stats(&self) -> EnforcementStats {
        let windows = self.windows.lock().expect("not poisoned");
        EnforcementStats {
            accepted: windows.all.len() as u64,
            rejected: windows.rejected,
            injected: windows.injected,
            max_per_second: max_in_window(&windows.all, Duration::from_secs(1)),
            max_per_minute: max_in_window(&windows.all, Duration::from_secs(60)),
        }
    }
}

fn answer(
    windows: &Mutex<Windows>,
    limit: RateLimit,
    routes: &[Route],
    request: &HttpMockRequest,
) -> HttpMockResponse {
    let now = Instant::now();
    let json = |status: u16, body: String| {
        HttpMockResponse::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body)
    };
    let admitted = {
        let mut w = windows.lock().expect("not poisoned");
        if let Some(retry_after) = w.inject.pop_front() {
            w.injected += 1;
            drop(w);
            let body = serde_json::to_string(&payloads::error(429)).unwrap_or_default();
            return json(429, body).header("retry-after", retry_after).build();
        }
        while w
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            w.recent.pop_front();
        }
        let last_second = w
            .recent
            .iter()
            .rev()
            .take_while(|t| now.duration_since(**t) < Duration::from_secs(1))
            .count();
        if last_second >= limit.per_second.get() as usize
            || w.recent.len() >= limit.per_minute.get() as usize
        {
            w.rejected += 1;
            false
        } else {
            w.recent.push_back(now);
            w.all.push(now);
            true
        }
    };
    if !admitted {
        let body = serde_json::to_string(&payloads::error(429)).unwrap_or_default();
        return json(429, body).header("retry-after", "1").build();
    }
    let path = request.uri().path().to_string();
    match routes
        .iter()
        .find(|r| r.method == request.method_str() && r.pattern.is_match(&path))
    {
        Some(route) => match route.body() {
            body if body.is_empty() => HttpMockResponse::builder().status(route.status).build(),
            body => json(route.status, body).build(),
        },
        None => json(
            404,
            serde_json::to_string(&payloads::error(404)).unwrap_or_default(),
        )
        .build(),
    }
}

/// The most instants in any window of `length` (instants sorted).
fn max_in_window(instants: &[Instant], length: Duration) -> u64 {
    let mut start = 0;
    let mut best = 0;
    for end in 0..instants.len() {
        while instants[end].duration_since(instants[start]) >= length {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_sliding() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let instants = [at(0), at(900), at(950), at(1_850), at(1_899)];
        // 900, 950, 1850, 1899 lie within one second.
        assert_eq!(max_in_window(&instants, Duration::from_secs(1)), 4);
        assert_eq!(max_in_window(&instants, Duration::from_secs(60)), 5);
    }
}
