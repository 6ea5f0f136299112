//! `[capture]`: the capture's settings (size and age bounds) and the segment sizes they
//! imply (see the parent module for how the capture keeps them).

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// Segments are not made smaller than this (fewer files), unless `max_size` is smaller.
const MIN_SEGMENT_BYTES: u64 = 4096;

/// `[capture]`: the rolling raw-frame capture under `<data-dir>/capture/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// Capture every raw payload (for bug reports). Default on.
    pub enabled: bool,
    /// Total size of all segments, e.g. `"20 MiB"` or plain bytes. Default 20 MiB.
    #[serde(serialize_with = "exact_size")]
    pub max_size: ByteSize,
    /// Segments older than this are deleted, e.g. `"24h"`. Default 24 h.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            enabled: true,
            max_size: ByteSize::mib(20),
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

impl CaptureConfig {
    /// A tenth of `max_size`, at least [`MIN_SEGMENT_BYTES`] unless `max_size` is smaller.
    pub(super) fn segment_bytes(&self) -> u64 {
        let max = self.max_size.as_u64();
        (max / 10).max(MIN_SEGMENT_BYTES.min(max)).max(1)
    }

    pub(super) fn segment_age(&self) -> Duration {
        (self.max_age / 10).max(Duration::from_secs(1))
    }
}

/// Prints a size so that it loads back to the same number of bytes (`ByteSize`'s own
/// text rounds: 1000000 would print as "976.6 KiB").
fn exact_size<S: serde::Serializer>(size: &ByteSize, s: S) -> Result<S::Ok, S::Error> {
    let bytes = size.as_u64();
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    match UNITS
        .iter()
        .find(|(unit, _)| bytes > 0 && bytes.is_multiple_of(*unit))
    {
        Some((unit, name)) => s.serialize_str(&format!("{} {name}", bytes / unit)),
        None => s.serialize_u64(bytes),
    }
}
