//! Shared set-up for the contract suite: a mock NexHealth with the token
//! exchange in place, a fallback that names unexpected requests, and a client
//! pointed at it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use httpmock::{Mock, MockServer};
use nexhealth_api::Client;
use nexhealth_api::mock::{MockServerExt, fallback};
use nexhealth_api::operations::OperationId;
use nexhealth_api::types::{AuthToken, AuthenticateResponse, Messages};

/// The API key every test uses.
pub const API_KEY: &str = "test-api-key-5f2b";

/// A JWT-shaped token whose claims give it `lifetime_secs` of life.
pub fn token(name: &str, lifetime_secs: i64) -> String {
    let claims = serde_json::json!({"sub": "1", "iat": 1_700_000_000, "exp": 1_700_000_000 + lifetime_secs, "jti": name});
    format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The default retry policy with 1 ms waits, so tests stay fast.
pub fn fast_retries() -> nexhealth_api::RetryPolicy {
    nexhealth_api::RetryPolicy::default()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(1))
}

/// The envelope POST /authenticates answers with.
pub fn auth_body(token: &str) -> AuthenticateResponse {
    AuthenticateResponse {
        code: Some(true),
        count: None,
        data: AuthToken {
            token: token.to_string(),
        },
        description: Some(Messages::String("Authenticated".to_string())),
        error: Some(vec![]),
        page_info: None,
    }
}

/// The bearer header value for `token`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A mock server with `POST /authenticates` answering one token.
pub struct Harness {
    /// The mock NexHealth.
    pub server: MockServer,
    /// The token the auth mock hands out.
    pub token: String,
}

impl Harness {
    /// Starts a server whose auth mock hands out a one-hour token.
    pub async fn start() -> Self {
        Self::with_token(token("main", 3600)).await
    }

    /// Starts a server whose auth mock hands out `token`.
    pub async fn with_token(token: String) -> Self {
        let server = MockServer::start_async().await;
        Self { server, token }
    }

    /// Mocks the token exchange; asserts the raw key and the vendor Accept header.
    pub fn auth(&self) -> Mock<'_> {
        self.server.post_authenticates(|when, then| {
            // httpmock's `When` shares its state: matchers added to the
            // inner value apply to this mock.
            when.into_inner()
                .header("authorization", API_KEY)
                .header("accept", nexhealth_api::headers::VENDOR_ACCEPT)
                .header_missing("api-version");
            then.created(&auth_body(&self.token));
        })
    }

    /// Installs the fallback (after every other mock) and builds the client
    /// with fast retries (1 ms backoff, three attempts).
    pub fn client(&self) -> (Client, Mock<'_>) {
        self.client_with(|builder| builder)
    }

    /// Like [`Harness::client`], with more settings.
    pub fn client_with(
        &self,
        configure: impl FnOnce(nexhealth_api::ClientBuilder) -> nexhealth_api::ClientBuilder,
    ) -> (Client, Mock<'_>) {
        let fallback = fallback(&self.server);
        let builder = Client::builder(API_KEY)
            .base_url(self.server.base_url())
            .retry(fast_retries());
        let client = configure(builder).build().expect("valid settings");
        (client, fallback)
    }
}

/// Calls `operation` with the spec's example arguments, keeping only whether
/// it succeeded. Lets a test walk every operation of the spec. The `match` is
/// exhaustive over the generated [`OperationId`]: when the spec gains an
/// operation, this stops compiling until it learns to call it.
pub async fn call(client: &Client, operation: OperationId) -> Result<(), nexhealth_api::Error> {
    use nexhealth_api::mock::payloads;
    match operation {
        OperationId::PostAuthenticates => client.post_authenticates().await.map(drop),
        OperationId::GetInstitutions => client.get_institutions().await.map(drop),
        OperationId::GetInstitutionsId => client.get_institutions_id().id(1).await.map(drop),
        OperationId::GetLocations => client
            .get_locations()
            .subdomain("example-subdomain")
            .await
            .map(drop),
        OperationId::GetLocationsId => client.get_locations_id().id(7).await.map(drop),
        OperationId::GetSyncStatus => client
            .get_sync_status()
            .subdomain("example-subdomain")
            .await
            .map(drop),
        OperationId::GetOnboardings => client.get_onboardings().await.map(drop),
        OperationId::PostOnboardings => client
            .post_onboardings()
            .body(payloads::onboarding_request())
            .await
            .map(drop),
        OperationId::GetOnboardingsHashid => client
            .get_onboardings_hashid()
            .hashid("y2wxl82zldm4")
            .await
            .map(drop),
        OperationId::GetWebhookEndpoints => client.get_webhook_endpoints().await.map(drop),
        OperationId::PostWebhookEndpoints => client
            .post_webhook_endpoints()
            .body(
                payloads::decode::<nexhealth_api::types::WebhookEndpointCreateRequest>(
                    "postWebhookEndpoints",
                    0,
                )
                .expect("the spec's example"),
            )
            .await
            .map(drop),
        OperationId::PatchWebhookEndpointsId => client
            .patch_webhook_endpoints_id()
            .id(1)
            .body(nexhealth_api::types::WebhookEndpointUpdateRequest {
                target_url: None,
                active: Some(true),
            })
            .await
            .map(drop),
        OperationId::DeleteWebhookEndpointsId => {
            client.delete_webhook_endpoints_id().id(1).await.map(drop)
        }
        OperationId::GetWebhookEndpointsIdWebhookSubscriptions => client
            .get_webhook_endpoints_id_webhook_subscriptions()
            .id(1)
            .await
            .map(drop),
        OperationId::PostWebhookEndpointsIdWebhookSubscriptions => client
            .post_webhook_endpoints_id_webhook_subscriptions()
            .id(1)
            .subdomain("example-subdomain")
            .body(
                payloads::decode::<nexhealth_api::types::WebhookSubscriptionCreateRequest>(
                    "postWebhookEndpointsIdWebhookSubscriptions",
                    0,
                )
                .expect("the spec's example"),
            )
            .await
            .map(drop),
        OperationId::PatchWebhookEndpointsIdWebhookSubscriptionsSubscriptionId => client
            .patch_webhook_endpoints_id_webhook_subscriptions_subscription_id()
            .id(1)
            .subscription_id(5)
            .subdomain("example-subdomain")
            .body(nexhealth_api::types::WebhookSubscriptionUpdateRequest {
                new_endpoint_id: None,
                active: Some(false),
            })
            .await
            .map(drop),
        OperationId::DeleteWebhookEndpointsIdWebhookSubscriptionsSubscriptionId => client
            .delete_webhook_endpoints_id_webhook_subscriptions_subscription_id()
            .id(1)
            .subscription_id(5)
            .await
            .map(drop),
    }
}

