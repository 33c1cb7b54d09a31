//! Faults on loopback, each with its outcome and the number of attempts.

use std::time::{Duration, Instant};

use nexhealth_api::mock::payloads;
use nexhealth_api::{CallExt, Client, RateLimit, RetryPolicy};
use nexhealth_contract_tests::faults::{FaultServer, Reply, Seen};
use nexhealth_contract_tests::{API_KEY, auth_body, fast_retries, token};

/// A server that hands out tokens and answers everything else with `other`.
async fn server(other: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> FaultServer {
    FaultServer::start(move |seen, n| {
        if seen.path == "/authenticates" {
            Reply::json(201, auth_body(&token("t", 3600)))
        } else {
            other(seen, n)
        }
    })
    .await
}

fn client(server: &FaultServer) -> Client {
    Client::builder(API_KEY)
        .base_url(server.base_url())
        .retry(fast_retries())
        .build()
        .unwrap()
}

fn locations() -> Reply {
    Reply::json(200, payloads::locations())
}

#[tokio::test]
async fn connection_dropped_mid_body_is_retried() {
    let body = serde_json::to_vec(&payloads::locations()).unwrap();
    let server = server(move |_, n| match n {
        0 => Reply::CutShort {
            declared: body.len(),
            body: body[..body.len() / 2].to_vec(),
        },
        _ => locations(),
    })
    .await;
    let institutions = client(&server).get_locations().await.unwrap();
    assert_eq!(institutions[0].locations.len(), 2);
    assert_eq!(server.count("GET", "/locations"), 2);
}

#[tokio::test]
async fn connection_dropped_every_time_is_a_transport_error_after_three_attempts() {
    let server = server(|_, _| Reply::Drop).await;
    let error = client(&server).get_locations().await.unwrap_err();
    assert!(error.is_transport(), "{error}");
    assert_eq!(server.count("GET", "/locations"), 3);
}

#[tokio::test]
async fn a_reply_slower_than_the_timeout() {
    let server =
        server(|_, _| Reply::Slow(Duration::from_millis(600), Box::new(locations()))).await;
    let client = Client::builder(API_KEY)
        .base_url(server.base_url())
        .retry(fast_retries())
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let error = client.get_locations().await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(server.count("GET", "/locations"), 3);
    // A longer timeout for this one call lets it through on the first attempt.
    let ok = client
        .get_locations()
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(server.count("GET", "/locations"), 4);
}

#[tokio::test]
async fn a_502_html_page_is_retried_then_reported() {
    let html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    let server = server(move |_, _| Reply::raw(502, "text/html", html)).await;
    let error = client(&server).get_locations().await.unwrap_err();
    assert!(error.is_server(), "{error}");
    assert_eq!(error.status().unwrap().as_u16(), 502);
    assert!(!error.to_string().contains("nginx"));
    assert_eq!(server.count("GET", "/locations"), 3);

    let server = server_502_once().await;
    client(&server).get_locations().await.unwrap();
    assert_eq!(server.count("GET", "/locations"), 2);
}

async fn server_502_once() -> FaultServer {
    server(|_, n| {
        if n == 0 {
            Reply::raw(502, "text/html", "<html>bad gateway</html>")
        } else {
            locations()
        }
    })
    .await
}

#[tokio::test]
async fn malformed_truncated_and_huge_json_are_invalid_responses_without_retry() {
    for body in [
        b"{\"code\": true, \"data\": [{\"id\": 1,".to_vec(),
        b"{]".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
    ] {
        let server = server(move |_, _| Reply::raw(200, "application/json", body.clone())).await;
        let error = client(&server).get_locations().await.unwrap_err();
        assert!(error.is_invalid_response(), "{error}");
        assert_eq!(server.count("GET", "/locations"), 1);
    }
    // Bigger than the client's body limit: refused without decoding.
    let big = vec![b' '; 2 * 1024 * 1024];
    let server = server(move |_, _| Reply::raw(200, "application/json", big.clone())).await;
    let client = Client::builder(API_KEY)
        .base_url(server.base_url())
        .max_body_bytes(1024 * 1024)
        .build()
        .unwrap();
    let error = client.get_locations().await.unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");
    assert_eq!(server.count("GET", "/locations"), 1);
}

/// The body limit holds on every path a body is read by: announced or
/// chunked, on a last attempt (handed on to the decoder) or one that may be
/// retried (read ahead); a body of exactly the limit is read, one byte more is not.
#[tokio::test]
async fn the_body_limit_holds_on_every_path_to_the_byte() {
    let mut json = serde_json::to_vec(&payloads::locations()).unwrap();
    let limit = json.len() + 100;
    json.resize(limit, b' ');
    for chunked in [false, true] {
        for policy in [RetryPolicy::none(), fast_retries()] {
            for (max, fits) in [(limit, true), (limit - 1, false)] {
                let body = json.clone();
                let server = server(move |_, _| {
                    if chunked {
                        Reply::Chunked { body: body.clone() }
                    } else {
                        Reply::raw(200, "application/json", body.clone())
                    }
                })
                .await;
                let client = Client::builder(API_KEY)
                    .base_url(server.base_url())
                    .max_body_bytes(max)
                    .retry(policy.clone())
                    .build()
                    .unwrap();
                let outcome = client.get_locations().await;
                let case = format!(
                    "chunked {chunked}, {} attempts, limit {max}",
                    policy.max_attempts()
                );
                match (fits, outcome) {
                    (true, Ok(institutions)) => {
                        assert_eq!(institutions[0].locations.len(), 2, "{case}")
                    }
                    (false, Err(error)) => {
                        assert!(error.to_string().contains("larger than"), "{case}: {error}")
                    }
                    (_, other) => panic!("{case}: {:?}", other.map(|_| ())),
                }
            }
        }
    }
}

#[tokio::test]
async fn a_very_large_valid_answer_decodes() {
    let body = payloads::locations_with(20_000);
    let server = server(move |_, _| Reply::json(200, &body)).await;
    let institutions = client(&server).get_locations().await.unwrap();
    assert_eq!(institutions[0].locations.len(), 20_000);
    assert_eq!(institutions[0].locations[19_999].id, 19_999);
    assert_eq!(server.count("GET", "/locations"), 1);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out() {
    let server = server(|_, n| match n {
        0 => Reply::json(429, payloads::error(429)).with_header("retry-after", "1"),
        _ => locations(),
    })
    .await;
    let started = Instant::now();
    client(&server).get_locations().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(server.count("GET", "/locations"), 2);
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_and_gives_up_after_three() {
    let server = server(|_, _| Reply::json(429, payloads::error(429))).await;
    let error = client(&server).get_locations().await.unwrap_err();
    assert!(error.is_rate_limited(), "{error}");
    assert_eq!(server.count("GET", "/locations"), 3);
}

#[tokio::test]
async fn a_storm_of_500s_is_not_retried() {
    let server = server(|_, _| Reply::json(500, payloads::error(500))).await;
    let client = client(&server);
    let calls = (0..20).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get_locations().await.map(drop) })
    });
    for result in futures::future::join_all(calls).await {
        assert!(result.unwrap().unwrap_err().is_server());
    }
    assert_eq!(server.count("GET", "/locations"), 20);
    assert_eq!(server.count("POST", "/authenticates"), 1);
}

