//! What the shared limiter costs per call on loopback, against the in-process
//! one, in one run: `cargo bench -p nexhealth-api --bench limiter --features redis`.
//!
//! The same client call (`GET /locations/{id}` against the stand-in server) is
//! timed with no limiter, with the in-process limiter and with the Redis
//! limiter, in interleaved rounds so that the machine's drift hits all three
//! alike. The limits are set far above what the run sends, so nothing waits
//! for budget: the difference is the limiter's own work (for Redis, one
//! EVALSHA round trip). Prints the median and p99 of each and of the added
//! latency.

use std::time::{Duration, Instant};

use nexhealth_api::mock::{RedisServer, StandIn};
use nexhealth_api::{Client, RateLimit, RedisRateLimit};

const ROUNDS: usize = 10;
const CALLS_PER_ROUND: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test` run of benches passes nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let redis = RedisServer::start().expect("redis-server (apt-get install -y redis-server)");
    let stand_in = StandIn::start().await;
    let huge = RateLimit::new(1_000_000, 1_000_000);
    let build = |limiter: Option<nexhealth_api::RateLimiter>| {
        let builder = Client::builder("bench-key").base_url(stand_in.base_url());
        match limiter {
            Some(l) => builder.rate_limit(l),
            None => builder.no_rate_limit(),
        }
        .build()
        .unwrap()
    };
    let clients = [
        ("none", build(None)),
        ("in-process", build(Some(huge.into()))),
        (
            "redis",
            build(Some(RedisRateLimit::new(redis.url()).limit(huge).into())),
        ),
    ];
    // Warm up: token exchange, connections, script loaded.
    for (_, client) in &clients {
        for _ in 0..50 {
            client.get_locations_id().id(7).await.unwrap();
        }
    }
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for (i, (_, client)) in clients.iter().enumerate() {
            for _ in 0..CALLS_PER_ROUND {
                let started = Instant::now();
                client.get_locations_id().id(7).await.unwrap();
                samples[i].push(started.elapsed());
            }
        }
    }
    for s in &mut samples {
        s.sort();
    }
    println!(
        "per-call latency, {} calls each, loopback:",
        ROUNDS * CALLS_PER_ROUND
    );
    println!("| limiter | median | p99 |");
    println!("|---|---|---|");
    for (i, (name, _)) in clients.iter().enumerate() {
        println!(
            "| {name} | {:.0} µs | {:.0} µs |",
            us(percentile(&samples[i], 0.5)),
            us(percentile(&samples[i], 0.99))
        );
    }
    let added = |p: f64| us(percentile(&samples[2], p)) - us(percentile(&samples[1], p));
    println!(
        "| Redis over in-process | +{:.0} µs | +{:.0} µs |",
        added(0.5),
        added(0.99)
    );
}
