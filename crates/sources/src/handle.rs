//! [`SourceHandle`]: how the rest of the bridge asks a running source for fresh data — a
//! cloneable sender of requests the source's connection loop serves. The runtime takes it
//! before `run` and calls it when the store sees a device go stale (protocol §8: re-send
//! the switch and get-all; reconnect when a whole device is silent while connected), and
//! to send a settings frame (protocol §10, [`SourceHandle::publish_set`]) or a timer-task
//! write (§12, [`SourceHandle::publish_timer`]).

use protocol::SetRequest;
use protocol::timer::TimerWrite;
use tokio::sync::{mpsc, oneshot};

/// Requests queued for the source; more than this are dropped (each is idempotent: a
/// nudge or reconnect already waiting does the same job).
const QUEUE: usize = 64;
/// How long [`SourceHandle::publish_set`] waits for the connection loop to take a frame.
const SEND_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A request to the connection loop.
#[derive(Debug)]
pub(crate) enum Request {
    Nudge(String),
    Reconnect,
    /// A get-all for this device now (a write waiting for its read-back).
    GetAll(String),
    /// A timer-task list request (96/127) for this device now.
    TimerList(String),
    /// Publish a command frame, then the request that reads it back; the answer says
    /// whether it went out.
    Set {
        device_sn: String,
        command: Command,
        sent: oneshot::Sender<Result<(), String>>,
    },
}

/// A frame for a device's `set` topic.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    /// A 96/8 setting (§10), read back by a get-all.
    Setting(SetRequest),
    /// A 96/125 timer-task write (§12), read back by a 96/127 list request.
    Timer(TimerWrite),
}

impl Command {
    /// The MQTT payload, in the §10 envelope.
    pub(crate) fn encode(&self, device_sn: &str, seq: i32) -> Vec<u8> {
        match self {
            Command::Setting(request) => protocol::control::encode_set(request, device_sn, seq),
            Command::Timer(write) => protocol::timer::encode_write(write, device_sn, seq),
        }
    }

    /// What the log calls it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Setting(request) => request.name(),
            Command::Timer(write) => write.recipe().as_str(),
        }
    }
}

/// Cloneable handle to a running source. Sources without such requests (fleet mode, a
/// record file) hand out a detached handle whose calls do nothing.
#[derive(Debug, Clone)]
pub struct SourceHandle {
    tx: Option<mpsc::Sender<Request>>,
}

impl SourceHandle {
    pub(crate) fn channel() -> (SourceHandle, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (SourceHandle { tx: Some(tx) }, rx)
    }

    /// A handle to nothing: every call is a no-op.
    pub fn detached() -> SourceHandle {
        SourceHandle { tx: None }
    }

    /// Send the energy stream switch and a get-all to `device_sn` now (at most once per
    /// few seconds per device; ignored while disconnected, as connecting sends both).
    pub fn nudge(&self, device_sn: &str) {
        self.send(Request::Nudge(device_sn.to_string()));
    }

    /// Drop the MQTT connection and connect again (for a device that stays silent while
    /// connected). Ignored while disconnected and for a connection younger than the
    /// source's `reconnect_min_age`, so it can never become a tight loop.
    pub fn reconnect(&self) {
        self.send(Request::Reconnect);
    }

    /// Ask device `device_sn` for all its values now (app route: the get-all request,
    /// whose answer carries the 96/8 settings; open API: all quotas). Ignored while
    /// disconnected.
    pub fn get_all(&self, device_sn: &str) {
        self.send(Request::GetAll(device_sn.to_string()));
    }

    /// Publishes `request` for `device_sn` on the app route's `set` topic in the §10
    /// envelope (QoS 1), followed by a get-all so the device reports its settings (96/8).
    /// `Ok` once the frame is handed to the MQTT client; `Err` with a one-line reason when
    /// it cannot go out: the open-API route (its set endpoint is not implemented: control
    /// needs the app route), a device not on this account, no connection, or a source
    /// that cannot send (fleet mode, a record file). Whether the device *applied* it is
    /// for the caller to see in the read-back.
    pub async fn publish_set(&self, device_sn: &str, request: SetRequest) -> Result<(), String> {
        self.publish(device_sn, Command::Setting(request)).await
    }

    /// Publishes one 96/125 timer-task write (§12) like [`SourceHandle::publish_set`],
    /// followed by a 96/127 list request so the device answers with its list at once.
    pub async fn publish_timer(&self, device_sn: &str, write: TimerWrite) -> Result<(), String> {
        self.publish(device_sn, Command::Timer(write)).await
    }

    /// Ask device `device_sn` for its timer-task list now (96/127, app route; §12).
    /// Ignored while disconnected.
    pub fn timer_list(&self, device_sn: &str) {
        self.send(Request::TimerList(device_sn.to_string()));
    }

    async fn publish(&self, device_sn: &str, command: Command) -> Result<(), String> {
        let Some(tx) = &self.tx else {
            return Err("this source cannot send settings (fleet mode or a recording)".into());
        };
        let (sent, answer) = oneshot::channel();
        let queued = tx.try_send(Request::Set {
            device_sn: device_sn.to_string(),
            command,
            sent,
        });
        if queued.is_err() {
            return Err("the source is busy or stopped; nothing was sent".into());
        }
        // The connection loop drops requests made while it is not connected; one that is
        // between connections picks them up only when it connects again: not worth waiting.
        match tokio::time::timeout(SEND_WAIT, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err("not connected to the cloud; nothing was sent".into()),
        }
    }

    fn send(&self, request: Request) {
        if let Some(tx) = &self.tx
            && let Err(e) = tx.try_send(request)
        {
            tracing::debug!("source request not queued: {e}");
        }
    }
}
