//! `cargo xtask build-cost` and `cargo xtask bench-report`: the figures in
//! BENCHMARKS.md, produced by commands anyone can rerun.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

fn root() -> PathBuf {
    crate::root::find().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    })
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

fn timed_build(dir: &Path, target_dir: &Path, args: &[&str]) -> Result<f64, String> {
    let started = Instant::now();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--locked", "-p", "nexhealth-api"])
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("cargo build {args:?} failed"));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Clean builds with and without running progenitor, and the rebuild after a
/// one-field spec edit, in a scratch copy of the workspace.
pub fn build_cost() -> Result<Value, String> {
    let scratch = std::env::temp_dir().join(format!("nexhealth-build-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let work = scratch.join("repo");
    copy_tree(&root(), &work).map_err(|e| e.to_string())?;
    eprintln!("clean build, checked-in code (default features: aws-lc-rs TLS)…");
    let prebuilt = timed_build(&work, &scratch.join("t-prebuilt"), &[])?;
    eprintln!(
        "clean build, progenitor in build.rs (`codegen`, aws-lc-rs TLS: the previous default)…"
    );
    let codegen = timed_build(
        &work,
        &scratch.join("t-codegen"),
        &["--features", "codegen"],
    )?;
    eprintln!("clean build, progenitor in build.rs, ring TLS…");
    let codegen_ring = timed_build(
        &work,
        &scratch.join("t-codegen-ring"),
        &["--no-default-features", "--features", "codegen,rustls-ring"],
    )?;
    eprintln!("clean build, checked-in code, ring TLS…");
    let prebuilt_ring = timed_build(
        &work,
        &scratch.join("t-prebuilt-ring"),
        &["--no-default-features", "--features", "rustls-ring"],
    )?;
    eprintln!("the `mock` feature on top of the default build…");
    let mock = timed_build(&work, &scratch.join("t-prebuilt"), &["--features", "mock"])?;
    let spec = work.join("openapi").join("nexhealth.yaml");
    let text = std::fs::read_to_string(&spec).map_err(|e| e.to_string())?;
    let edited = text.replacen(
        "        wlogo:\n",
        "        fax_number:\n          type: string\n          nullable: true\n          description: Fax number.\n        wlogo:\n",
        1,
    );
    if edited == text {
        return Err("could not find the place to add a field".into());
    }
    std::fs::write(&spec, edited).map_err(|e| e.to_string())?;
    eprintln!("rebuild after adding one field to the spec (`codegen`)…");
    let rebuild = timed_build(
        &work,
        &scratch.join("t-codegen"),
        &["--features", "codegen"],
    )?;
    let _ = std::fs::remove_dir_all(&scratch);
    let result = json!({
        "clean_codegen_s": codegen,
        "clean_prebuilt_s": prebuilt,
        "saving_percent": (1.0 - prebuilt / codegen) * 100.0,
        "rebuild_after_spec_edit_s": rebuild,
        "mock_on_top_s": mock,
        "clean_codegen_ring_s": codegen_ring,
        "clean_prebuilt_ring_s": prebuilt_ring,
    });
    let out = target().join("build-cost.json");
    std::fs::create_dir_all(target()).map_err(|e| e.to_string())?;
    std::fs::write(&out, serde_json::to_vec_pretty(&result).unwrap()).map_err(|e| e.to_string())?;
    Ok(result)
}

fn estimate(group: &str, name: &str, variant: &str) -> Option<(f64, f64, f64)> {
    let path = target()
        .join("criterion")
        .join(group)
        .join(name)
        .join(variant)
        .join("new")
        .join("estimates.json");
    let value: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let mean = value.pointer("/mean/point_estimate")?.as_f64()?;
    let low = value
        .pointer("/mean/confidence_interval/lower_bound")?
        .as_f64()?;
    let high = value
        .pointer("/mean/confidence_interval/upper_bound")?
        .as_f64()?;
    Some((mean, low, high))
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
        })
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!(
        "{} cores ({cpu}), {memory} RAM, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        command_line("rustc", &["-V"])
    )
}

