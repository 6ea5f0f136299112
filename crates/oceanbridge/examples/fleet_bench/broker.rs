//! A private mosquitto on a free loopback port, configured as a fleet broker would be
//! (a deep per-client queue, TCP_NODELAY), next to the system's default-configured one.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::bridge::{Error, run_id};

/// Per-client queue of the tuned broker (mosquitto's default is 1000).
pub const TUNED_MAX_QUEUED: u32 = 100_000;

pub struct PrivateBroker {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

fn mosquitto_path() -> Option<PathBuf> {
    let in_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("mosquitto"))
            .find(|p| p.is_file())
    });
    in_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/mosquitto");
        sbin.is_file().then_some(sbin)
    })
}

impl PrivateBroker {
    pub async fn start() -> Result<PrivateBroker, Error> {
        let bin = mosquitto_path().ok_or("mosquitto binary not found")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("oceanbridge-bench-broker-{}", run_id()));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest none\nmax_queued_messages {TUNED_MAX_QUEUED}\nset_tcp_nodelay true\n"
            ),
        )?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let until = Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > until {
                return Err(format!("private mosquitto did not listen on {port}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(PrivateBroker { child, port, dir })
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
