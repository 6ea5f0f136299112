//! Build script: turns `spec/poweroceanfit-states-1.4.0.md` into `catalog_generated.rs`.
//!
//! The spec is the contract (names, units, scaling, enum texts), so the 216 state
//! definitions are generated from it rather than typed by hand. Any surprise in the
//! markdown (unknown section, malformed row, wrong count) fails the build loudly.

mod parse;

use std::fmt::Write as _;
use std::path::PathBuf;

const SPEC: &str = "../../spec/poweroceanfit-states-1.4.0.md";

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    println!("cargo:rerun-if-changed=build");
    let text = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("read {SPEC}: {e}"));
    let spec = parse::parse_spec(&text).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    std::fs::write(out.join("catalog_generated.rs"), render(&spec)).expect("write catalog");
}

fn render(spec: &parse::Spec) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/// Catalog version, from the spec's `### version:` line."
    );
    let _ = writeln!(s, "pub const SPEC_VERSION: &str = {:?};", spec.version);
    let _ = writeln!(
        s,
        "/// Every state of the spec, channel by channel, in spec order."
    );
    let _ = writeln!(
        s,
        "pub static STATES: [StateDef; {}] = [",
        spec.states.len()
    );
    for (index, st) in spec.states.iter().enumerate() {
        let enums: Vec<String> = st
            .enum_map
            .iter()
            .map(|(k, v)| format!("({k}, {v:?})"))
            .collect();
        let _ = writeln!(
            s,
            "    StateDef {{ index: {index}, channel: Channel::{chan}, name: {name:?}, key: {key:?}, \
             kind: Kind::{kind}, unit: {unit:?}, mult: {mult:?}, min: {min:?}, max: {max:?}, \
             human_name: {human:?}, enum_map: &[{enums}] }},",
            chan = st.channel_variant(),
            name = st.name,
            key = format!("{}.{}", st.channel, st.name),
            kind = st.kind.variant(),
            unit = st.unit,
            mult = st.mult,
            min = st.min,
            max = st.max,
            human = st.human_name,
            enums = enums.join(", "),
        );
    }
    let _ = writeln!(s, "];");
    s
}
