//! The simulated Fit systems: starting one task per configured device (its model warmed
//! up to the start time), and the handles the rest of the simulator keeps — what HTTP
//! reads ([`DeviceView`]) and where the fault switches send one-shot commands.
//!
//! # Layout
//! - this file: [`DeviceView`], [`DeviceSetup`], [`spawn`] one device, [`spawn_all`].
//! - `task`: one device on the wire — cadences, reports, get-all answers, the open-API
//!   routes, going offline.
//! - `commands`: the one-shot fault commands, stop/start and ignoring sets.
//! - `sets`: the §10 sets a device takes and its 96/8 settings report.
//! - `timer`: the §12 timer-task writes it takes, its 96/10 push and 96/127 answer.

mod commands;
mod sets;
mod task;
mod timer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value as JsonValue};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::SimulatorConfig;
use crate::broker::Message;
use crate::clock::{self, SimClock};
use crate::config::Cadence;
use crate::faults::DeviceCommand;
use crate::field::glitch::Glitches;
use crate::field::stats::{DeviceNow, FieldLog};
use crate::field::wire::WireRules;
use crate::outlet::Outlet;
use crate::physics::outage::OutagePlan;
use crate::physics::{FitModel, PhysicsConfig};
use crate::reports::{self, Context};
use crate::stats::Counters;
use task::Timers;

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

    /// The model, locked: the Modbus side reads and steers the same system.
    pub(crate) fn model(&self) -> MutexGuard<'_, FitModel> {
        self.shared.model()
    }

    /// What `/sim/stats` shows of the device now: online, the grid, the ledger.
    pub(crate) fn now(&self) -> DeviceNow {
        let model = self.shared.model();
        DeviceNow {
            sn: self.sn.clone(),
            online: self.online(),
            grid: model.grid(),
            ledger: model.ledger(),
            timer_tasks: model.timers().tasks().to_vec(),
        }
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
    /// Switch frames, stream and get-all requests are recorded (and the stream gated) here.
    pub(crate) field_log: Arc<FieldLog>,
    /// While offline, the model stands still: `quota/all` keeps the last values (§8).
    pub(crate) offline_keeps_last_values: bool,
    /// Offline from the start (field.offline_devices).
    pub(crate) start_offline: bool,
    /// Ignores §10 sets from the start (field.ignore_sets).
    pub(crate) ignore_sets: bool,
    /// Takes feed-in at 96/101 only, not at 96/115 too (field.feed_in_at_101_only).
    pub(crate) feed_in_at_101_only: bool,
    /// Answers 96/127 with the list twice, the stale copy second (field.timer_list_twice).
    pub(crate) timer_list_twice: bool,
    /// What a report leaves off the wire (§11).
    pub(crate) wire: WireRules,
    /// The bad samples it injects (§11).
    pub(crate) glitches: Glitches,
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
    field_log: Arc<FieldLog>,
    offline_keeps_last_values: bool,
    /// Sets are counted but not applied (to test "not applied").
    ignore_sets: bool,
    /// The settings revision last reported in 96/8.
    settings_reported: u64,
    feed_in_at_101_only: bool,
    /// The timer-task revision last pushed in 96/10.
    timers_reported: u64,
    timer_list_twice: bool,
    wire: WireRules,
    glitches: Glitches,
}

/// Starts the device task; it runs until `shutdown`, then says goodbye (offline message).
pub(crate) fn spawn(
    setup: DeviceSetup,
    shutdown: CancellationToken,
) -> (DeviceView, JoinHandle<()>) {
    let view = DeviceView {
        sn: setup.sn,
        shared: Arc::new(Shared {
            online: AtomicBool::new(!setup.start_offline),
            model: Mutex::new(setup.model),
            utc_offset_minutes: setup.utc_offset_minutes,
            pv_peak_w: setup.pv_peak_w,
        }),
    };
    let mut device = Device {
        view: view.clone(),
        clock: setup.clock,
        xor: setup.xor,
        open_account: setup.open_account,
        outlet: setup.outlet,
        counters: setup.counters,
        delay_micros: setup.delay_micros,
        seq: setup.first_seq,
        bms_index: 0,
        running: !setup.start_offline,
        field_log: setup.field_log,
        offline_keeps_last_values: setup.offline_keeps_last_values,
        ignore_sets: false,
        settings_reported: 0,
        feed_in_at_101_only: setup.feed_in_at_101_only,
        timers_reported: 0,
        timer_list_twice: setup.timer_list_twice,
        wire: setup.wire,
        glitches: setup.glitches,
    };
    device.set_ignoring(setup.ignore_sets);
    let timers = Timers::new(&setup.cadence, setup.speed);
    let task = tokio::spawn(device.run(timers, setup.inbound, setup.commands, shutdown));
    (view, task)
}

