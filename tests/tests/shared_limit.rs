//! The rate limit shared through Redis: a real `redis-server` per test (Debian's
//! package; without it these tests fail and name it), a stand-in NexHealth that
//! enforces the limit over sliding windows and answers 429 beyond it, and
//! several clients (and, once, several OS processes) hammering it. Faults:
//! Redis stopped, restarted empty, slow, read-only after a failover, answering
//! garbage or absurd values, and one replica cut off while the others are not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nexhealth_api::mock::{EnforcingStandIn, FaultProxy, RedisCluster, RedisServer};
use nexhealth_api::{CallExt, Client, MAX_SHARED_PAUSE, RateLimit, RedisRateLimit, RetryPolicy};

const KEY: &str = "shared-limit-test-key-9f3";

/// One test at a time: each measures windows and waits on a 2-core machine,
/// so they do not share it with each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("{e}"))
}

fn shared(redis_url: &str, limit: RateLimit) -> RedisRateLimit {
    RedisRateLimit::new(redis_url)
        .limit(limit)
        .redis_timeout(Duration::from_millis(200))
}

fn client_for(key: &str, base: &str, limit: impl Into<nexhealth_api::RateLimiter>) -> Client {
    Client::builder(key)
        .base_url(base)
        .rate_limit(limit)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

fn client(base: &str, limit: impl Into<nexhealth_api::RateLimiter>) -> Client {
    client_for(KEY, base, limit)
}

/// Three clients of one shared budget, each falling back to a third of it.
fn replicas(server: &EnforcingStandIn, redis_url: &str, limit: RateLimit) -> Vec<Client> {
    (0..3)
        .map(|_| {
            client(
                &server.base_url(),
                shared(redis_url, limit).fallback_share(1.0 / 3.0),
            )
        })
        .collect()
}

/// Calls `GET /locations` on every client, `per_client` at a time, for `run`.
/// A call the limiter cannot fit before the end of the run is not made.
/// Answers (successes, failures).
async fn hammer(clients: &[Client], per_client: usize, run: Duration) -> (u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for client in clients {
        for _ in 0..per_client {
            let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let left = until.saturating_duration_since(Instant::now());
                    match client.get_locations().deadline(left).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) if e.is_budget_unavailable() => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        Err(e) => {
                            eprintln!("hammer: {e}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The grants Redis holds for the fleet: the members of the one log.
async fn grants_in_redis(url: &str) -> u64 {
    let mut connection = connection(url).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*:log")
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut total = 0;
    for key in keys {
        let n: u64 = redis::cmd("ZCARD")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        total += n;
    }
    total
}

/// Waits up to `within` for every client's fallback state to be `active`,
/// making no call.
async fn until_fallback(clients: &[Client], active: bool, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if clients
            .iter()
            .all(|c| c.rate_limit_status().unwrap().fallback_active == active)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Three clients, one budget: never a 429, and the windows are used well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_redis_stay_inside_the_per_second_window() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let limit = RateLimit::new(20, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let clients: Vec<Client> = (0..3)
        .map(|_| client(&server.base_url(), shared(&redis.url(), limit)))
        .collect();
    let (ok, failed) = hammer(&clients, 4, Duration::from_millis(3_050)).await;
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(failed, 0);
    assert!(stats.max_per_second <= 20, "{stats:?}");
    // The budget is used: some second held the whole limit.
    assert!(stats.max_per_second >= 18, "{stats:?}");
    assert!(ok >= 45, "{ok} calls in 3 s at 20/s");
    for client in &clients {
        let status = client.rate_limit_status().unwrap();
        assert!(status.shared && !status.fallback_active && status.fallbacks == 0);
    }
    // Every grant is in Redis once: the accounting is exact.
    assert_eq!(grants_in_redis(&redis.url()).await, stats.accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_redis_stay_inside_the_per_minute_window() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let limit = RateLimit::new(100, 40);
    let server = EnforcingStandIn::start(limit).await;
    let clients: Vec<Client> = (0..3)
        .map(|_| client(&server.base_url(), shared(&redis.url(), limit)))
        .collect();
    let calls: Vec<_> = futures::stream::iter(0..60)
        .map(|i| {
            let client = clients[i % 3].clone();
            async move {
                client
                    .get_locations()
                    .deadline(Duration::from_secs(2))
                    .await
            }
        })
        .buffer_unordered(12)
        .collect()
        .await;
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    // 40 slots a minute, three token exchanges among them.
    assert_eq!(stats.accepted, 40, "{stats:?}");
    assert_eq!(calls.iter().filter(|c| c.is_ok()).count(), 37);
    let refused = calls
        .iter()
        .filter(|c| matches!(c, Err(e) if e.is_budget_unavailable()))
        .count();
    assert_eq!(
        refused, 23,
        "the rest were refused: no budget before their deadline"
    );
}

/// The same load with each client limiting only itself: the server's 429s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_limiting_only_themselves_collect_429s() {
    let _serial = SERIAL.lock().await;
    let limit = RateLimit::new(20, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let clients: Vec<Client> = (0..3).map(|_| client(&server.base_url(), limit)).collect();
    let (_, failed) = hammer(&clients, 4, Duration::from_secs(2)).await;
    let stats = server.stats();
    assert!(stats.rejected > 0, "{stats:?}");
    assert!(failed > 0);
}

/// Several OS processes: this test binary, run again as replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_processes_share_one_budget() {
    const REPLICA: &str = "NEXHEALTH_TEST_REPLICA";
    if let Ok(spec) = std::env::var(REPLICA) {
        let (base, redis_url) = spec.split_once(' ').unwrap();
        let limit = RateLimit::new(20, 10_000);
        let clients = vec![client(base, shared(redis_url, limit))];
        let (_, failed) = hammer(&clients, 4, Duration::from_secs(3)).await;
        assert_eq!(failed, 0);
        return;
    }
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let limit = RateLimit::new(20, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["replica_processes_share_one_budget", "--exact", "--quiet"])
                .env(REPLICA, format!("{} {}", server.base_url(), redis.url()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let clients = vec![client(&server.base_url(), shared(&redis.url(), limit))];
    let (_, failed) = hammer(&clients, 4, Duration::from_secs(3)).await;
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a replica failed");
    }
    let stats = server.stats();
    assert_eq!(failed, 0);
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert!((18..=20).contains(&stats.max_per_second), "{stats:?}");
}

/// Outages in every shape, two within one minute: a hiccup (Redis keeps its
/// data), a stop and an empty restart, another stop and restart. No call
/// fails, no 429, and afterwards Redis holds every grant of the fleet exactly
/// once: the fallbacks' grants (unique names) handed over by the background
/// probe with no call made, the grants a restart lost restored, and the
/// seeds' placeholders never counted as grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounting_is_exact_across_outages() {
    let _serial = SERIAL.lock().await;
    let mut redis = redis();
    let limit = RateLimit::new(30, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let clients = replicas(&server, &redis.url(), limit);
    let (_, failed) = hammer(&clients, 2, Duration::from_millis(1_200)).await;
    assert_eq!(failed, 0);
    assert_eq!(grants_in_redis(&redis.url()).await, server.stats().accepted);

    // A 0.6 s hiccup: slower than the Redis timeout, data kept.
    let port = redis.port();
    let hiccup = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        use std::io::{Read, Write};
        stream.write_all(b"DEBUG SLEEP 0.6\r\n").unwrap();
        let mut reply = [0u8; 5];
        let _ = stream.read(&mut reply);
    });
    let (_, failed) = hammer(&clients, 2, Duration::from_millis(2_000)).await;
    hiccup.join().unwrap();
    assert_eq!(failed, 0);
    assert!(until_fallback(&clients, false, Duration::from_secs(2)).await);
    assert_eq!(
        grants_in_redis(&redis.url()).await,
        server.stats().accepted,
        "placeholders counted as grants, or fallback grants lost"
    );

    for outage in 0..2 {
        redis.stop();
        let (during, failed) = hammer(&clients, 2, Duration::from_secs(4)).await;
        assert_eq!(failed, 0, "Redis down must not fail calls");
        assert!(during > 0, "the fallback spends its share");
        for client in &clients {
            let status = client.rate_limit_status().unwrap();
            assert!(status.fallback_active, "{status:?}");
            assert_eq!(status.fallbacks, 2 + outage, "{status:?}");
        }
        redis.restart().unwrap();
        // No call: the background probe finds Redis and hands the grants over.
        assert!(
            until_fallback(&clients, false, Duration::from_secs(2)).await,
            "the probe brings every client back without a call"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            grants_in_redis(&redis.url()).await,
            server.stats().accepted,
            "after outage {outage}"
        );
    }
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
}

/// One replica cut off from Redis while the others are not: after a second
/// unseen, its share is set aside by the others and spent by it alone. No 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_redis_spends_only_its_share() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let proxy = FaultProxy::start(redis.port()).unwrap();
    let limit = RateLimit::new(30, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let mut clients = replicas(&server, &redis.url(), limit);
    clients.truncate(2);
    let cut_off = client(
        &server.base_url(),
        shared(&proxy.redis_url(), limit).fallback_share(1.0 / 3.0),
    );
    clients.push(cut_off.clone());
    let (_, failed) = hammer(&clients, 3, Duration::from_millis(1_500)).await;
    assert_eq!(failed, 0);
    proxy.cut();
    let before = server.stats().accepted;
    let (_, failed) = hammer(&clients, 3, Duration::from_secs(5)).await;
    assert_eq!(failed, 0);
    let status = cut_off.rate_limit_status().unwrap();
    assert!(
        status.fallback_active && status.fallbacks == 1,
        "{status:?}"
    );
    for other in &clients[..2] {
        assert!(!other.rate_limit_status().unwrap().fallback_active);
    }
    proxy.restore();
    assert!(until_fallback(&clients, false, Duration::from_secs(2)).await);
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert!(stats.max_per_second <= 30, "{stats:?}");
    // The fleet kept working through the cut: at least the others' two thirds.
    assert!(stats.accepted - before >= 60, "{stats:?}");
}

/// The documented bound past the expiry: a replica cut off for longer than
/// `replica_expiry` is forgotten, the others take its share back, and the
/// fleet then exceeds the limit by at most that share. Measured against a
/// server that counts without refusing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_expiry_the_overshoot_is_at_most_the_cut_off_share() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let proxy = FaultProxy::start(redis.port()).unwrap();
    let limit = RateLimit::new(30, 10_000);
    let counting = EnforcingStandIn::start(RateLimit::new(10_000, 1_000_000)).await;
    let setting = |url: &str| {
        shared(url, limit)
            .fallback_share(1.0 / 3.0)
            .replica_expiry(Duration::from_secs(2))
    };
    let mut clients: Vec<Client> = (0..2)
        .map(|_| client(&counting.base_url(), setting(&redis.url())))
        .collect();
    clients.push(client(&counting.base_url(), setting(&proxy.redis_url())));
    hammer(&clients, 3, Duration::from_secs(1)).await;
    proxy.cut();
    let (_, failed) = hammer(&clients, 3, Duration::from_secs(7)).await;
    assert_eq!(failed, 0);
    let stats = counting.stats();
    assert!(
        stats.max_per_second > 30 && stats.max_per_second <= 40,
        "the others took the forgotten share back; at most 30 + 10 in a second: {stats:?}"
    );
}

/// A slow Redis: a call waits at most the Redis timeout, the grace a fallback
/// keeps (one second unseen, for the others to set its share aside) and the
/// second the others may have spent before that, then the fallback admits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_costs_at_most_its_timeout_and_the_grace() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let client = client(
        &server.base_url(),
        shared(&redis.url(), RateLimit::NEXHEALTH_DEFAULT)
            .redis_timeout(Duration::from_millis(100))
            .fallback_share(1.0),
    );
    client.get_locations().await.unwrap();
    let port = redis.port();
    let sleeper = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        use std::io::{Read, Write};
        stream.write_all(b"DEBUG SLEEP 4\r\n").unwrap();
        let mut reply = [0u8; 5];
        let _ = stream.read(&mut reply);
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    client.get_locations().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(3_000),
        "{:?}",
        started.elapsed()
    );
    assert!(client.rate_limit_status().unwrap().fallback_active);
    sleeper.join().unwrap();
}

/// Answers every command read from a connection: the acquire script with
/// `acquire(n)` for its n-th call, the heartbeat with a sane status, anything
/// else with +OK. A stand-in for a Redis that answers well-formed nonsense.
async fn fake_redis(acquire: fn(u64) -> Vec<i64>) -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let calls = calls.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    // A command: *N, then N bulk strings ($len, value).
                    let Some(n) = line.strip_prefix('*').and_then(|n| n.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    let mut args = Vec::new();
                    for _ in 0..n {
                        let _ = lines.next_line().await;
                        args.push(lines.next_line().await.ok().flatten().unwrap_or_default());
                    }
                    let now = 1_764_000_000_000i64;
                    let values = match (args.first().map(|a| a.to_uppercase()), n) {
                        (Some(c), 15) if c.starts_with("EVAL") => {
                            acquire(calls.fetch_add(1, Ordering::Relaxed))
                        }
                        (Some(c), 11) if c.starts_with("EVAL") => vec![now, 0, 0, 1, 0, 0],
                        _ => {
                            let _ = write.write_all(b"+OK\r\n").await;
                            continue;
                        }
                    };
                    let mut reply = format!("*{}\r\n", values.len());
                    for v in values {
                        reply.push_str(&format!(":{v}\r\n"));
                    }
                    let _ = write.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    port
}

/// A Redis answering a well-formed wait of a day (or other values the script
/// cannot give) is Redis trouble: the limiter falls back instead of obeying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_redis_answer_falls_back_instead_of_being_obeyed() {
    let _serial = SERIAL.lock().await;
    fn a_day_after_two(n: u64) -> Vec<i64> {
        let now = 1_764_000_000_000i64 + n as i64;
        match n {
            0 | 1 => vec![0, now, 1, 1, 1, 0, 0, 100],
            _ => vec![86_400_000, now, 0, 0, 1, 0, 0, 0],
        }
    }
    let port = fake_redis(a_day_after_two).await;
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let client = client(
        &server.base_url(),
        shared(
            &format!("redis://127.0.0.1:{port}/"),
            RateLimit::NEXHEALTH_DEFAULT,
        )
        .fallback_share(1.0),
    );
    client.get_locations().await.unwrap(); // the token exchange and the call: two sane answers
    let started = Instant::now();
    client.get_locations().await.unwrap();
    // The grace, and the second the fleet may have spent before it.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let status = client.rate_limit_status().unwrap();
    assert!(
        status.fallback_active && status.fallbacks >= 1,
        "{status:?}"
    );
}

