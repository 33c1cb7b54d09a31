//! A fleet of replica processes sharing one API key, and one rate-limit
//! budget through Redis, calling `GET /locations` as fast as the limiter allows.
//!
//! ```sh
//! cargo run -p nexhealth-api --example fleet --features redis -- --replicas 3 --seconds 60
//! ```
//!
//! Against `NEXHEALTH_BASE_URL` (with `NEXHEALTH_API_KEY`) when set; otherwise
//! an embedded stand-in that enforces NexHealth's limits over sliding windows
//! and answers 429 beyond them. With `REDIS_URL` when set; otherwise a
//! `redis-server` it starts itself on loopback. Options:
//!
//! - `--local`: each replica limits only itself (the in-process limiter), for contrast;
//! - `--stop-redis-at S[,S…] --stop-for D`: stops its own Redis S seconds in
//!   (each S), for D seconds, and restarts it empty;
//! - `--partition-replica N --partition-at S --partition-for D`: cuts replica N
//!   (from 0) off from Redis S seconds in, for D seconds, while the others keep it
//!   (every replica reaches Redis through a proxy of the example's own);
//! - `--hostile-429-at S`: the stand-in answers one request S seconds in with
//!   429 and `Retry-After: 18446744073709551615`;
//! - `--busy N`: N threads spin for the whole run, keeping the cores busy;
//! - `--chaos`: all of the above at once on four replicas for 60 s (Redis
//!   stopped at 4 s and 22 s for 3 s each, replica 1 cut off from 10 s to 20 s,
//!   the hostile 429 at 14 s, two busy threads), then checks the outcome: no
//!   429 beyond the hostile one, every replica exits cleanly, at least 85 % of
//!   the budget used. Exits 1 when a check fails;
//! - `--share F`: the fallback share of each replica (default 1/replicas);
//! - `--concurrency C`: calls in flight per replica (default 8);
//! - `--metrics ADDR`: replica i serves the SDK's metrics in Prometheus's text
//!   format at `http://ADDR/metrics` with ADDR's port plus i.
//!
//! It prints progress while it runs and ends with one JSON line: calls made,
//! 429s received, other errors, calls per second, the share of the budget
//! used, the fallback periods, and the faults it caused.