/// A writer that keeps what a tracing subscriber writes, for tests that read the logs.
#[derive(Clone, Default)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub mod faults;
pub mod prism;

/// The generated [`OperationId`] of an operation's facts.
pub fn operation_id(op: &nexhealth_api::operations::Operation) -> OperationId {
    OperationId::from_id(op.id).unwrap_or_else(|| panic!("{} is not in the registry", op.id))
}

/// The path of `nexhealth-api`'s example `name`, built now with `features`
/// (a test never runs a stale one).
pub fn example_binary(name: &str, features: &[&str]) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let debug = exe.parent().and_then(|d| d.parent()).expect("target/debug");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-q", "-p", "nexhealth-api", "--example", name]);
    if !features.is_empty() {
        build.args(["--features", &features.join(",")]);
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building the {name} example failed");
    debug.join("examples").join(name)
}

/// Every `.rs` file under `dir`, recursively.
pub fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

impl Harness {
    /// Mocks every operation of the spec with its documented success status
    /// and the spec's example answer (none for a 204).
    pub fn mock_every_operation(&self) {
        for op in nexhealth_api::operations::OPERATIONS {
            let pattern = op.path_pattern();
            let body = nexhealth_api::mock::payloads::json(op.id, op.success_status);
            self.server.mock(|when, then| {
                when.method(op.method).path_matches(pattern.as_str());
                match body {
                    Some(body) => {
                        then.status(op.success_status)
                            .header("content-type", "application/json")
                            .body(body);
                    }
                    None => {
                        then.status(op.success_status);
                    }
                }
            });
        }
    }
}

/// The changes `mock::location_phases` scripts, in order, as `(change,
/// location id)`: what a watcher of `StandIn::with_moving_locations` prints.
pub fn scripted_location_changes() -> Vec<(String, i64)> {
    [
        ("added", 9),
        ("renamed", 9),
        ("replaced", 70),
        ("removed", 9),
        ("flags", 70),
        ("reactivated", 8),
    ]
    .iter()
    .map(|(k, id)| (k.to_string(), *id))
    .collect()
}

/// A global allocator that passes every call to the system's and counts:
/// the bytes ever asked for ([`Counting::allocated`]) and the bytes held now
/// ([`Counting::live`]). A test binary that measures memory declares
/// `#[global_allocator] static COUNTING: Counting = Counting::new();` and
/// holds that one test, so nothing else allocates while it measures.
pub struct Counting {
    allocated: std::sync::atomic::AtomicUsize,
    live: std::sync::atomic::AtomicIsize,
}

impl Counting {
    /// Both counters at zero.
    pub const fn new() -> Self {
        Self {
            allocated: std::sync::atomic::AtomicUsize::new(0),
            live: std::sync::atomic::AtomicIsize::new(0),
        }
    }

    /// Bytes asked for so far (a reallocation counts its new size).
    pub fn allocated(&self) -> usize {
        self.allocated.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes held now: allocations minus frees.
    pub fn live(&self) -> isize {
        self.live.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for Counting {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is passed to the system allocator unchanged; the
// counters only add and subtract the sizes asked for.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        self.allocated.fetch_add(layout.size(), Relaxed);
        self.live.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        self.live
            .fetch_sub(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        self.allocated.fetch_add(new_size, Relaxed);
        self.live
            .fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: as in `alloc` and `dealloc`.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}
