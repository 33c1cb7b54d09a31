//! [`StandIn`]: every operation answered with the spec's examples, and
//! scripted histories of locations ([`location_phases`]) and of syncs
//! ([`SyncPhase`], [`sync_phases`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use httpmock::MockServer;

use crate::api::operations::OPERATIONS;
use crate::domain::sync_health::SyncSide;
use crate::generated::types::{SyncStatus, SyncStatusListResponse};
use crate::mock::payloads;

/// An in-process server that answers every operation of the spec with its
/// success example, whatever the parameters. For demos and smoke tests.
///
/// `GET /sync_status` answers [`payloads::sync_status`] as of each request:
/// every sync read and checked in two minutes before the request, so its
/// syncs read as they are described however long the stand-in runs ("Front
/// desk server" green both ways, "Uptown cloud" red on writes). A scripted
/// history ([`moving_syncs`](Self::moving_syncs)) turns a side red and green
/// again, and sends the matching webhooks
/// ([`sending_webhooks_to`](Self::sending_webhooks_to)).
pub struct StandIn {
    server: MockServer,
    locations_served: Arc<AtomicUsize>,
    requests_served: Arc<AtomicUsize>,
    script: Arc<Mutex<SyncScript>>,
    /// Where the delivery task runs: the runtime the stand-in started in.
    runtime: Option<tokio::runtime::Handle>,
    deliveries: Option<tokio::task::JoinHandle<()>>,
}

/// One step of a scripted sync history: at `after` (wall-clock time counted
/// from the moment the stand-in was given its script), the `side` of the
/// sync serving `location_id` goes down (`up` false) or comes back (`up`
/// true).
///
/// From a `down` step on, `GET /sync_status` reports that side `red`, its
/// `*_status_at` frozen at what it reported at that moment (the last read or
/// check-in); NexHealth turns a side red only once that time is older than
/// its threshold (150 minutes for reads, 25 for writes), which the script
/// compresses into its moment. From an `up` step on, the side is `green`
/// and its `*_status_at` moves with the clock again. Before a sync's first
/// step, a side is as [`payloads::sync_status`] has it.
///
/// The syncs are those of [`payloads::sync_status`], named by a location
/// they serve: 7 ("Front desk server") or 8 ("Uptown cloud"). A step naming
/// a location no sync serves changes nothing and sends no webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPhase {
    /// When, counted from the moment the script was given.
    pub after: Duration,
    /// A location the sync serves.
    pub location_id: i32,
    /// Its reads or its writes.
    pub side: SyncSide,
    /// `true`: the side comes back (`green`); `false`: it goes down (`red`).
    pub up: bool,
}

impl SyncPhase {
    /// `side` of the sync serving `location_id` goes red `after` the start.
    pub fn down(after: Duration, location_id: i32, side: SyncSide) -> Self {
        Self {
            after,
            location_id,
            side,
            up: false,
        }
    }

    /// `side` of the sync serving `location_id` is green again `after` the
    /// start.
    pub fn up(after: Duration, location_id: i32, side: SyncSide) -> Self {
        Self {
            after,
            location_id,
            side,
            up: true,
        }
    }

    /// `green` for a step up, `red` for a step down: the status
    /// `/sync_status` reports from then on and the suffix of its webhook
    /// (`sync_status_write_change.red`).
    pub fn outcome(&self) -> &'static str {
        if self.up { "green" } else { "red" }
    }
}

/// The short sync history the `directory` example's `--watch` shows on the
/// stand-in: the writes of "Front desk server" (location 7) go down 2 seconds
/// after the start and come back 4 seconds after it.
///
/// ```
/// use std::time::Duration;
/// use nexhealth_api::mock::{SyncPhase, sync_phases};
/// use nexhealth_api::sync_health::SyncSide;
///
/// assert_eq!(
///     sync_phases(),
///     [
///         SyncPhase::down(Duration::from_secs(2), 7, SyncSide::Write),
///         SyncPhase::up(Duration::from_secs(4), 7, SyncSide::Write),
///     ]
/// );
/// ```
pub fn sync_phases() -> Vec<SyncPhase> {
    vec![
        SyncPhase::down(Duration::from_secs(2), 7, SyncSide::Write),
        SyncPhase::up(Duration::from_secs(4), 7, SyncSide::Write),
    ]
}