#[path = "support/metrics.rs"]
mod metrics;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nexhealth_api::mock::{EnforcingStandIn, FaultProxy, RedisServer};
use nexhealth_api::{CallExt, Client, RateLimit, RedisRateLimit, RetryPolicy};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Options {
    replicas: usize,
    seconds: u64,
    local: bool,
    stop_at: Vec<u64>,
    stop_for: u64,
    partition: Option<usize>,
    partition_at: u64,
    partition_for: u64,
    hostile_at: Option<u64>,
    busy: usize,
    chaos: bool,
    share: Option<f64>,
    concurrency: usize,
    // Replica mode.
    replica: Option<usize>,
    base: Option<String>,
    redis: Option<String>,
    metrics: Option<std::net::SocketAddr>,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        replicas: 3,
        seconds: 60,
        local: false,
        stop_at: Vec::new(),
        stop_for: 10,
        partition: None,
        partition_at: 10,
        partition_for: 10,
        hostile_at: None,
        busy: 0,
        chaos: false,
        share: None,
        concurrency: 8,
        replica: None,
        base: None,
        redis: None,
        metrics: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--replicas" => o.replicas = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--local" => o.local = true,
            "--stop-redis-at" => {
                o.stop_at = value()?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?;
            }
            "--stop-for" => o.stop_for = value()?.parse()?,
            "--partition-replica" => o.partition = Some(value()?.parse()?),
            "--partition-at" => o.partition_at = value()?.parse()?,
            "--partition-for" => o.partition_for = value()?.parse()?,
            "--hostile-429-at" => o.hostile_at = Some(value()?.parse()?),
            "--busy" => o.busy = value()?.parse()?,
            "--chaos" => {
                o.chaos = true;
                o.replicas = 4;
                o.seconds = 60;
                o.stop_at = vec![4, 22];
                o.stop_for = 3;
                o.partition = Some(1);
                o.partition_at = 10;
                o.partition_for = 10;
                o.hostile_at = Some(14);
                o.busy = 2;
            }
            "--share" => o.share = Some(value()?.parse()?),
            "--concurrency" => o.concurrency = value()?.parse()?,
            "--replica" => o.replica = Some(value()?.parse()?),
            "--base" => o.base = Some(value()?),
            "--redis" => o.redis = Some(value()?),
            "--metrics" => {
                let addr = value()?;
                o.metrics = Some(addr.parse().with_context(|| {
                    format!("--metrics {addr}: give an address such as 127.0.0.1:9464")
                })?);
            }
            "--help" | "-h" => {
                println!(
                    "usage: fleet [--replicas N] [--seconds S] [--local] [--stop-redis-at S[,S...] --stop-for D] \
                     [--partition-replica N --partition-at S --partition-for D] [--hostile-429-at S] [--busy N] \
                     [--chaos] [--share F] [--concurrency C] [--metrics ADDR]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown option {other} (see --help)"),
        }
    }
    if o.replicas == 0 || o.seconds == 0 || o.concurrency == 0 {
        bail!("--replicas, --seconds and --concurrency must be at least 1");
    }
    if o.partition.is_some_and(|n| n >= o.replicas) {
        bail!(
            "--partition-replica must name a replica from 0 to {}",
            o.replicas - 1
        );
    }
    if o.seconds > 3_600 || o.busy > 64 || o.replicas > 64 || o.concurrency > 1_024 {
        bail!("at most 3,600 seconds, 64 replicas, 64 busy threads and 1,024 calls in flight");
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    match o.replica {
        Some(index) => replica(index, &o).await,
        None => fleet(o).await,
    }
}

/// How many requests NexHealth's limits allow in a run of `seconds`.
fn allowed(limit: RateLimit, seconds: u64) -> u64 {
    let (ps, pm) = (
        u64::from(limit.per_second.get()),
        u64::from(limit.per_minute.get()),
    );
    if seconds <= 60 {
        pm.min(ps * seconds)
    } else {
        pm * seconds / 60
    }
}

