//! Model → catalog states → genuine report bytes: the four reports a Fit sends (EMS
//! heartbeat, energy stream, battery packs, cloud BMS info).
//!
//! Every catalog state of a report is filled (what goes on the wire — zeros left out, bad
//! samples — is the device's business, `field::wire` and `field::glitch`, through the
//! edit [`encode`] takes), each number inside its catalog range, except
//! the two signed flows of the energy stream: `gridPwr` (< 0 while exporting) and `bpPwr`
//! (< 0 while charging), which carry the sign as the real device does so that
//! `gridPwr + pvPwr + bpPwr = loadPwr + heatingPower + bpHeatingPower` holds. Per-pack and
//! BMS powers and currents are magnitudes; the direction is in `bmsChgDsgSta`.
//!
//! # Layout
//! - this file: the four report builders and [`encode`].
//! - `quota`: the same states in the open-API JSON quota form.
//! - `tests`: every catalog state, in range, balanced, decodable.

use catalog::{Channel, StateDef};
use protocol::Value;
use protocol::dispatch::MappedReport;

use crate::physics::{FitModel, PACK_MAX_CHARGE_W, PACK_MAX_DISCHARGE_W, Pack, SOC_LOWER_LIMIT};

mod quota;

pub(crate) use quota::quota_json;

/// States of one channel with their values.
pub(crate) type States = Vec<(&'static StateDef, Value)>;

/// What a report needs besides the model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) sn: &'a str,
    /// Simulated time, epoch seconds.
    pub(crate) epoch: u64,
    pub(crate) utc_offset_minutes: i32,
    pub(crate) pv_peak_w: f64,
}

/// Collects the states of one channel.
struct Fill {
    channel: Channel,
    out: States,
}

impl Fill {
    fn new(channel: Channel) -> Fill {
        Fill {
            channel,
            out: Vec::new(),
        }
    }

