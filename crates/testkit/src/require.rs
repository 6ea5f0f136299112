//! What a test does when a service or tool it needs is missing: under `CI=true` it fails
//! with the probe's message; elsewhere it skips, saying so on stderr.
//!
//! A test never passes by skipping in CI: the CI machine is meant to have everything
//! (`.ci/run` installs and starts it), so a missing piece there is a broken setup.

use std::fmt;
use std::io::Write as _;

/// Why a required service or tool is not usable, and what to do about it.
#[derive(Debug, Clone)]
pub struct Missing {
    /// What is missing, e.g. "PostgreSQL on 127.0.0.1:5432 (connection refused)".
    pub what: String,
    /// What the user should do, e.g. "start it (`.ci/run` does) or set …".
    pub fix: String,
}

impl Missing {
    pub fn new(what: impl Into<String>, fix: impl Into<String>) -> Missing {
        Missing {
            what: what.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.fix)
    }
}

/// True when the environment says this is a CI run (`CI` set and not `false`/`0`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// The probed value, or — when it is missing — a panic under CI, else a skip notice
/// and `None` (the test then returns). Use through [`require!`](crate::require!).
#[track_caller]
pub fn require<T>(probe: Result<T, Missing>) -> Option<T> {
    match probe {
        Ok(value) => Some(value),
        Err(missing) => {
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_string();
            assert!(
                !in_ci(),
                "{test} needs {missing} (under CI=true a missing requirement fails the test instead of skipping it)"
            );
            // Straight to the stderr handle: the test harness captures `eprintln!` of a
            // passing test, and a skip must be visible.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: needs {missing} (a failure under CI=true)"
            );
            None
        }
    }
}

/// `let x = require!(probe);` — the probed value, or return from the test (outside CI)
/// after printing why. Under `CI=true` a missing service fails the test instead.
#[macro_export]
macro_rules! require {
    ($probe:expr) => {
        match $crate::require($probe) {
            Some(value) => value,
            None => return,
        }
    };
}
