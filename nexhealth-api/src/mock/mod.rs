//! Test support, behind the `mock` feature: typed httpmock helpers generated
//! from the spec ([`MockServerExt`]), the spec's example payloads
//! ([`payloads`]) and a stand-in server that answers every operation with
//! them ([`StandIn`]).
//!
//! ```no_run
//! use nexhealth_api::mock::httpmock::MockServer;
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

#[allow(clippy::all, unused_imports, unused_qualifications)]
mod generated_httpmock {
    include!(concat!(env!("OUT_DIR"), "/generated_httpmock.rs"));
}
pub use generated_httpmock::{MockServerExt, operations};

/// The httpmock crate these helpers are built on, so that a test can name
/// `MockServer` without a dependency of its own.
pub use httpmock;

mod enforcing;
pub mod payloads;
mod proxy;
#[cfg(feature = "redis")]
mod redis_server;
mod simulator;
mod stand_in;
pub use enforcing::{EnforcementStats, EnforcingStandIn};
pub use proxy::FaultProxy;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_server::{RedisCluster, RedisServer};
pub use simulator::{Attempt, DeliverySimulator, RETRY_SCHEDULE};
pub use stand_in::{StandIn, location_phases};

use httpmock::MockServer;

/// Status the [`fallback`] mock answers with.
///
/// Value: 501.
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
