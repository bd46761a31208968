//! Stamps the binary with the commit it was built from, for `--version`.
//! Never fails the build: outside a git checkout (a source tarball, a
//! container build without .git) it falls back to `DEVICETRUST_COMMIT` from
//! the environment, then to `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DEVICETRUST_COMMIT");
    let from_env = std::env::var("DEVICETRUST_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let from_git = || {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        // No "-dirty" mark: the script reruns when HEAD moves, not on
        // every edit, so such a mark would often be stale.
        Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
    };
    let commit = from_env
        .or_else(from_git)
        .unwrap_or_else(|| "unknown".to_owned());
    // Only characters that are safe in a version line.
    let commit: String = commit
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect();
    println!("cargo:rustc-env=DEVICETRUST_COMMIT={commit}");
    // A new commit (HEAD moves, or the branch it names does) rebuilds the
    // stamp; missing files are ignored by cargo's check.
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
    {
        if out.status.success() {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            println!("cargo:rerun-if-changed={dir}/HEAD");
            println!("cargo:rerun-if-changed={dir}/logs/HEAD");
        }
    }
}
