//! Fuzz target: any byte string through the payload decoder must return, never panic,
//! and every state it yields must belong to the channel it claims.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = protocol::decode_payload(data, "FUZZSN") {
        for update in &decoded.updates {
            assert_eq!(update.state.channel, update.channel);
        }
        let _ = protocol::json::to_json_object(&decoded);
    }
});