    fn def(&self, name: &str) -> Option<&'static StateDef> {
        catalog::find(self.channel, name)
    }

    /// A number, kept inside the catalog range.
    fn num(&mut self, name: &str, v: f64) {
        if let Some(s) = self.def(name) {
            let lo = s.min.unwrap_or(f64::MIN);
            let hi = s.max.unwrap_or(f64::MAX);
            self.out.push((s, Value::Number(v.clamp(lo, hi))));
        }
    }

    /// A number that carries a direction (may go below the catalog minimum of 0).
    fn signed(&mut self, name: &str, v: f64) {
        if let Some(s) = self.def(name) {
            self.out.push((s, Value::Number(v)));
        }
    }

    fn diag(&mut self, name: &str, code: u32) {
        if let Some(s) = self.def(name) {
            let text = match s.enum_text(u64::from(code)) {
                Some(t) => t.to_string(),
                None => format!("{code} not part of array"),
            };
            self.out.push((s, Value::Text(text.into())));
        }
    }

    fn text(&mut self, name: &str, text: impl Into<String>) {
        if let Some(s) = self.def(name) {
            self.out.push((s, Value::Text(text.into().into())));
        }
    }

    fn array(&mut self, name: &str, items: Vec<f64>) {
        if let Some(s) = self.def(name) {
            self.out.push((s, Value::Array(items)));
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// EcoFlow's timezone field: hours and minutes as `±HHMM` (UTC+1 → 100).
fn timezone(minutes: i32) -> f64 {
    f64::from(minutes / 60 * 100 + minutes % 60)
}

/// EnergyStreamItem (96/33): the live power flows.
pub(crate) fn energy_stream(m: &FitModel, cx: Context<'_>) -> States {
    let f = m.flows();
    let mut s = Fill::new(Channel::EnergyStreamItem);
    s.signed("gridPwr", round1(f.grid_w));
    s.num("dcdcPwr", round1((f.pv_w + f.battery_w).abs()));
    s.signed("bpPwr", round1(f.battery_w));
    s.num("pvPwr", round1(f.pv_w));
    s.text("timestamp", cx.epoch.to_string());
    s.num("timezone", timezone(cx.utc_offset_minutes));
    s.num("bpSoc", m.soc().round());
    s.num("loadPwr", round1(f.load_w));
    s.num("bpHeatingPower", f.bp_heating_w);
    s.num("heatingPower", f.heating_w);
    s.out
}

/// EMSHeartbeatReport (96/1): meter, day energy, settings.
pub(crate) fn heartbeat(m: &FitModel, cx: Context<'_>) -> States {
    let f = m.flows();
    let d = m.day();
    let packs = m.packs();
    let remaining: f64 = packs.iter().map(Pack::remaining_wh).sum();
    let mut s = Fill::new(Channel::EmsHeartbeatReport);
    for name in [
        "sysWorkSta",
        "bpChgDsgSta",
        "emsErrCode",
        "sysErrCode",
        "epoSwitchState",
        "currentNetif",
        "meterType",
        "emsSystemState",
        "appCtrlState",
        "pvInvWiringMode",
        "workingMode",
        "emsErrorCodeMask",
        "bpErrorCodeMask",
        "pv1ErrorCodeMask",
        "pv2ErrorCodeMask",
        "pvaErrorCodeMask",
        "pvWiringType",
        "invWiringType",
        "isPvToInvDirectly",
        "autoDetectStartPowerEn",
    ] {
        s.diag(name, 0);
    }
    s.num("bpRemainWatth", round1(remaining));
    s.num("bpSoc", m.soc().round());
    let dsg_hours = if f.battery_w > 10.0 {
        (remaining / f.battery_w).round()
    } else {
        0.0
    };
    s.num("bpDsgTime", dsg_hours);
    s.num("meterTotalPower", round1(f.grid_w.abs()));
    for (i, phase) in ["A", "B", "C"].iter().enumerate() {
        s.num(&format!("meter{phase}Voltage"), round1(f.phase_v[i]));
        s.num(
            &format!("meter{phase}Current"),
            (f.phase_a[i] * 100.0).round() / 100.0,
        );
    }
    for i in 0..3 {
        let share = if i < packs.len() {
            100.0 / packs.len() as f64
        } else {
            0.0
        };
        s.num(&format!("bp{}SocCoefficient", i + 1), share.round());
    }
    s.num("bpBusVoltCoefficient", 100.0);
    s.num("pvInDayEnergy", d.pv_wh.round());
    s.num("bpInDayEnergy", d.bp_in_wh.round());
    s.num("bpOutDayEnergy", d.bp_out_wh.round());
    s.num("gridInDayEnergy", d.grid_in_wh.round());
    s.num("gridOutDayEnergy", d.grid_out_wh.round());
    s.num("loadDayEnergy", d.load_wh.round());
    s.num("batterySocUpperLimit", 100.0);
    s.num("batterySocLowerLimit", SOC_LOWER_LIMIT);
    s.num("mpptVoltageMaximum", 950.0);
    s.num("mpptVoltageMinimum", 150.0);
    s.num("mpptRatePower", cx.pv_peak_w);
    s.num("mpptWithstandVoltage", 1000.0);
    s.num("bpSocBaseCoefficient", 100.0);
    s.num("bpBusVoltageBaseCoefficient", 51.2);
    s.num("sysRunMeterTakePower", round1(f.grid_w.max(0.0)));
    s.num("sysRunMeterFeedPower", round1((-f.grid_w).max(0.0)));
    s.num("gridFeedPowerMinimum", 0.0);
    s.num("gridFeedRate", 100.0);
    s.num("manualSetStartChargePower", 500.0);
    s.num("startDischargePower", 100.0);
    s.num("underVoltageProtectPoint", 184.0);
    s.text("meterAddress", "1");
    s.text("reportCycleTime", "30");
    s.text("inverterBand", "2");
    s.text("bpDichargeAbilityAdjustValueLv1", "0.9");
    s.text("bpDichargeAbilityAdjustValueLv2", "0.8");
    s.text("bpRunDelay", "60");
    s.text("bpStopDelay", "300");
    s.text("bpSaveSocStopDelay", "600");
    s.text("disOrChargeAbilityStepValue", "50");
    s.array("meterRatio", vec![1.0, 1.0, 1.0]);
    s.array(
        "meterPhasePower",
        f.phase_w.iter().map(|w| round1(*w)).collect(),
    );
    s.array(
        "meterPowerFactor",
        f.phase_pf
            .iter()
            .map(|p| (p * 100.0).round() / 100.0)
            .collect(),
    );
    s.out
}

/// Serial number of pack `i` of device `sn`: a Fit's packs report serials beginning
/// `HJ3A` (its wire sample, foxthefox/ioBroker.ecoflow-mqtt `test/data2/poweroceanfit.json`),
/// 16 characters like the system's own.
pub(crate) fn pack_serial(sn: &str, i: usize) -> String {
    let tail: String = sn
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("HJ3AZP{:02}{tail}", i + 1)
}

/// Terminal voltage of a 16-cell LFP pack at `soc` percent.
pub(crate) fn pack_volts(soc: f64) -> f64 {
    49.0 + 6.5 * soc / 100.0
}

/// DC bus voltage between the packs and the inverter.
const BUS_VOLTS: f64 = 800.0;

/// BPChangeReport (96/108): one entry per pack.
pub(crate) fn battery_packs(m: &FitModel, cx: Context<'_>) -> Vec<States> {
    m.packs()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let channel = Channel::battery_pack(i).unwrap_or(Channel::BpInfo2);
            let mut s = Fill::new(channel);
            let volts = pack_volts(p.soc);
            let amps = p.power_w.abs() / volts;
            s.num("bpPwr", round1(p.power_w.abs()));
            s.num("bpSoc", round1(p.soc));
            s.num("bpVol", round1(volts));
            s.num("bpAmp", (amps * 100.0).round() / 100.0);
            s.num("bpRemainWatth", round1(p.remaining_wh()));
            s.num("bpBusVol", BUS_VOLTS);
            s.num(
                "bpBusAmp",
                (p.power_w.abs() / BUS_VOLTS * 100.0).round() / 100.0,
            );
            s.num("bpDownLimitSoc", SOC_LOWER_LIMIT);
            s.num("bpUpLimitSoc", 100.0);
            s.num("bpBusVolFilter", BUS_VOLTS);
            s.num("bpModuleChgMaxPwr", p.charge_limit_w().round());
            s.num("bpModuleDsgMaxPwr", p.discharge_limit_w().round());
            for name in [
                "bpRunSta",
                "bpModSta",
                "bpChgDsgStat",
                "errCode",
                "bpSpinSwitch",
                "bpAcRechargeFlag",
                "bpActiveCalReqStat",
                "bpActiveCalRunStat",
                "bpErrCode",
                "bpHeatFault",
            ] {
                s.diag(name, 0);
            }
            s.text("bpTimestamp", cx.epoch.to_string());
            s.text("bpIna228A", format!("{:.2}", amps));
            s.text("bpSn", pack_serial(cx.sn, i));
            s.out
        })
        .collect()
}

