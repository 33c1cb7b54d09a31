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
        for route in routes() {
            server
                .mock_async(|when, then| {
                    when.method(route.method).path_matches(route.pattern);
                    if route.body.is_empty() {
                        then.status(route.status);
                    } else {
                        then.status(route.status)
                            .header("content-type", "application/json")
                            .body(route.body);
                    }
                })
                .await;
        }
        Self { server }
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
