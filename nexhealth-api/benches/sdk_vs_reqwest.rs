//! The SDK against the reqwest + serde code a service would write by hand,
//! in the same run, on a fast loopback server. `cargo bench -p nexhealth-api`;
//! `cargo xtask bench-report` turns the results into BENCHMARKS.md.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use support::{
    Baseline, Envelope, Institution, Location, client_runtime, locations_body, sdk_client,
    start_server, thread_cpu,
};

// ---- peak-memory accounting ------------------------------------------------

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes allocated at the peak of `f`, above what was live before it.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

// ---- paired, interleaved timing ----------------------------------------------
//
// Criterion times one side, then the other; on a shared virtual machine the
// speed of loopback round trips drifts by more than the difference being
// measured. The paired rounds below time both sides back to back, the side
// going first alternating, and keep the ratio of each round: drift then hits
// both sides of a ratio alike.

/// Wall and client CPU time of one run.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// One round: a run of each side.
struct Round {
    sdk: Timing,
    baseline: Timing,
}

async fn timed(f: &impl AsyncFn()) -> Timing {
    let (wall, cpu) = (std::time::Instant::now(), thread_cpu());
    f().await;
    Timing {
        wall: wall.elapsed(),
        cpu: thread_cpu() - cpu,
    }
}

/// Quartiles of a sample.
fn quartiles(mut xs: Vec<f64>) -> serde_json::Value {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    serde_json::json!({"q1": at(0.25), "median": at(0.5), "q3": at(0.75)})
}

/// `rounds` rounds of one run of each side, back to back, alternating which
/// goes first. Each run makes `calls` calls. Returns SDK / baseline ratios of
/// wall time and of client CPU time (quartiles over the rounds) and the
/// median time per call of each side.
async fn paired(
    rounds: usize,
    calls: usize,
    sdk: impl AsyncFn(),
    baseline: impl AsyncFn(),
) -> serde_json::Value {
    // One unmeasured run each: connections open, caches warm.
    sdk().await;
    baseline().await;
    let mut runs = Vec::with_capacity(rounds);
    for round in 0..rounds {
        runs.push(if round % 2 == 0 {
            let sdk = timed(&sdk).await;
            Round {
                sdk,
                baseline: timed(&baseline).await,
            }
        } else {
            let baseline = timed(&baseline).await;
            Round {
                sdk: timed(&sdk).await,
                baseline,
            }
        });
    }
    let ratio = |of: fn(Timing) -> Duration| {
        quartiles(
            runs.iter()
                .map(|r| of(r.sdk).as_secs_f64() / of(r.baseline).as_secs_f64())
                .collect(),
        )
    };
    let per_call_us = |of: fn(&Round) -> Duration| {
        quartiles(
            runs.iter()
                .map(|r| of(r).as_secs_f64() * 1e6 / calls as f64)
                .collect(),
        )["median"]
            .clone()
    };
    serde_json::json!({
        "rounds": rounds,
        "calls_per_run": calls,
        "wall_ratio": ratio(|t| t.wall),
        "cpu_ratio": ratio(|t| t.cpu),
        "sdk_wall_us": per_call_us(|r| r.sdk.wall),
        "baseline_wall_us": per_call_us(|r| r.baseline.wall),
        "sdk_cpu_us": per_call_us(|r| r.sdk.cpu),
        "baseline_cpu_us": per_call_us(|r| r.baseline.cpu),
    })
}