/// CloudBmsInfoReport (96/111) for pack `index` (the device reports its packs in turn).
pub(crate) fn cloud_bms(m: &FitModel, cx: Context<'_>, index: usize) -> States {
    let packs = m.packs();
    let i = index % packs.len().max(1);
    let Some(p) = packs.get(i) else {
        return Vec::new();
    };
    let mut s = Fill::new(Channel::CloudBmsInfoReport);
    let volts = pack_volts(p.soc);
    let cell = volts / 16.0;
    let t = p.temp_c;
    s.num("bpPwr", round1(p.power_w.abs()));
    s.num("bpSoc", p.soc.round());
    s.num("bpSoh", p.soh.round());
    s.num(
        "bpSop",
        (p.discharge_limit_w() / PACK_MAX_DISCHARGE_W * 100.0).round(),
    );
    s.num("bpCellMaxVol", ((cell + 0.008) * 1000.0).round() / 1000.0);
    s.num("bpCellMinVol", ((cell - 0.006) * 1000.0).round() / 1000.0);
    s.num("bpVol", round1(volts));
    s.num("bpAmp", (p.power_w.abs() / volts * 100.0).round() / 100.0);
    s.num("bpBusVol", BUS_VOLTS);
    s.num(
        "bpBusAmp",
        (p.power_w.abs() / BUS_VOLTS * 100.0).round() / 100.0,
    );
    s.num("bpCycles", p.cycles.floor());
    s.num("bpHvMosTemp", round1(t + 4.0));
    s.num("bpLvMosTemp", round1(t + 3.0));
    s.num("bpPtcTemp", round1(t));
    s.num("bpHtsTemp", round1(t + 1.0));
    s.num("bpBusNegTemp", round1(t + 2.0));
    s.num("bpBusPosTemp", round1(t + 2.5));
    s.num("bpEnvTemp", round1(t - 2.0));
    // Lifetime throughput in Ah at the nominal 51.2 V (the wire carries mAh; Mult 0.001).
    s.num("bpAccuChgCap", (p.charged_wh / 51.2).round());
    s.num("bpAccuDsgCap", (p.discharged_wh / 51.2).round());
    s.num("bpDesignCap", 100_000.0);
    s.num("bpFullCap", (100_000.0 * p.soh / 100.0).round());
    s.num("bpMaxCellTemp", round1(t + 0.8));
    s.num("bpMinCellTemp", round1(t - 0.6));
    s.num("bpMaxMosTemp", round1(t + 4.0));
    s.num("bpMinMosTemp", round1(t + 3.0));
    s.num("bpRealSoc", round1(p.soc));
    s.num("bpRealSoh", round1(p.soh));
    s.num("bpDownLimitSoc", SOC_LOWER_LIMIT);
    s.num("bpUpLimitSoc", 100.0);
    s.num(
        "bpChgSop",
        (p.charge_limit_w() / PACK_MAX_CHARGE_W * 100.0).round(),
    );
    s.num(
        "bpDsgSop",
        (p.discharge_limit_w() / PACK_MAX_DISCHARGE_W * 100.0).round(),
    );
    s.num("bpRemainWatth", round1(p.remaining_wh()));
    s.num("bpTargetSoc", 100.0);
    s.num("bpDiffSoc", 0.4);
    s.num("bpMaxSoc", round1(p.soc + 0.2));
    s.num("bpMinSoc", round1(p.soc - 0.2));
    s.num("bpLimitSoc", 100.0);
    s.num("bpCalendarSoh", round1(p.soh - 0.3));
    s.num("bpCycleSoh", round1(p.soh));
    s.array(
        "bpTemp",
        vec![round1(t), round1(t + 0.4), round1(t - 0.3), round1(t + 0.8)],
    );
    s.array(
        "bpCellVol",
        (0..16)
            .map(|c| ((cell + 0.001 * f64::from(c % 5) - 0.002) * 1000.0).round() / 1000.0)
            .collect(),
    );
    let chg_dsg = if p.power_w > 1.0 {
        1
    } else if p.power_w < -1.0 {
        2
    } else {
        0
    };
    for (name, code) in [
        ("bpRunSta", 1),
        ("bpErrCode", 0),
        ("bpDsrc", 0),
        ("bpBalanceState", 0),
        ("bpBmsFault", 0),
        ("bpGlobalProtect", 0),
        ("bpActiveCalReqStat", 0),
        ("bpActiveCalRunStat", 0),
        ("moduleProgramSta", 0),
        ("bmsRunSta", 1),
        ("bmsChgDsgSta", chg_dsg),
        ("dabModSta", 0),
        ("bpAcRechargeFlag", 0),
        ("bpPtcHeatFlag", 0),
        ("bpPtcExitEvent", 1),
    ] {
        s.diag(name, code);
    }
    s.text("bpSn", pack_serial(cx.sn, i));
    s.text("bpEcloundSoc", format!("{}", p.soc.round()));
    s.text("bpHeartbeatVer", "3");
    s.text("bpTimestamp", cx.epoch.to_string());
    s.text("moduleProductInfo", "86");
    s.text("moduleAplSwVer", "16908544");
    s.text("moduleLoaderSwVer", "16842752");
    s.out
}

