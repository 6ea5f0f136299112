//! How long diagnostics masking takes with many serials (a capture flooded with fake
//! devices): learn N serials, mask a text holding each once, print the time.
//!
//!   cargo run --profile bench -p runtime --example mask_bench -- 48000

use std::time::Instant;

use runtime::diagnostics::Masker;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(48_000);
    let serials: Vec<String> = (0..n).map(|i| format!("HC31ZDH5{i:08}")).collect();
    let text = serials.join(" ");
    let started = Instant::now();
    let mut masker = Masker::new();
    for sn in &serials {
        masker.add(sn);
    }
    let learnt = started.elapsed();
    let masked = masker.text(&text);
    let total = started.elapsed();
    assert!(!masked.contains(&serials[n / 2]), "masked");
    println!(
        "mask_bench: {n} serials, {} KiB of text: learn {:.1} ms, mask {:.1} ms, total {:.1} ms",
        text.len() / 1024,
        learnt.as_secs_f64() * 1e3,
        (total - learnt).as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
}
