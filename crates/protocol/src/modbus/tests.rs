//! The register map end to end: a block laid out by hand as §14 describes it (the words a
//! client would capture), sign conventions against the stream, "not enabled", and the
//! round trip through both directions of the one table (proptest).

use proptest::prelude::*;

use super::*;
use crate::Value;

/// Registers 40519–40607 as a PowerOcean serves them, written out word by word (floats
/// low word first): load 612.5 W, grid −1534.2 W (exporting), solar 3210 W, battery
/// +1050 W (charging), SoC 57 %, rated 10 000 W, status "powered on", reserve 15 %,
/// LED 60 %, battery 52.7 V / 19.9 A / 22.5 °C, phases 231.4/229.8/230.6 V and
/// 2.61/1.93/1.28 A, inverter 41.3 °C, 49.98 Hz, PV 388.2/372.9/0 V and 4.55/3.87/0 A.
const LIVE_BLOCK: [u16; 89] = [
    0x2000, 0x4419, 0xC666, 0xC4BF, 0xA000, 0x4548, 0x4000, 0x4483, //
    0x0039, 0x2710, 0x0000, 0x0004, 0x0000, 0x0000, 0x0000, 0x0000, //
    0x0000, 0x000F, 0x0000, 0x0000, 0x0000, 0x0000, 0x003C, 0x0000, //
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, //
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, //
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, //
    0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0x0000, 0xCCCD, //
    0x4252, 0x3333, 0x419F, 0x0000, 0x41B4, 0x6666, 0x4367, 0xCCCD, //
    0x4365, 0x999A, 0x4366, 0x0A3D, 0x4027, 0x0A3D, 0x3FF7, 0xD70A, //
    0x3FA3, 0x3333, 0x4225, 0xEB85, 0x4247, 0x199A, 0x43C2, 0x7333, //
    0x43BA, 0x0000, 0x0000, 0x999A, 0x4091, 0xAE14, 0x4077, 0x0000, //
    0x0000,
];

/// 40001–40011: protocol 1, three-phase, product 3, serial "R371ZDH4ZGAW0028".
fn identity_block() -> Vec<u16> {
    let mut w = vec![1, 1, 3];
    w.extend(
        b"R371ZDH4ZGAW0028"
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]])),
    );
    w
}

fn live() -> Values {
    let mut v = Values::new();
    assert_eq!(v.read_block(40001, &identity_block()), 4);
    assert_eq!(v.read_block(40519, &LIVE_BLOCK), 26);
    v
}

fn stream(values: &Values) -> Vec<(&'static str, f64)> {
    stream_updates(values, "R371ZDH4ZGAW0028")
        .into_iter()
        .map(|u| (u.state.name, u.value.as_number().unwrap()))
        .collect()
}

#[test]
fn a_captured_block_decodes_to_the_values_it_was_made_of() {
    let v = live();
    for (point, want) in [
        (Point::HouseLoadPower, 612.5),
        (Point::GridPower, -1534.2),
        (Point::SolarPower, 3210.0),
        (Point::BatteryPower, 1050.0),
        (Point::BatterySoc, 57.0),
        (Point::RatedPower, 10000.0),
        (Point::Status, 4.0),
        (Point::BackupReserve, 15.0),
        (Point::LedBrightness, 60.0),
        (Point::BatteryVoltage, 52.7),
        (Point::L2Voltage, 229.8),
        (Point::L3Current, 1.28),
        (Point::InverterTemperature, 41.3),
        (Point::GridFrequency, 49.98),
        (Point::Pv2Voltage, 372.9),
        (Point::Pv1Current, 4.55),
        (Point::Pv3Current, 0.0),
    ] {
        assert_eq!(v.number(point), Some(want), "{}", point.register().name);
    }
    let id = identity(&v).unwrap();
    assert_eq!(id.serial, "R371ZDH4ZGAW0028");
    assert_eq!(id.product, Product::PowerOceanPlus);
    assert_eq!((id.category, id.protocol_version), (1, 1));
    assert_eq!(health(&v), Health::Live);
}

