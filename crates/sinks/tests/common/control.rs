//! [`TestPort`]: a [`ControlPort`] standing in for the runtime's controller (which is
//! tested end to end against the simulator in `runtime`/`oceanbridge`). It checks a
//! request like the controller (`SetRequest::validate`), then plays the device: the
//! requested values come back as a genuine 96/8 report (protocol §10) applied to the
//! store, and the outcome is judged by that read-back. It can ignore writes ("not
//! applied"), hold them (to see "pending"), records every call and audits it in the
//! store's audit table as the controller does.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::SystemTime;

use model::{ControlPort, Origin, SetFuture, SetOutcome};
use protocol::encode::FrameSpec;
use protocol::{DeviceSettings, FeedMode, SetContext, SetRequest};
use store::StateStore;
use store::audit::AuditEntry;
use tokio::sync::watch;

/// What the harness device reports at start: self-use, reserve 20 %, threshold 80 %,
/// unlimited feed-in with a kept cap of 800 W.
pub const REPORTED: DeviceSettings = DeviceSettings {
    work_mode: Some(0),
    charge_upper_limit: Some(100),
    backup_reserve: Some(20),
    surplus_threshold: Some(80),
    feed_mode: Some(1),
    feed_power_cap_w: Some(800),
};

/// The reason an ignored write gives.
pub const IGNORED: &str = "the device did not report the requested value within 1 s";

pub struct TestPort {
    store: StateStore,
    calls: Mutex<Vec<(String, SetRequest, Origin)>>,
    ignore: AtomicBool,
    /// `false` while writes are held (they wait before "sending").
    open: watch::Sender<bool>,
    seq: AtomicI32,
}

impl TestPort {
    pub fn new(store: StateStore) -> TestPort {
        TestPort {
            store,
            calls: Mutex::new(Vec::new()),
            ignore: AtomicBool::new(false),
            open: watch::Sender::new(true),
            seq: AtomicI32::new(100),
        }
    }

    /// Every call so far: device, request, origin.
    pub fn calls(&self) -> Vec<(String, SetRequest, Origin)> {
        self.calls.lock().expect("calls").clone()
    }

    /// From now on the "device" ignores writes (no read-back of the new value).
    pub fn set_ignore(&self, ignore: bool) {
        self.ignore.store(ignore, Ordering::SeqCst);
    }

    /// Holds writes (`true`) until released (`false`).
    pub fn hold(&self, held: bool) {
        self.open.send_replace(!held);
    }

    /// The device reports `settings` (a 96/8 frame, XOR-ed like real reports).
    pub fn report(&self, sn: &str, settings: &DeviceSettings) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let frame = FrameSpec {
            cmd_func: protocol::control::CMD_FUNC,
            cmd_id: protocol::control::SETTINGS_REPORT_CMD_ID,
            pdata: settings.encode(),
            device_sn: Some(sn.to_string()),
            seq,
            src: 2,
            xor: true,
        };
        let payload = protocol::encode_frames(vec![frame]);
        let decoded = protocol::decode_payload(&payload, sn).expect("a 96/8 payload decodes");
        self.store.apply(&decoded, SystemTime::now());
    }

    async fn outcome(&self, sn: &str, request: &SetRequest) -> SetOutcome {
        if let Err(e) = request.validate(&SetContext::default()) {
            return SetOutcome::Refused {
                reason: e.to_string(),
            };
        }
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
        if self.ignore.load(Ordering::SeqCst) {
            return SetOutcome::NotApplied {
                reason: IGNORED.into(),
            };
        }
        let mut s = self.store.settings(sn).unwrap_or_default();
        match *request {
            SetRequest::WorkMode { mode } => s.work_mode = Some(mode.code()),
            SetRequest::BatteryLimits {
                backup_reserve,
                surplus_threshold,
            } => {
                s.backup_reserve = Some(backup_reserve);
                s.surplus_threshold = Some(surplus_threshold);
            }
            SetRequest::FeedIn { mode, cap_w } => {
                s.feed_mode = Some(mode.code());
                if mode == FeedMode::Limited {
                    s.feed_power_cap_w = cap_w;
                }
            }
            // Timer-task writes are read back from the task list, which this fake port
            // does not keep: they are never applied here.
            SetRequest::GridCharge { .. } | SetRequest::GridChargeOff => {}
        }
        self.report(sn, &s);
        let read_back = self.store.settings(sn).unwrap_or_default();
        if request.applied_in(&read_back) {
            SetOutcome::Applied
        } else {
            SetOutcome::NotApplied {
                reason: "the device reported a different value".into(),
            }
        }
    }
}

impl ControlPort for TestPort {
    fn set(&self, device_sn: &str, request: SetRequest, origin: Origin) -> SetFuture<'_> {
        let sn = device_sn.to_string();
        Box::pin(async move {
            self.calls
                .lock()
                .expect("calls")
                .push((sn.clone(), request, origin));
            let previous = self.store.settings(&sn);
            let outcome = self.outcome(&sn, &request).await;
            let entry = AuditEntry::new(
                SystemTime::now(),
                &sn,
                &request,
                previous.as_ref(),
                &outcome,
                origin,
            );
            self.store.append_audit(&entry).expect("audit row written");
            outcome
        })
    }
}