/// BENCHMARKS.md, from criterion's results, the benchmark's extras and the build costs.
pub fn report() -> Result<String, String> {
    let extras: Value = std::fs::read(target().join("criterion").join("extras.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("no benchmark results: run `cargo bench -p nexhealth-api` first")?;
    let mut md = String::new();
    let date = command_line("date", &["-u", "+%Y-%m-%d"]);
    md.push_str("# Benchmarks: nexhealth-api against hand-written reqwest + serde\n\n");
    md.push_str(&format!(
        "Measured on {date} on {}, release profile, one run of each command below. \
         Both sides talk to the same in-process HTTP/1.1 server on loopback (`nexhealth-api/benches/sdk_vs_reqwest.rs`); \
         the baseline is the reqwest + serde code a service would write by hand (same headers, bearer token fetched once, \
         structs with the same fields). Ratios are SDK / baseline of criterion's mean time (lower is better for the SDK); \
         the 95 % intervals show the run-to-run noise of a shared 2-core machine.\n\n",
        machine()
    ));
    md.push_str("Reproduce:\n\n```sh\ncargo bench -p nexhealth-api --bench sdk_vs_reqwest\ncargo xtask build-cost\ncargo xtask bench-report > BENCHMARKS.md\n```\n\n");

    md.push_str("## 1. Per-call overhead (target: ratio ≤ 1.02)\n\n| call | SDK | baseline | SDK / baseline |\n|---|---|---|---|\n");
    for (name, label) in [
        ("get_location", "GET /locations/{id}"),
        ("get_locations_1", "GET /locations, 1 location"),
        ("get_locations_100", "GET /locations, 100 locations"),
        ("get_locations_10000", "GET /locations, 10,000 locations"),
    ] {
        if let (Some(s), Some(b)) = (
            estimate("per_call", name, "sdk"),
            estimate("per_call", name, "baseline"),
        ) {
            md.push_str(&format!(
                "| {label} | {} ({}–{}) | {} ({}–{}) | **{:.3}** |\n",
                human(s.0),
                human(s.1),
                human(s.2),
                human(b.0),
                human(b.1),
                human(b.2),
                s.0 / b.0
            ));
        }
    }
    md.push_str("\n## 2. Throughput, 10,000 calls of GET /locations/{id} (target: ≥ 0.98× baseline)\n\n| concurrency | SDK calls/s | baseline calls/s | SDK / baseline | TCP connections (SDK / baseline) |\n|---|---|---|---|---|\n");
    for c in ["c1", "c16", "c64"] {
        if let (Some(s), Some(b)) = (
            estimate("throughput", c, "sdk"),
            estimate("throughput", c, "baseline"),
        ) {
            let conns = extras
                .pointer(&format!("/connections/{c}"))
                .cloned()
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | {:.0} | {:.0} | **{:.3}** | {} / {} |\n",
                &c[1..],
                10_000.0 / (s.0 / 1e9),
                10_000.0 / (b.0 / 1e9),
                b.0 / s.0,
                conns["sdk"],
                conns["baseline"]
            ));
        }
    }
    if let (Some(s), Some(b)) = (
        estimate("throughput", "c16", "sdk_send"),
        estimate("throughput", "c16", "baseline"),
    ) {
        md.push_str(&format!(
            "| 16, generated `.send()` with the SDK's hooks but without `.await` on the builder (envelope unwrapping, error mapping) | {:.0} | {:.0} | **{:.3}** | |\n",
            10_000.0 / (s.0 / 1e9),
            10_000.0 / (b.0 / 1e9),
            b.0 / s.0
        ));
    }
    md.push_str("\nConnections are counted at the server over all of criterion's iterations of that benchmark: a handful means the pool was reused for every call.\n");
    if let Some(paired) = extras.get("paired").and_then(Value::as_object) {
        md.push_str(PAIRED_INTRO);
        md.push_str("| case | rounds × calls per side | wall time, SDK / baseline: median (quartiles) | client CPU per call, SDK / baseline | client CPU, SDK / baseline: median (quartiles) |\n|---|---|---|---|---|\n");
        for (key, label) in PAIRED_CASES {
            let Some(case) = paired.get(*key) else {
                continue;
            };
            let quart = |name: &str| {
                let q = &case[name];
                format!(
                    "**{:.3}** ({:.3}–{:.3})",
                    q["median"].as_f64().unwrap_or(f64::NAN),
                    q["q1"].as_f64().unwrap_or(f64::NAN),
                    q["q3"].as_f64().unwrap_or(f64::NAN)
                )
            };
            md.push_str(&format!(
                "| {label} | {} × {} | {} | {:.1} µs / {:.1} µs | {} |\n",
                case["rounds"],
                case["calls_per_run"],
                quart("wall_ratio"),
                case["sdk_cpu_us"].as_f64().unwrap_or(f64::NAN),
                case["baseline_cpu_us"].as_f64().unwrap_or(f64::NAN),
                quart("cpu_ratio"),
            ));
        }
    }
    md.push_str("\n## 3. Authentication\n\n");
    md.push_str(&format!(
        "- 1,000 concurrent first calls on a fresh client caused **{}** `POST /authenticates` (the benchmark asserts exactly one).\n",
        extras["auth_exchanges_for_1000_first_calls"]
    ));
    if let Some(t) = estimate("auth", "token_check", "sdk") {
        md.push_str(&format!("- The per-call token check (read lock, expiry compare, header clone): **{}** ({}–{}).\n", human(t.0), human(t.1), human(t.2)));
    }
    md.push_str("\n## 4. Decoding a 10,000-location `/locations` payload (targets: ≤ 1.05× time, ≤ 1.2× peak memory)\n\n");
    if let (Some(s), Some(b)) = (
        estimate("decode", "locations_10000", "sdk"),
        estimate("decode", "locations_10000", "baseline"),
    ) {
        let peaks = &extras["decode_peak_bytes"];
        let (sp, bp) = (
            peaks["sdk"].as_f64().unwrap_or(0.0),
            peaks["baseline"].as_f64().unwrap_or(1.0),
        );
        md.push_str(&format!(
            "| | SDK types | baseline structs | SDK / baseline |\n|---|---|---|---|\n| time | {} | {} | **{:.3}** |\n| peak heap | {:.1} MiB | {:.1} MiB | **{:.3}** |\n\nPayload: {:.1} MiB. Peak heap is counted by a global allocator in the benchmark binary.\n",
            human(s.0), human(b.0), s.0 / b.0, sp / 1048576.0, bp / 1048576.0, sp / bp,
            peaks["payload_bytes"].as_f64().unwrap_or(0.0) / 1048576.0
        ));
    }
    md.push_str(
        "\n## 5. Build cost (target: skipping progenitor saves ≥ 30 % of a clean build)\n\n",
    );
    match std::fs::read(target().join("build-cost.json")).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
        Some(cost) => md.push_str(&format!(
            "| build of `nexhealth-api` (debug, from an empty target dir, crates already downloaded) | wall time |\n|---|---|\n\
             | previously, a registry user's default build: progenitor runs in build.rs (`features = [\"codegen\"]`, with `rustls-aws-lc`) | {:.1} s |\n\
             | now, a registry user's default build: the checked-in `generated/` code (default features: `rustls-aws-lc`) | {:.1} s |\n\
             | saving | **{:.0} %** |\n\
             | clean, progenitor, ring TLS (`features = [\"codegen\", \"rustls-ring\"]`) | {:.1} s |\n\
             | clean, checked-in code, ring TLS (`features = [\"rustls-ring\"]`) | {:.1} s |\n\
             | rebuild after adding one field to the spec (`codegen`, as in this repository) | {:.1} s |\n\
             | the `mock` feature on top of a default build (httpmock and its server) | {:.1} s |\n\n\
             Measured by `cargo xtask build-cost` in a scratch copy of the workspace.\n",
            cost["clean_codegen_s"].as_f64().unwrap_or(0.0),
            cost["clean_prebuilt_s"].as_f64().unwrap_or(0.0),
            cost["saving_percent"].as_f64().unwrap_or(0.0),
            cost["clean_codegen_ring_s"].as_f64().unwrap_or(0.0),
            cost["clean_prebuilt_ring_s"].as_f64().unwrap_or(0.0),
            cost["rebuild_after_spec_edit_s"].as_f64().unwrap_or(0.0),
            cost["mock_on_top_s"].as_f64().unwrap_or(0.0),
        )),
        None => md.push_str("Not measured yet: run `cargo xtask build-cost`.\n"),
    }
    // The analysis is written by hand; its figures name the commands that produce them.
    md.push_str(include_str!("bench_analysis.md"));
    Ok(md)
}