/// Paired rounds for every per-call and throughput case; see [`paired`].
fn paired_rounds(_: &mut Criterion) {
    // Criterion's name filter does not reach this function: run it when no
    // filter is given or when the filter names it.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err())
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "paired".contains(f.as_str())) {
        return;
    }
    let rt = client_runtime();
    let server = start_server();
    let sdk = sdk_client(&server.base);
    let baseline = rt.block_on(Baseline::new(&server.base));
    let mut results = serde_json::Map::new();
    rt.block_on(async {
        let id = paired(
            200,
            50,
            async || {
                for _ in 0..50 {
                    sdk.get_locations_id().id(7).await.unwrap();
                }
            },
            async || {
                for _ in 0..50 {
                    baseline.get::<Location>("/locations/7", &[]).await;
                }
            },
        )
        .await;
        results.insert("get_location".into(), id);
        for (n, rounds, calls) in [(1usize, 200, 50), (100, 100, 10), (10_000, 20, 1)] {
            let subdomain = format!("n{n}");
            let subdomain = subdomain.as_str();
            let value = paired(
                rounds,
                calls,
                async || {
                    for _ in 0..calls {
                        sdk.get_locations().subdomain(subdomain).await.unwrap();
                    }
                },
                async || {
                    for _ in 0..calls {
                        baseline
                            .get::<Vec<Institution>>("/locations", &[("subdomain", subdomain)])
                            .await;
                    }
                },
            )
            .await;
            results.insert(format!("get_locations_{n}"), value);
        }
        for concurrency in [1usize, 16, 64] {
            const CALLS: usize = 2_000;
            let value = paired(
                20,
                CALLS,
                async || {
                    futures::stream::iter(0..CALLS)
                        .map(|_| async { sdk.get_locations_id().id(7).await.unwrap().id })
                        .buffer_unordered(concurrency)
                        .count()
                        .await;
                },
                async || {
                    futures::stream::iter(0..CALLS)
                        .map(|_| async {
                            baseline.get::<Location>("/locations/7", &[]).await.data.id
                        })
                        .buffer_unordered(concurrency)
                        .count()
                        .await;
                },
            )
            .await;
            results.insert(format!("throughput_c{concurrency}"), value);
        }
    });
    record("paired", serde_json::Value::Object(results));
}

// ---- the benchmarks --------------------------------------------------------

fn extras_path() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("criterion").join("extras.json")
}

fn record(key: &str, value: serde_json::Value) {
    let path = extras_path();
    let _ = std::fs::create_dir_all(path.parent().unwrap());
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    all.insert(key.to_string(), value);
    std::fs::write(&path, serde_json::to_vec_pretty(&all).unwrap()).unwrap();
}

fn per_call(c: &mut Criterion) {
    let rt = client_runtime();
    let server = start_server();
    let sdk = sdk_client(&server.base);
    let baseline = rt.block_on(Baseline::new(&server.base));
    rt.block_on(async { sdk.get_locations_id().id(7).await.unwrap() });

    let mut group = c.benchmark_group("per_call");
    group.bench_function(BenchmarkId::new("get_location", "sdk"), |b| {
        b.to_async(&rt)
            .iter(|| async { sdk.get_locations_id().id(7).await.unwrap().into_data() })
    });
    group.bench_function(BenchmarkId::new("get_location", "baseline"), |b| {
        b.to_async(&rt)
            .iter(|| async { baseline.get::<Location>("/locations/7", &[]).await.data })
    });
    for n in [1usize, 100, 10_000] {
        let subdomain = format!("n{n}");
        if n == 10_000 {
            group.sample_size(20);
        }
        group.bench_function(BenchmarkId::new(format!("get_locations_{n}"), "sdk"), |b| {
            b.to_async(&rt).iter(|| async {
                sdk.get_locations()
                    .subdomain(subdomain.as_str())
                    .await
                    .unwrap()
                    .into_data()
            })
        });
        group.bench_function(
            BenchmarkId::new(format!("get_locations_{n}"), "baseline"),
            |b| {
                b.to_async(&rt).iter(|| async {
                    baseline
                        .get::<Vec<Institution>>("/locations", &[("subdomain", subdomain.as_str())])
                        .await
                        .data
                })
            },
        );
    }
    group.finish();
}

