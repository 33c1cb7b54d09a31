//! A plain loop of `GET /locations/{id}` calls for profilers, which want one
//! side at a time and no harness around it:
//!
//! ```sh
//! cargo bench -p nexhealth-api --bench call_loop -- sdk 2000
//! valgrind --tool=callgrind target/release/deps/call_loop-<hash> sdk 2000
//! perf record -e cpu-clock target/release/deps/call_loop-<hash> baseline 20000
//! ```
//!
//! Prints the client thread's CPU time per call. Sides: `sdk` (`.await` on the
//! builder), `send` (the generated `.progenitor_send()` with the SDK's hooks) and
//! `baseline` (hand-written reqwest + serde). A second argument sets the
//! number of calls (default 2,000); a run with two counts and the difference
//! of the totals gives the cost of one call without the set-up.

mod support;

use support::{Baseline, Location, client_runtime, sdk_client, start_server, thread_cpu};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let side = args.next().unwrap_or_else(|| "sdk".into());
    let calls: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let rt = client_runtime();
    let server = start_server();
    let sdk = sdk_client(&server.base);
    let baseline = rt.block_on(Baseline::new(&server.base));
    rt.block_on(async {
        // The token and a connection, before the measured loop.
        sdk.get_locations_id()
            .id(7)
            .await
            .expect("the SDK's first call");
        let started = thread_cpu();
        for _ in 0..calls {
            let id = match side.as_str() {
                "sdk" => sdk.get_locations_id().id(7).await.ok().map(|r| r.id),
                "send" => sdk
                    .get_locations_id()
                    .id(7)
                    .progenitor_send()
                    .await
                    .ok()
                    .map(|r| r.into_inner().data.id),
                "baseline" => Some(baseline.get::<Location>("/locations/7", &[]).await.data.id),
                other => panic!("unknown side {other:?}: sdk, send or baseline"),
            };
            assert_eq!(id.expect("a call on loopback succeeds"), 7);
        }
        let per_call = (thread_cpu() - started).as_secs_f64() * 1e6 / calls as f64;
        println!("{side}: {calls} calls, client CPU {per_call:.1} µs per call");
    });
}
