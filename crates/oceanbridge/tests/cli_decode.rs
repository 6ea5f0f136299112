//! Drives the real `oceanbridge` binary: `decode --json` against every vector (key for
//! key), exit code 2 with a one-line error on bad input, `states`, and `--help`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oceanbridge"))
}

fn vectors() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/vectors")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn close(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-6 * x.abs().max(y.abs())
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
        }
        (x, y) => x == y,
    }
}

fn stderr_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn decode_json_matches_every_vector_key_for_key() {
    let files = vectors();
    assert!(files.len() >= 18);
    for file in files {
        let v: Json =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
        let name = file.display().to_string();
        let out = bin()
            .args(["decode", "--json", v["payload_hex"].as_str().expect("hex")])
            .output()
            .expect("run");
        if v["expected_error"].as_bool() == Some(true) {
            assert_eq!(out.status.code(), Some(2), "{name}: exit code");
            assert!(out.stdout.is_empty(), "{name}: no output on error");
            let err = stderr_line(&out);
            assert!(
                err.starts_with("error: ") && !err.contains('\n'),
                "{name}: one-line error, got {err:?}"
            );
            continue;
        }
        assert!(out.status.success(), "{name}: {}", stderr_line(&out));
        let actual: Json = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
        let actual = actual.as_object().expect("a JSON object");
        let expected = v["expected"].as_object().expect("expected");
        for (key, want) in expected {
            let got = actual
                .get(key)
                .unwrap_or_else(|| panic!("{name}: {key} missing"));
            assert!(close(want, got), "{name}: {key} = {got}, expected {want}");
        }
        for key in actual.keys().filter(|k| *k != "info.status") {
            assert!(expected.contains_key(key), "{name}: unexpected key {key}");
        }
        for key in v["absent"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
        {
            assert!(!actual.contains_key(key), "{name}: {key} must be absent");
        }
    }
}

#[test]
fn decode_reads_stdin_and_files() {
    let hex = "0a221002182070f2a8d08e04b201022d32ca0110484a33315a4448355a46323230313233";
    let mut child = bin()
        .args(["decode", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), hex.as_bytes()).expect("write");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let json: Json = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["info.status"], "offline");

    let path = std::env::temp_dir().join(format!("oceanbridge-decode-{}.hex", std::process::id()));
    std::fs::write(&path, format!("{hex}\n")).expect("write temp");
    let out = bin()
        .args(["decode", "--file"])
        .arg(&path)
        .output()
        .expect("run");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("offline"));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for (args, needle) in [
        (vec!["decode", "not-hex"], "not hex"),
        (vec!["decode", "abc"], "not hex"),
        (vec!["decode", "ffffffff"], "truncated"),
        (vec!["decode", ""], "empty"),
        (
            vec!["decode", "--file", "/nonexistent/oceanbridge"],
            "cannot read",
        ),
    ] {
        let out = bin().args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr_line(&out);
        assert!(
            err.contains(needle) && err.lines().count() == 1,
            "{args:?}: {err:?}"
        );
    }
}

#[test]
fn states_lists_the_catalog() {
    let out = bin().args(["states", "--json"]).output().expect("run");
    assert!(out.status.success());
    let rows: Vec<Json> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rows.len(), 216);
    let volts = rows
        .iter()
        .find(|r| r["key"] == "EMSHeartbeatReport.meterAVoltage")
        .expect("row");
    assert_eq!(
        (volts["unit"].as_str(), volts["max"].as_f64()),
        (Some("V"), Some(250.0))
    );

    let out = bin()
        .args(["states", "--channel", "bpInfo1"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bpInfo1.bpSoc") && text.contains("25 states") && !text.contains("bpInfo0.")
    );

    let out = bin()
        .args(["states", "--channel", "nope"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(stderr_line(&out).contains("unknown channel"));
}

#[test]
fn help_on_every_subcommand() {
    let out = bin().arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for sub in [
        "run",
        "init",
        "check-config",
        "demo",
        "decode",
        "record",
        "replay",
        "simulate",
        "states",
    ] {
        assert!(text.contains(sub), "--help lists {sub}");
        let out = bin().args([sub, "--help"]).output().expect("run");
        assert!(out.status.success(), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{sub} --help shows usage"
        );
    }
}