/// A stand-in's sync script, shared by its `/sync_status` answers and its
/// delivery task.
struct SyncScript {
    /// Sorted by `after` (stable: steps at the same time keep their order).
    phases: Vec<SyncPhase>,
    /// When the script was given: `after` counts from here.
    started: DateTime<Utc>,
    /// Where webhooks go, and the secret they are signed with.
    receiver: Option<(String, String)>,
    /// How many steps (in order) were delivered.
    delivered: usize,
}

impl Default for SyncScript {
    fn default() -> Self {
        Self {
            phases: Vec::new(),
            started: Utc::now(),
            receiver: None,
            delivered: 0,
        }
    }
}

impl SyncScript {
    /// When `phase` happens.
    fn at(&self, phase: &SyncPhase) -> DateTime<Utc> {
        self.started + chrono::Duration::from_std(phase.after).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// `GET /sync_status` as of `now`: [`payloads::sync_status_at`], each
    /// side moved by the last step of its sync at or before `now`.
    fn sync_status(&self, now: DateTime<Utc>) -> SyncStatusListResponse {
        let mut body = payloads::sync_status_at(now);
        for (index, sync) in body.data.iter_mut().enumerate() {
            for side in [SyncSide::Read, SyncSide::Write] {
                let last = self
                    .phases
                    .iter()
                    .rfind(|p| p.side == side && serves(sync, p.location_id) && self.at(p) <= now);
                let Some(phase) = last else { continue };
                let (status, stamp) = side_of(sync, side);
                *status = Some(phase.outcome().to_string());
                if !phase.up {
                    // Frozen at what was reported when it went down.
                    *stamp = reported_at(index, side, self.at(phase));
                }
            }
        }
        body
    }

    /// The webhook delivery of `phase`, `None` when no sync serves its
    /// location: its time is the side's `*_status_at` as `/sync_status`
    /// reports it at that moment (the last read or check-in when it went
    /// down, the first one back when it came back).
    fn delivery(&self, phase: &SyncPhase) -> Option<serde_json::Value> {
        let at = self.at(phase);
        let syncs = payloads::sync_status_at(at).data;
        let index = syncs
            .iter()
            .position(|sync| serves(sync, phase.location_id))?;
        let last = reported_at(index, phase.side, at)?;
        Some(payloads::sync_status_delivery(
            phase.side,
            phase.outcome(),
            phase.location_id,
            last,
        ))
    }
}

fn serves(sync: &SyncStatus, location_id: i32) -> bool {
    sync.locations.iter().any(|l| l.id == location_id)
}

fn side_of(
    sync: &mut SyncStatus,
    side: SyncSide,
) -> (&mut Option<String>, &mut Option<DateTime<Utc>>) {
    match side {
        SyncSide::Read => (&mut sync.read_status, &mut sync.read_status_at),
        SyncSide::Write => (&mut sync.write_status, &mut sync.write_status_at),
    }
}

/// The `*_status_at` of `side` of sync `index` that `/sync_status` reports at
/// `at` (before any script).
fn reported_at(index: usize, side: SyncSide, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut syncs = payloads::sync_status_at(at).data;
    let sync = syncs.get_mut(index)?;
    *side_of(sync, side).1
}

/// Delivers the script's steps not delivered yet, in order, each at its
/// time (at once when past), to the receiver configured when it is due.
async fn deliver_script(script: Arc<Mutex<SyncScript>>) {
    loop {
        let (due, event, receiver) = {
            let script = script.lock().unwrap_or_else(|e| e.into_inner());
            let Some(phase) = script.phases.get(script.delivered) else {
                return;
            };
            (
                script.at(phase),
                script.delivery(phase),
                script.receiver.clone(),
            )
        };
        let Some((url, secret)) = receiver else {
            return;
        };
        let wait = (due - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        if let Some(event) = event {
            crate::mock::DeliverySimulator::new(secret)
                .deliver(&url, &event)
                .await;
        }
        script.lock().unwrap_or_else(|e| e.into_inner()).delivered += 1;
    }
}

/// What a stand-in answers for one operation: its method and path pattern,
/// and its success status with the spec's example (empty for a 204).
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) pattern: regex::Regex,
    pub(crate) status: u16,
    body: Body,
}

