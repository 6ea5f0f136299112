//! Build script: compiles `proto/poweroceanfit.proto` with protox (no system protoc needed)
//! into prost types, and emits a field table per message for the table-driven decoder.

use std::fmt::Write as _;
use std::path::PathBuf;

use prost_types::field_descriptor_proto::{Label, Type};

const PROTO_DIR: &str = "../../proto";
const PROTO: &str = "poweroceanfit.proto";

fn main() {
    println!("cargo:rerun-if-changed={PROTO_DIR}/{PROTO}");
    let fds = protox::compile([PROTO], [PROTO_DIR]).unwrap_or_else(|e| panic!("{PROTO}: {e}"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    std::fs::write(out.join("schema_generated.rs"), render_schemas(&fds)).expect("write schema");
    prost_build::Config::new()
        .out_dir(&out)
        .compile_fds(fds)
        .expect("prost code generation");
}

/// One `MessageSchema` per message: field number, names, type and repetition.
fn render_schemas(fds: &prost_types::FileDescriptorSet) -> String {
    let mut s =
        String::from("/// Field tables of every message in the proto, generated at build time.\n");
    s.push_str("pub static MESSAGES: &[MessageSchema] = &[\n");
    for msg in fds.file.iter().flat_map(|f| &f.message_type) {
        let _ = writeln!(s, "    MessageSchema {{ name: {:?}, fields: &[", msg.name());
        for field in &msg.field {
            let ty = match field.r#type() {
                Type::Float => "Float",
                Type::Uint32 => "Uint32",
                Type::Int32 => "Int32",
                Type::Sint32 => "Sint32",
                Type::Bool => "Bool",
                Type::String => "String",
                Type::Bytes => "Bytes",
                Type::Message => "Message",
                other => panic!("field {} has unsupported type {other:?}", field.name()),
            };
            let _ = writeln!(
                s,
                "        ProtoField {{ number: {}, name: {:?}, state_name: {:?}, ty: ProtoType::{ty}, repeated: {} }},",
                field.number(),
                field.name(),
                lower_camel(field.name()),
                field.label() == Label::Repeated,
            );
        }
        s.push_str("    ] },\n");
    }
    s.push_str("];\n");
    s
}

/// `meter_a_voltage` → `meterAVoltage`, `bp_ina228_a` → `bpIna228A` (protocol §5).
fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}
