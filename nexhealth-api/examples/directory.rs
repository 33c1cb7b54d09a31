//! The directory an integrator needs: each institution (name, subdomain), its
//! syncs (EMR, read and write status, how old, stale or red flagged with `!`)
//! and its locations (id, name, whether writes can work now, the flags), joined
//! by institution id ([`nexhealth_api::overview`]): every location is shown, and
//! what could not be read is said.
//!
//! With `NEXHEALTH_API_KEY` set it talks to `NEXHEALTH_BASE_URL` (default the
//! real API). Without it, it starts an in-process stand-in server that answers
//! with the spec's examples. Set `RUST_LOG=nexhealth_api=debug` to see the
//! SDK's tracing (operation, status, attempt, timing; never bodies or keys).
//!
//! `--watch SECONDS [--seconds TOTAL]`: after printing the directory, refresh it
//! every SECONDS and print one JSON line per change
//! ([`nexhealth_api::changes::Change`]: `"change"` is `added`, `removed`,
//! `deactivated`, `reactivated`, `renamed`, `moved`, `flags` or `replaced`, with
//! the `location_id`, and for `replaced` also `"old"`, `"new"` and the evidence);
//! stop after TOTAL seconds when given. It also reads `/sync_status` every
//! SECONDS and prints a line each time a side of a sync goes down or comes back:
//! `{"change":"sync_down","side":"write","sync":"Front desk server",
//! "institution_id":1,"location_ids":[7],"state":"red","stale":false,"last":"…"}`,
//! then `"sync_up"` (down: red, or older than its threshold; each process reads
//! it for itself, also when sharing the directory through Redis). On the
//! stand-in, its locations take one step of a scripted history per refresh
//! ([`nexhealth_api::mock::location_phases`]) and the writes of "Front desk
//! server" (location 7) go down 2 seconds after the start and come back at 4
//! ([`nexhealth_api::mock::sync_phases`]), so that the watch has something to
//! show (`--watch 1 --seconds 8` shows it all).
//!
//! `--read-threshold-minutes M` / `--write-threshold-minutes M`: judge every
//! sync's reads (writes) as stale past M minutes instead of NexHealth's 150
//! (25), e.g. for syncs whose limits were set otherwise at NexHealth
//! ([`nexhealth_api::sync_health::ThresholdPolicy`] sets them per sync).
//!
//! `--metrics ADDR` (e.g. `127.0.0.1:9464`): serves the SDK's metrics
//! ([`nexhealth_api::metrics`]) in Prometheus's text format at
//! `http://ADDR/metrics`, through the OpenTelemetry SDK and its Prometheus exporter. Built with `--features redis` and
//! with `REDIS_URL` set, the watch shares the directory with every other
//! watcher on that Redis and key ([`nexhealth_api::fleet`]): one
//! `GET /locations` per interval for all of them, and each prints every change.

use std::time::Duration;

#[path = "support/metrics.rs"]
mod metrics;

use futures::StreamExt;
use nexhealth_api::Client;
use nexhealth_api::directory::LocationDirectory;
use nexhealth_api::mock::StandIn;
use nexhealth_api::overview::Overview;
use nexhealth_api::sync_health::{State, SyncHealth, SyncReport, SyncSide, Thresholds};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds_of = |flag: &str| -> anyhow::Result<Option<Duration>> {
        match args.iter().position(|a| a == flag) {
            None => Ok(None),
            Some(i) => {
                let value = args
                    .get(i + 1)
                    .ok_or_else(|| anyhow::anyhow!("{flag} needs a number of seconds"))?;
                let seconds: f64 = value
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{flag} {value}: not a number of seconds"))?;
                // Bounded: at least 10 ms, at most a day.
                anyhow::ensure!(
                    seconds.is_finite() && (0.01..=86_400.0).contains(&seconds),
                    "{flag} {value}: give between 0.01 and 86400 seconds"
                );
                Ok(Some(Duration::from_secs_f64(seconds)))
            }
        }
    };
    let minutes_of = |flag: &str| -> anyhow::Result<Option<Duration>> {
        match args.iter().position(|a| a == flag) {
            None => Ok(None),
            Some(i) => {
                let value = args
                    .get(i + 1)
                    .ok_or_else(|| anyhow::anyhow!("{flag} needs a number of minutes"))?;
                let minutes: f64 = value
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{flag} {value}: not a number of minutes"))?;
                // Bounded: more than none, at most 30 days.
                anyhow::ensure!(
                    minutes.is_finite() && minutes > 0.0 && minutes <= 43_200.0,
                    "{flag} {value}: give more than 0 and at most 43200 minutes"
                );
                Ok(Some(Duration::from_secs_f64(minutes * 60.0)))
            }
        }
    };
    let defaults = Thresholds::default();
    let thresholds = Thresholds {
        read: minutes_of("--read-threshold-minutes")?.unwrap_or(defaults.read),
        write: minutes_of("--write-threshold-minutes")?.unwrap_or(defaults.write),
    };
    let watch = seconds_of("--watch")?;
    let total = seconds_of("--seconds")?;
    // Prometheus text at http://ADDR/metrics, installed before any client is built.
    let _metrics = match metrics_flag(&args)? {
        Some(addr) => Some(metrics::serve(&addr).await?),
        None => None,
    };
    let _stand_in;
    let client = match std::env::var(nexhealth_api::API_KEY_VAR) {
        Ok(_) => {
            let client = Client::from_env()?;
            println!("Using NexHealth at {}", client.base_url());
            client
        }
        Err(_) => {
            let server = match watch {
                // Phase 0 for the overview and the watch's baseline, then one
                // step of the scripted history per refresh.
                // Its syncs: writes of location 7 down after 2 s, back at 4 s.
                Some(_) => StandIn::with_moving_locations(2)
                    .await
                    .moving_syncs(nexhealth_api::mock::sync_phases()),
                None => StandIn::start().await,
            };
            println!(
                "Using an embedded stand-in server at {} (NEXHEALTH_API_KEY is not set); it answers with the spec's examples",
                server.base_url()
            );
            let client = Client::builder("stand-in-key")
                .base_url(server.base_url())
                .build()?;
            _stand_in = server;
            client
        }
    };

    // Institutions, syncs and locations joined by institution id: a location is
    // never dropped, and what could not be read is said.
    let mut overview = Overview::fetch(&client).await?;
    if thresholds != defaults {
        // Judged again by the limits asked for.
        let now = nexhealth_api::chrono::Utc::now();
        for institution in &mut overview.institutions {
            if let Ok(report) = &mut institution.syncs {
                *report = report.clone().reassessed(now, thresholds);
            }
        }
    }
    print!("{overview}");
    let Some(every) = watch else {
        return Ok(());
    };
    // The watch: the first refresh is the baseline, then one line per change.
    let syncs = watch_syncs(client.clone(), every, thresholds);
    let directory = LocationDirectory::new(client);
    // Shared with every watcher on the same Redis and key: one fetch per
    // interval for all of them (built with `--features redis`).
    #[cfg(feature = "redis")]
    let directory = match std::env::var("REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => {
            println!("Sharing the directory through Redis (REDIS_URL)");
            directory.shared(&nexhealth_api::fleet::FleetShare::new(url))?
        }
        _ => directory,
    };
    let changes = directory.watch(every).for_each(|change| async move {
        match change {
            Ok(change) => println!("{}", serde_json::to_string(&change).unwrap_or_default()),
            Err(e) => eprintln!("refresh failed: {e}"),
        }
    });
    // Locations and syncs side by side, until TOTAL seconds if given.
    let both = futures::future::join(changes, syncs);
    match total {
        Some(total) => {
            let _ = tokio::time::timeout(total, both).await;
        }
        None => {
            both.await;
        }
    }
    Ok(())
}

