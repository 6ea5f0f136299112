//! Runs every test vector: the shipped copy in `tests/vectors/`, and the shared folder's
//! `vectors/` (`../shared` beside the checkout, `testkit::services::shared_dir`), which
//! must match the shipped copy. Without the shared folder that test fails under `CI=true`
//! and skips elsewhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protocol::json::{STATUS_KEY, to_json_object};
use serde_json::Value as Json;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vector_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn numbers_close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

fn json_close(expected: &Json, actual: &Json) -> bool {
    match (expected, actual) {
        (Json::Number(e), Json::Number(a)) => numbers_close(
            e.as_f64().unwrap_or(f64::NAN),
            a.as_f64().unwrap_or(f64::NAN),
        ),
        (Json::Array(e), Json::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| json_close(e, a))
        }
        (e, a) => e == a,
    }
}

/// Checks one vector file; returns a description of each failure.
fn check_vector(path: &Path) -> Vec<String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = std::fs::read_to_string(path).expect("vector readable");
    let v: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let payload = hex::decode(v["payload_hex"].as_str().expect("payload_hex")).expect("hex");
    let topic = v["topic"].as_str().unwrap_or_default();
    let sn: Arc<str> = protocol::topics::device_sn_from_topic(topic)
        .unwrap_or("")
        .into();
    let result = protocol::decode_payload(&payload, &sn).and_then(|d| d.into_strict());
    let mut failures = Vec::new();
    if v["expected_error"].as_bool() == Some(true) {
        if let Ok(d) = result {
            failures.push(format!(
                "{name}: expected an error, got {} states",
                d.updates.len()
            ));
        }
        return failures;
    }
    let decoded = match result {
        Ok(d) => d,
        Err(e) => return vec![format!("{name}: unexpected error {e}")],
    };
    let actual = to_json_object(&decoded);
    let expected = v["expected"].as_object().cloned().unwrap_or_default();
    for (key, want) in &expected {
        match actual.get(key) {
            Some(got) if json_close(want, got) => {}
            Some(got) => failures.push(format!("{name}: {key} = {got}, expected {want}")),
            None => failures.push(format!("{name}: {key} missing")),
        }
    }
    for key in v["absent"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        if actual.contains_key(key) {
            failures.push(format!("{name}: {key} must be absent"));
        }
    }
    for key in actual.keys().filter(|k| *k != STATUS_KEY) {
        if !expected.contains_key(key) {
            failures.push(format!("{name}: unexpected state {key}"));
        }
    }
    failures
}

fn check_dir(dir: &Path) -> usize {
    let files = vector_files(dir);
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    let failures: Vec<String> = files.iter().flat_map(|f| check_vector(f)).collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    files.len()
}

#[test]
fn shipped_vectors_all_pass() {
    let n = check_dir(&repo_root().join("tests/vectors"));
    assert!(n >= 18, "expected at least 18 vectors, found {n}");
}

#[test]
fn shared_vectors_all_pass_and_are_shipped() {
    let shared = testkit::require!(testkit::services::shared_dir()).join("vectors");
    assert!(
        check_dir(&shared) >= 18,
        "expected at least 18 vectors in {}",
        shared.display()
    );
    for file in vector_files(&shared) {
        let shipped = repo_root()
            .join("tests/vectors")
            .join(file.file_name().expect("file name"));
        let a = std::fs::read(&file).expect("shared vector");
        let b = std::fs::read(&shipped).unwrap_or_default();
        assert_eq!(
            a,
            b,
            "{} differs from the shipped copy; copy it into tests/vectors/",
            file.display()
        );
    }
}

#[test]
fn error_vectors_name_their_reason() {
    let dir = repo_root().join("tests/vectors");
    let reason = |file: &str| {
        let v: Json = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("read"))
            .expect("json");
        let payload = hex::decode(v["payload_hex"].as_str().expect("hex")).expect("hex");
        let sn: Arc<str> = "SN".into();
        protocol::decode_payload(&payload, &sn)
            .and_then(|d| d.into_strict())
            .err()
            .map(|e| e.reason())
    };
    assert_eq!(reason("truncated.json"), Some("truncated"));
    assert_eq!(reason("garbage.json"), Some("malformed"));
    assert_eq!(reason("bad_pdata.json"), Some("bad_pdata"));
}
