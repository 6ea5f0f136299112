//! One simulated Fit system on the wire: advances its physics on the simulated clock,
//! publishes the four reports at their cadences on `/app/device/property/<SN>` (the energy
//! stream only while a client keeps it switched on, protocol §8), answers get-all
//! requests on `get_reply` (96/8 settings included), hears the switch, the §10 sets and
//! the §12 timer-task frames on `set`, reports 96/8 when its settings change and 96/10
//! when its timer tasks do, pushes the open-API status and
//! quota routes, and sends the offline message when stopped.

use std::sync::atomic::Ordering;
use std::time::Duration;

use protocol::FrameSpec;
use protocol::dispatch::MappedReport;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Interval, MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Device;
use crate::broker::Message;
use crate::config::Cadence;
use crate::faults::DeviceCommand;
use crate::field::switch::{self, SetFrame};
use crate::reports;
use crate::stats::{add, bump};

/// One interval per report, plus the physics tick.
pub(super) struct Timers {
    energy: Interval,
    heartbeat: Interval,
    packs: Interval,
    bms: Interval,
    physics: Interval,
}

impl Timers {
    pub(super) fn new(c: &Cadence, speed: f64) -> Timers {
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
    pub(super) async fn run(
        mut self,
        mut t: Timers,
        mut inbound: broadcast::Receiver<Message>,
        mut commands: mpsc::Receiver<DeviceCommand>,
        shutdown: CancellationToken,
    ) {
        let mut commands_open = true;
        let mut inbound_open = true;
        self.publish_status(self.running).await;
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
                _ = t.energy.tick(), if running => {
                    if self.field_log.stream_tick(self.sn()) {
                        self.report(MappedReport::EnergyStream).await;
                    }
                }
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
                    // Offline, the cloud keeps the last values (§8): the model stands still.
                    if self.running || !self.offline_keeps_last_values {
                        let now = self.clock.now();
                        self.view.shared.model().advance_to(now);
                    }
                    // The device may have raised a too-low reserve by itself (§10), and a
                    // timer task may have started or ended (§12).
                    self.report_settings_change().await;
                    self.report_timer_change().await;
                }
            }
        }
        if self.running {
            self.go_offline().await;
        }
    }

    pub(super) fn sn(&self) -> &str {
        &self.view.sn
    }

    pub(super) fn next_seq(&mut self) -> i32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    pub(super) async fn send(&self, topic: String, payload: Vec<u8>, frames: u64) {
        let micros = self.delay_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
        if self.outlet.publish(topic, payload).await {
            bump(&self.counters.payloads_published);
            add(&self.counters.frames_published, frames);
        }
    }

    /// A one-frame payload carrying `report` for the current simulated instant, as the
    /// device puts it on the wire: zeros left out (§11) and, now and then, a bad sample.
    fn report_payload(&mut self, report: MappedReport) -> Option<Vec<u8>> {
        let (wire, glitches) = (self.wire, &mut self.glitches);
        let mut omitted = 0;
        let mut injected = Vec::new();
        let pdata = {
            let mut model = self.view.shared.model();
            model.advance_to(self.clock.now());
            if report == MappedReport::EmsHeartbeat {
                model.note_heartbeat();
            }
            let cx = self.view.context(&model);
            // The BMS reports its packs in turn: each has its own counters.
            let slot = match report {
                MappedReport::CloudBmsInfo => self.bms_index % model.packs().len().max(1),
                _ => 0,
            };
            let mut edit = |channel, states: &mut reports::States| {
                omitted += wire.apply(channel, states);
                injected.extend(glitches.inject(states, slot));
            };
            reports::encode(report, &model, cx, self.bms_index, &mut edit)
        };
        self.field_log.on_the_wire(self.sn(), omitted, &injected);
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

    /// Hears this device's `set` topic (the §8 switch, the §10 sets) and answers
    /// `/app/<userId>/<SN>/thing/property/get` with every report on `get_reply` — without
    /// the energy stream while it is switched off (get-all refreshes the slow channels).
    async fn on_inbound(&mut self, msg: Message) {
        let parts: Vec<&str> = msg.topic.split('/').collect();
        let ["", "app", user_id, sn, "thing", "property", verb] = parts.as_slice() else {
            return;
        };
        if *sn != self.sn() {
            return;
        }
        match *verb {
            "set" => match switch::classify(&msg.payload) {
                SetFrame::StreamOn => self.field_log.switch_frame(sn, true),
                SetFrame::BadSwitch => self.field_log.switch_frame(sn, false),
                SetFrame::Other => self.on_set(user_id, &msg.payload).await,
            },
            "get" => self.field_log.get_all(sn),
            _ => return,
        }
        if *verb != "get" || !self.running {
            return;
        }
        let reply_topic = protocol::topics::get_reply_topic(user_id, sn);
        let streaming = self.field_log.stream_on(sn);
        for report in MappedReport::ALL {
            if report == MappedReport::EnergyStream && !streaming {
                continue;
            }
            if let Some(payload) = self.report_payload(report) {
                self.send(reply_topic.clone(), payload, 1).await;
            }
        }
        // The settings last (§10: PowerOcean systems answer a get-all with 96/8 too).
        let settings = self.settings_payload();
        self.send(reply_topic, settings, 1).await;
        bump(&self.counters.get_all_answered);
    }

    pub(super) async fn go_offline(&mut self) {
        self.running = false;
        self.view.shared.online.store(false, Ordering::Relaxed);
        let seq = self.next_seq();
        let payload = protocol::offline_payload(self.sn(), seq);
        self.send(protocol::topics::property_topic(self.sn()), payload, 1)
            .await;
        self.publish_status(false).await;
    }

    /// Open-API route: `/open/<account>/<SN>/status`.
    pub(super) async fn publish_status(&self, online: bool) {
        if let Some(account) = &self.open_account {
            let topic = protocol::topics::open_status_topic(account, self.sn());
            let body = json!({"params": {"status": u8::from(online)}});
            self.send(topic, body.to_string().into_bytes(), 0).await;
        }
    }

    /// Open-API route: `/open/<account>/<SN>/quota` with every current value.
    async fn publish_open_quota(&self) {
        if let Some(account) = &self.open_account {
            let topic = protocol::topics::open_quota_topic(account, self.sn());
            let body = json!({"params": self.view.quota()});
            self.send(topic, body.to_string().into_bytes(), 0).await;
        }
    }
}
