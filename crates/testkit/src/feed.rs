//! Genuine payloads for all 216 states, built with `protocol::encode`, with power values
//! that change from step to step — what a real device would send, without a simulator.

use catalog::{Channel, Kind, StateDef};
use protocol::dispatch::MappedReport;
use protocol::pb::ProtoType;
use protocol::schema::tables;
use protocol::{DecodedPayload, FrameSpec, Value, value};

/// One report frame of `channel` (not a battery pack) naming device `sn` with exactly
/// these `(state name, number)` fields — for tests that need a frame as the field sends
/// it: a power left out, a placeholder, a counter stepping back.
pub fn numbers_frame(channel: Channel, sn: &str, values: &[(&str, f64)]) -> FrameSpec {
    let states: Vec<_> = values
        .iter()
        .map(|(name, v)| {
            let state = catalog::find(channel, name).unwrap_or_else(|| panic!("{name}?"));
            (state, Value::Number(*v))
        })
        .collect();
    let pdata = protocol::encode_report(channel, &states).expect("encodable");
    FrameSpec::report(MappedReport::for_channel(channel), pdata, sn, 7, true)
}

/// A device's report stream: full payloads, energy-stream payloads and the offline notice.
pub struct Feed {
    pub sn: String,
    pub packs: usize,
    seq: i32,
}

/// Live powers at step `t` (W): (pv, load, grid, battery). Battery > 0 discharges.
pub fn powers(t: u32) -> (f64, f64, f64, f64) {
    let pv = 1500.0 + 100.0 * f64::from(t % 7);
    let load = 700.0 + 37.0 * f64::from(t % 5);
    let battery = -(300.0 + 10.0 * f64::from(t % 3));
    let grid = load - pv - battery;
    (pv, load, grid, battery)
}

fn raw_for(state: &StateDef, t: u32) -> f64 {
    let (pv, load, grid, battery) = powers(t);
    match (state.channel, state.name) {
        (Channel::EnergyStreamItem, "pvPwr") => pv,
        (Channel::EnergyStreamItem, "loadPwr") => load,
        (Channel::EnergyStreamItem, "gridPwr") => grid,
        (Channel::EnergyStreamItem, "bpPwr") => battery,
        (_, "bpSoc") => 40.0 + f64::from(t % 10),
        // Deliberately out of range (max 250 V).
        (Channel::EmsHeartbeatReport, "meterAVoltage") => 257.5,
        (_, n) if n.ends_with("DayEnergy") => 1000.0 + state.index as f64 * 10.0 + f64::from(t),
        _ => {
            let min = state.min.unwrap_or(0.0);
            let max = state.max.unwrap_or(min + 20.0);
            ((min + max) / 2.0) / state.mult
        }
    }
}

fn value_for(state: &'static StateDef, t: u32) -> Value {
    let field = tables()
        .channel(state.channel)
        .field_for(state)
        .expect("every catalog state has a field");
    match (state.kind, field.ty) {
        (Kind::Number, ProtoType::Float) => {
            value::number(state, value::shortest_f64(raw_for(state, t) as f32)).0
        }
        (Kind::Number, ProtoType::Sint32 | ProtoType::Int32) => {
            value::number(state, raw_for(state, t).round()).0
        }
        (Kind::Number, _) => value::number(state, raw_for(state, t).round().max(0.0)).0,
        (Kind::Diagnostic, _) => value::diagnostic(state, 0),
        (Kind::Text, ProtoType::Float) => Value::Text(value::float_text(12.5)),
        (Kind::Text, ProtoType::String) => Value::Text(format!("TXT{}", state.index).into()),
        (Kind::Text, _) => Value::Text("42".into()),
        (Kind::Array, _) => Value::Array(vec![3.25, 3.5, f64::from(t % 4)]),
    }
}

fn states(channel: Channel, t: u32) -> Vec<(&'static StateDef, Value)> {
    catalog::channel_states(channel)
        .iter()
        .map(|s| (s, value_for(s, t)))
        .collect()
}

impl Feed {
    pub fn new(sn: &str, packs: usize) -> Feed {
        Feed {
            sn: sn.to_string(),
            packs,
            seq: 1,
        }
    }

    fn frame(&mut self, report: MappedReport, pdata: Vec<u8>) -> FrameSpec {
        self.seq += 1;
        FrameSpec::report(report, pdata, &self.sn, self.seq, true)
    }

    /// One payload with every catalog state (packs as configured) at step `t`.
    pub fn full_payload(&mut self, t: u32) -> Vec<u8> {
        let mut frames = Vec::new();
        for (report, channel) in [
            (MappedReport::CloudBmsInfo, Channel::CloudBmsInfoReport),
            (MappedReport::EmsHeartbeat, Channel::EmsHeartbeatReport),
            (MappedReport::EnergyStream, Channel::EnergyStreamItem),
        ] {
            let pdata = protocol::encode_report(channel, &states(channel, t)).expect("encodable");
            frames.push(self.frame(report, pdata));
        }
        let packs: Vec<_> = (0..self.packs)
            .map(|i| states(Channel::battery_pack(i).expect("pack 0..=2"), t))
            .collect();
        let pdata = protocol::encode_battery_packs(&packs).expect("encodable");
        frames.push(self.frame(MappedReport::BatteryPacks, pdata));
        protocol::encode_frames(frames)
    }

    /// The energy stream only (the 5-second report).
    pub fn stream_payload(&mut self, t: u32) -> Vec<u8> {
        let pdata = protocol::encode_report(
            Channel::EnergyStreamItem,
            &states(Channel::EnergyStreamItem, t),
        )
        .expect("encodable");
        let frame = self.frame(MappedReport::EnergyStream, pdata);
        protocol::encode_frames(vec![frame])
    }

    pub fn offline_payload(&mut self) -> Vec<u8> {
        self.seq += 1;
        protocol::offline_payload(&self.sn, self.seq)
    }

    pub fn decode(&self, bytes: &[u8]) -> DecodedPayload {
        protocol::decode_payload(bytes, &self.sn).expect("harness payloads decode")
    }

    pub fn full(&mut self, t: u32) -> DecodedPayload {
        let bytes = self.full_payload(t);
        self.decode(&bytes)
    }

    pub fn stream(&mut self, t: u32) -> DecodedPayload {
        let bytes = self.stream_payload(t);
        self.decode(&bytes)
    }

    pub fn offline(&mut self) -> DecodedPayload {
        let bytes = self.offline_payload();
        self.decode(&bytes)
    }
}