const PAIRED_INTRO: &str = "\n## 1–2 again, paired: both sides timed back to back\n\n\
Criterion times one side and then the other; on this shared virtual machine the speed of a \
loopback round trip drifts between the two by more than the difference measured. The \
benchmark's `paired` rounds time a run of the SDK and a run of the baseline back to back \
(the side going first alternating) and keep the ratio of each round, so that drift hits both \
sides of a ratio alike. They also read the client thread's CPU clock \
(`CLOCK_THREAD_CPUTIME_ID`; the client runtime is single-threaded, so this is all of the \
client's work, reqwest's connection tasks included, and none of the server's): that ratio \
is the SDK's own cost, free of scheduling noise. For the throughput rows a ratio below 1 \
means more calls per second for the SDK.\n\n";

const PAIRED_CASES: &[(&str, &str)] = &[
    ("get_location", "GET /locations/{id}"),
    ("get_locations_1", "GET /locations, 1 location"),
    ("get_locations_100", "GET /locations, 100 locations"),
    ("get_locations_10000", "GET /locations, 10,000 locations"),
    ("throughput_c1", "GET /locations/{id}, concurrency 1"),
    ("throughput_c16", "GET /locations/{id}, concurrency 16"),
    ("throughput_c64", "GET /locations/{id}, concurrency 64"),
];
