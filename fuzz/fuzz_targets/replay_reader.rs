//! Fuzz target: any bytes as a record file must be split into good payloads and
//! line-numbered bad lines, never panic; each good payload then goes through decoding.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (good, bad) = sources::record::read_lines(data);
    for b in &bad {
        assert!(b.line >= 1);
    }
    for raw in &good {
        let _ = sources::decode_raw(&raw.topic, &raw.payload);
    }
});