/// Garbage on the wire, and no Redis at all: the fallback. A process that
/// never reached Redis knows nothing of the fleet's minute, so it assumes the
/// whole minute spent and says so at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_answering_garbage_or_absent_falls_back() {
    let _serial = SERIAL.lock().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket
                    .write_all(b"%%\x00\xffnot redis at all\r\n$-7\r\n")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    for port in [garbage_port, closed_port] {
        let client = client(
            &server.base_url(),
            shared(
                &format!("redis://127.0.0.1:{port}/"),
                RateLimit::NEXHEALTH_DEFAULT,
            ),
        );
        let started = Instant::now();
        let error = client.get_locations().await.unwrap_err();
        assert!(error.is_budget_unavailable(), "{port}: {error}");
        let free_in = error.retry_after().unwrap();
        assert!(free_in > Duration::from_secs(50), "{free_in:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let status = client.rate_limit_status().unwrap();
        assert!(
            status.fallback_active && status.fallbacks == 1,
            "{port}: {status:?}"
        );
    }
    assert_eq!(server.stats().accepted, 0);
}

/// A 429 seen by one client pauses all of them: one shared pause, not one
/// discovery per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_pauses_every_client_once() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let mock = httpmock::MockServer::start_async().await;
    mock.mock(|when, then| {
        when.method("POST").path("/authenticates");
        then.status(201)
            .header("content-type", "application/json")
            .json_body_obj(&nexhealth_api::mock::payloads::authenticate());
    });
    // The first request to /locations opens a one-second storm of 429s.
    let storm_started: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    let storm_429s = Arc::new(AtomicU64::new(0));
    let (started, count) = (storm_started.clone(), storm_429s.clone());
    mock.mock(move |when, then| {
        when.method("GET").path("/locations");
        then.respond_with(move |_: &httpmock::HttpMockRequest| {
            let mut start = started.lock().unwrap();
            let now = Instant::now();
            let begun = *start.get_or_insert(now);
            let body = |status: u16| {
                httpmock::HttpMockResponse::builder()
                    .status(status)
                    .header("content-type", "application/json")
            };
            if now.duration_since(begun) < Duration::from_secs(1) {
                count.fetch_add(1, Ordering::Relaxed);
                body(429)
                    .header("retry-after", "1")
                    .body(
                        serde_json::to_string(&nexhealth_api::mock::payloads::error(429)).unwrap(),
                    )
                    .build()
            } else {
                body(200)
                    .body(
                        serde_json::to_string(&nexhealth_api::mock::payloads::locations()).unwrap(),
                    )
                    .build()
            }
        });
    });
    let limit = RateLimit::new(50, 10_000);
    let clients: Vec<Client> = (0..3)
        .map(|_| client(&mock.base_url(), shared(&redis.url(), limit)))
        .collect();
    let (ok, failed) = hammer(&clients, 3, Duration::from_secs(2)).await;
    let seen = storm_429s.load(Ordering::Relaxed);
    // Only the calls in flight when the storm began saw a 429; every other
    // call waited out the one shared pause.
    assert!((1..=9).contains(&seen), "{seen} responses with 429");
    assert_eq!(failed, seen);
    assert!(ok > 9);
}

