//! Field truth end to end (protocol §11, §13): the real `oceanbridge run` binary against
//! the simulator with its default field rules on a fast simulated clock, over real
//! sockets, with a listener next to the bridge on the simulator's broker that hears what
//! the device sent ([`support::wire`]). No fixed sleeps: the dashboard is sampled while
//! the run goes on and every wait has a deadline.
//!
//! - a simulated evening, night and dawn (2024-06-01, sunset about 20:53 local, sunrise
//!   about 05:07): once 96/33 comes without `pv_pwr`, `pvPwr` reads 0 within one stream
//!   cadence and stays 0 until the sun is back while the stream keeps coming; a second
//!   bridge on the same run with `[pipeline] stream_zero_fill = false` shows the last
//!   day value all night, so the rule is what makes the difference;
//! - a simulated grid outage: `/api/devices` says `lost` within one heartbeat cadence of
//!   its start and `present` within one of its end;
//! - the daily counters on Home Assistant's state topics (mosquitto on :1883, a prefix of
//!   this run's own) with many placeholders and dips: never a step back but the midnight
//!   reset, never a placeholder, and the day's total as the simulator's ledger has it.

mod support;

use std::time::{Duration, Instant};

use catalog::Channel;
use rumqttc::MqttOptions;
use simulator::field::GridOutage;
use simulator::field::glitch::DAY_COUNTERS;
use simulator::{Simulator, SimulatorConfig};
use support::counters::{self, is_reset, steps_back};
use support::night::*;
use support::wire::Wire;
use support::*;
use testkit::mqtt::subscribe_with;
use testkit::unique;

