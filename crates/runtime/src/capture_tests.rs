//! Tests of the rolling capture: the record format, both bounds, drops when full.

use super::*;
use bytes::Bytes;
use bytesize::ByteSize;

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

#[test]
fn a_failing_disk_drops_and_counts_then_resumes_without_file_churn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let capture_dir = dir.path().join("capture");
    let stats = BridgeStats::default();
    let retry = Backoff::new(Duration::from_millis(50), Duration::from_millis(200));
    let capture =
        Capture::start_with_retry(CaptureConfig::default(), &capture_dir, stats.clone(), retry)
            .expect("start");
    let tap = capture.tap();
    let failed = || {
        stats
            .snapshot()
            .dropped
            .get(WRITE_FAILED)
            .copied()
            .unwrap_or(0)
    };
    // The directory goes away and a file takes its place: opening a segment fails
    // (ENOTDIR / EEXIST), for root too.
    std::fs::remove_dir_all(&capture_dir).expect("remove");
    std::fs::write(&capture_dir, b"in the way").expect("a file in the way");
    // Offer payloads one at a time, so each meets the writer on its own (as a live
    // stream does): the first fails, later ones are counted until the next attempt.
    let mut sent = 0;
    testkit::wait_until_blocking("drops counted", Duration::from_secs(30), || {
        tap.offer(&payload(sent, 40));
        sent += 1;
        std::thread::yield_now();
        failed() >= 20
    });
    assert_eq!(
        std::fs::read(&capture_dir).expect("still the file"),
        b"in the way"
    );
    // Space returns: the directory is back, the next attempt writes again.
    std::fs::remove_file(&capture_dir).expect("remove the file");
    let before = sent;
    testkit::wait_until_blocking("writing again", Duration::from_secs(30), || {
        tap.offer(&payload(sent, 40));
        sent += 1;
        !read_all(&capture_dir).is_empty()
    });
    drop(tap);
    capture.finish();
    let kept = read_all(&capture_dir);
    assert!(
        kept.iter().all(|p| {
            let n = p.topic[p.topic.len() - 12..].parse::<usize>().expect("n");
            n >= before
        }),
        "only payloads after the recovery are in the new directory"
    );
    assert!(
        segments(&capture_dir).len() <= 2,
        "no new file per payload: {:?}",
        segments(&capture_dir)
    );
    let dropped = failed();
    assert!(
        dropped >= 20 && dropped < sent as u64,
        "{dropped} of {sent}"
    );
}

#[test]
fn commands_on_a_set_topic_are_marked_as_such() {
    let frame = protocol::encode::energy_stream_switch(7);
    let raw = RawPayload {
        topic: "/app/1700000000000000001/HC31ZDH5ZF220123/thing/property/set".into(),
        payload: Bytes::from(frame),
        received_at: SystemTime::now(),
        origin: sources::Origin::Push,
    };
    let line: serde_json::Value = serde_json::from_str(&capture_line(&raw)).expect("json");
    assert!(is_command_line(&line), "{line}");
    assert_eq!(line["cmd"], serde_json::json!(["96/97"]));
    // Still a record line: replay reads it back byte for byte.
    let (good, bad) = sources::record::read_lines(capture_line(&raw).as_bytes());
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(good[0].payload, raw.payload);
    // A report is not a command.
    let report = payload(1, 10);
    let line: serde_json::Value = serde_json::from_str(&capture_line(&report)).expect("json");
    assert!(!is_command_line(&line), "{line}");
    assert!(line.get("cmd").is_none());
}

#[cfg(unix)]
#[test]
fn capture_directory_and_segments_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let capture_dir = dir.path().join("capture");
    std::fs::create_dir(&capture_dir).expect("dir");
    std::fs::set_permissions(&capture_dir, std::fs::Permissions::from_mode(0o755)).expect("755");
    let capture = Capture::start(
        CaptureConfig::default(),
        &capture_dir,
        BridgeStats::default(),
    )
    .expect("start");
    let tap = capture.tap();
    tap.offer(&payload(0, 10));
    drop(tap);
    capture.finish();
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&capture_dir), 0o700);
    let segs = segments(&capture_dir);
    assert_eq!(segs.len(), 1);
    assert_eq!(mode(&segs[0].path), 0o600);
}