/// `Retry-After: 18446744073709551615` on a 429: no panic, and the pause
/// written to Redis for every replica is at most MAX_SHARED_PAUSE, so a
/// replica started afterwards is not stopped for a day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_retry_after_pauses_the_fleet_at_most_the_cap() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let first = client(
        &server.base_url(),
        shared(&redis.url(), RateLimit::NEXHEALTH_DEFAULT),
    );
    first.get_locations().await.unwrap();
    server.inject_429("18446744073709551615");
    let error = first.get_locations().await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(u64::MAX)));
    let mut connection = connection(&redis.url()).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*:pause")
        .query_async(&mut connection)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= MAX_SHARED_PAUSE.as_millis() as i64,
        "{ttl}"
    );
    let late = client(
        &server.base_url(),
        shared(&redis.url(), RateLimit::NEXHEALTH_DEFAULT),
    );
    let error = late
        .get_locations()
        .deadline(Duration::from_millis(300))
        .await
        .unwrap_err();
    let free_in = error.retry_after().unwrap();
    assert!(
        error.is_budget_unavailable() && free_in <= MAX_SHARED_PAUSE,
        "{error}"
    );
}

/// Waiting past the deadline fails at once with when budget frees up, and a
/// call dropped while it waits takes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_wait_fails_fast_and_cancellation_takes_nothing() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let limit = RateLimit::new(2, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let client = client(&server.base_url(), shared(&redis.url(), limit));
    client.get_locations().await.unwrap(); // the token exchange and one call: the second is full
    let started = Instant::now();
    let error = client
        .get_locations()
        .deadline(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(error.is_budget_unavailable(), "{error:?}");
    assert!(error.retry_after().unwrap() > Duration::from_millis(500));
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    let dropped = tokio::time::timeout(Duration::from_millis(100), client.get_locations()).await;
    assert!(dropped.is_err());
    client.get_locations().await.unwrap();
    assert_eq!(server.stats().accepted, 3);
    assert_eq!(server.stats().rejected, 0);
    assert_eq!(grants_in_redis(&redis.url()).await, 3);
}

