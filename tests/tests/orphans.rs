//! No server a test starts outlives it: not when the test ends, not when the
//! test binary is killed with `SIGKILL` (no `Drop` runs then). `RedisServer`,
//! `RedisCluster`, and the Prism and Prometheus the suite starts run under
//! `mock::Tethered`, whose watchdog kills the program when the test binary is
//! gone.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nexhealth_api::mock::{RedisCluster, RedisServer, Tethered};

/// Set in the copy of this test binary that starts the servers and is killed.
const VICTIM: &str = "NEXHEALTH_TEST_ORPHANS_VICTIM";

/// The tests that watch ports one at a time: a port freed by one could be
/// handed to the other's new server.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A process, told from a later one with its pid by its start time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Process {
    pid: u32,
    start: u64,
    comm: String,
}

/// `(process, parent pid)` from `/proc/PID/stat`, unless it is gone (or a
/// zombie: dead, waiting for its new parent to reap it).
fn stat(pid: u32) -> Option<(Process, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    // After the name: state, ppid, …; the start time is field 22 of the line.
    let fields: Vec<&str> = tail.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((Process { pid, start, comm }, ppid))
}

fn alive(process: &Process) -> bool {
    stat(process.pid).is_some_and(|(now, _)| now == *process)
}

/// Every living descendant of `root`.
fn descendants(root: u32) -> Vec<Process> {
    let mut children: HashMap<u32, Vec<Process>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((process, ppid)) = stat(pid) {
            children.entry(ppid).or_default().push(process);
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for child in children.remove(&pid).unwrap_or_default() {
            stack.push(child.pid);
            found.push(child);
        }
    }
    found
}

/// The `redis-server` listening on `port` (it names its address in its
/// command line), if one is.
fn redis_server_on(port: u16) -> Option<Process> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (process, _) = stat(pid)?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (process.comm == "redis-server"
                && cmdline
                    .split_whitespace()
                    .any(|word| word.ends_with(&format!(":{port}")) || word == port.to_string()))
            .then_some(process)
        })
        .next()
}

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Waits up to `limit` for `done`.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The victim, and what it started: killed however the test ends, so that
/// a failing test leaves nothing behind either.
struct Victim {
    child: Child,
    processes: Vec<Process>,
    dirs: Vec<std::path::PathBuf>,
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its process group, in case a failing test missed some of them.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-9", "--", &group])
            .stderr(Stdio::null())
            .status();
        let left: Vec<String> = self
            .processes
            .iter()
            .filter(|p| alive(p))
            .map(|p| p.pid.to_string())
            .collect();
        if !left.is_empty() {
            let _ = Command::new("kill").arg("-9").args(&left).status();
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The copy of this binary that is killed: it starts a Redis server (from a
/// thread that ends at once: the server must not depend on it), a Redis
/// Cluster and a bare tethered program, prints their ports, and waits.
fn victim() {
    let redis = std::thread::spawn(|| RedisServer::start().unwrap_or_else(|e| panic!("{e}")))
        .join()
        .unwrap();
    let cluster = RedisCluster::start(3).unwrap_or_else(|e| panic!("{e}"));
    let sleep = Tethered::spawn(
        Tethered::command("sleep")
            .arg("600")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let mut ports = vec![redis.port()];
    ports.extend(cluster.nodes().iter().map(RedisServer::port));
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    println!("ports {}", ports.join(" "));
    // Killed long before; bounded all the same.
    std::thread::sleep(Duration::from_secs(120));
    drop((redis, cluster, sleep));
}

#[test]
fn servers_die_with_a_killed_test_binary() {
    if std::env::var_os(VICTIM).is_some() {
        return victim();
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "servers_die_with_a_killed_test_binary",
            "--exact",
            "--nocapture",
            "--quiet",
        ])
        .env(VICTIM, "1")
        // Its own process group: what it starts can be found and killed.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut victim = Victim {
        child,
        processes: Vec::new(),
        dirs: Vec::new(),
    };
    let stdout = victim.child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(ports) = line.strip_prefix("ports ") {
                let ports: Vec<u16> = ports.split(' ').map(|p| p.parse().unwrap()).collect();
                let _ = tx.send(ports);
            }
        }
    });
    let ports = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the victim starts its servers and prints their ports");
    let pid = victim.child.id();
    victim.dirs = ports
        .iter()
        .map(|port| std::env::temp_dir().join(format!("nexhealth-redis-{pid}-{port}")))
        .collect();
    // The watchdogs start their programs in the background: wait until every
    // one has.
    let complete = within(Duration::from_secs(10), || {
        victim.processes = descendants(pid);
        let count = |comm: &str| victim.processes.iter().filter(|p| p.comm == comm).count();
        // One server and three nodes, and the bare program.
        count("redis-server") == 4 && count("sleep") == 1
    });
    assert!(complete, "{:?}", victim.processes);
    for port in &ports {
        assert!(accepts(*port), "redis on {port} before the kill");
    }

    victim.child.kill().unwrap(); // SIGKILL: no Drop runs in the victim
    victim.child.wait().unwrap();

    let gone = within(Duration::from_secs(5), || {
        !victim.processes.iter().any(alive) && !ports.iter().any(|port| accepts(*port))
    });
    let left: Vec<&Process> = victim.processes.iter().filter(|p| alive(p)).collect();
    let open: Vec<&u16> = ports.iter().filter(|port| accepts(**port)).collect();
    assert!(
        gone,
        "5 s after the test binary was killed, still alive: {left:?}; still accepting \
         connections: {open:?}"
    );
}

/// `stop`, `restart` and drop act on redis-server itself, not only on its
/// watchdog: when they return, it is gone and its port is free.
#[test]
fn stop_restart_and_drop_end_redis_server_itself() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let port = redis.port();
    let first = redis_server_on(port).expect("a redis-server on its port");

    redis.stop();
    assert!(!alive(&first), "stop returned, redis-server still runs");
    assert!(!accepts(port));

    redis.restart().unwrap();
    assert!(redis.ping());
    let second = redis_server_on(port).expect("a redis-server on its port again");
    assert_ne!(first, second);

    redis.restart().unwrap();
    assert!(!alive(&second), "restart left the previous redis-server");
    let third = redis_server_on(port).expect("a redis-server after the second restart");

    drop(redis);
    assert!(!alive(&third), "drop returned, redis-server still runs");
    assert!(!accepts(port));
}

/// A tethered program ends with the watchdog when it is dropped, and its
/// exit status is the program's.
#[test]
fn tethered_reports_the_programs_status() {
    let mut exited = Tethered::spawn(Tethered::command("sh").args(["-c", "exit 3"])).unwrap();
    assert_eq!(exited.child().wait().unwrap().code(), Some(3));
    let mut missing =
        Tethered::spawn(Tethered::command("nexhealth-no-such-program").stderr(Stdio::null()))
            .unwrap();
    assert_eq!(missing.child().wait().unwrap().code(), Some(127));
    // Stopped before it ends: killed.
    let mut sleeping = Tethered::spawn(Tethered::command("sleep").arg("600")).unwrap();
    let started = Instant::now();
    assert_eq!(sleeping.stop().and_then(|s| s.code()), Some(128 + 9));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(Tethered::spawn(&mut Command::new("sleep")).is_err());
}
