//! Test support, behind the `mock` feature: typed httpmock helpers generated
//! from the spec ([`MockServerExt`]), the spec's example payloads
//! ([`payloads`]) and a stand-in server that answers every operation with
//! them ([`StandIn`]), its locations and syncs optionally moving through a
//! scripted history ([`location_phases`], [`SyncPhase`]).
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
pub use stand_in::{StandIn, SyncPhase, location_phases, sync_phases};

use httpmock::MockServer;
use std::ffi::OsStr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

/// The watchdog [`Tethered`] runs a program under, with `sh -c`: it starts
/// the program (`"$@"`) with `/dev/null` as its stdin, and a watcher that
/// reads its own stdin, a pipe whose write end only the Rust process holds.
/// That read returns when the pipe closes: when [`Tethered`] is stopped or
/// dropped, or when the Rust process dies, even of `SIGKILL`. The watcher then
/// kills the program; the shell reaps it, stops the watcher and exits with the
/// program's status (127: the program was not found).
const WATCHDOG: &str = "exec 3<&0 </dev/null
\"$@\" 3<&- &
child=$!
(read _ <&3; kill -9 $child 2>/dev/null) &
watcher=$!
exec 3<&-
wait $child 2>/dev/null
status=$?
kill -9 $watcher 2>/dev/null
exit $status";

/// A child process that does not outlive this one, however this one ends: a
/// test binary killed with `SIGKILL` runs no `Drop`, and a server it started
/// would otherwise live on, its parent `init`. `PR_SET_PDEATHSIG` would not
/// do (it follows the thread that spawned, and a test's thread ends while a
/// shared server lives on), so the program runs under a small `sh` watchdog
/// that kills it when a pipe only this process writes to closes.
///
/// Build the command with [`command`](Self::command), add arguments,
/// directory, environment and stdout/stderr as usual (not stdin: the program's
/// is `/dev/null`), and start it with [`spawn`](Self::spawn). Stopping or
/// dropping it kills the program and waits for it, so its ports are free
/// when that returns. Internal: for this crate's `RedisServer` and the
/// repository's tests.
#[doc(hidden)]
pub struct Tethered {
    child: Child,
    /// The write end of the watchdog's pipe: never written to; closing it
    /// (or this process's death) kills the program.
    lifeline: Option<ChildStdin>,
}

impl Tethered {
    /// `sh -c WATCHDOG sh program`: add `program`'s arguments to it.
    pub fn command(program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(WATCHDOG).arg("sh").arg(program);
        command
    }

    /// Starts a command made by [`command`](Self::command).
    pub fn spawn(command: &mut Command) -> std::io::Result<Self> {
        let mut args = command.get_args();
        if command.get_program() != "sh"
            || args.next() != Some(OsStr::new("-c"))
            || args.next() != Some(OsStr::new(WATCHDOG))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "Tethered::spawn takes a command made by Tethered::command",
            ));
        }
        let mut child = command.stdin(Stdio::piped()).spawn()?;
        let lifeline = child.stdin.take();
        Ok(Self { child, lifeline })
    }

    /// The watchdog's process (the shell, not the program): for its
    /// stdout and stderr, and `try_wait` (its status is the program's).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the program, if still running, and waits until it is gone.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        drop(self.lifeline.take());
        self.child.wait().ok()
    }
}

impl Drop for Tethered {
    fn drop(&mut self) {
        self.stop();
    }
}

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