/// Each API key has its own budget (the key's digest names the keys), and
/// the keys hold no API key, carry the prefix, and expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_api_key_has_its_own_budget_and_keys_that_expire() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let limit = RateLimit::new(2, 10_000);
    // The stand-in enforces one limit for every key: NexHealth's, above the clients'.
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let setting = || shared(&redis.url(), limit).prefix("acme-svc:nh");
    let a = client_for("api-key-a", &server.base_url(), setting());
    let b = client_for("api-key-b", &server.base_url(), setting());
    a.get_locations().await.unwrap(); // A's second is full
    let started = Instant::now();
    b.get_locations()
        .deadline(Duration::from_millis(300))
        .await
        .expect("B's budget is its own");
    assert!(started.elapsed() < Duration::from_millis(300));
    let a_again = client_for("api-key-a", &server.base_url(), setting());
    let error = a_again
        .get_locations()
        .deadline(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        error.is_budget_unavailable(),
        "A's budget is shared by A's clients"
    );

    let mut connection = connection(&redis.url()).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    // Two budgets, each a log, the replicas and their shares.
    assert_eq!(keys.len(), 6, "{keys:?}");
    for key in &keys {
        assert!(!key.contains("api-key"), "{key}");
        assert!(key.starts_with("acme-svc:nh:{"), "{key}");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        let most = RedisRateLimit::DEFAULT_REPLICA_EXPIRY.as_millis() as i64;
        assert!(ttl > 0 && ttl <= most, "{key}: {ttl}");
    }
    let debug = format!("{:?}", RedisRateLimit::new("redis://:hunter2@127.0.0.1:1/"));
    assert!(!debug.contains("hunter2"), "{debug}");
}