#[test]
fn signs_follow_the_stream_battery_turned_grid_kept() {
    // Modbus: battery +1050 W = charging, grid −1534.2 W = exporting. The stream: bpPwr
    // < 0 while charging, gridPwr < 0 while exporting.
    assert_eq!(
        stream(&live()),
        [
            ("loadPwr", 612.5),
            ("gridPwr", -1534.2),
            ("pvPwr", 3210.0),
            ("bpPwr", -1050.0),
            ("bpSoc", 57.0),
        ]
    );
    // A discharging battery and an importing grid.
    let mut v = live();
    v.set_number(Point::BatteryPower, -420.0);
    v.set_number(Point::GridPower, 310.0);
    let s = stream(&v);
    assert!(
        s.contains(&("bpPwr", 420.0)) && s.contains(&("gridPwr", 310.0)),
        "{s:?}"
    );
    // An idle battery is 0 W, not −0 W.
    v.set_number(Point::BatteryPower, 0.0);
    let bp = stream(&v)
        .into_iter()
        .find(|(n, _)| *n == "bpPwr")
        .unwrap()
        .1;
    assert!(bp == 0.0 && bp.is_sign_positive());
    // Every twin names a catalog state of the energy stream, in the register's unit.
    for t in STREAM_TWINS {
        let def = t
            .def()
            .unwrap_or_else(|| panic!("{} not in the catalog", t.state));
        assert_eq!(def.unit, t.point.register().unit, "{}", t.state);
        assert_eq!(def.mult, 1.0, "{}", t.state);
    }
}

#[test]
fn extras_are_what_the_stream_lacks_and_status_bits_are_spelled_out() {
    let mut v = live();
    v.read_block(42081, &[2, 57, 58, 0]);
    let x = extras(&v);
    let get = |name: &str| x.iter().find(|e| e.name == name).map(|e| e.value);
    assert_eq!(get("islanded"), Some(0.0));
    assert_eq!(get("fault"), Some(0.0));
    assert_eq!(get("powered_on"), Some(1.0));
    assert_eq!(get("l1_voltage"), Some(231.4));
    assert_eq!(get("rated_power"), Some(10000.0));
    assert_eq!(get("pack2_soc"), Some(58.0));
    // Only the packs online; nothing the stream already has; no identity.
    assert_eq!(get("pack3_soc"), None);
    for name in [
        "grid_power",
        "battery_power",
        "battery_soc",
        "serial",
        "status",
    ] {
        assert_eq!(get(name), None, "{name}");
    }
    v.set_number(
        Point::Status,
        f64::from(map::status::ISLANDED | map::status::POWERED_ON),
    );
    assert_eq!(
        extras(&v)
            .iter()
            .find(|e| e.name == "islanded")
            .map(|e| e.value),
        Some(1.0)
    );
}

#[test]
fn modbus_not_enabled_reads_zero_everywhere_and_is_said_once_not_published() {
    // Switched off: the serial still reads, every value is 0.
    let mut v = Values::new();
    v.read_block(40001, &identity_block());
    v.read_block(40519, &[0; 89]);
    v.read_block(42161, &[0; 100]);
    assert_eq!(identity(&v).unwrap().serial, "R371ZDH4ZGAW0028");
    assert_eq!(health(&v), Health::AllZero);
    assert!(stream_updates(&v, "x").is_empty() && extras(&v).is_empty());

    let mut watch = EnableWatch::new(3);
    assert_eq!(watch.observe(Health::AllZero), Verdict::Skip);
    assert_eq!(watch.observe(Health::AllZero), Verdict::Skip);
    assert_eq!(watch.observe(Health::AllZero), Verdict::NotEnabled);
    assert_eq!(watch.observe(Health::AllZero), Verdict::StillNotEnabled);
    assert_eq!(watch.observe(Health::Incomplete), Verdict::StillNotEnabled);
    assert!(watch.not_enabled());
    // The installer switches it on.
    assert_eq!(watch.observe(Health::Live), Verdict::Enabled);
    assert_eq!(watch.observe(Health::Live), Verdict::Publish);
}

#[test]
fn a_zero_that_comes_with_a_zero_rated_power_is_never_a_reading() {
    // A spike caught half-way: rated power 0, the rest still live.
    let mut v = live();
    v.set_number(Point::RatedPower, 0.0);
    v.set_number(Point::SolarPower, 0.0);
    assert_eq!(health(&v), Health::ZeroRated);
    assert!(stream_updates(&v, "x").is_empty() && extras(&v).is_empty());
    // A whole-poll spike looks like "not enabled" for one poll: skipped, not said.
    let mut watch = EnableWatch::new(3);
    assert_eq!(watch.observe(Health::Live), Verdict::Publish);
    assert_eq!(watch.observe(Health::AllZero), Verdict::Skip);
    assert_eq!(watch.observe(Health::ZeroRated), Verdict::Skip);
    assert_eq!(watch.observe(Health::Live), Verdict::Publish);
    // Nothing read of the live block: nothing to trust.
    assert_eq!(health(&Values::new()), Health::Incomplete);
}