/// Reads `/sync_status` every `every` (the first read is the baseline) and
/// prints one JSON line per side of a sync that went down or came back.
async fn watch_syncs(client: Client, every: Duration, thresholds: Thresholds) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held: Option<SyncReport> = None;
    loop {
        ticks.tick().await;
        match client.sync_health_with(None, thresholds).await {
            Ok(report) => {
                if let Some(before) = &held {
                    for change in sync_changes(before, &report) {
                        println!("{}", serde_json::to_string(&change).unwrap_or_default());
                    }
                }
                held = Some(report);
            }
            Err(e) => eprintln!("sync status refresh failed: {e}"),
        }
    }
}

/// A side of a sync that went down or came back, as one JSON line (its
/// fields in this order, `"change"` first as in the locations' lines).
#[derive(serde::Serialize)]
struct SyncChange {
    /// `sync_down` or `sync_up`.
    change: &'static str,
    /// `read` or `write`.
    side: &'static str,
    /// The sync's name.
    sync: Option<String>,
    institution_id: Option<i32>,
    /// The locations it serves.
    location_ids: Vec<i32>,
    /// Its state now: `red`, `green`, …
    state: State,
    /// Older than its threshold (or never happened).
    stale: bool,
    /// Its `*_status_at` now: the last read or check-in.
    last: Option<nexhealth_api::chrono::DateTime<nexhealth_api::chrono::Utc>>,
}

/// What changed between two reports, side by side: `sync_down` when a side
/// was healthy (green and fresh) and is not, `sync_up` when it is again. A
/// sync is known by its institution, name and locations; one that appears or
/// goes is not reported here (its locations' changes are).
fn sync_changes(before: &SyncReport, after: &SyncReport) -> Vec<SyncChange> {
    let key = |health: &SyncHealth| {
        (
            health.sync.institution_id,
            health.sync.sync_source_name.clone(),
            health.location_ids().collect::<Vec<_>>(),
        )
    };
    let mut lines = Vec::new();
    for now in &after.syncs {
        let Some(then) = before.syncs.iter().find(|h| key(h) == key(now)) else {
            continue;
        };
        for (side, was, is) in [
            (SyncSide::Read, &then.read, &now.read),
            (SyncSide::Write, &then.write, &now.write),
        ] {
            if was.is_healthy() == is.is_healthy() {
                continue;
            }
            lines.push(SyncChange {
                change: if is.is_healthy() {
                    "sync_up"
                } else {
                    "sync_down"
                },
                side: side.as_str(),
                sync: now.sync.sync_source_name.clone(),
                institution_id: now.sync.institution_id,
                location_ids: now.location_ids().collect(),
                state: is.state.clone(),
                stale: is.stale,
                last: is.last,
            });
        }
    }
    lines
}

/// The value of `--metrics`, if given.
fn metrics_flag(args: &[String]) -> anyhow::Result<Option<String>> {
    match args.iter().position(|a| a == "--metrics") {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .ok_or_else(|| anyhow::anyhow!("--metrics needs an address, e.g. 127.0.0.1:9464")),
    }
}
