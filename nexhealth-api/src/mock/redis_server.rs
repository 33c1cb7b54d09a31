//! [`RedisServer`] and [`RedisCluster`]: real `redis-server` processes on free
//! loopback ports, for tests and demos of the shared rate limit (features
//! `mock` and `redis`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Tethered;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Tls,
    ClusterNode,
}

/// A `redis-server` process of its own: loopback only, no persistence, a
/// temporary directory, stopped when dropped. It is Debian's `redis-server`
/// package (`apt-get install -y redis-server`); without it, [`start`](Self::start)
/// fails and says so. The server does not outlive this process, even one
/// killed with `SIGKILL`: it runs under a watchdog that kills it when this
/// process is gone.
pub struct RedisServer {
    child: Option<Tethered>,
    port: u16,
    dir: PathBuf,
    mode: Mode,
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

fn run(program: &str, args: &[&str], dir: &Path) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run {program} ({e}): install it (apt-get install -y {program})")
        })?;
    if !output.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it answers.
    pub fn start() -> Result<Self, String> {
        Self::start_mode(Mode::Plain)
    }

    /// Starts `redis-server` speaking only TLS, with a certificate for
    /// `127.0.0.1` signed by a throw-away CA ([`ca_pem`](Self::ca_pem));
    /// [`url`](Self::url) is then `rediss://`. The certificates are made with
    /// the `openssl` command (Debian's `openssl` package).
    pub fn start_tls() -> Result<Self, String> {
        Self::start_mode(Mode::Tls)
    }

    fn start_mode(mode: Mode) -> Result<Self, String> {
        let port = free_port()?;
        let dir =
            std::env::temp_dir().join(format!("nexhealth-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if mode == Mode::Tls {
            make_certificates(&dir)?;
        }
        let mut server = Self {
            child: None,
            port,
            dir,
            mode,
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT/`, or `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.mode == Mode::Tls {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM certificate of the CA that signed a TLS server's certificate.
    pub fn ca_pem(&self) -> Option<Vec<u8>> {
        (self.mode == Mode::Tls)
            .then(|| std::fs::read(self.dir.join("ca.crt")).ok())
            .flatten()
    }

    /// Stops the server (as a crash would: scripts and keys are gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Kills redis-server itself and waits for it: the port is free.
            child.stop();
        }
    }

    /// Starts it again on the same port, empty (no scripts, no keys).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let port = self.port.to_string();
        let mut command = Tethered::command("redis-server");
        match self.mode {
            Mode::Tls => command
                .args(["--port", "0", "--tls-port", &port])
                .args([
                    "--tls-cert-file",
                    "server.crt",
                    "--tls-key-file",
                    "server.key",
                ])
                .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"]),
            Mode::ClusterNode => command.args(["--port", &port]).args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ]),
            Mode::Plain => command.args(["--port", &port]),
        };
        if self.mode == Mode::ClusterNode {
            // A node restarted empty forgets its cluster.
            let _ = std::fs::remove_file(self.dir.join("nodes.conf"));
        }
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "yes"])
            // `DEBUG SLEEP` makes the server slow on purpose in fault tests.
            .args(["--enable-debug-command", "local"])
            .current_dir(&self.dir)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let not_installed = |e: &dyn std::fmt::Display| {
            format!(
                "cannot start redis-server ({e}): install Debian's redis-server package \
                 (apt-get install -y redis-server)"
            )
        };
        let child = Tethered::spawn(&mut command).map_err(|e| not_installed(&e))?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let exited = self.child.as_mut().map(|c| c.child().try_wait());
            if let Some(Ok(Some(status))) = exited {
                // It did not start (its port taken, say) or is not installed.
                self.child = None;
                return Err(if status.code() == Some(127) {
                    not_installed(&"not found")
                } else {
                    format!("redis-server on port {} exited: {status}", self.port)
                });
            }
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err(format!(
            "redis-server did not answer on port {} within 10 s",
            self.port
        ))
    }

    /// Whether the server answers `PING`.
    pub fn ping(&self) -> bool {
        self.command("PING").is_ok_and(|reply| reply == "PONG")
    }

    /// Runs one command with `redis-cli` and returns its reply as text; e.g.
    /// `DEBUG SLEEP 1` to make the server slow, or `REPLICAOF 127.0.0.1 6380`.
    pub fn command(&self, command: &str) -> Result<String, String> {
        let port = self.port.to_string();
        let mut args = vec!["-h", "127.0.0.1", "-p", &port];
        if self.mode == Mode::Tls {
            args.extend(["--tls", "--cacert", "ca.crt"]);
        }
        args.extend(command.split_whitespace());
        let reply = run("redis-cli", &args, &self.dir)?;
        if reply.starts_with("ERR") || reply.starts_with("Could not connect") {
            return Err(reply);
        }
        Ok(reply)
    }
}

/// A throw-away CA and a certificate for 127.0.0.1 it signed, in `dir`.
fn make_certificates(dir: &Path) -> Result<(), String> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=nexhealth-api test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    run("openssl", &ca, dir)?;
    let mut request = vec!["req", "-subj", "/CN=127.0.0.1"];
    request.extend(ec);
    request.extend(["-keyout", "server.key", "-out", "server.csr"]);
    run("openssl", &request, dir)?;
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .map_err(|e| e.to_string())?;
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "san.cnf",
            "-out",
            "server.crt",
        ],
        dir,
    )?;
    Ok(())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of `redis-server --cluster-enabled yes` nodes on loopback,
/// joined with `redis-cli --cluster create`, no replicas; stopped when dropped.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `nodes` (at least 3) masters, joins them, and waits until every
    /// slot is served.
    pub fn start(nodes: usize) -> Result<Self, String> {
        let nodes = (0..nodes.max(3))
            .map(|_| RedisServer::start_mode(Mode::ClusterNode))
            .collect::<Result<Vec<_>, _>>()?;
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(addresses.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        run("redis-cli", &args, &nodes[0].dir)?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            let ready = nodes.iter().all(|n| {
                n.command("CLUSTER INFO")
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            });
            if ready {
                return Ok(Self { nodes });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("the Redis Cluster did not reach cluster_state:ok within 20 s".into())
    }

    /// `redis://127.0.0.1:PORT/` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}
