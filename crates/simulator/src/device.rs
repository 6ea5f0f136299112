//! One simulated Fit system on the wire: advances its physics on the simulated clock,
//! publishes the four reports at their cadences on `/app/device/property/<SN>`, answers
//! get-all requests on `get_reply`, sends the offline message when stopped, and carries out
//! the one-shot faults.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use catalog::Channel;
use protocol::dispatch::MappedReport;
use protocol::{FrameSpec, Value};
use serde_json::{Map, Value as JsonValue, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::broker::Message;
use crate::clock::SimClock;
use crate::config::Cadence;
use crate::faults::DeviceCommand;
use crate::outlet::Outlet;
use crate::physics::FitModel;
use crate::reports::{self, Context};
use crate::stats::{Counters, add, bump};

/// What the HTTP side may read of a device.
#[derive(Clone)]
pub(crate) struct DeviceView {
    sn: String,
    shared: Arc<Shared>,
}

struct Shared {
    online: AtomicBool,
    model: Mutex<FitModel>,
    utc_offset_minutes: i32,
    pv_peak_w: f64,
}

impl Shared {
    fn model(&self) -> MutexGuard<'_, FitModel> {
        self.model
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DeviceView {
    pub(crate) fn sn(&self) -> &str {
        &self.sn
    }

    pub(crate) fn online(&self) -> bool {
        self.shared.online.load(Ordering::Relaxed)
    }

    /// All current values in the open-API JSON form.
    pub(crate) fn quota(&self) -> Map<String, JsonValue> {
        let model = self.shared.model();
        reports::quota_json(&model, self.context(&model))
    }

    fn context<'a>(&'a self, model: &FitModel) -> Context<'a> {
        Context {
            sn: &self.sn,
            epoch: model.now().max(0.0) as u64,
            utc_offset_minutes: self.shared.utc_offset_minutes,
            pv_peak_w: self.shared.pv_peak_w,
        }
    }
}

/// Everything a device task needs.
pub(crate) struct DeviceSetup {
    pub(crate) sn: String,
    pub(crate) model: FitModel,
    pub(crate) clock: SimClock,
    pub(crate) cadence: Cadence,
    pub(crate) speed: f64,
    pub(crate) xor: bool,
    pub(crate) utc_offset_minutes: i32,
    pub(crate) pv_peak_w: f64,
    /// The open-API MQTT account, when the JSON quota form is pushed too.
    pub(crate) open_account: Option<String>,
    pub(crate) outlet: Outlet,
    pub(crate) inbound: broadcast::Receiver<Message>,
    pub(crate) commands: mpsc::Receiver<DeviceCommand>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) delay_micros: Arc<AtomicU64>,
    pub(crate) first_seq: i32,
}

struct Device {
    view: DeviceView,
    clock: SimClock,
    xor: bool,
    open_account: Option<String>,
    outlet: Outlet,
    counters: Arc<Counters>,
    delay_micros: Arc<AtomicU64>,
    seq: i32,
    bms_index: usize,
    running: bool,
}

/// Starts the device task; it runs until `shutdown`, then says goodbye (offline message).
pub(crate) fn spawn(
    setup: DeviceSetup,
    shutdown: CancellationToken,
) -> (DeviceView, JoinHandle<()>) {
    let view = DeviceView {
        sn: setup.sn,
        shared: Arc::new(Shared {
            online: AtomicBool::new(true),
            model: Mutex::new(setup.model),
            utc_offset_minutes: setup.utc_offset_minutes,
            pv_peak_w: setup.pv_peak_w,
        }),
    };
    let device = Device {
        view: view.clone(),
        clock: setup.clock,
        xor: setup.xor,
        open_account: setup.open_account,
        outlet: setup.outlet,
        counters: setup.counters,
        delay_micros: setup.delay_micros,
        seq: setup.first_seq,
        bms_index: 0,
        running: true,
    };
    let timers = Timers::new(&setup.cadence, setup.speed);
    let task = tokio::spawn(device.run(timers, setup.inbound, setup.commands, shutdown));
    (view, task)
}

/// One interval per report, plus the physics tick.
struct Timers {
    energy: Interval,
    heartbeat: Interval,
    packs: Interval,
    bms: Interval,
    physics: Interval,
}

impl Timers {
    fn new(c: &Cadence, speed: f64) -> Timers {
        let make = |period: Duration| {
            let mut i = interval(c.real_interval(period, speed));
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        };
        Timers {
            energy: make(c.energy_stream),
            heartbeat: make(c.heartbeat),
            packs: make(c.battery_packs),
            bms: make(c.cloud_bms),
            physics: {
                let mut i = interval(Duration::from_secs(1));
                i.set_missed_tick_behavior(MissedTickBehavior::Delay);
                i
            },
        }
    }

    fn fire_now(&mut self) {
        self.energy.reset_immediately();
        self.heartbeat.reset_immediately();
        self.packs.reset_immediately();
        self.bms.reset_immediately();
    }
}

