//! One link to Redis (feature `redis`), shared by the rate limiter and the
//! webhook store: a single server or a cluster, `redis://` or `rediss://`
//! (rustls, no OpenSSL), every round trip bounded by a timeout, and a
//! connection dropped after any failure, so that the next round trip
//! connects from scratch (after a failover the address may lead elsewhere,
//! and a server answering `READONLY` is no longer the primary).

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Where Redis is.
#[derive(Clone)]
pub(crate) enum Target {
    Single(String),
    Cluster(Vec<String>),
}

impl Target {
    /// For `Debug`: the URLs may carry a password.
    pub(crate) fn redacted(&self) -> &'static str {
        match self {
            Self::Single(_) => "<redacted>",
            Self::Cluster(_) => "<redacted cluster nodes>",
        }
    }
}

// One per link, built once: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

pub(crate) struct RedisLink {
    backend: Backend,
    connection: Mutex<Option<Conn>>,
    connecting: tokio::sync::Mutex<()>,
    timeout: Duration,
}

impl RedisLink {
    /// A link to `target` (nothing is connected yet), trusting the PEM roots
    /// `root_certificates` for `rediss://` when given. `Err` names what is
    /// wrong without the URL.
    pub(crate) fn new(
        target: Target,
        root_certificates: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Self, &'static str> {
        let tls = root_certificates.map(|pem| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        });
        let backend = match target {
            Target::Single(url) => Backend::Single(
                match tls {
                    Some(certs) => redis::Client::build_with_tls(url.as_str(), certs),
                    None => redis::Client::open(url.as_str()),
                }
                .map_err(|_| "the Redis URL is not valid")?,
            ),
            Target::Cluster(nodes) => {
                if nodes.is_empty() {
                    return Err("a Redis Cluster needs at least one node");
                }
                let mut builder = redis::cluster::ClusterClient::builder(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(1);
                if let Some(certs) = tls {
                    builder = builder.certs(certs);
                }
                Backend::Cluster(
                    builder
                        .build()
                        .map_err(|_| "a Redis Cluster URL is not valid")?,
                )
            }
        };
        Ok(Self {
            backend,
            connection: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            timeout,
        })
    }

    async fn connection(&self) -> redis::RedisResult<Conn> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let conn = match &self.backend {
            Backend::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1);
                Conn::Single(ConnectionManager::new_with_config(client.clone(), config).await?)
            }
            Backend::Cluster(client) => Conn::Cluster(client.get_async_connection().await?),
        };
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    fn current(&self) -> Option<Conn> {
        self.connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Drops the connection: the next round trip connects from scratch.
    pub(crate) fn forget(&self) {
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// One script round trip within the timeout. Any failure drops the
    /// connection and answers why, in words without the URL or the values.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, &'static str> {
        let once = || async {
            match self.connection().await? {
                Conn::Single(mut conn) => invocation.invoke_async(&mut conn).await,
                Conn::Cluster(mut conn) => invocation.invoke_async(&mut conn).await,
            }
        };
        let round_trip = async {
            let cached = self.current().is_some();
            match once().await {
                // A connection kept from before Redis restarted: one more try,
                // on a fresh one, within the same timeout.
                Err(e) if cached && (e.is_io_error() || e.is_connection_dropped()) => {
                    self.forget();
                    once().await
                }
                outcome => outcome,
            }
        };
        let reason = match tokio::time::timeout(self.timeout, round_trip).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e))
                if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() =>
            {
                "Redis cannot be reached"
            }
            Ok(Err(e))
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) =>
            {
                "Redis is read-only (a replica, after a failover?)"
            }
            Ok(Err(_)) => "Redis answered an error or garbage",
            Err(_) => "Redis did not answer in time",
        };
        self.forget();
        Err(reason)
    }
}
