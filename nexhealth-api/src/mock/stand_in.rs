//! [`StandIn`]: every operation answered with the spec's examples.

use httpmock::MockServer;

use crate::api::operations::OPERATIONS;
use crate::mock::payloads;

/// An in-process server that answers every operation of the spec with its
/// success example, whatever the parameters. For demos and smoke tests.
/// `GET /sync_status` answers [`payloads::sync_status`], dated relative to
/// the moment the server started, so its syncs read as they are described.
pub struct StandIn {
    server: MockServer,
    locations_served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    requests_served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// What a stand-in answers for one operation: its method and path pattern,
/// and its success status with the spec's example (empty for a 204).
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) pattern: regex::Regex,
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Every operation the stand-ins answer. `GET /sync_status` answers
/// [`payloads::sync_status`], dated relative to now.
pub(crate) fn routes() -> Vec<Route> {
    OPERATIONS
        .iter()
        .filter_map(|op| {
            let body = if op.id == "getSyncStatus" {
                serde_json::to_string(&payloads::sync_status()).ok()
            } else {
                payloads::json(op.id, op.success_status).map(str::to_string)
            };
            let body = body.or_else(|| (op.success_status == 204).then(String::new))?;
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
        let requests_served = std::sync::Arc::default();
        Self::serve_routes(&server, &requests_served).await;
        Self {
            server,
            locations_served: Default::default(),
            requests_served,
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
        let locations_served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let served = locations_served.clone();
        let requests_served: std::sync::Arc<std::sync::atomic::AtomicUsize> =
            std::sync::Arc::default();
        let all = requests_served.clone();
        // Registered first: httpmock answers with the first mock that matches.
        server
            .mock_async(move |when, then| {
                when.method(httpmock::Method::GET).path("/locations");
                then.respond_with(move |_: &httpmock::HttpMockRequest| {
                    all.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let phase = (n + 1).saturating_sub(unchanged).min(phases.len() - 1);
                    httpmock::HttpMockResponse::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(phases[phase].clone())
                        .build()
                });
            })
            .await;
        Self::serve_routes(&server, &requests_served).await;
        Self {
            server,
            locations_served,
            requests_served,
        }
    }

    /// How many `GET /locations` a stand-in from
    /// [`with_moving_locations`](Self::with_moving_locations) answered (one
    /// from [`start`](Self::start) does not count them: 0).
    pub fn locations_served(&self) -> usize {
        self.locations_served
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many requests the stand-in answered, of every operation.
    pub fn requests_served(&self) -> usize {
        self.requests_served
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn serve_routes(
        server: &MockServer,
        served: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        for route in routes() {
            let served = served.clone();
            server
                .mock_async(move |when, then| {
                    when.method(route.method).path_matches(route.pattern);
                    then.respond_with(move |_: &httpmock::HttpMockRequest| {
                        served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let mut response =
                            httpmock::HttpMockResponse::builder().status(route.status);
                        if !route.body.is_empty() {
                            response = response
                                .header("content-type", "application/json")
                                .body(route.body.clone());
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
