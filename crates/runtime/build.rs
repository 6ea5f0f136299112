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

fn main() {
    println!("cargo:rerun-if-env-changed=OCEANBRIDGE_COMMIT");
    let commit = std::env::var("OCEANBRIDGE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
            // Rebuild when HEAD moves: its file, and the branch it points to.
            if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
                println!("cargo:rerun-if-changed={dir}/HEAD");
            }
            if let (Some(common), Some(head_ref)) = (
                git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]),
                git(&["symbolic-ref", "-q", "HEAD"]),
            ) {
                println!("cargo:rerun-if-changed={common}/{head_ref}");
                println!("cargo:rerun-if-changed={common}/packed-refs");
            }
            Some(commit)
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OCEANBRIDGE_COMMIT={commit}");
}