#[tokio::test]
async fn a_dropped_connection_on_authenticates_is_retried() {
    let server = FaultServer::start(|seen, n| match (seen.path.as_str(), n) {
        ("/authenticates", 0) => Reply::Drop,
        ("/authenticates", _) => Reply::json(201, auth_body(&token("t", 3600))),
        _ => locations(),
    })
    .await;
    client(&server).get_locations().await.unwrap();
    assert_eq!(server.count("POST", "/authenticates"), 2);
    assert_eq!(server.count("GET", "/locations"), 1);
}

#[tokio::test]
async fn post_onboardings_is_never_retried_unless_the_caller_opts_in() {
    let server = server(|_, _| Reply::json(503, payloads::error(500))).await;
    let client = client(&server);
    let error = client
        .post_onboardings()
        .body(payloads::onboarding_request())
        .await
        .unwrap_err();
    assert!(error.is_server());
    assert_eq!(server.count("POST", "/onboardings"), 1);
    let error = client
        .post_onboardings()
        .body(payloads::onboarding_request())
        .retry_unsafe()
        .await
        .unwrap_err();
    assert!(error.is_server());
    assert_eq!(server.count("POST", "/onboardings"), 4);

    let dropped = server_dropping_posts().await;
    let error = crate::client(&dropped)
        .post_onboardings()
        .body(payloads::onboarding_request())
        .await
        .unwrap_err();
    assert!(error.is_transport(), "{error}");
    assert_eq!(dropped.count("POST", "/onboardings"), 1);
}