/// A value `point` can carry exactly.
fn value_for(point: Point) -> BoxedStrategy<RegValue> {
    match point.register().kind {
        Kind::U16 => any::<u16>()
            .prop_map(|v| RegValue::Number(v.into()))
            .boxed(),
        Kind::U32 => any::<u32>()
            .prop_map(|v| RegValue::Number(v.into()))
            .boxed(),
        Kind::I32 => any::<i32>()
            .prop_map(|v| RegValue::Number(v.into()))
            .boxed(),
        Kind::F32 => any::<f32>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| RegValue::Number(crate::value::shortest_f64(v)))
            .boxed(),
        Kind::Ascii { words } => {
            proptest::string::string_regex(&format!("[A-Z0-9]{{0,{}}}", 2 * words))
                .expect("regex")
                .prop_map(RegValue::Text)
                .boxed()
        }
    }
}

fn readable_values() -> impl Strategy<Value = Values> {
    let points: Vec<Point> = Point::ALL
        .into_iter()
        .filter(|p| p.register().access.readable())
        .collect();
    let strategies: Vec<_> = points.iter().map(|p| value_for(*p)).collect();
    strategies.prop_map(move |vals| {
        let mut v = Values::new();
        for (p, val) in points.iter().zip(vals) {
            v.set(*p, val);
        }
        v
    })
}

/// A live poll: rated power above 0, three packs, only the three known status bits.
fn live_values() -> impl Strategy<Value = Values> {
    (readable_values(), 1u16..=u16::MAX, 0u32..8).prop_map(|(mut v, rated, bits)| {
        v.set_number(Point::RatedPower, f64::from(rated));
        v.set_number(Point::PacksOnline, 3.0);
        v.set_number(Point::Status, f64::from(bits));
        v
    })
}

proptest! {
    #[test]
    fn what_a_poll_gives_the_catalog_and_the_extras_goes_back_into_the_same_registers(
        values in live_values(),
    ) {
        // A re-serving server fills its registers from the states and extras a bridge
        // took from a poll: it serves what the device served.
        let mut back = Values::new();
        for u in stream_updates(&values, "SN") {
            prop_assert!(set_stream_state(&mut back, u.state.key, u.value.as_number().unwrap()));
        }
        for e in extras(&values) {
            prop_assert!(set_extra(&mut back, e.name, e.value), "{}", e.name);
        }
        for p in Point::ALL.into_iter().filter(|p| p.register().access.readable()) {
            if matches!(p, Point::Serial | Point::ProtocolVersion | Point::Category | Point::Product) {
                continue;
            }
            let (a, b) = (values.number(p).unwrap(), back.number(p));
            // Rounding to 6 places is the one loss (value rule 3).
            prop_assert!(b.is_some_and(|b| (a - b).abs() <= 1e-6 * a.abs().max(1.0)),
                "{}: {a} vs {b:?}", p.register().name);
        }
        prop_assert!(!set_stream_state(&mut back, "EMSHeartbeatReport.bpSoc", 1.0));
        prop_assert!(!set_extra(&mut back, "grid_power", 1.0));
    }

    #[test]
    fn values_survive_the_image_and_the_read_plan(values in readable_values()) {
        let image = Image::new(&values);
        let mut back = Values::new();
        for b in read_plan(MAX_READ_WORDS) {
            back.read_block(b.start, &image.read(b.start, b.count));
        }
        prop_assert_eq!(back, values);
    }

    #[test]
    fn writes_survive_their_encoding(
        i in 0usize..7,
        v in any::<i32>(),
    ) {
        let point = control::writable().nth(i).unwrap().point;
        let v = match point.register().kind {
            Kind::U16 => f64::from(v as u16),
            _ => f64::from(v),
        };
        let (addr, words) = encode_write(point, v).unwrap();
        prop_assert_eq!(decode_write(addr, &words), Ok(vec![(point, v)]));
    }

    #[test]
    fn any_block_and_any_write_is_safe_input(
        start in any::<u16>(),
        words in proptest::collection::vec(any::<u16>(), 0..130),
    ) {
        let mut v = Values::new();
        v.read_block(start, &words);
        let _ = health(&v);
        let _ = stream_updates(&v, "x");
        let _ = extras(&v);
        let _ = identity(&v);
        let _ = decode_write(start, &words);
        let _ = parse_command(start);
        for (_, value) in v.iter() {
            if let RegValue::Number(n) = value {
                prop_assert!(n.is_finite());
            }
        }
    }
}

#[test]
fn stream_updates_carry_catalog_states() {
    let u = stream_updates(&live(), "SN1");
    assert_eq!(u.len(), 5);
    assert!(
        u.iter()
            .all(|u| u.channel == catalog::Channel::EnergyStreamItem)
    );
    assert!(u.iter().all(|u| u.device_sn == "SN1"));
    // gridPwr while exporting is below the catalog minimum of 0: flagged, as the
    // stream's own decoder flags it.
    let grid = u.iter().find(|u| u.state.name == "gridPwr").unwrap();
    assert!(grid.out_of_range);
    assert_eq!(grid.value, Value::Number(-1534.2));
}