/// Edits one channel's states on their way to the wire (what the device leaves out,
/// injected bad samples: `field::wire`, `field::glitch`).
pub(crate) type WireEdit<'a> = &'a mut dyn FnMut(Channel, &mut States);

/// The report bytes (`pdata`) of `report`, each channel's states passed through `edit`.
pub(crate) fn encode(
    report: MappedReport,
    m: &FitModel,
    cx: Context<'_>,
    bms_index: usize,
    edit: WireEdit<'_>,
) -> Result<Vec<u8>, protocol::EncodeError> {
    let (channel, mut states) = match report {
        MappedReport::EnergyStream => (Channel::EnergyStreamItem, energy_stream(m, cx)),
        MappedReport::EmsHeartbeat => (Channel::EmsHeartbeatReport, heartbeat(m, cx)),
        MappedReport::CloudBmsInfo => (Channel::CloudBmsInfoReport, cloud_bms(m, cx, bms_index)),
        MappedReport::BatteryPacks => {
            let mut packs = battery_packs(m, cx);
            for (i, pack) in packs.iter_mut().enumerate() {
                edit(Channel::battery_pack(i).unwrap_or(Channel::BpInfo2), pack);
            }
            return protocol::encode_battery_packs(&packs);
        }
    };
    edit(channel, &mut states);
    protocol::encode_report(channel, &states)
}

#[cfg(test)]
mod tests;