async fn fleet(o: Options) -> anyhow::Result<()> {
    let limit = RateLimit::NEXHEALTH_DEFAULT;
    let (base, key, stand_in) = match std::env::var("NEXHEALTH_BASE_URL") {
        Ok(base) => {
            let key = std::env::var(nexhealth_api::API_KEY_VAR)
                .context("NEXHEALTH_BASE_URL is set: set NEXHEALTH_API_KEY too")?;
            (base, key, None)
        }
        Err(_) => {
            let server = EnforcingStandIn::start(limit).await;
            (
                server.base_url(),
                "fleet-demo-key".to_string(),
                Some(server),
            )
        }
    };
    let (redis_url, mut own_redis) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = RedisServer::start().map_err(anyhow::Error::msg)?;
            (server.url(), Some(server))
        }
    };
    if !o.stop_at.is_empty() && own_redis.is_none() {
        bail!("--stop-redis-at needs the example's own Redis (unset REDIS_URL)");
    }
    if o.hostile_at.is_some() && stand_in.is_none() {
        bail!("--hostile-429-at needs the embedded stand-in (unset NEXHEALTH_BASE_URL)");
    }
    // Every replica reaches Redis through a proxy of its own, so that one can be cut off.
    let redis_port = redis_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok());
    let proxies: Vec<FaultProxy> = match (o.partition, redis_port) {
        (Some(_), Some(port)) => (0..o.replicas)
            .map(|_| FaultProxy::start(port).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?,
        (Some(_), None) => bail!("--partition-replica needs a redis://host:port/ URL"),
        (None, _) => Vec::new(),
    };
    let busy_until = Instant::now() + Duration::from_secs(o.seconds);
    let busy: Vec<_> = (0..o.busy)
        .map(|_| {
            std::thread::spawn(move || {
                let mut x = 0u64;
                while Instant::now() < busy_until {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                        );
                    }
                }
                x
            })
        })
        .collect();
    let share = o.share.unwrap_or(1.0 / o.replicas as f64);
    println!(
        "fleet: {} replicas for {} s, {} limiter, against {}{}",
        o.replicas,
        o.seconds,
        if o.local {
            "in-process"
        } else {
            "shared (Redis)"
        },
        if stand_in.is_some() {
            "an embedded stand-in enforcing NexHealth's limits at "
        } else {
            ""
        },
        base
    );

    let exe = std::env::current_exe()?;
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Value)>();
    let mut children = Vec::new();
    for index in 0..o.replicas {
        let replica_redis = proxies
            .get(index)
            .map_or_else(|| redis_url.clone(), FaultProxy::redis_url);
        let mut command = Command::new(&exe);
        command
            .args([
                "--replica",
                &index.to_string(),
                "--base",
                &base,
                "--redis",
                &replica_redis,
            ])
            .args([
                "--seconds",
                &o.seconds.to_string(),
                "--share",
                &share.to_string(),
            ])
            .args(["--concurrency", &o.concurrency.to_string()])
            .env(nexhealth_api::API_KEY_VAR, &key)
            .stdout(Stdio::piped());
        if o.local {
            command.arg("--local");
        }
        // Replica i serves its metrics on ADDR's port + i.
        if let Some(addr) = o.metrics {
            let port = addr
                .port()
                .checked_add(index as u16)
                .context("--metrics port")?;
            command.args([
                "--metrics",
                &std::net::SocketAddr::new(addr.ip(), port).to_string(),
            ]);
        }
        let mut child = command.spawn().context("starting a replica")?;
        let stdout = child.stdout.take().context("replica stdout")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send((index, value));
                }
            }
        });
        children.push(child);
    }
    drop(tx);

    let started = Instant::now();
    let mut latest: Vec<Value> = vec![Value::Null; o.replicas];
    let mut received: Vec<Instant> = vec![started; o.replicas];
    let mut results: Vec<Option<Value>> = vec![None; o.replicas];
    let mut stopped_at: Option<Instant> = None;
    let mut restarted_at: Option<Instant> = None;
    let mut recovery_ms: Vec<u64> = Vec::new();
    let mut stops_done = 0;
    let mut partitioned: Option<bool> = None;
    let mut hostile_sent = false;
    let mut last_print = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((index, value)) => {
                if value.get("result").is_some() {
                    results[index] = Some(value);
                } else {
                    latest[index] = value;
                    received[index] = Instant::now();
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let elapsed = started.elapsed();
        if let (Some(&at), Some(redis)) = (o.stop_at.get(stops_done), own_redis.as_mut()) {
            if stopped_at.is_none() && elapsed >= Duration::from_secs(at) {
                redis.stop();
                stopped_at = Some(Instant::now());
                restarted_at = None;
                println!("t={:>3}s  Redis stopped", elapsed.as_secs());
            }
            if stopped_at.is_some_and(|s| s.elapsed() >= Duration::from_secs(o.stop_for)) {
                redis.restart().map_err(anyhow::Error::msg)?;
                stopped_at = None;
                restarted_at = Some(Instant::now());
                stops_done += 1;
                println!("t={:>3}s  Redis restarted (empty)", elapsed.as_secs());
            }
        }
        if let Some(index) = o.partition {
            let at = Duration::from_secs(o.partition_at);
            let until = at + Duration::from_secs(o.partition_for);
            if partitioned.is_none() && elapsed >= at {
                proxies[index].cut();
                partitioned = Some(true);
                println!(
                    "t={:>3}s  replica {index} cut off from Redis",
                    elapsed.as_secs()
                );
            }
            if partitioned == Some(true) && elapsed >= until {
                proxies[index].restore();
                partitioned = Some(false);
                println!(
                    "t={:>3}s  replica {index} reaches Redis again",
                    elapsed.as_secs()
                );
            }
        }
        if let (Some(at), Some(server)) = (o.hostile_at, stand_in.as_ref())
            && !hostile_sent
            && elapsed >= Duration::from_secs(at)
        {
            server.inject_429("18446744073709551615");
            hostile_sent = true;
            println!(
                "t={:>3}s  the next answer is a 429 with Retry-After 2^64 - 1",
                elapsed.as_secs()
            );
        }
        // Recovered: every replica has reported, since the restart, that it is
        // off its fallback.
        if let Some(restarted) = restarted_at
            && received.iter().all(|at| *at > restarted)
            && latest.iter().all(|v| v["fallback_active"] == json!(false))
        {
            recovery_ms.push(restarted.elapsed().as_millis() as u64);
            restarted_at = None;
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            let sum = |field: &str| latest.iter().filter_map(|v| v[field].as_u64()).sum::<u64>();
            let fallback = latest
                .iter()
                .filter(|v| v["fallback_active"] == json!(true))
                .count();
            println!(
                "t={:>3}s  calls={}  429={}  errors={}  on fallback={fallback}/{}",
                elapsed.as_secs(),
                sum("calls"),
                sum("responses_429"),
                sum("errors"),
                o.replicas
            );
        }
    }
    let mut clean_exits = 0;
    for mut child in children {
        let status = child.wait()?;
        if status.success() {
            clean_exits += 1;
        } else {
            println!("a replica exited with {status}");
        }
    }
    for thread in busy {
        let _ = thread.join();
    }
    let results: Vec<Value> = results.into_iter().flatten().collect();
    let sum = |field: &str| {
        results
            .iter()
            .filter_map(|v| v[field].as_u64())
            .sum::<u64>()
    };
    let calls = sum("calls");
    let budget = allowed(limit, o.seconds);
    let server = stand_in.as_ref().map(|s| s.stats());
    // What reached the server (token exchanges included), or our own count.
    let spent = server.map_or(calls, |s| s.accepted);
    let summary = json!({
        "replicas": o.replicas,
        "seconds": o.seconds,
        "limiter": if o.local { "in-process" } else { "redis" },
        "calls": calls,
        "responses_429": sum("responses_429"),
        "other_errors": sum("errors"),
        "not_granted_before_the_end": sum("not_granted"),
        "calls_per_second": (calls as f64 / o.seconds as f64 * 10.0).round() / 10.0,
        "budget_allowed": budget,
        "budget_used": (spent as f64 / budget as f64 * 1000.0).round() / 1000.0,
        "server": server.map(|s| json!({
            "accepted": s.accepted,
            "rejected_429": s.rejected,
            "hostile_429": s.injected,
            "max_in_any_second": s.max_per_second,
            "max_in_any_minute": s.max_per_minute,
        })),
        "replicas_exited_cleanly": clean_exits,
        "fallback_periods": results.iter().map(|v| v["fallbacks"].clone()).collect::<Vec<_>>(),
        "fallback_ms": results.iter().map(|v| v["fallback_ms"].clone()).collect::<Vec<_>>(),
        "redis_stops": (!o.stop_at.is_empty()).then(|| json!({
            "at_s": o.stop_at,
            "for_s": o.stop_for,
            "recovery_ms": recovery_ms,
        })),
        "partition": o.partition.map(|index| json!({
            "replica": index,
            "at_s": o.partition_at,
            "for_s": o.partition_for,
        })),
        "hostile_429_at_s": o.hostile_at,
        "busy_threads": o.busy,
    });
    println!("{summary}");
    if o.chaos {
        let server = server.context("--chaos runs against the embedded stand-in")?;
        let used = spent as f64 / budget as f64;
        let mut failures = Vec::new();
        if server.rejected > 0 {
            failures.push(format!(
                "{} responses with 429 beyond the hostile one",
                server.rejected
            ));
        }
        if server.injected != 1 {
            failures.push(format!("{} hostile 429s sent, not 1", server.injected));
        }
        if clean_exits != o.replicas {
            failures.push(format!(
                "{} of {} replicas exited cleanly",
                clean_exits, o.replicas
            ));
        }
        if used < 0.85 {
            failures.push(format!(
                "{:.1} % of the budget used, under 85 %",
                used * 100.0
            ));
        }
        if !failures.is_empty() {
            bail!("chaos: {}", failures.join("; "));
        }
        println!(
            "chaos: passed (no 429 beyond the hostile one, every replica exited cleanly, {:.1} % of the budget used)",
            used * 100.0
        );
    }
    Ok(())
}

