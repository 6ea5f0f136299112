//! The record file: one JSON object per line, `{"topic", "time", "hex"}` (time = Unix
//! seconds with fractions), plus `"origin": "poll"` for a quota poll's answer (a push has
//! no `origin`, so older files read as they always did). Writing for `record`, reading
//! (with line-numbered, skippable errors) for `replay`.

use std::io::BufRead;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::payload::{Origin, RawPayload};

/// One line of a record file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordLine {
    pub topic: String,
    /// Unix time in seconds (fractional).
    pub time: f64,
    /// The payload bytes as lowercase hex.
    pub hex: String,
    /// `poll` for a quota poll's answer; absent for a push.
    #[serde(default, skip_serializing_if = "Origin::is_push")]
    pub origin: Origin,
}

impl RecordLine {
    pub fn from_raw(raw: &RawPayload) -> Self {
        let time = raw
            .received_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        RecordLine {
            topic: raw.topic.clone(),
            time,
            hex: hex::encode(&raw.payload),
            origin: raw.origin,
        }
    }

    /// The JSON text of this line (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn into_raw(self) -> Result<RawPayload, LineError> {
        let bytes = hex::decode(self.hex.trim()).map_err(LineError::Hex)?;
        if !(self.time.is_finite() && self.time >= 0.0 && self.time < 1e11) {
            return Err(LineError::Time(self.time));
        }
        Ok(RawPayload {
            topic: self.topic,
            payload: Bytes::from(bytes),
            received_at: UNIX_EPOCH + Duration::from_secs_f64(self.time),
            origin: self.origin,
        })
    }
}

/// Why a record line is not a payload.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineError {
    #[error("not a record line: {0}")]
    Json(String),
    #[error("hex: {0}")]
    Hex(hex::FromHexError),
    #[error("time {0} is not a Unix time in seconds")]
    Time(f64),
}

/// A line of a record file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

/// Reads a record file: good lines as payloads, bad ones with their line number. Blank
/// lines are ignored; nothing in the input can make this panic.
pub fn read_lines(reader: impl BufRead) -> (Vec<RawPayload>, Vec<BadLine>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let bytes = match line {
            Ok(b) => b,
            Err(e) => {
                bad.push(BadLine {
                    line: line_no,
                    reason: format!("read error: {e}"),
                });
                break;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<RecordLine>(text)
            .map_err(|e| LineError::Json(e.to_string()))
            .and_then(RecordLine::into_raw)
        {
            Ok(raw) => good.push(raw),
            Err(e) => bad.push(BadLine {
                line: line_no,
                reason: e.to_string(),
            }),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn round_trip_and_bad_lines_named() {
        let raw = RawPayload {
            topic: "/app/device/property/X".into(),
            payload: Bytes::from_static(&[1, 2, 0xff]),
            received_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
            origin: Origin::Push,
        };
        let line = RecordLine::from_raw(&raw).to_json();
        let file = format!(
            "{line}\n\n{{\"topic\":\"t\",\"time\":1,\"hex\":\"zz\"}}\n{{\"topic\":\"t\",\"ti\n{line}"
        );
        let (good, bad) = read_lines(file.as_bytes());
        assert_eq!(good.len(), 2);
        assert_eq!(good[0].payload, raw.payload);
        assert_eq!(good[0].topic, raw.topic);
        let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_millis();
        assert_eq!(ms(good[0].received_at), 1_700_000_000_250);
        assert_eq!(good[0].origin, Origin::Push);
        assert!(!line.contains("origin"), "a push writes no origin: {line}");
        let polled = RawPayload {
            origin: Origin::Poll,
            ..raw.clone()
        };
        let line = RecordLine::from_raw(&polled).to_json();
        assert!(line.contains(r#""origin":"poll""#), "{line}");
        let (again, _) = read_lines(line.as_bytes());
        assert_eq!(again, vec![polled]);
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4]);
        assert!(bad[0].reason.contains("hex"), "{:?}", bad[0]);
    }
}