impl Device {
    async fn run(
        mut self,
        mut t: Timers,
        mut inbound: broadcast::Receiver<Message>,
        mut commands: mpsc::Receiver<DeviceCommand>,
        shutdown: CancellationToken,
    ) {
        let mut commands_open = true;
        let mut inbound_open = true;
        self.publish_status(true).await;
        loop {
            let running = self.running;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => {
                        if self.command(cmd).await {
                            t.fire_now();
                        }
                    }
                    None => commands_open = false,
                },
                msg = inbound.recv(), if inbound_open => match msg {
                    Ok(msg) => self.on_inbound(msg).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => inbound_open = false,
                },
                _ = t.energy.tick(), if running => self.report(MappedReport::EnergyStream).await,
                _ = t.heartbeat.tick(), if running => {
                    self.report(MappedReport::EmsHeartbeat).await;
                    self.publish_open_quota().await;
                }
                _ = t.packs.tick(), if running => self.report(MappedReport::BatteryPacks).await,
                _ = t.bms.tick(), if running => {
                    self.report(MappedReport::CloudBmsInfo).await;
                    self.bms_index = self.bms_index.wrapping_add(1);
                }
                _ = t.physics.tick() => {
                    let now = self.clock.now();
                    self.view.shared.model().advance_to(now);
                }
            }
        }
        if self.running {
            self.go_offline().await;
        }
    }

    fn sn(&self) -> &str {
        &self.view.sn
    }

    fn next_seq(&mut self) -> i32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    async fn send(&self, topic: String, payload: Vec<u8>, frames: u64) {
        let micros = self.delay_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
        if self.outlet.publish(topic, payload).await {
            bump(&self.counters.payloads_published);
            add(&self.counters.frames_published, frames);
        }
    }

    /// A one-frame payload carrying `report` for the current simulated instant.
    fn report_payload(&mut self, report: MappedReport) -> Option<Vec<u8>> {
        let pdata = {
            let mut model = self.view.shared.model();
            model.advance_to(self.clock.now());
            reports::encode(report, &model, self.view.context(&model), self.bms_index)
        };
        match pdata {
            Ok(pdata) => {
                let seq = self.next_seq();
                let frame = FrameSpec::report(report, pdata, self.sn(), seq, self.xor);
                Some(protocol::encode_frames(vec![frame]))
            }
            Err(e) => {
                warn!(
                    "device {}: cannot encode {}: {e}",
                    self.sn(),
                    report.message()
                );
                None
            }
        }
    }

    async fn report(&mut self, report: MappedReport) {
        if let Some(payload) = self.report_payload(report) {
            let topic = protocol::topics::property_topic(self.sn());
            self.send(topic, payload, 1).await;
        }
    }

    /// Answers `/app/<userId>/<SN>/thing/property/get` with every report on `get_reply`.
    async fn on_inbound(&mut self, msg: Message) {
        let parts: Vec<&str> = msg.topic.split('/').collect();
        let ["", "app", user_id, sn, "thing", "property", "get"] = parts.as_slice() else {
            return;
        };
        if *sn != self.sn() || !self.running {
            return;
        }
        let reply_topic = protocol::topics::get_reply_topic(user_id, sn);
        for report in MappedReport::ALL {
            if let Some(payload) = self.report_payload(report) {
                self.send(reply_topic.clone(), payload, 1).await;
            }
        }
        bump(&self.counters.get_all_answered);
    }

    /// Carries out a command; true when the device (re)starts and should report at once.
    async fn command(&mut self, cmd: DeviceCommand) -> bool {
        let topic = protocol::topics::property_topic(self.sn());
        match cmd {
            DeviceCommand::Malformed => {
                // Field 1 claims 32 bytes but only 2 follow: not a valid `Frames` message.
                self.send(topic, vec![0x0a, 0x20, 0x01, 0x02], 0).await;
            }
            DeviceCommand::UnknownCmdPair => {
                let seq = self.next_seq();
                let frame = FrameSpec {
                    cmd_func: 200,
                    cmd_id: 201,
                    pdata: vec![0x08, 0x01],
                    device_sn: Some(self.sn().to_string()),
                    seq,
                    src: 2,
                    xor: self.xor,
                };
                self.send(topic, protocol::encode_frames(vec![frame]), 1)
                    .await;
            }
            DeviceCommand::OutOfRange => {
                let states: Vec<_> = [("bpSoc", 150.0), ("meterAVoltage", 257.5)]
                    .into_iter()
                    .filter_map(|(name, v)| {
                        catalog::find(Channel::EmsHeartbeatReport, name)
                            .map(|s| (s, Value::Number(v)))
                    })
                    .collect();
                match protocol::encode_report(Channel::EmsHeartbeatReport, &states) {
                    Ok(pdata) => {
                        let seq = self.next_seq();
                        let frame = FrameSpec::report(
                            MappedReport::EmsHeartbeat,
                            pdata,
                            self.sn(),
                            seq,
                            self.xor,
                        );
                        self.send(topic, protocol::encode_frames(vec![frame]), 1)
                            .await;
                    }
                    Err(e) => warn!("out-of-range fault: {e}"),
                }
            }
            DeviceCommand::Stop => {
                if self.running {
                    self.go_offline().await;
                }
            }
            DeviceCommand::Start => {
                if !self.running {
                    self.running = true;
                    self.view.shared.online.store(true, Ordering::Relaxed);
                    self.publish_status(true).await;
                    return true;
                }
            }
        }
        false
    }

    async fn go_offline(&mut self) {
        self.running = false;
        self.view.shared.online.store(false, Ordering::Relaxed);
        let seq = self.next_seq();
        let payload = protocol::offline_payload(self.sn(), seq);
        self.send(protocol::topics::property_topic(self.sn()), payload, 1)
            .await;
        self.publish_status(false).await;
    }

    /// Open-API route: `/open/<account>/<SN>/status`.
    async fn publish_status(&self, online: bool) {
        if let Some(account) = &self.open_account {
            let topic = format!("/open/{account}/{}/status", self.sn());
            let body = json!({"params": {"status": u8::from(online)}});
            self.send(topic, body.to_string().into_bytes(), 0).await;
        }
    }

    /// Open-API route: `/open/<account>/<SN>/quota` with every current value.
    async fn publish_open_quota(&self) {
        if let Some(account) = &self.open_account {
            let topic = format!("/open/{account}/{}/quota", self.sn());
            let body = json!({"params": self.view.quota()});
            self.send(topic, body.to_string().into_bytes(), 0).await;
        }
    }
}
