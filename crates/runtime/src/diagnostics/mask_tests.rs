//! Tests of the masker: values, e-mails, topics, JSON, and frames with XOR-ed pdata.

use super::*;

const SN: &str = "HC31ZDH5ZF220123";

#[test]
fn values_keep_their_length_and_ends() {
    assert_eq!(mask_value(SN.as_bytes()), b"HC31********0123");
    assert_eq!(mask_value(b"12345678"), b"12****78");
    assert_eq!(mask_value(b"abcd"), b"a**d");
    assert_eq!(
        mask_email(b"demo@oceanbridge.local"),
        b"d***@***********.local"
    );
    let m = Masker::new();
    assert_eq!(
        m.text("mail me: someone.else@mail.example.org, thanks"),
        "mail me: s***********@************.org, thanks"
    );
}

#[test]
fn topics_and_json_teach_the_secrets() {
    let mut m = Masker::new();
    m.learn_topic("/app/1700000000000000001/HC31ZDH5ZF220123/thing/property/get_reply");
    m.learn_topic("/open/open-4cf5a2b1/HJ31ZDH5ZF229999/quota");
    m.learn_json(&serde_json::json!({
        "params": {"96_108.bpInfo[0].bpSn": "HJ32AAAA00000001", "96_1.bpSoc": 50,
                   "nested": [{"userId": "u-778899"}]}
    }));
    let text = m.text(
        "1700000000000000001 HC31ZDH5ZF220123 open-4cf5a2b1 HJ31ZDH5ZF229999 HJ32AAAA00000001 u-778899 bpSoc",
    );
    assert_eq!(
        text,
        "1700***********0001 HC31********0123 open*****a2b1 HJ31********9999 HJ32********0001 u-****99 bpSoc"
    );
    assert_eq!(m.len(), 6);
}

#[test]
fn frames_are_masked_inside_xored_pdata_and_stay_decodable() {
    // A BP report with a pack serial, XOR-ed with seq's low byte (protocol §3).
    let pack_sn = "HJ32ZDH5ZF220123";
    let mut pdata = Vec::new();
    // BPChangeReport { repeated bp_info = 1 { bp_sn = 25 } } built by hand: field 25 string.
    let mut info = vec![0xca, 0x01, pack_sn.len() as u8];
    info.extend_from_slice(pack_sn.as_bytes());
    pdata.push(0x0a);
    pdata.push(info.len() as u8);
    pdata.extend_from_slice(&info);
    let seq = 0x1234_5677;
    let key = (seq & 0xff) as u8;
    let xored: Vec<u8> = pdata.iter().map(|b| b ^ key).collect();
    let header = pb::Header {
        pdata: Some(xored),
        src: Some(96),
        enc_type: Some(1),
        seq: Some(seq),
        cmd_func: Some(96),
        cmd_id: Some(108),
        device_sn: Some(SN.into()),
        ..Default::default()
    };
    let payload = pb::Frames {
        header: vec![header],
    }
    .encode_to_vec();
    let topic = format!("/app/device/property/{SN}");

    let mut m = Masker::new();
    m.learn_topic(&topic);
    m.learn_payload(&topic, &payload);
    let masked = m.payload(&payload);
    assert_eq!(masked.len(), payload.len());
    assert!(find(&masked, SN.as_bytes()).is_none());
    let frames = pb::Frames::decode(masked.as_slice()).expect("still protobuf");
    let h = &frames.header[0];
    assert_eq!(h.device_sn.as_deref(), Some("HC31********0123"));
    let plain: Vec<u8> = h
        .pdata
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|b| b ^ key)
        .collect();
    assert!(
        find(&plain, pack_sn.as_bytes()).is_none(),
        "pack serial masked"
    );
    assert!(find(&plain, b"HJ32********0123").is_some(), "{plain:?}");
    // Decodes as before, with the masked serials.
    let decoded = protocol::decode_payload(&masked, "").expect("decodes");
    assert!(
        decoded.updates.iter().any(|u| u.state.name == "bpSn"
            && u.value == protocol::Value::Text("HJ32********0123".into())),
        "{:?}",
        decoded.updates
    );
}

#[test]
fn anything_is_safe_input() {
    let m = Masker::new();
    for bytes in [&b""[..], b"\xff\xff\xff", b"\x0a\x05\x0a\x10", b"\x0b\x0c"] {
        assert_eq!(m.payload(bytes).len(), bytes.len());
    }
    let mut m = Masker::new();
    m.add("abc");
    assert!(m.is_empty(), "too short to be a secret");
}

/// `n` distinct Fit-like serials.
fn serials(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("HC31ZDH5{i:08}")).collect()
}

#[test]
fn masking_48000_serials_is_linear() {
    // What a flood of fake devices leaves in a capture (48 000 serials): the old masker
    // took minutes (one search per serial over every file). One pass now; the bound is
    // a safety net for a loaded debug build, the measured figure is in docs/diagnostics.md.
    let all = serials(48_000);
    let started = std::time::Instant::now();
    let mut m = Masker::new();
    for sn in &all {
        m.add(sn);
    }
    assert_eq!(m.len(), all.len());
    let text = all.join(" ");
    let masked = m.text(&text);
    let elapsed = started.elapsed();
    assert_eq!(masked.len(), text.len());
    for (sn, out) in all.iter().zip(masked.split(' ')) {
        assert_ne!(out, sn);
        assert_eq!(out.as_bytes(), mask_value(sn.as_bytes()), "{sn}");
    }
    assert!(
        elapsed < std::time::Duration::from_secs(60),
        "48 000 serials took {elapsed:?}"
    );
}

#[test]
fn overlapping_and_nested_secrets_are_all_masked() {
    let mut m = Masker::new();
    m.add("HC31ZDH5ZF220123");
    m.add("ZF2201"); // inside the serial
    m.add("0123ABCD"); // overlaps its end
    let out = m.text("HC31ZDH5ZF220123ABCD and ZF2201 alone");
    assert!(!out.contains("ZF2201"), "{out}");
    assert!(!out.contains("0123ABCD"), "{out}");
    assert!(out.starts_with("HC31"), "{out}");
    assert!(out.ends_with(" and Z****1 alone"), "{out}");
}

#[test]
fn home_folders_in_paths_read_tilde() {
    assert_eq!(
        mask_paths("data_dir = \"/home/alice/.local/state/oceanbridge\""),
        "data_dir = \"~/.local/state/oceanbridge\""
    );
    assert_eq!(
        mask_paths("cannot read /root/ca.pem; /Users/bob/x and /home/carol"),
        "cannot read ~/ca.pem; ~/x and ~"
    );
    // Not a home folder, or not a path of its own.
    for same in [
        "/var/lib/oceanbridge/history.db",
        "/homeassistant/config",
        "/rooted/x",
        "https://example.org/home/page",
    ] {
        assert_eq!(mask_paths(same), same);
    }
}
