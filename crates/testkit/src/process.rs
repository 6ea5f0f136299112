//! A child process under test (the real `oceanbridge` binary, mosquitto, chromedriver):
//! its stdout and stderr lines collected as they come, waiting for a line with a deadline,
//! signals, and a bounded wait for the exit. Dropping it kills (SIGKILL) and reaps it.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, kill_process_group};

use crate::wait::{POLL_EVERY, wait_for_blocking};

/// How long the last output lines may take to arrive after the exit.
const DRAIN: Duration = Duration::from_secs(5);

/// The lines of one output stream, and whether it has ended (EOF).
#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    ended: AtomicBool,
}

impl Lines {
    fn collect(stream: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut v) = sink.lines.lock() {
                    v.push(line);
                }
            }
            sink.ended.store(true, Ordering::SeqCst);
        });
        lines
    }

    fn text(&self) -> String {
        self.lines.lock().map(|v| v.join("\n")).unwrap_or_default()
    }

    fn find(&self, needle: &str) -> Option<String> {
        let lines = self.lines.lock().ok()?;
        lines.iter().find(|l| l.contains(needle)).cloned()
    }
}

/// A running child process whose output is collected line by line.
pub struct Proc {
    child: Child,
    name: String,
    /// Leads its own process group: killing it kills what it started too.
    group: bool,
    out: Arc<Lines>,
    err: Arc<Lines>,
    started: Instant,
}

impl Proc {
    /// Starts `command` with stdin closed and stdout/stderr captured.
    pub fn spawn(command: Command) -> Proc {
        Proc::start(command, false)
    }

    /// Like [`Proc::spawn`], in a process group of its own: [`Proc::kill`] and drop kill
    /// the whole group, so what it started (e.g. chromedriver's browsers) dies with it.
    pub fn spawn_group(mut command: Command) -> Proc {
        command.process_group(0);
        Proc::start(command, true)
    }

    fn start(mut command: Command, group: bool) -> Proc {
        let name = command.get_program().to_string_lossy().into_owned();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let out = Lines::collect(child.stdout.take().expect("stdout is piped"));
        let err = Lines::collect(child.stderr.take().expect("stderr is piped"));
        Proc {
            child,
            name,
            group,
            out,
            err,
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the process was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Everything written to stderr so far, one line per line.
    pub fn stderr(&self) -> String {
        self.err.text()
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        self.out.text()
    }

    /// The first stderr line containing `needle`; panics (with the output) when none
    /// comes within `limit` or stderr ends without one.
    pub fn wait_stderr(&self, needle: &str, limit: Duration) -> String {
        self.wait_line(&self.err, "stderr", needle, limit)
    }

    /// The first stdout line containing `needle` (see [`Proc::wait_stderr`]).
    pub fn wait_stdout(&self, needle: &str, limit: Duration) -> String {
        self.wait_line(&self.out, "stdout", needle, limit)
    }

    fn wait_line(&self, lines: &Lines, stream: &str, needle: &str, limit: Duration) -> String {
        let found = wait_for_blocking(limit, || {
            let ended = lines.ended.load(Ordering::SeqCst);
            match lines.find(needle) {
                Some(line) => Some(Some(line)),
                None if ended => Some(None),
                None => None,
            }
        });
        match found {
            Some(Some(line)) => line,
            Some(None) => panic!(
                "{} closed its {stream} without a line containing {needle:?}; {}",
                self.name,
                self.output()
            ),
            None => panic!(
                "no {stream} line of {} containing {needle:?} within {limit:?}; {}",
                self.name,
                self.output()
            ),
        }
    }

    fn output(&self) -> String {
        format!("stderr:\n{}\nstdout:\n{}", self.stderr(), self.stdout())
    }

    pub fn sigterm(&self) {
        self.signal(Signal::TERM);
    }

    pub fn sigint(&self) {
        self.signal(Signal::INT);
    }

    fn signal(&self, signal: Signal) {
        kill_process(self.rustix_pid(), signal)
            .unwrap_or_else(|e| panic!("cannot signal {}: {e}", self.name));
    }

    fn rustix_pid(&self) -> Pid {
        i32::try_from(self.child.id())
            .ok()
            .and_then(Pid::from_raw)
            .unwrap_or_else(|| panic!("{}: no valid pid", self.name))
    }

    /// The exit status, if the process has exited (the output is then complete).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten()?;
        self.drain();
        Some(status)
    }

    /// Waits for the exit; panics (with the output) when it does not come within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match wait_for_blocking(limit, || self.child.try_wait().ok().flatten()) {
            Some(status) => {
                self.drain();
                status
            }
            None => panic!(
                "{} did not exit within {limit:?}; {}",
                self.name,
                self.output()
            ),
        }
    }

    /// SIGTERM, then waits up to `limit`; true when it exited by itself, else it is killed.
    pub fn stop(&mut self, limit: Duration) -> bool {
        if self.exited().is_some() {
            return true;
        }
        self.sigterm();
        if wait_for_blocking(limit, || self.child.try_wait().ok().flatten()).is_some() {
            self.drain();
            return true;
        }
        self.kill();
        false
    }

    /// SIGKILL (as `kill -9` would) and reap.
    pub fn kill(&mut self) {
        self.kill_quietly();
        self.drain();
    }

    fn kill_quietly(&mut self) {
        if self.group {
            let _ = kill_process_group(self.rustix_pid(), Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Lets the reader threads take the last lines (bounded: a grandchild may hold the pipe).
    fn drain(&self) {
        let deadline = Instant::now() + DRAIN;
        while !(self.out.ended.load(Ordering::SeqCst) && self.err.ended.load(Ordering::SeqCst))
            && Instant::now() < deadline
        {
            std::thread::sleep(POLL_EVERY);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.group || matches!(self.child.try_wait(), Ok(None)) {
            self.kill_quietly();
        }
    }
}
