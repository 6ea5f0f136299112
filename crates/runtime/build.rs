//! Build script: the git commit for `oceanbridge --version` and the diagnostics bundle
//! (`OCEANBRIDGE_COMMIT`, read as `runtime::COMMIT`).
//! From `OCEANBRIDGE_COMMIT` if the builder sets it (a container build without `.git`),
//! else `git rev-parse`, else "unknown" — never a build failure.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// `rerun-if-changed` for `path` only when it exists (see the caller).
fn watch_if_present(path: &str) {
    if std::path::Path::new(path).exists() {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=OCEANBRIDGE_COMMIT");
    let commit = std::env::var("OCEANBRIDGE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
            // Rebuild when HEAD moves: its file, and the branch it points to (a loose ref
            // file, or packed-refs once git packed it). Only files that exist are named:
            // cargo treats a missing `rerun-if-changed` path as changed on every build,
            // which rebuilt this crate and relinked the binary each time.
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                watch_if_present(&format!("{dir}/HEAD"));
            }
            if let (Some(common), Some(head_ref)) = (
                git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
                git(&["symbolic-ref", "-q", "HEAD"]),
            ) {
                let loose = format!("{common}/{head_ref}");
                if std::path::Path::new(&loose).exists() {
                    watch_if_present(&loose);
                } else if let Some((folder, _)) = head_ref.rsplit_once('/') {
                    // A packed ref has no loose file until the next commit creates one:
                    // watch the folder it will appear in.
                    watch_if_present(&format!("{common}/{folder}"));
                }
                watch_if_present(&format!("{common}/packed-refs"));
            }
            Some(commit)
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OCEANBRIDGE_COMMIT={commit}");
}
