//! Proof that the bridge copes with a cloud as hostile as the field (docs/field-behaviour.md): the
//! real `oceanbridge run` binary against a strict simulator (every rule of
//! `simulator::FieldConfig::strict`), over real sockets. Each test takes well under a
//! minute of real time: high `speed`, short lifetimes, no fixed sleeps (the `/api/states`
//! ages are sampled while the run goes on; every wait is a poll with a deadline).
//!
//! - a simulated day: the energy stream's age never exceeds two cadences plus slack; the
//!   same bridge restarted with `energy_stream_switch = false` sees the stream stop;
//! - `run` restarted 15 times on each route: one client id, no refusals;
//! - logins expiring three times: re-certified each time, gap below one slow cadence;
//! - 20 % intermittent 8521 on the open API: the data keeps coming.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use simulator::{FieldConfig, FieldStats, Simulator, SimulatorConfig};
use support::*;
use testkit::wait_until;

const SN: &str = "HC31ZDH5ZF220123";
/// Room for a loaded CI machine between a frame's arrival and the sample that reads it.
const SLACK: Duration = Duration::from_secs(2);
const LIMIT: Duration = Duration::from_secs(60);
/// The longest the age sampler may go without a sample (a loaded machine stalls it for
/// up to ~1.8 s, measured): with it, any data gap longer than the bound plus this shows,
/// a stopped stream (25 s without a switch) always does. A sample count alone would not
/// say so, and varies with the load (38–132 samples for the same day).
const MAX_SAMPLE_GAP: Duration = Duration::from_secs(5);

/// A strict simulator: every field rule on (`intermittent_8521` as given), then `change`.
async fn strict_sim(
    speed: f64,
    intermittent: f64,
    change: impl FnOnce(&mut SimulatorConfig),
) -> Simulator {
    let mut config = SimulatorConfig {
        field: FieldConfig {
            intermittent_8521: intermittent,
            ..FieldConfig::strict()
        },
        ..sim_config(&[SN], speed)
    };
    change(&mut config);
    Simulator::start(config).await.expect("simulator starts")
}

/// The real-time interval of a report cadence at the simulator's speed.
fn real(config: &SimulatorConfig, period: Duration) -> Duration {
    config.cadence.real_interval(period, config.speed)
}

/// `[source]` for the app route plus a dashboard on a free port; `extra` goes into `[source]`.
fn app_config(sim: &Simulator, dir: &Path, extra: &str) -> String {
    let ca = write_ca(sim, dir);
    format!(
        "{}{extra}\n[web]\nbind = \"127.0.0.1:0\"\n",
        source_section(sim, &[SN], Some(&ca))
    )
}

/// `[source]` for the developer open API plus a dashboard; `extra` goes into `[source]`.
fn open_config(sim: &Simulator, dir: &Path, extra: &str) -> String {
    let ca = write_ca(sim, dir);
    let key = SimulatorConfig::default();
    format!(
        "[source]\nway_in = \"open_api\"\napi_url = {:?}\nca_file = {:?}\ndevices = [{SN:?}]\n\
         access_key = {:?}\nsecret_key = {:?}\nreconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n\
         http_timeout = \"3s\"\n{extra}\n[web]\nbind = \"127.0.0.1:0\"\n",
        sim.http_base_url(),
        ca.display().to_string(),
        key.access_key,
        key.secret_key,
    )
}

/// The smallest `age_secs` among `channel`'s rows: the time since its last frame.
fn channel_age(states: &Json, channel: &str) -> Option<Duration> {
    states["states"]
        .as_array()?
        .iter()
        .filter(|r| r["channel"] == channel)
        .filter_map(|r| r["age_secs"].as_f64())
        .min_by(f64::total_cmp)
        .map(Duration::from_secs_f64)
}

/// What sampling a channel's age found.
#[derive(Debug)]
struct Sampled {
    /// The largest age seen once the channel had a value.
    worst: Duration,
    /// Samples with a value.
    samples: usize,
    /// The longest time between two samples: a data gap longer than the bound plus this
    /// cannot go unseen, however loaded the machine (the sample count alone says nothing
    /// about a stall of the sampler).
    longest_between: Duration,
}

