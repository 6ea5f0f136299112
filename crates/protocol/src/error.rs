//! Why a payload or frame could not be decoded; each variant is one skip reason.

use crate::wire::WireError;

/// A payload or frame that could not be decoded. [`DecodeError::reason`] is a stable,
/// low-cardinality label for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is empty (no frames)")]
    Empty,
    #[error("payload is {len} bytes, more than the {max}-byte limit")]
    Oversized { len: usize, max: usize },
    #[error("payload is truncated: {0}")]
    Truncated(WireError),
    #[error("payload is not a valid Frames message: {0}")]
    Malformed(WireError),
    #[error("frame ({cmd_func}, {cmd_id}): pdata is not a valid {message}: {source}")]
    BadPdata {
        cmd_func: i32,
        cmd_id: i32,
        message: &'static str,
        source: WireError,
    },
}

impl DecodeError {
    /// Short label for counters (`empty`, `oversized`, `truncated`, `malformed`, `bad_pdata`).
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Oversized { .. } => "oversized",
            DecodeError::Truncated(_) => "truncated",
            DecodeError::Malformed(_) => "malformed",
            DecodeError::BadPdata { .. } => "bad_pdata",
        }
    }

    /// Classifies a wire error met while reading the `Frames` envelope.
    pub(crate) fn envelope(e: WireError) -> Self {
        if e.is_truncation() {
            DecodeError::Truncated(e)
        } else {
            DecodeError::Malformed(e)
        }
    }
}
