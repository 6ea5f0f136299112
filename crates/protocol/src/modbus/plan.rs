//! The read plan: the fewest function-03 requests, each within the 125-register limit,
//! that cover every readable register of the map (protocol §14) — and among plans with
//! that few requests, the one reading the fewest words, so the gaps between the map's
//! groups are not read for nothing.
//!
//! Found by dynamic programming over the readable registers in address order (the map
//! is small), so it is optimal, not a greedy guess. A register is never split across two
//! requests: both halves of a float must come from the same instant.

use super::map::REGISTERS;

/// Most registers one read request may ask for (Modbus function 03).
pub const MAX_READ_WORDS: u16 = 125;

/// Why a function-03 read is not answered ([`check_read`]); each maps to the Modbus
/// exception a device answers ([`ReadError::exception_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("a read asks for 1 to {MAX_READ_WORDS} registers")]
    Count,
    #[error("a read may not go past register 65535")]
    PastEnd,
}

impl ReadError {
    /// 03 (illegal data value) for how many, 02 (illegal data address) for where.
    pub fn exception_code(self) -> u8 {
        match self {
            ReadError::Count => 3,
            ReadError::PastEnd => 2,
        }
    }
}

/// Whether a read of `count` registers from `addr` may be answered: the rule every
/// server of the map applies (the simulated device and the bridge's own server).
pub fn check_read(addr: u16, count: u16) -> Result<(), ReadError> {
    if count == 0 || count > MAX_READ_WORDS {
        return Err(ReadError::Count);
    }
    if u32::from(addr) + u32::from(count) > 0x1_0000 {
        return Err(ReadError::PastEnd);
    }
    Ok(())
}

/// One read request: `count` registers from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub start: u16,
    pub count: u16,
}

impl Block {
    pub fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count)
    }
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}–{}", self.start, self.end() - 1)
    }
}

/// The plan for the whole map with requests of at most `max_words` (1..=125; larger
/// values are taken as 125, 0 as 1).
pub fn read_plan(max_words: u16) -> Vec<Block> {
    let max = u32::from(max_words.clamp(1, MAX_READ_WORDS));
    let regs: Vec<(u32, u32)> = REGISTERS
        .iter()
        .filter(|r| r.access.readable())
        .map(|r| (u32::from(r.addr), r.end()))
        .collect();
    // best[i]: (requests, words) to cover regs[..i], and where its last block starts.
    let mut best: Vec<(u32, u32, usize)> = vec![(0, 0, 0)];
    for i in 1..=regs.len() {
        let end = regs[i - 1].1;
        let mut here = (u32::MAX, u32::MAX, 0);
        for j in (0..i).rev() {
            let words = end - regs[j].0;
            if words > max {
                break;
            }
            let (n, w, _) = best[j];
            let candidate = (n + 1, w + words, j);
            if (candidate.0, candidate.1) < (here.0, here.1) {
                here = candidate;
            }
        }
        // A single register longer than `max` still gets a request of its own.
        if here.0 == u32::MAX {
            let (n, w, _) = best[i - 1];
            here = (n + 1, w + (end - regs[i - 1].0), i - 1);
        }
        best.push(here);
    }
    let mut blocks = Vec::new();
    let mut i = regs.len();
    while i > 0 {
        let j = best[i].2;
        let (start, end) = (regs[j].0, regs[i - 1].1);
        blocks.push(Block {
            start: start as u16,
            count: (end - start) as u16,
        });
        i = j;
    }
    blocks.reverse();
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_takes_four_requests() {
        // The plan a bridge polls with: identity, live values, packs, counters — 4
        // requests, 204 registers (the packs and the counters are 180 apart: one request
        // cannot hold both).
        let plan = read_plan(MAX_READ_WORDS);
        let shown: Vec<String> = plan.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["40001–40011", "40519–40607", "42081–42084", "42161–42260"]
        );
        assert_eq!(plan.iter().map(|b| u32::from(b.count)).sum::<u32>(), 204);
    }

    #[test]
    fn every_readable_register_is_in_exactly_one_request_and_none_is_split() {
        for max in [1, 2, 8, 11, 40, 89, 90, 100, 124, 125, 500] {
            let plan = read_plan(max);
            for b in &plan {
                assert!(b.count <= max.clamp(8, 125), "{max}: {b}");
            }
            for r in REGISTERS.iter().filter(|r| r.access.readable()) {
                let holding: Vec<_> = plan
                    .iter()
                    .filter(|b| u32::from(r.addr) < b.end() && r.end() > u32::from(b.start))
                    .collect();
                assert_eq!(holding.len(), 1, "{max}: {}", r.name);
                assert!(u32::from(holding[0].start) <= u32::from(r.addr));
                assert!(holding[0].end() >= r.end(), "{max}: {} split", r.name);
            }
        }
    }

    #[test]
    fn fewer_words_per_request_need_more_requests() {
        assert_eq!(read_plan(89).len(), 4);
        // The live block is 89 registers; at 88 it needs two requests.
        assert_eq!(read_plan(88).len(), 5);
        // The 8-register serial is never split, even when the limit is smaller.
        assert!(
            read_plan(4)
                .iter()
                .any(|b| b.start == 40004 && b.count == 8)
        );
        assert_eq!(
            read_plan(1).len(),
            REGISTERS.iter().filter(|r| r.access.readable()).count()
        );
    }
}
