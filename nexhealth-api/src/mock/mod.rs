//! Test support, behind the `mock` feature: typed httpmock helpers generated
//! from the spec ([`MockServerExt`]), the spec's example payloads
//! ([`payloads`]) and a stand-in server that answers every operation with
//! them ([`StandIn`]).
//!
//! ```no_run
//! use httpmock::MockServer;
//! use nexhealth_api::mock::{MockServerExt, payloads};
//!
//! # async fn demo() -> Result<(), nexhealth_api::Error> {
//! let server = MockServer::start_async().await;
//! server.post_authenticates(|_, then| { then.created(&payloads::authenticate()); });
//! let locations = server.get_locations(|when, then| {
//!     when.subdomain("example-subdomain");
//!     then.ok(&payloads::locations());
//! });
//! let client = nexhealth_api::Client::builder("test-key").base_url(server.base_url()).build()?;
//! let institutions = client.get_locations().subdomain("example-subdomain").await?;
//! assert_eq!(institutions[0].locations[0].id, 7);
//! locations.assert_calls(1);
//! # Ok(()) }
//! ```

#[allow(missing_docs, clippy::all, unused_imports, unused_qualifications)]
mod generated_httpmock {
    include!(concat!(env!("OUT_DIR"), "/generated_httpmock.rs"));
}
pub use generated_httpmock::{MockServerExt, operations};

use httpmock::MockServer;

use crate::api::operations::OPERATIONS;

pub mod payloads {
    //! The spec's examples, decoded into the generated types.
    //!
    //! Every example is checked against its schema by the crate's own tests,
    //! so the typed accessors below cannot fail on a spec that passes CI.

    use serde::de::DeserializeOwned;

    use crate::api::operations::EXAMPLES;
    use crate::types;

    /// The example JSON for `operation` (spec id) and `status` (0 for the request body).
    pub fn json(operation: &str, status: u16) -> Option<&'static str> {
        EXAMPLES
            .iter()
            .find(|(op, s, _)| *op == operation && *s == status)
            .map(|(_, _, json)| *json)
    }

    /// The example decoded into `T`.
    pub fn decode<T: DeserializeOwned>(operation: &str, status: u16) -> Result<T, String> {
        let text = json(operation, status)
            .ok_or_else(|| format!("the spec has no example for {operation} {status}"))?;
        serde_json::from_str(text).map_err(|e| format!("example {operation} {status}: {e}"))
    }

    fn known<T: DeserializeOwned>(operation: &str, status: u16) -> T {
        decode(operation, status).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `POST /authenticates` 201.
    pub fn authenticate() -> types::AuthenticateResponse {
        known("postAuthenticates", 201)
    }
    /// `GET /institutions` 200.
    pub fn institutions() -> types::InstitutionListResponse {
        known("getInstitutions", 200)
    }
    /// `GET /institutions/{id}` 200.
    pub fn institution() -> types::InstitutionResponse {
        known("getInstitutionsId", 200)
    }
    /// `GET /locations` 200: one institution with an active and an inactive location.
    pub fn locations() -> types::LocationListResponse {
        known("getLocations", 200)
    }
    /// `GET /locations` 200 holding `n` locations, for size and load tests: the
    /// example's first institution with `n` copies of its first location, ids
    /// `0..n`, and `count` 1.
    pub fn locations_with(n: usize) -> types::LocationListResponse {
        let mut body = locations();
        body.data.truncate(1);
        for institution in &mut body.data {
            let template = institution.locations.swap_remove(0);
            institution.locations = (0..)
                .take(n)
                .map(|id| types::Location {
                    id,
                    ..template.clone()
                })
                .collect();
        }
        body.count = Some(1);
        body
    }
    /// `GET /locations/{id}` 200.
    pub fn location() -> types::LocationResponse {
        known("getLocationsId", 200)
    }
    /// `GET /sync_status` 200: one healthy sync and one whose writes are down.
    pub fn sync_status() -> types::SyncStatusListResponse {
        known("getSyncStatus", 200)
    }
    /// `GET /onboardings` 200.
    pub fn onboardings() -> types::OnboardingListResponse {
        known("getOnboardings", 200)
    }
    /// `GET /onboardings/{hashid}` 200.
    pub fn onboarding() -> types::OnboardingResponse {
        known("getOnboardingsHashid", 200)
    }
    /// `POST /onboardings` 201.
    pub fn onboarding_created() -> types::OnboardingResponse {
        known("postOnboardings", 201)
    }
    /// `POST /onboardings` request body.
    pub fn onboarding_request() -> types::OnboardingCreateRequest {
        known("postOnboardings", 0)
    }
    /// The spec's error envelope for `status` (400, 401, 403, 404, 429 or 500).
    pub fn error(status: u16) -> types::ErrorEnvelope {
        let operation = crate::api::operations::OPERATIONS
            .iter()
            .find(|op| op.error_statuses.contains(&status))
            .map_or("", |op| op.id);
        known(operation, status)
    }
}

/// An in-process server that answers every operation of the spec with its
/// success example, whatever the parameters. For demos and smoke tests.
pub struct StandIn {
    server: MockServer,
}

impl StandIn {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let server = MockServer::start_async().await;
        for op in OPERATIONS {
            let Some(body) = payloads::json(op.id, op.success_status) else {
                continue;
            };
            let pattern = op.path_pattern();
            let method = op.method.to_string();
            server
                .mock_async(|when, then| {
                    when.method(method.as_str())
                        .path_matches(regex::Regex::new(&pattern).expect("valid path pattern"));
                    then.status(op.success_status)
                        .header("content-type", "application/json")
                        .body(body);
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

/// Status the [`fallback`] mock answers with.
pub const FALLBACK_STATUS: u16 = 501;

/// Installs a catch-all mock that answers any request no earlier mock matched
/// with [`FALLBACK_STATUS`] and an error envelope naming the method and path,
/// so an unexpected call fails readably (`Error::Server` with the message
/// `no mock matched GET /path`). httpmock tries mocks in the order they were
/// created: install this one last, and assert it saw no calls.
pub fn fallback(server: &MockServer) -> httpmock::Mock<'_> {
    server.mock(|_, then| {
        then.respond_with(|req: &httpmock::HttpMockRequest| {
            let message = format!("no mock matched {} {}", req.method_str(), req.uri().path());
            let body = serde_json::json!({"code": false, "description": null, "data": null, "error": [message]});
            httpmock::HttpMockResponse::builder()
                .status(FALLBACK_STATUS)
                .header("content-type", "application/json")
                .body(body.to_string())
                .build()
        });
    })
}
