//! One line of the capture: a payload in the `record` format, and for a command (a frame
//! on a device's `set` topic, protocol §2) what marks it as one.

use prost::Message as _;
use serde::Serialize;
use sources::{RawPayload, RecordLine};

/// One capture line: the `record` format, plus `"kind":"command"` and the frames'
/// `"cmd"`s (`cmd_func/cmd_id`) for a payload on a `set` topic (protocol §2). `replay`
/// reads it as a record line (extra keys are ignored) and, like the pipeline, never takes
/// a command for a reading.
pub fn capture_line(raw: &RawPayload) -> String {
    let record = RecordLine::from_raw(raw);
    if !protocol::topics::is_set_topic(&raw.topic) {
        return record.to_json();
    }
    let cmd: Vec<String> = protocol::pb::Frames::decode(&raw.payload[..])
        .map(|f| {
            f.header
                .iter()
                .map(|h| format!("{}/{}", h.cmd_func.unwrap_or(0), h.cmd_id.unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    serde_json::to_string(&CommandLine {
        record,
        kind: "command",
        cmd,
    })
    .unwrap_or_default()
}

/// A captured command: the record line with what marks it.
#[derive(Serialize)]
struct CommandLine {
    #[serde(flatten)]
    record: RecordLine,
    kind: &'static str,
    cmd: Vec<String>,
}

/// True for a capture line written by [`capture_line`] for a command.
pub fn is_command_line(line: &serde_json::Value) -> bool {
    line.get("kind").and_then(|k| k.as_str()) == Some("command")
}