/// The started devices.
pub(crate) struct Devices {
    /// What the HTTP side reads, in config order.
    pub(crate) views: Vec<DeviceView>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
    /// Each device's command queue, by serial (for the fault switches).
    pub(crate) commands: HashMap<String, mpsc::Sender<DeviceCommand>>,
    /// The simulated clock they all run on.
    pub(crate) clock: SimClock,
}

/// Starts one task per `config.devices`, all on one simulated clock, publishing through
/// `outlet` and hearing get-all requests and switches on `shared.inbound`; they stop with
/// `stop`.
pub(crate) fn spawn_all(
    config: &SimulatorConfig,
    outlet: &Outlet,
    open_account: Option<String>,
    shared: &crate::SharedHandles,
    stop: &CancellationToken,
) -> Devices {
    let start_epoch = clock::start_epoch(config.start_time);
    let clock = SimClock::new(start_epoch, config.speed);
    let mut devices = Devices {
        views: Vec::new(),
        tasks: Vec::new(),
        commands: HashMap::new(),
        clock,
    };
    for (i, sn) in config.devices.iter().enumerate() {
        let (tx, rx) = mpsc::channel(16);
        devices.commands.insert(sn.clone(), tx);
        let (view, task) = spawn(
            DeviceSetup {
                sn: sn.clone(),
                model: warmed_up_model(config, i, start_epoch),
                clock,
                cadence: config.cadence.clone(),
                speed: config.speed,
                xor: config.xor,
                utc_offset_minutes: config.utc_offset_minutes,
                pv_peak_w: config.pv_peak_w,
                open_account: open_account.clone(),
                outlet: outlet.clone(),
                inbound: shared.inbound.subscribe(),
                commands: rx,
                counters: shared.counters.clone(),
                delay_micros: shared.delay_micros.clone(),
                first_seq: 1000 * (i as i32 + 1),
                field_log: shared.field_log.clone(),
                offline_keeps_last_values: config.field.offline_keeps_last_values,
                start_offline: config.field.offline_devices.contains(sn),
                ignore_sets: config.field.ignore_sets.contains(sn),
                feed_in_at_101_only: config.field.feed_in_at_101_only,
                timer_list_twice: config.field.timer_list_twice,
                wire: WireRules::of(&config.field),
                glitches: Glitches::new(
                    config.field.placeholder_rate,
                    config.field.counter_dip_rate,
                    config.seed.wrapping_add(i as u64),
                ),
            },
            stop.clone(),
        );
        devices.views.push(view);
        devices.tasks.push(task);
    }
    devices
}

/// Device `index`'s model at `start_epoch`. It begins at the start day's local midnight
/// and lives through the day up to the start time, so day counters and batteries look
/// like a system already running; the first grid outage (if any) comes `after` the start.
fn warmed_up_model(config: &SimulatorConfig, index: usize, start_epoch: f64) -> FitModel {
    let offset = f64::from(config.utc_offset_minutes) * 60.0;
    let midnight = ((start_epoch + offset) / 86400.0).floor() * 86400.0 - offset;
    let mut model = FitModel::new(
        PhysicsConfig {
            packs: usize::from(config.packs),
            pv_peak_w: config.pv_peak_w,
            initial_soc: config.initial_soc,
            seed: config.seed.wrapping_add(index as u64),
            utc_offset_s: i64::from(config.utc_offset_minutes) * 60,
            outage: config.field.grid_outage.map(|o| OutagePlan {
                first_start: start_epoch + o.after.as_secs_f64(),
                duration_s: o.duration.as_secs_f64(),
                every_s: o.every.map(|e| e.as_secs_f64()),
            }),
        },
        midnight,
    );
    model.advance_to(start_epoch);
    model
}