const SN: &str = "HC31ZDH5ZF220123";
/// 2024-06-01 00:00 local time (the simulator's default UTC+1), epoch seconds.
const JUNE_1: u64 = 1_717_196_400;
/// Room for a loaded CI machine between a frame's arrival and the sample that reads it.
const SLACK: Duration = Duration::from_secs(2);
const LIMIT: Duration = Duration::from_secs(90);
/// The longest the sampler may go without a sample (a loaded machine stalls it for up to
/// ~1.8 s, docs/field-behaviour.md): a wrong value held longer than this always shows.
const MAX_SAMPLE_GAP: Duration = Duration::from_secs(5);
const PV: &str = "EnergyStreamItem.pvPwr";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pv_reads_zero_all_night_and_without_zero_fill_the_evening_stays() {
    // 17:00 local, four simulated hours before sunset (8 s real, for two bridges to start
    // on a loaded machine); the night then takes about 16 s.
    let speed = 1800.0;
    let config = SimulatorConfig {
        start_time: Some(JUNE_1 + 17 * 3600),
        ..sim_config(&[SN], speed)
    };
    let cadence = config
        .cadence
        .real_interval(config.cadence.energy_stream, speed);
    let sim = Simulator::start(config).await.expect("simulator starts");
    let wire = Wire::listen(&sim, "field-night-wire", SN).await;
    let (mut filled, _d1) = start_bridge(SN, "field-night-fill", &sim, "");
    let (mut kept, _d2) = start_bridge(
        SN,
        "field-night-kept",
        &sim,
        "[pipeline]\nstream_zero_fill = false\n",
    );

    let deadline = Instant::now() + LIMIT;
    let mut samples = Vec::new();
    let mut frames_at = Vec::new(); // (when, 96/33 frames the simulator sent so far)
    loop {
        let stream = wire.of(Channel::EnergyStreamItem);
        if let Some(n) = night_on_the_wire(&stream, PV)
            && n.sunrise.at.elapsed() > SLACK
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sunrise on the wire within {LIMIT:?}: {} stream frames",
            stream.len()
        );
        let (f, k) = tokio::join!(read(&filled, SN, PV), read(&kept, SN, PV));
        let at = Instant::now();
        samples.push(Sample {
            at,
            filled: f.0,
            kept: k.0,
            filled_age: f.1,
        });
        frames_at.push((at, sim.field_stats().devices[SN].stream_frames));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream = wire.of(Channel::EnergyStreamItem);
    let night = night_on_the_wire(&stream, PV).expect("a night on the wire");
    // The last `pvPwr` before the dark, a get-all answer's included (the bridge reads both).
    let evening = wire
        .heard()
        .iter()
        .filter(|h| h.at < night.sunset.at)
        .filter_map(|h| h.numbers.get(PV).copied())
        .next_back()
        .expect("light before the dark");
    let stats = sim.field_stats().devices[SN].clone();

    // Both bridges had the day before the sun went down.
    let day = |pick: fn(&Sample) -> Option<f64>| {
        samples
            .iter()
            .any(|s| s.at < night.sunset.at && pick(s).is_some_and(|v| v > 0.0))
    };
    assert!(
        day(|s| s.filled) && day(|s| s.kept),
        "the bridges were not up before sunset"
    );

    // Zero-fill on: the first read of 0, measured from the last frame with light.
    let zero = samples
        .iter()
        .find(|s| s.at >= night.sunset.at && s.filled == Some(0.0))
        .expect("pvPwr read 0 after sunset");
    let after_light = zero.at - night.last_light.at;
    let after_dark_frame = zero.at - night.sunset.at;
    let (looked, zeros, gap) = held(&samples, zero.at, night.sunrise.at, |s| s.filled, 0.0);
    let worst_age = samples
        .iter()
        .filter(|s| s.at >= zero.at && s.at < night.sunrise.at)
        .filter_map(|s| s.filled_age)
        .fold(0.0, f64::max);
    // Zero-fill off, the same night: the evening's last value, once the first dark frame
    // has certainly been read.
    let settled = night.sunset.at + cadence + SLACK;
    let (kept_looked, kept_evening, kept_gap) =
        held(&samples, settled, night.sunrise.at, |s| s.kept, evening);
    let (_, kept_zeros, _) = held(&samples, settled, night.sunrise.at, |s| s.kept, 0.0);
    let sent_at = |t: Instant| {
        frames_at
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map_or(0, |(_, n)| *n)
    };
    let night_real = night.sunrise.at - night.sunset.at;
    let sent_in_night = sent_at(night.sunrise.at) - sent_at(night.sunset.at);
    eprintln!(
        "night: {} dark 96/33 frames heard over {night_real:?} (the simulator counted \
         {sent_in_night} sent; cadence {cadence:?}; stops {}); evening pvPwr {evening} W. \
         Zero-fill on: 0 W {after_light:?} after the last frame with light \
         ({after_dark_frame:?} after the first dark one), then {zeros}/{looked} samples \
         0 W at most {gap:?} apart, worst 96/33 age {worst_age:.2} s. Zero-fill off: \
         {kept_evening}/{kept_looked} samples {evening} W, {kept_zeros} 0 W (at most \
         {kept_gap:?} apart)",
        night.frames, stats.stream_stops
    );
    assert!(
        after_light <= cadence + SLACK,
        "pvPwr 0 only {after_light:?} after the last light (cadence {cadence:?})"
    );
    assert!(
        looked >= 20 && zeros == looked,
        "pvPwr was not 0 all night: {zeros}/{looked}"
    );
    assert!(
        gap <= MAX_SAMPLE_GAP,
        "samples {gap:?} apart: a value could hide"
    );
    // The stream kept coming all night, and the bridge kept hearing it.
    let expected = (night_real.as_secs_f64() / cadence.as_secs_f64()) as u64;
    assert!(
        sent_in_night * 2 >= expected && night.frames as u64 * 2 >= expected,
        "the stream thinned out: {sent_in_night} sent, {} heard, {expected} expected",
        night.frames
    );
    assert_eq!(stats.stream_stops, 0, "{stats:?}");
    assert!(
        worst_age <= (cadence * 2 + SLACK).as_secs_f64(),
        "96/33 age {worst_age} s at night"
    );
    // The rule bites: without it the same night shows the evening all along.
    assert!(evening > 0.0);
    assert!(
        kept_looked >= 20 && kept_evening == kept_looked && kept_zeros == 0,
        "zero-fill off should keep {evening} W: {kept_evening}/{kept_looked}"
    );
    assert!(kept_gap <= MAX_SAMPLE_GAP);
    assert!(filled.stop() && kept.stop());
    drop(wire);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grid_outage_reads_lost_within_a_heartbeat_and_present_after() {
    // Speed 60: a heartbeat every 0.5 s; the outage from 20 s to 30 s of real time.
    let speed = 60.0;
    let outage = GridOutage {
        after: Duration::from_secs(20 * 60),
        duration: Duration::from_secs(10 * 60),
        every: None,
    };
    let mut config = sim_config(&[SN], speed);
    config.field.grid_outage = Some(outage);
    let heartbeat = config
        .cadence
        .real_interval(config.cadence.heartbeat, speed);
    let bound = heartbeat + SLACK;
    // The simulated clock starts inside `start`: an outage measured from before it is
    // measured from no later than it truly began (the delays below are upper bounds).
    let before = Instant::now();
    let sim = Simulator::start(config).await.expect("simulator starts");
    let start_took = before.elapsed();
    let begins = before + outage.after.div_f64(speed);
    let ends = before + (outage.after + outage.duration).div_f64(speed);
    let wire = Wire::listen(&sim, "field-grid-wire", SN).await;
    let (mut bridge, _dir) = start_bridge(SN, "field-grid", &sim, "");

    let limit = ends + LIMIT;
    let present_first = until_presence(&bridge, SN, "present", limit).await;
    assert!(
        present_first < begins,
        "the bridge only saw the grid {:?} after the outage began",
        present_first - begins
    );
    let lost = until_presence(&bridge, SN, "lost", limit).await;
    // Lost all through the outage: every look until the grid is back on the wire.
    let mut looks = 0;
    let back_on_wire = loop {
        if let Some(t) = heartbeat_where(&wire.heard(), lost, true) {
            break t;
        }
        assert!(
            Instant::now() < limit,
            "the grid never came back on the wire"
        );
        assert_eq!(presence(&bridge, SN).await.as_deref(), Some("lost"));
        looks += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let present = until_presence(&bridge, SN, "present", limit).await;
    let heard = wire.heard();
    let dark_on_wire = heartbeat_where(&heard, before, false).expect("a 0 V heartbeat heard");
    let stats = sim.field_stats().devices[SN].clone();
    let lost_after = lost.saturating_duration_since(begins);
    let present_after = present.saturating_duration_since(ends);
    eprintln!(
        "grid outage (simulator start took {start_took:?}; heartbeat every {heartbeat:?}): \
         lost {lost_after:?} after it began ({:?} after the first 0 V heartbeat was heard), \
         {looks} looks lost during it; present {present_after:?} after it ended ({:?} after \
         the first heartbeat with voltage); outages started {} ended {}",
        lost.saturating_duration_since(dark_on_wire),
        present.saturating_duration_since(back_on_wire),
        stats.grid_outages_started,
        stats.grid_outages_ended
    );
    assert!(lost >= begins, "lost before the outage began");
    assert!(
        lost_after <= bound,
        "lost {lost_after:?} after the start (bound {bound:?})"
    );
    assert!(
        present_after <= bound,
        "present {present_after:?} after the end (bound {bound:?})"
    );
    assert!(looks >= 10, "the outage was looked at: {looks}");
    assert_eq!(
        (stats.grid_outages_started, stats.grid_outages_ended),
        (1, 1)
    );
    assert!(bridge.stop());
    drop(wire);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daily_counters_on_home_assistant_never_step_back_and_end_the_day_as_the_ledger() {
    let broker = testkit::require!(testkit::services::mqtt_broker());
    // 00:05 on 2024-06-01 to just past the next midnight: a day in 30 s, a heartbeat every
    // 250 ms (12 simulated minutes), one report in five with a placeholder and one in
    // five with a counter one below the report before.
    let speed = 2880.0;
    let mut config = SimulatorConfig {
        start_time: Some(JUNE_1 + 300),
        ..sim_config(&[SN], speed)
    };
    config.field.placeholder_rate = 0.2;
    config.field.counter_dip_rate = 0.2;
    let sim = Simulator::start(config).await.expect("simulator starts");
    let wire = Wire::listen(&sim, "field-night-counters", SN).await;
    let base = unique("ob_night_ha");
    let prefix = format!("{base}/oceanbridge");
    let (_sub, mut rx) = subscribe_with(
        MqttOptions::new(unique("ob_night_ha_sub"), broker.host.clone(), broker.port),
        &format!("{prefix}/{SN}/#"),
    )
    .await;
    let extra = format!(
        "[home_assistant]\nenabled = true\nbroker = {:?}\nclient_id = {:?}\n\
         discovery_prefix = \"{base}/homeassistant\"\nprefix = \"{prefix}\"\n\
         remove_on_shutdown = true\n",
        broker.url(),
        unique("ob_night_ha_bridge"),
    );
    // Removed again on shutdown: nothing of this run stays retained on the shared broker.
    let (mut bridge, _dir) = start_bridge(SN, "field-night-counters", &sim, &extra);

    // Until Home Assistant's load counter has been reset at midnight and grown 3 times.
    const LOAD: &str = "EMSHeartbeatReport.loadDayEnergy";
    let load_topic = format!("{prefix}/{SN}/{}", LOAD.replace('.', "/"));
    let mut messages = Vec::new();
    let mut load = Vec::new();
    let deadline = Instant::now() + LIMIT;
    // Only the load topic is read while the run goes on: the rest waits in the channel.
    // (A step back that is no reset ends nothing here: the checks below catch it.)
    let grown_after_reset = |load: &[f64]| {
        steps_back(load)
            .iter()
            .find(|(_, before, after)| is_reset(*before, *after))
            .is_some_and(|(i, _, _)| load.len() > i + 3)
    };
    while !grown_after_reset(&load) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no midnight reset of {LOAD} within {LIMIT:?}: {load:?}"
        );
        match tokio::time::timeout(left.min(Duration::from_secs(1)), rx.recv()).await {
            Ok(Some((topic, payload))) => {
                if topic == load_topic
                    && let Ok(v) = payload.parse::<f64>()
                {
                    load.push(v);
                }
                messages.push((Instant::now(), topic, payload));
            }
            Ok(None) => panic!("the subscriber ended"),
            Err(_) => {}
        }
    }
    assert!(bridge.stop());
    let published = counters::numbers(&messages, &prefix, SN);
    let by_key = counters::series(&published);

    // The wire: every heartbeat (reports and get-all answers) up to local midnight, the
    // moment the load counter fell back.
    let heard = wire.heard();
    let beats: Vec<_> = heard
        .iter()
        .filter_map(|h| Some((h.at, day_counters(h)?)))
        .collect();
    let midnight = beats
        .windows(2)
        .position(|w| {
            w[1].1
                .get(LOAD)
                .zip(w[0].1.get(LOAD))
                .is_some_and(|(a, b)| is_reset(*b, *a))
        })
        .map(|i| i + 1)
        .unwrap_or_else(|| {
            let load: Vec<_> = beats.iter().filter_map(|b| b.1.get(LOAD)).collect();
            panic!(
                "no midnight on the wire: {LOAD} {load:?}; on Home Assistant {:?}",
                by_key.get(LOAD)
            )
        });
    let midnight_at = beats[midnight].0;
    let day: Vec<_> = beats[..midnight].iter().map(|b| &b.1).collect();
    let ledger = sim.field_stats().devices[SN]
        .ledger
        .iter()
        .find(|d| d.date == "2024-06-01")
        .cloned()
        .expect("the ledger has the day");
    assert!(ledger.complete, "{ledger:?}");
    let last = ledger.last_heartbeat.expect("a heartbeat that day");
    let mut exact = 0;
    let mut wire_dips = 0;
    for (name, truth) in last.by_state() {
        let key = DAY_COUNTERS
            .iter()
            .find(|k| k.ends_with(&format!(".{name}")))
            .expect("a day counter");
        let on_wire: Vec<f64> = day.iter().filter_map(|b| b.get(key).copied()).collect();
        wire_dips += steps_back(&on_wire).len();
        let ha: Vec<f64> = by_key
            .get(key)
            .map_or(Vec::new(), |s| s.iter().map(|p| p.1).collect());
        let back = steps_back(&ha);
        // Never back, but for one reset at midnight (a counter still at 0 has none).
        assert!(
            back.len() <= 1,
            "{key} stepped back on Home Assistant: {back:?} in {ha:?}"
        );
        let end_of_day = match back.first() {
            Some(&(i, before, after)) => {
                assert!(
                    is_reset(before, after),
                    "{key}: {before} -> {after} is no reset"
                );
                assert!(
                    by_key[key][i].0 >= midnight_at,
                    "{key}: reset published before midnight on the wire"
                );
                before
            }
            None => ha.last().copied().unwrap_or(0.0),
        };
        // Exactly the day's highest true reading (a dip held back, never shown)...
        let highest = on_wire.iter().copied().fold(0.0, f64::max);
        assert_eq!(end_of_day, highest, "{key}: published vs the wire's day");
        // ...which is the ledger's last heartbeat, or — when that one carried the dip —
        // the heartbeat before it: short by one heartbeat's growth, never more.
        let before_last = on_wire.iter().rev().nth(1).copied().unwrap_or(0.0);
        let step = (truth - before_last).max(0.0);
        exact += usize::from(end_of_day == truth);
        eprintln!(
            "{name}: published {end_of_day} Wh at the end of the day, ledger {truth} Wh \
             (true at midnight {} Wh), one heartbeat's growth {step} Wh; {} values on Home \
             Assistant, {} back",
            ledger
                .end_of_day
                .by_state()
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0.0, |p| p.1),
            ha.len(),
            back.len()
        );
        assert!(
            end_of_day <= truth && truth - end_of_day <= step,
            "{key}: published {end_of_day}, ledger {truth}, one heartbeat {step}"
        );
    }
    // No placeholder ever reached a state topic, though the wire carried many.
    let shown: Vec<_> = published
        .iter()
        .filter(|p| protocol::field::is_placeholder(p.state, p.value))
        .collect();
    assert!(
        shown.is_empty(),
        "placeholders on Home Assistant: {shown:?}"
    );
    let wire_placeholders = counters::placeholders(&heard);
    let injected = sim.field_stats().devices[SN].bad_samples.clone();
    eprintln!(
        "counters: {} heartbeats that day on the wire, {wire_dips} steps back and \
         {wire_placeholders} placeholders among what the device sent (injected {injected:?}); \
         {} numeric values on Home Assistant, {exact}/6 end-of-day totals equal to the ledger",
        day.len(),
        published.len()
    );
    // The checks above can fail: the same reading of the raw wire finds steps back.
    assert!(
        wire_dips > 0 && wire_placeholders > 0,
        "nothing was injected"
    );
    drop(wire);
    sim.shutdown().await;
}