/// Redis goes away when the fleet has spent its minute budget, and one
/// replica had been idle: its view is kept fresh by the background probe, so
/// its fallback spends nothing the fleet already spent. NexHealth sees no 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_does_not_spend_what_the_fleet_already_spent() {
    let _serial = SERIAL.lock().await;
    let mut redis = redis();
    let limit = RateLimit::new(100, 30);
    let server = EnforcingStandIn::start(limit).await;
    let clients = replicas(&server, &redis.url(), limit);
    // The idle one: one call (and its token exchange), long before the outage.
    clients[2].get_locations().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for i in 0..26 {
        clients[i % 2].get_locations().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    redis.stop();
    for client in &clients {
        let error = client
            .get_locations()
            .deadline(Duration::from_millis(1_500))
            .await
            .unwrap_err();
        assert!(error.is_budget_unavailable(), "{error:?}");
        assert!(client.rate_limit_status().unwrap().fallback_active);
    }
    let stats = server.stats();
    assert_eq!(stats.accepted, 30, "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
}

/// A failover: the address now leads to a new primary, while the old one
/// answers READONLY. The limiter drops its connection and reconnects, instead
/// of staying on its fallback for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_reconnects_after_readonly() {
    let _serial = SERIAL.lock().await;
    let old = redis();
    let new = redis();
    let proxy = FaultProxy::start(old.port()).unwrap();
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let client = client(
        &server.base_url(),
        shared(&proxy.redis_url(), RateLimit::NEXHEALTH_DEFAULT).fallback_share(1.0),
    );
    client.get_locations().await.unwrap();
    // The old primary becomes a replica of the new one; the address moves.
    old.command(&format!("REPLICAOF 127.0.0.1 {}", new.port()))
        .unwrap();
    proxy.redirect(new.port());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, failed) = hammer(std::slice::from_ref(&client), 2, Duration::from_secs(3)).await;
    assert_eq!(failed, 0);
    assert!(ok > 0);
    assert!(
        until_fallback(std::slice::from_ref(&client), false, Duration::from_secs(2)).await,
        "back on Redis through the new primary"
    );
    assert!(grants_in_redis(&new.url()).await > 0);
}

