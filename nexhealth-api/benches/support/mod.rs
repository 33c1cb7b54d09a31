//! What the benchmarks share: the hand-written reqwest + serde baseline, a
//! fast loopback server on its own thread, and the client thread's CPU clock.

#![allow(dead_code)] // Each benchmark binary uses a part.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nexhealth_api::mock::payloads;
use nexhealth_api::{Client, RetryPolicy};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---- the hand-written baseline ----------------------------------------------

#[derive(Deserialize)]
#[allow(dead_code)]
pub struct Envelope<T> {
    pub code: Option<bool>,
    pub description: Option<serde_json::Value>,
    pub error: Option<Vec<String>>,
    pub count: Option<i32>,
    pub data: T,
}

#[derive(Deserialize)]
#[allow(dead_code)]
pub struct Institution {
    pub id: i32,
    pub name: Option<String>,
    pub subdomain: String,
    #[serde(default)]
    pub locations: Vec<Location>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
pub struct Specialty {
    pub id: Option<i32>,
    pub name: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
pub struct Location {
    pub id: i32,
    pub name: Option<String>,
    pub institution_id: Option<i32>,
    pub street_address: Option<String>,
    pub street_address_2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip_code: Option<String>,
    pub country_code: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub phone_number: Option<String>,
    pub foreign_id: Option<String>,
    pub foreign_id_type: Option<String>,
    pub email: Option<String>,
    pub tz: Option<String>,
    pub last_sync_time: Option<String>,
    pub insert_appt_client: Option<bool>,
    pub map_by_operatory: Option<bool>,
    pub appt_types_map_by_operatory: Option<bool>,
    pub set_availability_by_operatory: Option<bool>,
    pub inactive: Option<bool>,
    pub wlogo: Option<String>,
    pub weight: Option<i32>,
    pub specialty: Option<Specialty>,
}

pub struct Baseline {
    http: reqwest::Client,
    base: String,
    bearer: String,
}

impl Baseline {
    pub async fn new(base: &str) -> Self {
        nexhealth_api::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let token: Envelope<Token> = http
            .post(format!("{base}/authenticates"))
            .header("accept", "application/vnd.Nexhealth+json;version=2")
            .header("authorization", "bench-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            http,
            base: base.to_string(),
            bearer: format!("Bearer {}", token.data.token),
        }
    }

    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Envelope<T> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .header("accept", "application/vnd.Nexhealth+json;version=2")
            .header("authorization", &self.bearer)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        let bytes = response.bytes().await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}

// ---- a fast loopback server ------------------------------------------------

pub struct Server {
    pub base: String,
    pub connections: Arc<AtomicUsize>,
    pub authentications: Arc<AtomicUsize>,
}

pub fn http_response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// `GET /locations?subdomain=nN` answers N locations; `GET /locations/7` one.
pub fn routes() -> BTreeMap<String, Arc<Vec<u8>>> {
    let mut routes = BTreeMap::new();
    let token = serde_json::json!({"code": true, "data": {"token": nexhealth_api_token()}});
    routes.insert(
        "POST /authenticates".into(),
        Arc::new(http_response("201 Created", token.to_string().as_bytes())),
    );
    routes.insert(
        "GET /locations/7".into(),
        Arc::new(http_response(
            "200 OK",
            &serde_json::to_vec(&payloads::location()).unwrap(),
        )),
    );
    for n in [1usize, 100, 10_000] {
        routes.insert(
            format!("GET /locations?subdomain=n{n}"),
            Arc::new(http_response("200 OK", &locations_body(n))),
        );
    }
    routes
}

pub fn nexhealth_api_token() -> String {
    use base64::Engine;
    let claims = serde_json::json!({"iat": 1_700_000_000, "exp": 1_700_086_400});
    format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

pub fn locations_body(n: usize) -> Vec<u8> {
    serde_json::to_vec(&payloads::locations_with(n)).unwrap()
}

/// Starts the server on its own OS thread and runtime, so that it does not
/// compete with the measured client for the client's scheduler.
pub fn start_server() -> Server {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = serve().await;
            tx.send(server).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

pub async fn serve() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let authentications = Arc::new(AtomicUsize::new(0));
    let routes = Arc::new(routes());
    let (conns, auths) = (connections.clone(), authentications.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            conns.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            let (routes, auths) = (routes.clone(), auths.clone());
            tokio::spawn(async move {
                let mut buffer = Vec::with_capacity(4096);
                let mut chunk = [0u8; 4096];
                loop {
                    let end = loop {
                        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                    buffer.drain(..end);
                    let mut first = head.lines().next().unwrap_or("").split_whitespace();
                    let key = format!(
                        "{} {}",
                        first.next().unwrap_or(""),
                        first.next().unwrap_or("")
                    );
                    if key.starts_with("POST /authenticates") {
                        auths.fetch_add(1, Ordering::Relaxed);
                    }
                    let reply = routes
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| Arc::new(http_response("404 Not Found", b"{}")));
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Server {
        base,
        connections,
        authentications,
    }
}

/// The measured side runs on one thread; the server has the other core.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn sdk_client(base: &str) -> Client {
    Client::builder("bench-key")
        .base_url(base)
        .retry(RetryPolicy::none())
        // The SDK's own cost against plain reqwest: no budget to wait for.
        .no_rate_limit()
        .build()
        .unwrap()
}

/// CPU time used by the calling thread. The client runtime is current-thread,
/// so this is all of the client's work (reqwest's connection tasks included)
/// and none of the server's or of waiting for the scheduler.
pub fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec and the clock id is a constant of this platform.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is available");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
