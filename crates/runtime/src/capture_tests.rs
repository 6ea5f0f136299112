//! Tests of the rolling capture: the record format, both bounds, drops when full.

use super::*;
use bytes::Bytes;

fn payload(i: usize, len: usize) -> RawPayload {
    RawPayload {
        topic: format!("/app/device/property/HJ31{i:012}"),
        payload: Bytes::from(vec![(i % 251) as u8; len]),
        received_at: SystemTime::now(),
        origin: sources::Origin::Push,
    }
}

fn read_all(dir: &Path) -> Vec<RawPayload> {
    segments(dir)
        .iter()
        .flat_map(|s| {
            let file = std::fs::File::open(&s.path).expect("open segment");
            let (good, bad) = sources::record::read_lines(std::io::BufReader::new(file));
            assert!(bad.is_empty(), "{bad:?}");
            good
        })
        .collect()
}

#[test]
fn payloads_land_as_record_lines_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let capture_dir = dir.path().join("capture");
    let stats = BridgeStats::default();
    let capture =
        Capture::start(CaptureConfig::default(), &capture_dir, stats.clone()).expect("start");
    let tap = capture.tap();
    let sent: Vec<RawPayload> = (0..100).map(|i| payload(i, 40)).collect();
    for raw in &sent {
        tap.offer(raw);
    }
    drop(tap);
    capture.finish();
    let got = read_all(&capture_dir);
    assert_eq!(got.len(), sent.len());
    for (a, b) in got.iter().zip(&sent) {
        assert_eq!(a.topic, b.topic);
        assert_eq!(a.payload, b.payload);
    }
    assert!(stats.snapshot().dropped.is_empty());
}

#[test]
fn total_size_stays_within_max_size_oldest_go_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = CaptureConfig {
        max_size: ByteSize::kib(100),
        ..CaptureConfig::default()
    };
    let capture = Capture::start(config, dir.path(), BridgeStats::default()).expect("start");
    let tap = capture.tap();
    // ~1.1 MB of lines: eleven times the bound.
    for i in 0..2000 {
        tap.offer(&payload(i, 250));
    }
    drop(tap);
    capture.finish();
    let segs = segments(dir.path());
    let total: u64 = segs.iter().map(|s| s.len).sum();
    assert!(
        total <= 100 * 1024,
        "{total} bytes in {} segments",
        segs.len()
    );
    assert!(segs.len() > 1, "rotated by size: {segs:?}");
    let kept = read_all(dir.path());
    // What is kept is the newest, without gaps.
    let last = kept.last().expect("some kept");
    assert_eq!(last.topic, payload(1999, 0).topic);
    for pair in kept.windows(2) {
        let n = |t: &str| t[t.len() - 12..].parse::<usize>().expect("number");
        assert_eq!(n(&pair[0].topic) + 1, n(&pair[1].topic));
    }
}

#[test]
fn segments_past_max_age_are_deleted_on_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = dir.path().join("capture-000000000000001.jsonl");
    let recent = dir.path().join("capture-000000000000002.jsonl");
    let other = dir.path().join("notes.txt");
    for p in [&old, &recent, &other] {
        std::fs::write(p, b"{}\n").expect("write");
    }
    let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
    File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(two_days_ago))
        .expect("age the file");
    let capture = Capture::start(CaptureConfig::default(), dir.path(), BridgeStats::default())
        .expect("start");
    capture.finish();
    assert!(!old.exists(), "older than 24 h: deleted");
    assert!(recent.exists());
    assert!(other.exists(), "not a segment: left alone");
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let stats = BridgeStats::default();
    let (tx, _rx) = std::sync::mpsc::sync_channel(2);
    let tap = CaptureTap {
        tx,
        stats: stats.clone(),
    };
    for i in 0..5 {
        tap.offer(&payload(i, 10));
    }
    assert_eq!(stats.snapshot().dropped.get("capture_queue_full"), Some(&3));
}

#[test]
fn config_reads_sizes_and_durations_in_words() {
    let c: CaptureConfig =
        toml::from_str("enabled = false\nmax_size = \"5 MiB\"\nmax_age = \"2h\"\n").expect("parse");
    assert!(!c.enabled);
    assert_eq!(c.max_size, ByteSize::mib(5));
    assert_eq!(c.max_age, Duration::from_secs(7200));
    let c: CaptureConfig = toml::from_str("max_size = 1000000\n").expect("plain bytes");
    assert_eq!(c.max_size.as_u64(), 1_000_000);
    let printed = toml::to_string(&CaptureConfig::default()).expect("print");
    assert!(printed.contains("max_size = \"20 MiB\""), "{printed}");
    assert!(printed.contains("max_age = \"1day\""), "{printed}");
    for bytes in [1_000_000, 3 << 10, 5 << 30, 0] {
        let c = CaptureConfig {
            max_size: ByteSize::b(bytes),
            ..CaptureConfig::default()
        };
        let printed = toml::to_string(&c).expect("print");
        let again: CaptureConfig = toml::from_str(&printed).expect("printed loads again");
        assert_eq!(again, c, "{printed}");
    }
    assert!(toml::from_str::<CaptureConfig>("max_size = \"lots\"\n").is_err());
}
