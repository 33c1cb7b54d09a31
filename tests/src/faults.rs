//! A loopback HTTP/1.1 server that misbehaves on purpose: drops connections,
//! stalls, cuts bodies short, answers HTML or whatever bytes a test gives it.
//! httpmock cannot drop a connection mid-body, hence this small server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Close the connection without answering.
    Drop,
    /// Answer with a status, a content type and a body.
    Full {
        /// HTTP status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// Promise `declared` bytes, send `body`, then close.
    CutShort {
        /// The Content-Length announced.
        declared: usize,
        /// What is actually sent.
        body: Vec<u8>,
    },
    /// Answer 200 with a JSON body in chunks, announcing no length.
    Chunked {
        /// The body, sent in chunks of 1 KiB.
        body: Vec<u8>,
    },
    /// Wait, then answer.
    Slow(Duration, Box<Reply>),
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: impl serde::Serialize) -> Self {
        Self::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body).expect("serializable"),
        }
    }
    /// Raw bytes with a content type.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::Full {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }
    /// Adds a header to a `Full` reply.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let Self::Full { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path without the query.
    pub path: String,
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// The server. `script(request, n)` decides the reply, `n` counting earlier
/// requests to the same method and path.
pub struct FaultServer {
    addr: SocketAddr,
    seen: Arc<Mutex<HashMap<(String, String), usize>>>,
    connections: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultServer {
    /// Starts on a free loopback port.
    pub async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let addr = listener.local_addr().expect("bound");
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let connections = Arc::new(Mutex::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (seen2, conns2) = (seen.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // Answers go out in one write; no Nagle delay behind them.
                let _ = stream.set_nodelay(true);
                *conns2.lock().unwrap() += 1;
                tokio::spawn(serve(stream, script.clone(), seen2.clone()));
            }
        });
        Self {
            addr,
            seen,
            connections,
            task,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen for `method` and `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .get(&(method.to_string(), path.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Seen> {
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?;
    let path = target.split('?').next().unwrap_or(target).to_string();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    buffer.drain(..head_end + length);
    Some(Seen { method, path })
}

async fn serve(
    mut stream: TcpStream,
    script: Arc<Script>,
    seen: Arc<Mutex<HashMap<(String, String), usize>>>,
) {
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buffer).await {
        let n = {
            let mut seen = seen.lock().unwrap();
            let count = seen
                .entry((request.method.clone(), request.path.clone()))
                .or_insert(0);
            *count += 1;
            *count - 1
        };
        let mut reply = script(&request, n);
        while let Reply::Slow(wait, inner) = reply {
            tokio::time::sleep(wait).await;
            reply = *inner;
        }
        match reply {
            Reply::Drop => return,
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let mut bytes = head.into_bytes();
                bytes.extend_from_slice(&body);
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::CutShort { declared, body } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.flush().await;
                return;
            }
            Reply::Chunked { body } => {
                let mut bytes = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for chunk in body.chunks(1024) {
                    bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                }
                bytes.extend_from_slice(b"0\r\n\r\n");
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::Slow(..) => unreachable!("unwrapped above"),
        }
    }
}
