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

impl StandIn {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let server = MockServer::start_async().await;
        for op in OPERATIONS {
            let body = if op.id == "getSyncStatus" {
                serde_json::to_string(&payloads::sync_status()).ok()
            } else {
                payloads::json(op.id, op.success_status).map(str::to_string)
            };
            let Some(body) = body.or_else(|| (op.success_status == 204).then(String::new)) else {
                continue;
            };
            let pattern = op.path_pattern();
            let method = op.method.to_string();
            server
                .mock_async(|when, then| {
                    when.method(method.as_str())
                        .path_matches(regex::Regex::new(&pattern).expect("valid path pattern"));
                    if body.is_empty() {
                        then.status(op.success_status);
                    } else {
                        then.status(op.success_status)
                            .header("content-type", "application/json")
                            .body(body);
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
