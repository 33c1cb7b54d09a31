//! What sharing the location directory saves and costs, in one run:
//! `cargo bench -p nexhealth-api --bench directory_fleet --features redis`.
//!
//! 1. `GET /locations` per minute: 1 and 3 watchers (each its own client and
//!    directory, `watch` every second), with and without a shared Redis,
//!    against the stand-in, counted at the stand-in over 30 s and scaled to a
//!    minute.
//! 2. Lookup latency: `LocationDirectory::location` on a directory that holds
//!    its copy (in process), on a new replica whose first lookup reads the
//!    fleet's copy from Redis, and on a new unshared replica whose first
//!    lookup fetches `GET /locations`. Median and p99 of 300 each.

use std::time::{Duration, Instant};

use futures::StreamExt;
use nexhealth_api::fleet::FleetShare;
use nexhealth_api::mock::{RedisServer, StandIn};
use nexhealth_api::{Client, LocationDirectory};

const WATCH_EVERY: Duration = Duration::from_secs(1);
const WATCH_FOR: Duration = Duration::from_secs(30);
const LOOKUPS: usize = 300;

fn client(base: &str) -> Client {
    Client::builder("bench-key")
        .base_url(base)
        .no_rate_limit()
        .build()
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `watchers` directories watching for `WATCH_FOR`: the stand-in's count of
/// `GET /locations` per minute.
async fn per_minute(watchers: usize, redis: Option<&RedisServer>) -> f64 {
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut directory = LocationDirectory::new(client(&server.base_url()));
        if let Some(redis) = redis {
            directory = directory
                .shared(&FleetShare::new(redis.url()).prefix(format!("bench{watchers}")))
                .unwrap();
        }
        let stream = directory.watch(WATCH_EVERY);
        tasks.push(tokio::spawn(stream.for_each(|_| async {})));
    }
    tokio::time::sleep(WATCH_FOR).await;
    for task in tasks {
        task.abort();
    }
    server.locations_served() as f64 * 60.0 / WATCH_FOR.as_secs_f64()
}

async fn lookups(mut one: impl AsyncFnMut() -> Duration) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(LOOKUPS);
    for _ in 0..LOOKUPS {
        times.push(one().await);
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let redis = RedisServer::start().expect("redis-server (apt-get install -y redis-server)");
    println!("| watchers | Redis | GET /locations per minute |");
    println!("|---|---|---|");
    for (watchers, shared) in [(1, false), (3, false), (1, true), (3, true)] {
        let rate = per_minute(watchers, shared.then_some(&redis)).await;
        println!(
            "| {watchers} | {} | {rate:.0} |",
            if shared { "shared" } else { "none" }
        );
    }

    let server = StandIn::start().await;
    let share = FleetShare::new(redis.url()).prefix("bench-lookup");
    let warm = LocationDirectory::new(client(&server.base_url()));
    warm.location(7).await.unwrap();
    // The fleet's copy, stored once.
    LocationDirectory::new(client(&server.base_url()))
        .shared(&share)
        .unwrap()
        .location(7)
        .await
        .unwrap();
    let in_process = lookups(async || {
        let started = Instant::now();
        assert!(warm.location(7).await.unwrap().is_some());
        started.elapsed()
    })
    .await;
    let from_redis = lookups(async || {
        let replica = LocationDirectory::new(client(&server.base_url()))
            .shared(&share)
            .unwrap();
        let started = Instant::now();
        assert!(replica.location(7).await.unwrap().is_some());
        let took = started.elapsed();
        assert_eq!(replica.fetches(), 0, "read from the fleet's copy");
        took
    })
    .await;
    let fetched = lookups(async || {
        let replica = LocationDirectory::new(client(&server.base_url()));
        let started = Instant::now();
        assert!(replica.location(7).await.unwrap().is_some());
        started.elapsed()
    })
    .await;
    println!();
    println!("| lookup of location 7 | median | p99 |");
    println!("|---|---|---|");
    for (name, (median, p99)) in [
        ("in process (the directory holds its copy)", in_process),
        ("new replica, the fleet's copy from Redis", from_redis),
        (
            "new replica, unshared: GET /locations (token exchange included)",
            fetched,
        ),
    ] {
        println!("| {name} | {:.1} µs | {:.1} µs |", us(median), us(p99));
    }
}
