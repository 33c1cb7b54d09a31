//! What the shared limiter says in the logs: how long each call waited for
//! its budget, whether the fallback is active, and one warning each way when
//! Redis goes away and comes back; never the API key or the Redis password.

use std::time::Duration;

use nexhealth_api::mock::{EnforcingStandIn, RedisServer};
use nexhealth_api::{Client, RateLimit, RedisRateLimit};
use nexhealth_contract_tests::Capture;

const KEY: &str = "limiter-logs-key-77c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_logs_its_wait_and_one_warning_each_way() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("nexhealth_api=debug"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let logs = || capture.text();

    let mut redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let client = Client::builder(KEY)
        .base_url(server.base_url())
        .rate_limit(RedisRateLimit::new(redis.url()).redis_timeout(Duration::from_millis(200)))
        .build()
        .unwrap();
    client.get_locations().await.unwrap();
    assert!(logs().contains("budget_wait_ms="), "{}", logs());
    assert!(logs().contains("limiter_fallback=false"), "{}", logs());

    redis.stop();
    for _ in 0..3 {
        client.get_locations().await.unwrap();
    }
    assert!(logs().contains("limiter_fallback=true"), "{}", logs());
    redis.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for _ in 0..3 {
        client.get_locations().await.unwrap();
    }
    let text = logs();
    assert_eq!(text.matches("Redis unavailable").count(), 1, "{text}");
    assert_eq!(text.matches("Redis is back").count(), 1, "{text}");
    assert!(!text.contains(KEY), "the API key reached the logs");
    assert!(
        !text.contains(&redis.url()),
        "the Redis URL reached the logs"
    );
}