enum Body {
    Fixed(String),
    /// `GET /sync_status`, as of the request.
    SyncStatus(Arc<Mutex<SyncScript>>),
}

impl Route {
    /// The body to answer now (empty for a 204).
    pub(crate) fn body(&self) -> String {
        match &self.body {
            Body::Fixed(body) => body.clone(),
            Body::SyncStatus(script) => {
                let body = script
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .sync_status(Utc::now());
                serde_json::to_string(&body).unwrap_or_default()
            }
        }
    }
}

/// Every operation the stand-ins answer. `GET /sync_status` answers
/// [`payloads::sync_status`] as of each request.
pub(crate) fn routes() -> Vec<Route> {
    routes_with(&Arc::default())
}

/// [`routes`], `GET /sync_status` following `script`.
fn routes_with(script: &Arc<Mutex<SyncScript>>) -> Vec<Route> {
    OPERATIONS
        .iter()
        .filter_map(|op| {
            let body = if op.id == "getSyncStatus" {
                Body::SyncStatus(script.clone())
            } else {
                let body = payloads::json(op.id, op.success_status).map(str::to_string);
                Body::Fixed(body.or_else(|| (op.success_status == 204).then(String::new))?)
            };
            Some(Route {
                method: op.method,
                pattern: regex::Regex::new(&op.path_pattern()).expect("valid path pattern"),
                status: op.success_status,
                body,
            })
        })
        .collect()
}

