//! Timer tasks over real sockets (protocol §12): a client publishes the §12 recipes on
//! the app route's `set` topic (rumqttc over TLS) and reads the device's list back — the
//! 96/10 push on the property topic after every write it takes, the 96/127 answer on
//! `set_reply` with the list twice under the request's seq (the stale copy second) —
//! and sees an armed window charge the battery from the grid in the energy stream and
//! the heartbeat.

mod common;

use std::time::{Duration, Instant};

use common::wire::raw_frames;
use common::*;
use protocol::timer::{
    self, GridChargeLimits, Repeat, TaskChange, TaskKind, TimerRequest, TimerTask, TimerWrite,
    Window,
};
use protocol::{DecodedPayload, SkipReason, control};
use simulator::{FieldConfig, Simulator, SimulatorConfig};

const SN: &str = "HC31ZDH5ZF220123";
const WAIT: Duration = Duration::from_secs(15);
/// 2024-06-01 00:00 local time (UTC+1), epoch seconds.
const MIDNIGHT: u64 = 1_717_196_400;
/// The simulated Fit's two packs take 2 × 2.5 kW.
const LIMITS: GridChargeLimits = GridChargeLimits {
    online_packs: 2,
    max_w: 5000,
};

/// A client on the app route hearing the property topic and `set_reply`.
struct App {
    app: AppClient,
    seq: i32,
}

impl App {
    async fn connect(sim: &Simulator, client_id: &str) -> App {
        let app = AppClient::connect(sim, client_id, |user_id| {
            vec![
                protocol::topics::property_topic(SN),
                // The answer to a command on `set` (protocol §2).
                format!("/app/{user_id}/{SN}/thing/property/set_reply"),
            ]
        })
        .await;
        App { app, seq: 100 }
    }

    async fn send(&mut self, payload: Vec<u8>) {
        self.app.set(SN, payload).await;
    }

    async fn write(&mut self, write: &TimerWrite) {
        self.seq += 1;
        self.send(timer::encode_write(write, SN, self.seq)).await;
    }

    /// The next payload (topic, bytes, decoded) within [`WAIT`].
    async fn next(&mut self) -> (String, Vec<u8>, DecodedPayload) {
        self.app.next(SN, WAIT).await
    }

    /// The next 96/10 push; fails on a list answer first.
    async fn next_push(&mut self) -> Vec<TimerTask> {
        loop {
            let (topic, _, decoded) = self.next().await;
            if let Some(tasks) = decoded.timer_tasks {
                assert!(topic.ends_with(&format!("property/{SN}")), "{topic}");
                return tasks;
            }
        }
    }

    /// Asks for the list (96/127) and returns the answer's payload; fails on a 96/10
    /// push first (a write taken).
    async fn list(&mut self) -> (Vec<u8>, DecodedPayload) {
        self.seq += 1;
        self.send(timer::timer_tasks_request(SN, self.seq)).await;
        loop {
            let (topic, payload, decoded) = self.next().await;
            if decoded.timer_tasks.is_some() {
                assert!(topic.ends_with("/set_reply"), "a push came first: {topic}");
                return (payload, decoded);
            }
        }
    }

    async fn tasks(&mut self) -> Vec<TimerTask> {
        self.list().await.1.timer_tasks.unwrap()
    }
}

/// The list each raw 96/127 frame of an answer carries, with the frame's seq.
fn copies(payload: &[u8]) -> Vec<Vec<TimerTask>> {
    raw_frames(payload)
        .into_iter()
        .map(|f| {
            assert_eq!((f.cmd_func, f.cmd_id), (96, 127));
            timer::decode_list(&f.pdata).unwrap()
        })
        .collect()
}

fn slot(tasks: &[TimerTask]) -> &TimerTask {
    timer::find(tasks, 1).expect("slot 1")
}