fn throughput(c: &mut Criterion) {
    const CALLS: usize = 10_000;
    let rt = client_runtime();
    let mut group = c.benchmark_group("throughput");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(CALLS as u64));
    let mut connections = serde_json::Map::new();
    for concurrency in [1usize, 16, 64] {
        let server = start_server();
        let sdk = sdk_client(&server.base);
        let before = server.connections.load(Ordering::Relaxed);
        group.bench_function(BenchmarkId::new(format!("c{concurrency}"), "sdk"), |b| {
            b.to_async(&rt).iter(|| async {
                futures::stream::iter(0..CALLS)
                    .map(|_| async { sdk.get_locations_id().id(7).await.unwrap().into_data().id })
                    .buffer_unordered(concurrency)
                    .count()
                    .await
            })
        });
        let sdk_connections = server.connections.load(Ordering::Relaxed) - before;
        if concurrency == 16 {
            // The generated call with our hooks, without the envelope
            // unwrapping and error mapping of `.await` on the builder: splits
            // the SDK's cost between the two layers.
            group.bench_function(BenchmarkId::new("c16", "sdk_send"), |b| {
                b.to_async(&rt).iter(|| async {
                    futures::stream::iter(0..CALLS)
                        .map(|_| async {
                            sdk.get_locations_id()
                                .id(7)
                                .progenitor_send()
                                .await
                                .unwrap()
                                .into_inner()
                                .data
                                .id
                        })
                        .buffer_unordered(concurrency)
                        .count()
                        .await
                })
            });
        }
        let server = start_server();
        let baseline = rt.block_on(Baseline::new(&server.base));
        let before = server.connections.load(Ordering::Relaxed);
        group.bench_function(
            BenchmarkId::new(format!("c{concurrency}"), "baseline"),
            |b| {
                b.to_async(&rt).iter(|| async {
                    futures::stream::iter(0..CALLS)
                        .map(|_| async {
                            baseline.get::<Location>("/locations/7", &[]).await.data.id
                        })
                        .buffer_unordered(concurrency)
                        .count()
                        .await
                })
            },
        );
        let baseline_connections = server.connections.load(Ordering::Relaxed) - before;
        connections.insert(
            format!("c{concurrency}"),
            serde_json::json!({"sdk": sdk_connections, "baseline": baseline_connections}),
        );
    }
    group.finish();
    record("connections", serde_json::Value::Object(connections));
}

fn auth(c: &mut Criterion) {
    let rt = client_runtime();
    // 1,000 concurrent first calls on a fresh client: one token exchange.
    let server = start_server();
    let sdk = sdk_client(&server.base);
    rt.block_on(async {
        let calls = (0..1_000).map(|_| {
            let sdk = sdk.clone();
            tokio::spawn(async move { sdk.get_locations_id().id(7).await.map(drop) })
        });
        for r in futures::future::join_all(calls).await {
            r.unwrap().unwrap();
        }
    });
    let exchanges = server.authentications.load(Ordering::Relaxed);
    assert_eq!(
        exchanges, 1,
        "1,000 concurrent first calls must share one exchange"
    );
    record(
        "auth_exchanges_for_1000_first_calls",
        serde_json::json!(exchanges),
    );

    let mut group = c.benchmark_group("auth");
    group.bench_function(BenchmarkId::new("token_check", "sdk"), |b| {
        b.iter(|| nexhealth_api::introspect::cached_bearer(&sdk).unwrap())
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let body = locations_body(10_000);
    let mut group = c.benchmark_group("decode");
    group
        .sample_size(20)
        .throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(BenchmarkId::new("locations_10000", "sdk"), |b| {
        b.iter(|| {
            serde_json::from_slice::<nexhealth_api::types::LocationListResponse>(&body).unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("locations_10000", "baseline"), |b| {
        b.iter(|| serde_json::from_slice::<Envelope<Vec<Institution>>>(&body).unwrap())
    });
    group.finish();
    let (sdk, sdk_peak) = peak_during(|| {
        serde_json::from_slice::<nexhealth_api::types::LocationListResponse>(&body).unwrap()
    });
    drop(sdk);
    let (baseline, baseline_peak) =
        peak_during(|| serde_json::from_slice::<Envelope<Vec<Institution>>>(&body).unwrap());
    drop(baseline);
    record(
        "decode_peak_bytes",
        serde_json::json!({"payload_bytes": body.len(), "sdk": sdk_peak, "baseline": baseline_peak}),
    );
}

criterion_group!(benches, per_call, throughput, paired_rounds, auth, decode);
criterion_main!(benches);
