//! A real Prometheus (Debian's `prometheus`, 2.42: it scrapes) scrapes the
//! directory example's `--metrics` endpoint on loopback; its HTTP API must
//! report as many HTTP requests as the stand-in served, under the names
//! OpenTelemetry's Prometheus naming gives.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nexhealth_api::mock::{StandIn, Tethered};
use serde_json::Value;

/// Kills the process when the test ends, however it ends: on drop, and with
/// the test binary even when that is killed ([`Tethered`]).
struct Killed(Tethered);

impl Killed {
    fn spawn(command: &mut Command) -> Self {
        Self(Tethered::spawn(command).unwrap())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn prometheus(dir: &Path, target: u16, port: u16) -> Killed {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: sdk\n    \
             static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let mut command = Tethered::command("prometheus");
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    Killed::spawn(&mut command)
}

/// One number from Prometheus's query API, when it has one.
async fn query(http: &nexhealth_api::reqwest::Client, port: u16, promql: &str) -> Option<f64> {
    let answer: Value = http
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    answer["data"]["result"][0]["value"][1]
        .as_str()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_as_many_requests_as_the_stand_in_served() {
    let stand_in = StandIn::with_moving_locations(2).await;
    let binary = nexhealth_contract_tests::example_binary("directory", &["redis"]);
    let metrics_port = free_port();
    // A watch too long to tick again: after the directory and the baseline,
    // the example sends nothing more, so the count settles.
    let _example = Killed::spawn(
        Tethered::command(binary)
            .args(["--watch", "3600", "--seconds", "90"])
            .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
            .env("NEXHEALTH_API_KEY", "prometheus-test-key")
            .env("NEXHEALTH_BASE_URL", stand_in.base_url())
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let dir = std::env::temp_dir().join(format!("nexhealth-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let prometheus_port = free_port();
    let mut prometheus = prometheus(&dir, metrics_port, prometheus_port);

    let http = nexhealth_api::reqwest::Client::new();
    let started = Instant::now();
    let (mut scraped, mut served) = (None, 0);
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(Some(status)) = prometheus.0.child().try_wait() {
            let hint = if status.code() == Some(127) {
                ": apt-get install -y prometheus"
            } else {
                ""
            };
            let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
            panic!(
                "prometheus exited ({status}){hint}; its log ends:\n{}",
                &log[log.len().saturating_sub(2_000)..]
            );
        }
        served = stand_in.requests_served();
        scraped = query(
            &http,
            prometheus_port,
            "sum(http_client_request_duration_seconds_count)",
        )
        .await;
        if served > 0 && scraped == Some(served as f64) {
            break;
        }
    }
    let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    assert_eq!(
        scraped,
        Some(served as f64),
        "Prometheus's count vs the stand-in's; its log ends:\n{}",
        &log[log.len().saturating_sub(2_000)..]
    );
    assert!(
        served >= 5,
        "token, institutions, syncs, locations twice: {served}"
    );
    // The other names dashboards are written against.
    for (promql, expected) in [
        ("sum(nexhealth_client_attempts_total)", served as f64),
        (
            "sum(http_client_request_duration_seconds_bucket{le=\"+Inf\"})",
            served as f64,
        ),
        ("sum(nexhealth_directory_fetches_total)", 1.0),
        (
            "sum(nexhealth_auth_exchanges_total{nexhealth_outcome=\"ok\"})",
            1.0,
        ),
        (
            "count(nexhealth_client_operation_duration_seconds_count{nexhealth_operation=\"getLocations\"})",
            1.0,
        ),
    ] {
        assert_eq!(
            query(&http, prometheus_port, promql).await,
            Some(expected),
            "{promql}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two free consecutive loopback ports.
fn free_pair() -> u16 {
    loop {
        let port = free_port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fleet_replica_serves_its_own_metrics() {
    let binary = nexhealth_contract_tests::example_binary("fleet", &["redis"]);
    let port = free_pair();
    let fleet = Killed::spawn(
        Tethered::command(binary)
            .args(["--replicas", "2", "--seconds", "6"])
            .args(["--metrics", &format!("127.0.0.1:{port}")])
            .env_remove("NEXHEALTH_BASE_URL")
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let http = nexhealth_api::reqwest::Client::new();
    for replica in [port, port + 1] {
        let started = Instant::now();
        let mut seen = String::new();
        while started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Ok(answer) = http
                .get(format!("http://127.0.0.1:{replica}/metrics"))
                .send()
                .await
            {
                seen = answer.text().await.unwrap_or_default();
                if seen.contains("nexhealth_client_attempts_total{")
                    && seen.contains("nexhealth_rate_limit_wait_duration_seconds_count{")
                {
                    break;
                }
            }
        }
        assert!(
            seen.contains("nexhealth_client_attempts_total{")
                && seen.contains("nexhealth_limiter=\"redis\""),
            "replica on {replica}:\n{seen}"
        );
    }
    drop(fleet);
}