async fn server_dropping_posts() -> FaultServer {
    server(|seen, _| {
        if seen.method == "POST" {
            Reply::Drop
        } else {
            locations()
        }
    })
    .await
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for status in [400, 403, 404] {
        let server = server(move |_, _| Reply::json(status, payloads::error(status))).await;
        let error = client(&server).get_locations_id().id(7).await.unwrap_err();
        assert_eq!(error.status().unwrap().as_u16(), status);
        assert_eq!(server.count("GET", "/locations/7"), 1, "{status}");
    }
}

#[tokio::test]
async fn per_call_retry_policy_overrides_the_client() {
    let server = server(|_, _| Reply::json(503, payloads::error(500))).await;
    let client = client(&server);
    client
        .get_locations()
        .retry(RetryPolicy::none())
        .await
        .unwrap_err();
    assert_eq!(server.count("GET", "/locations"), 1);
    client
        .get_locations()
        .retry(fast_retries().with_max_attempts(5))
        .await
        .unwrap_err();
    assert_eq!(server.count("GET", "/locations"), 6);
}

#[tokio::test]
async fn the_rate_limiter_spaces_requests_across_clones() {
    let server = server(|_, _| locations()).await;
    let limit = RateLimit {
        per_second: std::num::NonZeroU32::new(5).unwrap(),
        per_minute: std::num::NonZeroU32::new(1_000).unwrap(),
    };
    let client = Client::builder(API_KEY)
        .base_url(server.base_url())
        .rate_limit(limit)
        .build()
        .unwrap();
    let started = Instant::now();
    let calls = (0..11).map(|i| {
        let client = client.clone();
        tokio::spawn(async move { client.get_locations_id().id(i).await.map(drop) })
    });
    for result in futures::future::join_all(calls).await {
        let _ = result.unwrap();
    }
    // 12 requests (one token exchange), at most 5 in any sliding second: three
    // seconds begun, each 1 s and the margin (100 ms) after the last.
    assert!(
        started.elapsed() >= Duration::from_millis(2_200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connections_are_reused() {
    let server = server(|_, _| locations()).await;
    let client = client(&server);
    for _ in 0..20 {
        client.get_locations().await.unwrap();
    }
    assert_eq!(server.count("GET", "/locations"), 20);
    assert_eq!(
        server.connections(),
        1,
        "one keep-alive connection for 21 sequential requests"
    );
}

#[tokio::test]
async fn a_body_cut_short_on_every_attempt_is_a_transport_error_after_three() {
    let body = serde_json::to_vec(&payloads::locations()).unwrap();
    let server = server(move |_, _| Reply::CutShort {
        declared: body.len(),
        body: body[..10].to_vec(),
    })
    .await;
    let error = client(&server).get_locations().await.unwrap_err();
    assert!(error.is_transport(), "{error}");
    assert_eq!(server.count("GET", "/locations"), 3);
}
