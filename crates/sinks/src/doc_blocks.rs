//! Test support: generated blocks in the docs (between `<!-- name:begin -->` and
//! `<!-- name:end -->`) must be what the code makes; `OCEANBRIDGE_UPDATE_DOCS=1 cargo
//! test -p sinks the_docs_list` writes them instead.

use std::path::Path;

/// Checks (or, with `OCEANBRIDGE_UPDATE_DOCS`, writes) block `name` of `docs/<file>`.
pub(crate) fn check(file: &str, name: &str, generated: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(file);
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("docs/{file}: {e}"));
    let (start, end) = (
        format!("<!-- {name}:begin -->\n"),
        format!("<!-- {name}:end -->"),
    );
    let (head, rest) = doc
        .split_once(&start)
        .unwrap_or_else(|| panic!("docs/{file}: no {start:?}"));
    let (_, tail) = rest
        .split_once(&end)
        .unwrap_or_else(|| panic!("docs/{file}: no {end:?}"));
    let want = format!("{head}{start}{generated}{end}{tail}");
    if want != doc && std::env::var_os("OCEANBRIDGE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("write the docs");
        return;
    }
    assert!(
        want == doc,
        "docs/{file}'s {name} block is not what the code makes; \
         run OCEANBRIDGE_UPDATE_DOCS=1 cargo test -p sinks the_docs_list"
    );
}
