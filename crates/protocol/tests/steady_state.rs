//! The compact path's promise, checked with a counting allocator: once an [`UpdateBuf`]
//! has seen the payloads, decoding them again allocates nothing at all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use protocol::UpdateBuf;

struct Counting;

thread_local! {
    /// Allocations made by this thread (the test harness's own threads do not count).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn count() {
    // `try_with`: the slot may be gone while the thread exits.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn vectors() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("vectors dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
            hex::decode(v["payload_hex"].as_str()?).ok()
        })
        .collect()
}

#[test]
fn a_warm_buffer_decodes_every_vector_without_allocating() {
    let payloads = vectors();
    assert!(payloads.len() >= 18, "vectors missing");
    let mut buf = UpdateBuf::new();
    let decode_all = |buf: &mut UpdateBuf| {
        let mut states = 0;
        for p in &payloads {
            if buf.decode(p, "HJ31ZDH5ZF220123").is_ok() {
                states += buf.updates().len() + buf.skipped().len() + buf.errors().len();
            }
        }
        states
    };
    let warm = decode_all(&mut buf);
    let before = allocations();
    let mut again = 0;
    for _ in 0..10 {
        again += decode_all(&mut buf);
    }
    let allocations = allocations() - before;
    assert!(warm > 200, "the vectors decode to states ({warm})");
    assert_eq!(again, 10 * warm);
    assert_eq!(
        allocations, 0,
        "allocations while decoding with a warm buffer"
    );
}

/// The service's path (topic device check, §11 zero-fill) keeps the same promise.
#[test]
fn the_service_path_allocates_nothing_either() {
    let payloads = vectors();
    let mut buf = UpdateBuf::new();
    let rules = protocol::FieldRules::default();
    let decode_all = |buf: &mut UpdateBuf| {
        let mut states = 0;
        for p in &payloads {
            if buf.decode_from_device(p, "HJ31ZDH5ZF220123", rules).is_ok() {
                states += buf.updates().len() + buf.foreign_frames();
            }
        }
        states
    };
    let warm = decode_all(&mut buf);
    let before = allocations();
    let again: usize = (0..10).map(|_| decode_all(&mut buf)).sum();
    let allocations = allocations() - before;
    assert_eq!(again, 10 * warm);
    assert_eq!(allocations, 0, "allocations on the service's path");
}
