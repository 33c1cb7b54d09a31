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
//! - `--stop-redis-at S --stop-for D`: stops its own Redis S seconds in, for D seconds;
//! - `--share F`: the fallback share of each replica (default 1/replicas);
//! - `--concurrency C`: calls in flight per replica (default 8).
//!
//! It prints progress while it runs and ends with one JSON line: calls made,
//! 429s received, other errors, calls per second, the share of the budget
//! used, the fallback periods.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nexhealth_api::mock::{EnforcingStandIn, RedisServer};
use nexhealth_api::{CallExt, Client, RateLimit, RedisRateLimit, RetryPolicy};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Options {
    replicas: usize,
    seconds: u64,
    local: bool,
    stop_at: Option<u64>,
    stop_for: u64,
    share: Option<f64>,
    concurrency: usize,
    // Replica mode.
    replica: Option<usize>,
    base: Option<String>,
    redis: Option<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        replicas: 3,
        seconds: 60,
        local: false,
        stop_at: None,
        stop_for: 10,
        share: None,
        concurrency: 8,
        replica: None,
        base: None,
        redis: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--replicas" => o.replicas = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--local" => o.local = true,
            "--stop-redis-at" => o.stop_at = Some(value()?.parse()?),
            "--stop-for" => o.stop_for = value()?.parse()?,
            "--share" => o.share = Some(value()?.parse()?),
            "--concurrency" => o.concurrency = value()?.parse()?,
            "--replica" => o.replica = Some(value()?.parse()?),
            "--base" => o.base = Some(value()?),
            "--redis" => o.redis = Some(value()?),
            "--help" | "-h" => {
                println!(
                    "usage: fleet [--replicas N] [--seconds S] [--local] [--stop-redis-at S --stop-for D] [--share F] [--concurrency C]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown option {other} (see --help)"),
        }
    }
    if o.replicas == 0 || o.seconds == 0 || o.concurrency == 0 {
        bail!("--replicas, --seconds and --concurrency must be at least 1");
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
    if o.stop_at.is_some() && own_redis.is_none() {
        bail!("--stop-redis-at needs the example's own Redis (unset REDIS_URL)");
    }
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
        let mut command = Command::new(&exe);
        command
            .args([
                "--replica",
                &index.to_string(),
                "--base",
                &base,
                "--redis",
                &redis_url,
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
    let mut recovery_ms: Option<u64> = None;
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
        if let (Some(at), Some(redis)) = (o.stop_at, own_redis.as_mut()) {
            if stopped_at.is_none() && elapsed >= Duration::from_secs(at) {
                redis.stop();
                stopped_at = Some(Instant::now());
                println!("t={:>3}s  Redis stopped", elapsed.as_secs());
            }
            if restarted_at.is_none()
                && stopped_at.is_some_and(|s| s.elapsed() >= Duration::from_secs(o.stop_for))
            {
                redis.restart().map_err(anyhow::Error::msg)?;
                restarted_at = Some(Instant::now());
                println!("t={:>3}s  Redis restarted (empty)", elapsed.as_secs());
            }
        }
        // Recovered: every replica has reported, since the restart, that it is
        // off its fallback.
        if let Some(restarted) = restarted_at
            && recovery_ms.is_none()
            && received.iter().all(|at| *at > restarted)
            && latest.iter().all(|v| v["fallback_active"] == json!(false))
        {
            recovery_ms = Some(restarted.elapsed().as_millis() as u64);
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
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            bail!("a replica exited with {status}");
        }
    }
    let results: Vec<Value> = results
        .into_iter()
        .map(|r| r.context("a replica printed no result"))
        .collect::<anyhow::Result<_>>()?;
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
            "max_in_any_second": s.max_per_second,
            "max_in_any_minute": s.max_per_minute,
        })),
        "fallback_periods": results.iter().map(|v| v["fallbacks"].clone()).collect::<Vec<_>>(),
        "fallback_ms": results.iter().map(|v| v["fallback_ms"].clone()).collect::<Vec<_>>(),
        "redis_stop": o.stop_at.map(|at| json!({
            "at_s": at,
            "for_s": o.stop_for,
            "recovery_ms": recovery_ms,
        })),
    });
    println!("{summary}");
    Ok(())
}

async fn replica(index: usize, o: &Options) -> anyhow::Result<()> {
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
                match client.get_locations().timeout(left).await {
                    Ok(_) => {
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_rate_limited() => {
                        limited.fetch_add(1, Ordering::Relaxed);
                    }
                    // No budget before the run ends: this task is done.
                    Err(e) if e.is_timeout() => {
                        not_granted.fetch_add(1, Ordering::Relaxed);
                        break;
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