fn with_duplicate(field: FieldConfig) -> FieldConfig {
    FieldConfig {
        timer_list_twice: true,
        ..field
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipes_arm_disarm_and_a_full_write_clears_the_flag() {
    let sim = Simulator::start(SimulatorConfig {
        // Noon: the default slot's window (01:00–05:00) is not running.
        start_time: Some(MIDNIGHT + 12 * 3600),
        field: with_duplicate(FieldConfig::lenient()),
        ..config(1.0)
    })
    .await
    .unwrap();
    let mut app = App::connect(&sim, "ANDROID_timer_1").await;

    // The list twice under the request's seq: before any change both copies are the
    // slot as installed (disarmed, 1000 W, daily 01:00–05:00).
    let (payload, decoded) = app.list().await;
    let initial = decoded.timer_tasks.unwrap();
    assert_eq!(copies(&payload), [initial.clone(), initial.clone()]);
    assert_eq!(decoded.skipped[0].reason, SkipReason::StaleCopy);
    let s = slot(&initial);
    assert!(!s.armed && s.kind == TaskKind::ChargeFromGrid && s.power_w == 1000);
    assert_eq!(
        (s.repeat, s.windows.clone()),
        (Repeat::Daily, vec![Window::new(60, 300)])
    );

    // Arm: 96/10 shows it; the answer's stale copy is the list before (disarmed).
    let sent = Instant::now();
    app.write(&TimerWrite::Arm { index: 1 }).await;
    let pushed = app.next_push().await;
    let took = sent.elapsed();
    assert!(TimerWrite::Arm { index: 1 }.applied_in(&pushed));
    let (payload, decoded) = app.list().await;
    assert_eq!(decoded.timer_tasks, Some(pushed.clone()));
    assert_eq!(copies(&payload)[1], initial, "the stale copy comes second");

    // An explicit is_enable = 0 does nothing: no push, still armed.
    app.seq += 1;
    let explicit = control::encode_command(
        timer::WRITE_CMD_ID,
        vec![0x10, 2, 0x18, 1, 0x20, 0],
        SN,
        app.seq,
    );
    app.send(explicit).await;
    assert!(slot(&app.tasks().await).armed);

    // 1500 W kept armed: the planner's two frames, each confirmed before the next. The
    // full write shows with the flag cleared, then the arm.
    let request = TimerRequest::Change {
        index: 1,
        change: TaskChange {
            power_w: Some(1500),
            ..TaskChange::default()
        },
    };
    let plan = request.plan(&app.tasks().await, &LIMITS).unwrap();
    assert_eq!(plan.frames.len(), 2);
    app.write(&plan.frames[0]).await;
    let after_write = app.next_push().await;
    assert!(plan.frames[0].applied_in(&after_write));
    assert!(
        !slot(&after_write).armed,
        "a full write clears the enable flag"
    );
    app.write(&plan.frames[1]).await;
    let armed = app.next_push().await;
    assert!(slot(&armed).armed && slot(&armed).power_w == 1500);

    // Disarm: fields 2 and 3 only.
    app.write(&TimerWrite::Disarm { index: 1 }).await;
    assert!(!slot(&app.next_push().await).armed);

    // A power off the rules (not in 100 W steps) is refused: nothing changes, no push.
    let off_rules = TimerWrite::Change {
        index: 1,
        kind: TaskKind::ChargeFromGrid,
        power_w: 1550,
        repeat: Repeat::Daily,
        windows: vec![Window::new(60, 300)],
    };
    app.write(&off_rules).await;
    assert_eq!(slot(&app.tasks().await).power_w, 1500);

    let d = device_stats(&sim, SN).await;
    let writes = &d["timer_writes"];
    assert_eq!(writes["arm"], 2, "{d}");
    assert_eq!(
        (writes["change"].clone(), writes["disarm"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(writes["explicit_disable"], 1, "{d}");
    assert_eq!(d["timer_writes_refused"]["power"], 1, "{d}");
    assert_eq!(d["timer_list_requests"], 5, "{d}");
    assert_eq!(d["sets_received"], 6, "{d}");
    assert_eq!(d["sets_ignored_by_reason"]["no_effect"], 1, "{d}");
    assert_eq!(d["sets_ignored_by_reason"]["bad_value"], 1, "{d}");
    let now: Vec<TimerTask> = serde_json::from_value(d["timer_tasks"].clone()).unwrap();
    assert_eq!(slot(&now).power_w, 1500);
    eprintln!("arm → 96/10 on the property topic: {took:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_armed_window_charges_the_battery_from_the_grid() {
    // 20 simulated minutes a real second, from 00:40 local; the window 01:00–03:00.
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(MIDNIGHT + 40 * 60),
        initial_soc: 40.0,
        ..config(1200.0)
    })
    .await
    .unwrap();
    let mut app = App::connect(&sim, "ANDROID_timer_2").await;
    let request = TimerRequest::Change {
        index: 1,
        change: TaskChange {
            power_w: Some(2000),
            window: Some("01:00-03:00".parse().unwrap()),
            repeat: Some(Repeat::Daily),
            armed: Some(true),
        },
    };
    for frame in request.plan(&app.tasks().await, &LIMITS).unwrap().frames {
        app.write(&frame).await;
        while !frame.applied_in(&app.next_push().await) {}
    }

    // In the window (by the stream's own timestamp) the stream shows 2000 W into the
    // battery, all from the grid on top of the load, and the heartbeat imports it; 96/10
    // says the task runs. After 03:00 the battery covers the night load again.
    let (open, close) = ((MIDNIGHT + 3600) as f64, (MIDNIGHT + 3 * 3600) as f64);
    let deadline = Instant::now() + WAIT;
    let (mut samples, mut heartbeats) = (Vec::new(), Vec::new());
    let mut pushed_running = false;
    loop {
        assert!(Instant::now() < deadline, "the window never ended");
        let (_, _, d) = app.next().await;
        if let Some(tasks) = &d.timer_tasks {
            pushed_running |= slot(tasks).running;
        }
        let n = |key: &str| number(&d, key);
        let last = samples.last().map_or(0.0, |&(at, _)| at);
        if let (Some(take), Some(bp_in)) = (
            n("EMSHeartbeatReport.sysRunMeterTakePower"),
            n("EMSHeartbeatReport.bpInDayEnergy"),
        ) && last > open
            && last < close - 1800.0
        {
            assert!(take > 2000.0, "imports the charge and the load: {take}");
            heartbeats.push(bp_in);
        }
        let (Some(battery), Some(grid), Some(load), Some(soc)) = (
            n("EnergyStreamItem.bpPwr"),
            n("EnergyStreamItem.gridPwr"),
            n("EnergyStreamItem.loadPwr"),
            n("EnergyStreamItem.bpSoc"),
        ) else {
            continue;
        };
        let at = d
            .updates
            .iter()
            .find(|u| u.state.key == "EnergyStreamItem.timestamp");
        let at: f64 = at.and_then(|u| u.value.as_text()).unwrap().parse().unwrap();
        if at >= close {
            assert!(
                battery > 0.0,
                "after the window the battery gives again: {battery}"
            );
            break;
        }
        // The task may have been armed a little after 01:00 on a busy machine.
        if at < open || (samples.is_empty() && battery != -2000.0) {
            continue;
        }
        assert_eq!(battery, -2000.0, "charging at the task's power at {at}");
        assert!((grid - load - 2000.0).abs() <= 0.2, "{grid} {load}");
        samples.push((at, soc));
    }
    assert!(pushed_running, "96/10 said the task runs");
    loop {
        if !slot(&app.next_push().await).running {
            break;
        }
    }
    // 2 kW × 0.96 into 2 packs of 5 kWh (SoH 100 and 99.5 %): 19.25 points an hour.
    let (&(t0, soc0), &(t1, soc1)) = (samples.first().unwrap(), samples.last().unwrap());
    let hours = (t1 - t0) / 3600.0;
    assert!(hours > 1.0, "{} samples over {hours} h", samples.len());
    let want = 19.25 * hours;
    assert!(
        (soc1 - soc0 - want).abs() <= 1.5,
        "SoC {soc0} → {soc1} % in {hours:.2} h, expected +{want:.1}"
    );
    assert!(heartbeats.windows(2).all(|w| w[1] >= w[0]) && heartbeats.len() > 2);
    eprintln!(
        "window: SoC {soc0} → {soc1} % in {hours:.2} simulated h at 2000 W (expected +{want:.1}); {} stream samples",
        samples.len()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_ignoring_sets_answers_the_list_once_and_takes_no_write() {
    // The lenient cloud answers the list once; this device ignores sets.
    let sim = Simulator::start(SimulatorConfig {
        start_time: Some(MIDNIGHT + 12 * 3600),
        field: FieldConfig {
            ignore_sets: vec![SN.to_string()],
            ..FieldConfig::lenient()
        },
        ..config(1.0)
    })
    .await
    .unwrap();
    let mut app = App::connect(&sim, "ANDROID_timer_3").await;
    app.write(&TimerWrite::Arm { index: 1 }).await;
    let (payload, decoded) = app.list().await;
    assert_eq!(raw_frames(&payload).len(), 1, "the list once");
    assert!(decoded.skipped.is_empty());
    assert!(!slot(&decoded.timer_tasks.unwrap()).armed, "not applied");
    let d = &sim.field_stats().devices[SN];
    assert_eq!(d.sets_ignored_by_reason["ignoring_sets"], 1);
    assert!(d.timer_writes.is_empty() && d.timer_list_requests == 1);
    sim.shutdown().await;
}