impl StandIn {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let server = MockServer::start_async().await;
        Self::serving(server, Arc::default(), Arc::default()).await
    }

    /// The stand-in around `server`, every operation registered after what
    /// `server` already answers (httpmock answers with the first mock that
    /// matches).
    async fn serving(
        server: MockServer,
        locations_served: Arc<AtomicUsize>,
        requests_served: Arc<AtomicUsize>,
    ) -> Self {
        let script = Arc::default();
        Self::serve_routes(&server, &requests_served, &script).await;
        Self {
            server,
            locations_served,
            requests_served,
            script,
            runtime: tokio::runtime::Handle::try_current().ok(),
            deliveries: None,
        }
    }

    /// A stand-in whose `GET /locations` moves through [`location_phases`]:
    /// its first `unchanged` answers are phase 0, then each answer is the next
    /// phase, and the last one stays: a location added, one renamed, a
    /// migration (the old location deactivated, a new one with its name), one
    /// that disappears, a changed time zone, one reactivated. One step per
    /// request, not per second, so a watcher sees every step however busy the
    /// machine. Every other operation answers as [`StandIn::start`] does. For
    /// demos and tests of [`LocationDirectory::watch`](crate::directory::LocationDirectory::watch).
    pub async fn with_moving_locations(unchanged: usize) -> Self {
        let server = MockServer::start_async().await;
        let phases: Vec<String> = location_phases()
            .iter()
            .map(|body| serde_json::to_string(body).unwrap_or_default())
            .collect();
        let locations_served = Arc::new(AtomicUsize::new(0));
        let served = locations_served.clone();
        let requests_served: Arc<AtomicUsize> = Arc::default();
        let all = requests_served.clone();
        // Registered first: httpmock answers with the first mock that matches.
        server
            .mock_async(move |when, then| {
                when.method(httpmock::Method::GET).path("/locations");
                then.respond_with(move |_: &httpmock::HttpMockRequest| {
                    all.fetch_add(1, Ordering::SeqCst);
                    let n = served.fetch_add(1, Ordering::SeqCst);
                    let phase = (n + 1).saturating_sub(unchanged).min(phases.len() - 1);
                    httpmock::HttpMockResponse::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(phases[phase].clone())
                        .build()
                });
            })
            .await;
        Self::serving(server, locations_served, requests_served).await
    }

    /// A stand-in whose syncs follow `phases` (see [`SyncPhase`]), counted
    /// from its start: [`StandIn::start`] then
    /// [`moving_syncs`](Self::moving_syncs).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use nexhealth_api::mock::{StandIn, SyncPhase};
    /// use nexhealth_api::sync_health::SyncSide;
    ///
    /// # async fn demo() {
    /// let stand_in = StandIn::with_sync_phases([
    ///     SyncPhase::down(Duration::from_secs(1), 7, SyncSide::Write),
    ///     SyncPhase::up(Duration::from_secs(3), 7, SyncSide::Write),
    /// ])
    /// .await
    /// .sending_webhooks_to("http://127.0.0.1:8080/hooks", "signing-secret");
    /// # let _ = stand_in; }
    /// ```
    pub async fn with_sync_phases(phases: impl IntoIterator<Item = SyncPhase>) -> Self {
        Self::start().await.moving_syncs(phases)
    }

    /// Gives the stand-in a scripted sync history, replacing any it had:
    /// each [`SyncPhase`] turns a side of a sync red or green again at its
    /// offset, counted from now, in what `GET /sync_status` answers from then
    /// on. With a receiver ([`sending_webhooks_to`](Self::sending_webhooks_to)),
    /// each step is also delivered as its webhook. Works on any stand-in,
    /// e.g. one [`with_moving_locations`](Self::with_moving_locations).
    pub fn moving_syncs(mut self, phases: impl IntoIterator<Item = SyncPhase>) -> Self {
        let mut phases: Vec<SyncPhase> = phases.into_iter().collect();
        phases.sort_by_key(|p| p.after);
        {
            let mut script = self.script.lock().unwrap_or_else(|e| e.into_inner());
            script.phases = phases;
            script.started = Utc::now();
            script.delivered = 0;
        }
        self.restart_deliveries();
        self
    }

    /// Sends each step of the sync script as NexHealth's webhook to `url`,
    /// signed with `secret`, at the step's time: `sync_status_read_change.red`
    /// or `sync_status_write_change.red` when a side goes down, `.green` when
    /// it comes back ([`payloads::sync_status_delivery`], dated with the
    /// side's `*_status_at` as `/sync_status` reports it at that moment),
    /// through a [`DeliverySimulator`](crate::mock::DeliverySimulator), which
    /// retries on any answer but 2xx. In order: a step waits for the one
    /// before it. A step already past when this is called is sent at once.
    ///
    /// The deliveries run on the Tokio runtime the stand-in was started in;
    /// none are sent when it started outside one.
    pub fn sending_webhooks_to(
        mut self,
        url: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .receiver = Some((url.into(), secret.into()));
        self.restart_deliveries();
        self
    }

    /// (Re)starts the task delivering the script's steps.
    fn restart_deliveries(&mut self) {
        if let Some(task) = self.deliveries.take() {
            task.abort();
        }
        let pending = {
            let script = self.script.lock().unwrap_or_else(|e| e.into_inner());
            script.receiver.is_some() && script.delivered < script.phases.len()
        };
        if let (true, Some(runtime)) = (pending, &self.runtime) {
            self.deliveries = Some(runtime.spawn(deliver_script(self.script.clone())));
        }
    }

    /// How many steps of the sync script were delivered as webhooks (each
    /// counted once its delivery ended, answered 2xx or given up).
    pub fn sync_webhooks_sent(&self) -> usize {
        self.script
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .delivered
    }

    /// How many `GET /locations` a stand-in from
    /// [`with_moving_locations`](Self::with_moving_locations) answered (one
    /// from [`start`](Self::start) does not count them: 0).
    pub fn locations_served(&self) -> usize {
        self.locations_served.load(Ordering::SeqCst)
    }

    /// How many requests the stand-in answered, of every operation.
    pub fn requests_served(&self) -> usize {
        self.requests_served.load(Ordering::SeqCst)
    }

    async fn serve_routes(
        server: &MockServer,
        served: &Arc<AtomicUsize>,
        script: &Arc<Mutex<SyncScript>>,
    ) {
        for route in routes_with(script) {
            let served = served.clone();
            server
                .mock_async(move |when, then| {
                    when.method(route.method)
                        .path_matches(route.pattern.clone());
                    then.respond_with(move |_: &httpmock::HttpMockRequest| {
                        served.fetch_add(1, Ordering::SeqCst);
                        let mut response =
                            httpmock::HttpMockResponse::builder().status(route.status);
                        let body = route.body();
                        if !body.is_empty() {
                            response = response
                                .header("content-type", "application/json")
                                .body(body);
                        }
                        response.build()
                    });
                })
                .await;
        }
    }

    /// The base URL to give [`crate::ClientBuilder::base_url`].
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The underlying httpmock server.
    pub fn server(&self) -> &MockServer {
        &self.server
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(task) = self.deliveries.take() {
            task.abort();
        }
    }
}

