//! A private mosquitto on a loopback port of its own, for tests that stop and restart a
//! broker or tune it (the shared one on :1883 must stay up for everyone else).
//!
//! Choosing the port: mosquitto cannot be told "any free port" (`listener 0` means a unix
//! socket to it), and "find a free port, release it, start mosquitto on it" races with
//! every other test binding port 0 meanwhile. So a candidate port is tried and mosquitto's
//! own log decides: `running` means it holds the port; `Address already in use` means it
//! exited and another candidate is tried. The port is never assumed ours before mosquitto
//! has bound it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::Proc;
use crate::temp::{TempDir, temp_dir};
use crate::wait::wait_for_blocking;

/// How many candidate ports to try before giving up.
const ATTEMPTS: usize = 20;
/// How long mosquitto may take to report that it runs (or that it failed).
const START_LIMIT: Duration = Duration::from_secs(20);
/// How long [`Mosquitto::start_again`] retries while its port is still taken.
const RESTART_LIMIT: Duration = Duration::from_secs(20);

/// A mosquitto process listening on `127.0.0.1:port` (anonymous, no persistence);
/// killed when dropped.
pub struct Mosquitto {
    bin: PathBuf,
    extra_config: String,
    port: u16,
    proc: Option<Proc>,
    dir: TempDir,
}

/// How one launch ended.
enum Launch {
    Running(Proc),
    PortTaken,
}

impl Mosquitto {
    /// Starts `bin` (from [`services::mosquitto`](crate::services::mosquitto)) on a port of its own.
    pub fn start(bin: &Path) -> Mosquitto {
        Mosquitto::start_with(bin, "")
    }

    /// Like [`Mosquitto::start`], with extra `mosquitto.conf` lines (e.g.
    /// `max_queued_messages 100000`).
    pub fn start_with(bin: &Path, extra_config: &str) -> Mosquitto {
        let mut broker = Mosquitto {
            bin: bin.to_path_buf(),
            extra_config: extra_config.to_string(),
            port: 0,
            proc: None,
            dir: temp_dir("mosquitto"),
        };
        for _ in 0..ATTEMPTS {
            let port = candidate_port();
            if let Launch::Running(proc) = broker.launch(port) {
                broker.port = port;
                broker.proc = Some(proc);
                return broker;
            }
        }
        panic!("mosquitto found no free loopback port in {ATTEMPTS} attempts");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the broker logged so far (with `log_type subscribe` in the extra config, each
    /// subscription as `<client id> <qos> <filter>`).
    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::stderr).unwrap_or_default()
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL: clients see the socket close without a DISCONNECT).
    /// The port stays this broker's address for [`Mosquitto::start_again`].
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// Starts the broker again on the same port (after [`Mosquitto::kill`]). Retries while
    /// the port is still taken; panics if it stays taken (another process bound it).
    pub fn start_again(&mut self) {
        self.start_again_within(RESTART_LIMIT);
    }

    /// [`Mosquitto::start_again`], retrying for at most `limit`.
    pub fn start_again_within(&mut self, limit: Duration) {
        assert!(self.proc.is_none(), "mosquitto is still running");
        let port = self.port;
        let proc = wait_for_blocking(limit, || match self.launch(port) {
            Launch::Running(proc) => Some(proc),
            Launch::PortTaken => None,
        });
        self.proc = Some(proc.unwrap_or_else(|| {
            panic!("mosquitto cannot listen on 127.0.0.1:{port} again: the port stays taken")
        }));
    }

    /// Starts mosquitto on `port` and waits until its log says it runs or why it stopped.
    fn launch(&self, port: u16) -> Launch {
        let conf = self.dir.path().join(format!("mosquitto-{port}.conf"));
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n\
             log_type information\n{}\n",
            self.extra_config
        );
        std::fs::write(&conf, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf.display()));
        let mut command = Command::new(&self.bin);
        command.arg("-c").arg(&conf);
        let mut proc = Proc::spawn(command);
        let outcome = wait_for_blocking(START_LIMIT, || {
            if proc.stderr().contains(" running") {
                return Some(true);
            }
            proc.exited().map(|_| false)
        });
        match outcome {
            Some(true) => Launch::Running(proc),
            Some(false) if proc.stderr().contains("Address already in use") => Launch::PortTaken,
            Some(false) => panic!("mosquitto failed to start:\n{}", proc.stderr()),
            None => panic!(
                "mosquitto did not report running within {START_LIMIT:?}:\n{}",
                proc.stderr()
            ),
        }
    }
}

/// A port that was free a moment ago (only a candidate: see the module doc).
fn candidate_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
}