/// `rediss://`: TLS through rustls, trusting a given CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_speaks_tls() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start_tls().unwrap_or_else(|e| panic!("{e}"));
    assert!(redis.url().starts_with("rediss://"));
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let trusting = client(
        &server.base_url(),
        shared(&redis.url(), RateLimit::NEXHEALTH_DEFAULT)
            .root_certificates(redis.ca_pem().unwrap()),
    );
    for _ in 0..5 {
        trusting.get_locations().await.unwrap();
    }
    let status = trusting.rate_limit_status().unwrap();
    assert!(
        !status.fallback_active && status.fallbacks == 0,
        "{status:?}"
    );
    let keys = redis.command("KEYS *:log").unwrap();
    let count = redis.command(&format!("ZCARD {keys}")).unwrap();
    assert_eq!(count, "6", "the token exchange and five calls, through TLS");
    // Without the CA, the server's certificate is not trusted: the fallback.
    let untrusting = client(
        &server.base_url(),
        shared(&redis.url(), RateLimit::NEXHEALTH_DEFAULT),
    );
    let _ = untrusting
        .get_locations()
        .deadline(Duration::from_millis(300))
        .await;
    assert!(untrusting.rate_limit_status().unwrap().fallback_active);
}

/// Redis Cluster: three nodes joined by `redis-cli --cluster create`; the
/// keys share a hash tag, so they live on one node and the scripts run there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_shares_one_budget() {
    let _serial = SERIAL.lock().await;
    let cluster = RedisCluster::start(3).unwrap_or_else(|e| panic!("{e}"));
    let limit = RateLimit::new(20, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let clients: Vec<Client> = (0..3)
        .map(|_| {
            client(
                &server.base_url(),
                RedisRateLimit::cluster(cluster.urls())
                    .limit(limit)
                    .redis_timeout(Duration::from_millis(500)),
            )
        })
        .collect();
    let (ok, failed) = hammer(&clients, 3, Duration::from_millis(2_050)).await;
    assert_eq!(failed, 0);
    assert!(ok >= 30, "{ok}");
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    for client in &clients {
        let status = client.rate_limit_status().unwrap();
        assert!(
            !status.fallback_active && status.fallbacks == 0,
            "{status:?}"
        );
    }
    let holding: Vec<usize> = cluster
        .nodes()
        .iter()
        .map(|node| {
            node.command("KEYS *")
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .collect();
    assert_eq!(
        holding.iter().filter(|n| **n > 0).count(),
        1,
        "all keys on one node: {holding:?}"
    );
}