/// The answers of [`StandIn::with_moving_locations`]'s `GET /locations`, in
/// order, built from [`payloads::locations`] (institution 1
/// `example-subdomain`: 7 "Default" active, 8 "Uptown" inactive):
///
/// 0. as the spec's example;
/// 1. location 9 "Midtown" added;
/// 2. 7 deactivated and 70 "Default" added (NexHealth's migration: replaced),
///    9 renamed "Midtown Dental";
/// 3. 9 gone (removed, no successor), 70's time zone `America/Chicago`;
/// 4. 8 reactivated.
pub fn location_phases() -> Vec<crate::generated::types::LocationListResponse> {
    let base = payloads::locations();
    let mut phases = vec![base.clone()];
    let template = base.data[0].locations[0].clone();
    let office = |id: i32, name: &str| {
        let mut location = template.clone();
        location.id = id;
        location.name = Some(name.to_string());
        location.inactive = Some(false);
        location.foreign_id = Some(format!("{id}"));
        location
    };
    let mut next = base;
    next.data[0].locations.push(office(9, "Midtown"));
    phases.push(next.clone());
    next.data[0].locations[0].inactive = Some(true);
    next.data[0].locations[2].name = Some("Midtown Dental".into());
    next.data[0].locations.push(office(70, "Default"));
    phases.push(next.clone());
    next.data[0].locations.retain(|l| l.id != 9);
    if let Some(seventy) = next.data[0].locations.iter_mut().find(|l| l.id == 70) {
        seventy.tz = Some("America/Chicago".into());
    }
    phases.push(next.clone());
    if let Some(eight) = next.data[0].locations.iter_mut().find(|l| l.id == 8) {
        eight.inactive = Some(false);
    }
    phases.push(next);
    phases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync_health::{State, SyncReport, Thresholds, WriteReadiness};
    use crate::webhooks::{Event, Receiver};

    const SECRET: &str = "stand-in-test-secret";

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn script(phases: Vec<SyncPhase>) -> SyncScript {
        SyncScript {
            phases,
            ..SyncScript::default()
        }
    }

    fn client(stand_in: &StandIn) -> crate::Client {
        crate::Client::builder("stand-in-test-key")
            .base_url(stand_in.base_url())
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn sync_status_times_move_with_the_request_time() {
        let stand_in = StandIn::start().await;
        let client = client(&stand_in);
        let first = client.sync_health(None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let asked = Utc::now();
        let second = client.sync_health(None).await.unwrap();
        for (a, b) in first.syncs.iter().zip(&second.syncs) {
            for (a, b) in [(&a.read, &b.read), (&a.write, &b.write)] {
                let (a, b) = (a.last.unwrap(), b.last.unwrap());
                assert!(b - a >= chrono::Duration::seconds(1), "{a} then {b}");
                // Current: two minutes before the request, as the payloads say.
                let before = asked - b;
                assert!(
                    before >= chrono::Duration::seconds(110)
                        && before <= chrono::Duration::seconds(130),
                    "{b} asked at {asked}"
                );
            }
        }
        assert_eq!(second.write_readiness(7), WriteReadiness::Ready);
        assert_eq!(
            second.write_readiness(8),
            WriteReadiness::Down,
            "as the example"
        );
    }

    #[test]
    fn a_clock_far_after_start_is_still_green() {
        let quiet = script(Vec::new());
        // A history long over by then changes nothing either.
        let over = script(vec![
            SyncPhase::down(secs(1), 7, SyncSide::Write),
            SyncPhase::up(secs(2), 7, SyncSide::Write),
        ]);
        for script in [quiet, over] {
            let later = script.started + chrono::Duration::hours(3);
            let report =
                SyncReport::assess(script.sync_status(later).data, later, Thresholds::default());
            assert!(report.syncs[0].is_healthy(), "{:?}", report.syncs[0]);
            assert_eq!(report.syncs[0].write.age, Some(secs(120)));
            assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
            assert_eq!(report.write_readiness(8), WriteReadiness::Down);
        }
    }

    #[test]
    fn each_side_follows_the_last_step_of_its_sync() {
        let script = script(vec![
            SyncPhase::up(secs(20), 7, SyncSide::Write),
            SyncPhase::down(secs(10), 7, SyncSide::Write),
            SyncPhase::down(secs(15), 8, SyncSide::Read),
            SyncPhase::down(secs(1), 9, SyncSide::Read),
        ]);
        let mut script = script;
        script.phases.sort_by_key(|p| p.after);
        let at = |s: i64| script.started + chrono::Duration::seconds(s);
        let two_minutes = chrono::Duration::minutes(2);
        let status = |s: i64| script.sync_status(at(s)).data;

        let before = status(5);
        assert_eq!(before, payloads::sync_status_at(at(5)).data, "9: no sync");
        // Writes of 7 down at 10 s: red, frozen at what was reported then.
        for s in [10, 12, 14] {
            let front = &status(s)[0];
            assert_eq!(front.write_status.as_deref(), Some("red"));
            assert_eq!(front.write_status_at, Some(at(10) - two_minutes));
            assert_eq!(front.read_status.as_deref(), Some("green"), "reads go on");
            assert_eq!(front.read_status_at, Some(at(s) - two_minutes));
        }
        let uptown = &status(16)[1];
        assert_eq!(uptown.read_status.as_deref(), Some("red"));
        assert_eq!(uptown.read_status_at, Some(at(15) - two_minutes));
        assert_eq!(
            uptown.write_status.as_deref(),
            Some("red"),
            "as the example"
        );
        // Back at 20 s: green, moving again.
        let front = &status(25)[0];
        assert_eq!(front.write_status.as_deref(), Some("green"));
        assert_eq!(front.write_status_at, Some(at(25) - two_minutes));

        // The deliveries: dated as `/sync_status` reported the side then.
        let red = script.delivery(&script.phases[1]).unwrap();
        assert_eq!(red["event_name"], "sync_status_write_change.red");
        let when = (at(10) - two_minutes).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(red["event_time"], when.as_str());
        let green = script.delivery(&script.phases[3]).unwrap();
        assert_eq!(green["event_name"], "sync_status_write_change.green");
        assert!(script.delivery(&script.phases[0]).is_none(), "9: no sync");
    }

    /// One HTTP/1.1 request: its headers and body (by `content-length`).
    async fn read_request(socket: &mut tokio::net::TcpStream) -> (http::HeaderMap, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let mut bytes = Vec::new();
        let mut chunk = [0_u8; 4096];
        let end = loop {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the request ended early");
            bytes.extend_from_slice(&chunk[..n]);
            if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
        let mut headers = http::HeaderMap::new();
        for line in head.lines().skip(1).filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').unwrap();
            headers.append(
                http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                http::HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
        let length: usize = headers["content-length"].to_str().unwrap().parse().unwrap();
        let mut body = bytes[end..].to_vec();
        while body.len() < length {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the body ended early");
            body.extend_from_slice(&chunk[..n]);
        }
        (headers, body)
    }

    /// A receiver on a loopback port: each delivery verified by
    /// [`Receiver`], answered 200 (401 when it fails), and sent on.
    async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let receiver = Receiver::new(SECRET).unwrap();
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (headers, body) = read_request(&mut socket).await;
                let status = match receiver.receive(&headers, &body) {
                    Ok(event) => {
                        let _ = tx.send(event);
                        200
                    }
                    Err(rejection) => rejection.status(),
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                use tokio::io::AsyncWriteExt;
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, rx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scripted_history_is_served_and_delivered_as_webhooks() {
        let (url, mut events) = receiver().await;
        let stand_in = StandIn::with_sync_phases([
            SyncPhase::down(Duration::from_millis(600), 7, SyncSide::Write),
            SyncPhase::up(Duration::from_millis(1_500), 7, SyncSide::Write),
        ])
        .await
        .sending_webhooks_to(url, SECRET);
        let client = client(&stand_in);

        // What `/sync_status` says of location 7's writes, each change once.
        let mut seen: Vec<(State, Option<DateTime<Utc>>)> = Vec::new();
        let mut held = None;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let report = client.sync_health(None).await.unwrap();
            held.get_or_insert_with(|| report.clone());
            let write = &report.syncs[0].write;
            let state = write.state.clone();
            if seen.last().map(|(s, _)| s) != Some(&state) {
                seen.push((state.clone(), write.last));
            }
            if seen.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let states: Vec<&State> = seen.iter().map(|(s, _)| s).collect();
        assert_eq!(
            states,
            [&State::Green, &State::Red, &State::Green],
            "{seen:?}"
        );

        // And the webhooks: `.red` with the frozen check-in, then `.green`.
        let mut delivered = Vec::new();
        while delivered.len() < 2 {
            let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .expect("both webhooks within 10 s")
                .unwrap();
            let Event::SyncStatusWriteChange(event) = event else {
                panic!("{event:?}")
            };
            delivered.push(event);
        }
        assert_eq!(
            delivered[0].envelope.event_name,
            "sync_status_write_change.red"
        );
        assert_eq!(delivered[0].status_of(SyncSide::Write), Some("red"));
        assert_eq!(
            delivered[0].time_of(SyncSide::Write),
            seen[1].1,
            "the held time"
        );
        assert_eq!(
            delivered[1].envelope.event_name,
            "sync_status_write_change.green"
        );
        assert_eq!(delivered[1].status_of(SyncSide::Write), Some("green"));
        assert!(delivered[1].time_of(SyncSide::Write) > delivered[0].time_of(SyncSide::Write));
        assert!(delivered.iter().all(|e| e.sync.location_ids.contains(&7)));
        assert_eq!(stand_in.sync_webhooks_sent(), 2);

        // Applied to the report held from before, they take it down and back.
        let mut report = held.unwrap();
        let now = Utc::now();
        assert!(report.apply_event(&delivered[0], now));
        assert_eq!(report.write_readiness(7), WriteReadiness::Down);
        assert!(report.apply_event(&delivered[1], now));
        assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
    }
}
