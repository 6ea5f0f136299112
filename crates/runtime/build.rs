//! Build script: the commit the bridge is built from, for `diagnostics::version` (the
//! first line of a bug report's bundle). `OCEANBRIDGE_COMMIT` wins (packagers building
//! from a tarball set it); else `git rev-parse` when the source is a git checkout; else
//! none. It runs again only when that variable changes: in an incremental dev build the
//! commit can be older than the last one (a fresh or release build has the right one).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OCEANBRIDGE_COMMIT");
    let commit = std::env::var("OCEANBRIDGE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            let text = String::from_utf8(out.stdout).ok()?;
            (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
        });
    if let Some(commit) = commit {
        println!("cargo:rustc-env=OCEANBRIDGE_COMMIT={commit}");
    }
}