async fn replica(index: usize, o: &Options) -> anyhow::Result<()> {
    let _metrics = match o.metrics {
        Some(addr) => Some(metrics::serve(&addr.to_string()).await?),
        None => None,
    };
    let base = o.base.clone().context("--base")?;
    let key = std::env::var(nexhealth_api::API_KEY_VAR).context("NEXHEALTH_API_KEY")?;
    let limit = RateLimit::NEXHEALTH_DEFAULT;
    let mut builder = Client::builder(key)
        .base_url(base)
        // Every 429 counts: none is retried away.
        .retry(RetryPolicy::none());
    builder = if o.local {
        builder.rate_limit(limit)
    } else {
        builder.rate_limit(
            RedisRateLimit::new(o.redis.clone().context("--redis")?)
                .limit(limit)
                .fallback_share(o.share.unwrap_or(1.0)),
        )
    };
    let client = builder.build()?;
    let started = Instant::now();
    let end = started + Duration::from_secs(o.seconds);
    let calls = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let not_granted = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (client, calls, limited, errors, not_granted) = (
            client.clone(),
            calls.clone(),
            limited.clone(),
            errors.clone(),
            not_granted.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let left = end.saturating_duration_since(Instant::now());
                match client.get_locations().deadline(left).await {
                    Ok(_) => {
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                    // No budget before the deadline: wait for it, unless the run ends first.
                    Err(e) if e.is_budget_unavailable() => {
                        let free_in = e.retry_after().unwrap_or(left);
                        let left = end.saturating_duration_since(Instant::now());
                        if free_in >= left {
                            not_granted.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        tokio::time::sleep(free_in.max(Duration::from_millis(10))).await;
                    }
                    // A 429 NexHealth (or the stand-in) sent.
                    Err(e) if e.status().is_some_and(|s| s.as_u16() == 429) => {
                        limited.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Progress, twice a second, and the time spent on the fallback.
    let fallback_ms = Arc::new(AtomicU64::new(0));
    let reporter = {
        let (client, calls, limited, errors, done, fallback_ms) = (
            client.clone(),
            calls.clone(),
            limited.clone(),
            errors.clone(),
            done.clone(),
            fallback_ms.clone(),
        );
        tokio::spawn(async move {
            let tick = Duration::from_millis(250);
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(tick).await;
                let status = client.rate_limit_status();
                let active = status.is_some_and(|s| s.fallback_active);
                if active {
                    fallback_ms.fetch_add(tick.as_millis() as u64, Ordering::Relaxed);
                }
                println!(
                    "{}",
                    json!({
                        "replica": index,
                        "at_ms": started.elapsed().as_millis() as u64,
                        "calls": calls.load(Ordering::Relaxed),
                        "responses_429": limited.load(Ordering::Relaxed),
                        "errors": errors.load(Ordering::Relaxed),
                        "fallback_active": active,
                    })
                );
            }
        })
    };
    for task in tasks {
        task.await?;
    }
    done.store(true, Ordering::Relaxed);
    reporter.await?;
    println!(
        "{}",
        json!({
            "result": true,
            "replica": index,
            "calls": calls.load(Ordering::Relaxed),
            "responses_429": limited.load(Ordering::Relaxed),
            "errors": errors.load(Ordering::Relaxed),
            "not_granted": not_granted.load(Ordering::Relaxed),
            "fallbacks": client.rate_limit_status().map_or(0, |s| s.fallbacks),
            "fallback_ms": fallback_ms.load(Ordering::Relaxed),
        })
    );
    Ok(())
}
