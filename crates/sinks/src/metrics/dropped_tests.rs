//! The reasons table against the code that counts and the docs that explain them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

use super::{REASONS, register};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source of every crate's `src/` (path, text), this table's own file excepted.
fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let crates = workspace().join("crates");
    for krate in std::fs::read_dir(&crates).expect("crates/").flatten() {
        rust_files(&krate.path().join("src"), &mut files);
    }
    files
        .into_iter()
        .filter(|p| !p.ends_with("metrics/dropped.rs") && !p.ends_with("metrics/dropped_tests.rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read source");
            (p, text)
        })
        .collect()
}

#[test]
fn every_reason_counted_by_name_is_in_the_table_and_every_listed_one_is_counted() {
    let sources = sources();
    let listed: Vec<&str> = REASONS.iter().map(|(r, _)| *r).collect();
    // `record_dropped("x")`, `add_dropped("x", n)`, `warn_dropped("x", …)`, `.dropped("x")`.
    let mut missing = Vec::new();
    for (path, text) in &sources {
        for (at, _) in text.match_indices("dropped(\"") {
            let rest = &text[at + "dropped(\"".len()..];
            let reason = rest.split('"').next().unwrap_or_default();
            if !listed.contains(&reason) {
                missing.push(format!("{reason} ({})", path.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "reasons counted but not in metrics/dropped.rs REASONS: {missing:?}"
    );
    // Reasons named elsewhere (a constant, a match) still appear as a literal somewhere.
    for reason in listed {
        let literal = format!("\"{reason}\"");
        assert!(
            sources.iter().any(|(_, text)| text.contains(&literal)),
            "{reason} is listed but no code counts it"
        );
    }
}

#[test]
fn every_known_reason_is_exported_from_the_start_and_counted_ones_add_up() {
    let counted = BTreeMap::from([("placeholder", 3), ("something_new", 2)]);
    let mut registry = Registry::with_prefix("oceanbridge");
    register(&mut registry, &counted);
    let mut text = String::new();
    encode(&mut text, &registry).expect("encode");
    let value = |reason: &str| -> Option<u64> {
        let prefix = format!("oceanbridge_dropped_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
    };
    for (reason, _) in REASONS {
        let want = if *reason == "placeholder" { 3 } else { 0 };
        assert_eq!(value(reason), Some(want), "{reason}\n{text}");
    }
    assert_eq!(
        value("something_new"),
        Some(2),
        "an unlisted reason still shows"
    );
    assert!(text.contains(&format!("# HELP oceanbridge_dropped {}", super::HELP)));
}

/// The table in docs/metrics.md, as made from [`REASONS`].
fn docs_table() -> String {
    let mut out = String::from("| `reason` | what was dropped |\n|---|---|\n");
    for (reason, meaning) in REASONS {
        out.push_str(&format!("| `{reason}` | {meaning} |\n"));
    }
    out
}

/// The table in docs/metrics.md between its markers must be [`docs_table`].
#[test]
fn the_docs_list_every_drop_reason() {
    crate::doc_blocks::check("metrics.md", "dropped", &docs_table());
}