/// Samples `channel`'s age on the dashboard until `done` holds (or `limit` passes).
async fn max_age_until(
    bridge: &Bridge,
    channel: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> Sampled {
    let deadline = Instant::now() + limit;
    let mut sampled = Sampled {
        worst: Duration::ZERO,
        samples: 0,
        longest_between: Duration::ZERO,
    };
    let mut last_sample: Option<Instant> = None;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out; {channel} so far: {sampled:?}"
        );
        let states = bridge.get_json("/api/states", None).await;
        if let Some(age) = channel_age(&states, channel) {
            let now = Instant::now();
            if let Some(last) = last_sample {
                sampled.longest_between = sampled.longest_between.max(now - last);
            }
            last_sample = Some(now);
            sampled.worst = sampled.worst.max(age);
            sampled.samples += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sampled
}

fn stats(sim: &Simulator) -> FieldStats {
    sim.field_stats()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_simulated_day_keeps_the_energy_stream_fresh_and_without_the_switch_it_stops() {
    // A day in 15 s of real time; the stream then comes every 250 ms (the real-time floor).
    let sim = strict_sim(5760.0, 0.0, |_| {}).await;
    let config = SimulatorConfig {
        speed: 5760.0,
        ..SimulatorConfig::default()
    };
    let cadence = real(&config, config.cadence.energy_stream);
    let bound = cadence * 2 + SLACK;
    let dir = testkit::temp_dir("field-day");
    let mut bridge = tokio::task::block_in_place(|| {
        Bridge::start(
            dir.path(),
            &app_config(&sim, dir.path(), "energy_stream_interval = \"10s\"\n"),
            &[],
        )
    });
    let started = Instant::now();
    let day = Duration::from_secs_f64(86_400.0 / config.speed);
    // The day, and at least one periodic re-send of the switch (connect sends the first;
    // a slow start on a loaded machine must not leave the period untested).
    let Sampled {
        worst,
        samples,
        longest_between,
    } = max_age_until(&bridge, "EnergyStreamItem", LIMIT, || {
        started.elapsed() >= day && stats(&sim).devices[SN].switch_frames >= 2
    })
    .await;
    let s = stats(&sim);
    let d = &s.devices[SN];
    eprintln!(
        "day: {samples} samples (at most {longest_between:?} apart), worst EnergyStreamItem \
         age {worst:?} (bound {bound:?}); switches {}, stream frames {}, withheld {}, stops {}",
        d.switch_frames, d.stream_frames, d.stream_withheld, d.stream_stops
    );
    assert!(samples > 20, "the stream flowed: {samples} samples");
    assert!(
        longest_between <= MAX_SAMPLE_GAP,
        "samples {longest_between:?} apart: a gap could hide"
    );
    assert!(worst <= bound, "EnergyStreamItem age {worst:?} > {bound:?}");
    assert_eq!(d.stream_stops, 0, "{d:?}");
    assert!(d.switch_frames >= 2 && d.bad_switch_frames == 0, "{d:?}");
    assert!(s.accounts["app"].refused.is_empty(), "{s:?}");

    // The same bridge without the switch: the stream stops once the last switch is older
    // than the window, and the dashboard's stream values age past the bound.
    assert!(bridge.stop());
    let mut bridge = tokio::task::block_in_place(|| {
        Bridge::start(
            dir.path(),
            &app_config(&sim, dir.path(), "energy_stream_switch = false\n"),
            &[],
        )
    });
    let stopped_at = Instant::now();
    wait_until("the stream stops", LIMIT, || {
        stats(&sim).devices[SN].stream_stops >= 1
    })
    .await;
    let waited = stopped_at.elapsed();
    let frames = stats(&sim).devices[SN].stream_frames;
    let mut aged = None;
    let deadline = Instant::now() + LIMIT;
    while aged.is_none() && Instant::now() < deadline {
        let states = bridge.get_json("/api/states", None).await;
        aged = channel_age(&states, "EnergyStreamItem").filter(|a| *a > bound);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("switch off: the stream stopped {waited:?} after the restart; age then {aged:?}");
    assert!(
        aged.is_some(),
        "the stream values grow old without the switch"
    );
    assert_eq!(
        stats(&sim).devices[SN].stream_frames,
        frames,
        "no stream after the stop"
    );
    assert!(bridge.stop());
    sim.shutdown().await;
}

/// Starts and stops `run` `times` times with the same state dir; each run connects once.
async fn restart(sim: &Simulator, route: &str, config: &str, dir: &Path, times: u64) {
    for n in 1..=times {
        let mut bridge = tokio::task::block_in_place(|| Bridge::start(dir, config, &[]));
        wait_until("connected", LIMIT, || {
            stats(sim).accounts[route].connections >= n
        })
        .await;
        assert!(bridge.stop(), "run {n} stops on SIGTERM");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_restarted_15_times_keeps_one_client_id_on_each_route() {
    let sim = strict_sim(10.0, 0.0, |_| {}).await;
    let started = Instant::now();
    let app_dir = testkit::temp_dir("field-restart-app");
    let config = app_config(&sim, app_dir.path(), "");
    restart(&sim, "app", &config, app_dir.path(), 15).await;
    // The open route refuses an 11th new id a day: 15 runs prove the id is kept.
    let open_dir = testkit::temp_dir("field-restart-open");
    let config = open_config(&sim, open_dir.path(), "");
    restart(&sim, "open", &config, open_dir.path(), 15).await;
    let s = stats(&sim); // what GET /sim/stats serves
    eprintln!(
        "15 restarts per route in {:?}: app {:?}, open {:?}",
        started.elapsed(),
        s.accounts["app"],
        s.accounts["open"]
    );
    for route in ["app", "open"] {
        let a = &s.accounts[route];
        assert_eq!(a.client_ids.len(), 1, "{route}: {a:?}");
        assert!(a.refused.is_empty(), "{route}: {a:?}");
        assert_eq!((a.connections, a.takeovers), (15, 0), "{route}: {a:?}");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_expiring_three_times_are_renewed_with_a_gap_below_one_slow_cadence() {
    let ttl = Duration::from_secs(3);
    let sim = strict_sim(10.0, 0.0, |c| c.field.credential_ttl = ttl).await;
    let config = SimulatorConfig {
        speed: 10.0,
        ..SimulatorConfig::default()
    };
    let slow = real(&config, config.cadence.heartbeat);
    let dir = testkit::temp_dir("field-expiry");
    let mut bridge = tokio::task::block_in_place(|| {
        Bridge::start(dir.path(), &app_config(&sim, dir.path(), ""), &[])
    });
    let started = Instant::now();
    let Sampled {
        worst,
        samples,
        longest_between,
    } = max_age_until(&bridge, "EnergyStreamItem", LIMIT, || {
        stats(&sim).accounts["app"].expired_drops >= 3
    })
    .await;
    // The fourth login is in use: data flows again after the third drop.
    let flowing_from = stats(&sim).devices[SN].stream_frames;
    wait_until("the stream after the third renewal", LIMIT, || {
        stats(&sim).devices[SN].stream_frames > flowing_from + 2
    })
    .await;
    let a = stats(&sim).accounts["app"].clone();
    eprintln!(
        "3 expiries in {:?}: worst stream age {worst:?} over {samples} samples (at most \
         {longest_between:?} apart; slow cadence {slow:?}); certifications {}, connections {}, \
         refused {:?}",
        started.elapsed(),
        a.certifications,
        a.connections,
        a.refused
    );
    assert!(
        a.certifications >= 4,
        "re-certified after each expiry: {a:?}"
    );
    assert!(
        worst < slow,
        "data gap {worst:?} >= one slow cadence {slow:?}"
    );
    assert!(
        longest_between <= MAX_SAMPLE_GAP,
        "samples {longest_between:?} apart: a gap could hide"
    );
    assert!(
        a.client_ids.len() == 1 && !a.refused.contains_key("client_id_form"),
        "{a:?}"
    );
    assert!(bridge.stop());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_percent_intermittent_8521_on_the_open_api_keeps_working() {
    let sim = strict_sim(10.0, 0.2, |_| {}).await;
    let dir = testkit::temp_dir("field-8521");
    // A poll every 500 ms: the eight 8521s came in 14 s (29–31 s at 1 s a poll, too
    // close to `LIMIT` for a random 20 %).
    let poll = Duration::from_millis(500);
    let config = open_config(&sim, dir.path(), "get_all_interval = \"500ms\"\n");
    let mut bridge = tokio::task::block_in_place(|| Bridge::start(dir.path(), &config, &[]));
    let started = Instant::now();
    // Only quota polls bring data here (the simulator pushes no open-API JSON): each poll
    // needs a signed request through 20 % refusals. The age is the values' (polls never
    // make the device fresh: docs/stages.md).
    let Sampled {
        worst,
        samples,
        longest_between,
    } = max_age_until(&bridge, "EMSHeartbeatReport", LIMIT, || {
        stats(&sim).signing_errors.get("8521").copied().unwrap_or(0) >= 8
    })
    .await;
    let s = stats(&sim);
    let bound = poll * 5 + SLACK;
    eprintln!(
        "8521 x{} in {:?}: worst heartbeat age {worst:?} over {samples} samples (at most \
         {longest_between:?} apart; bound {bound:?}); signing errors {:?}",
        s.signing_errors["8521"],
        started.elapsed(),
        s.signing_errors
    );
    assert!(samples > 10, "data arrived: {samples} samples");
    assert!(
        longest_between <= MAX_SAMPLE_GAP,
        "samples {longest_between:?} apart: a gap could hide"
    );
    // One retry each: a poll is lost only when both tries fail (4 %); five in a row, never.
    assert!(worst <= bound, "heartbeat age {worst:?} > {bound:?}");
    assert!(bridge.exited().is_none(), "the bridge keeps running");
    assert!(bridge.stop());
    sim.shutdown().await;
}
