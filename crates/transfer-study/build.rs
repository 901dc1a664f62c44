//! Records the git commit the library is built from (when built from a checkout), for the
//! provenance every run record carries: `-dirty` follows it when the sources that compute
//! (the crates, `xtask`, the manifests) differ from that commit.

use std::path::Path;
use std::process::Command;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let git = root.join(".git");
    // Rebuild when HEAD moves: HEAD itself, and the branch file or packed refs it points to.
    for path in ["HEAD", "packed-refs"] {
        println!("cargo:rerun-if-changed={}", git.join(path).display());
    }
    if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
        && let Some(branch) = head.trim().strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed={}", git.join(branch).display());
    }
    let sources = ["crates", "xtask", "Cargo.toml", "Cargo.lock"];
    for path in sources {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&root)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let mut commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    let status = [
        &["status", "--porcelain", "--untracked-files=no", "--"][..],
        &sources,
    ]
    .concat();
    if !commit.is_empty() && git(&status).is_some_and(|changes| !changes.is_empty()) {
        commit.push_str("-dirty");
    }
    println!("cargo:rustc-env=TRANSFER_GIT_COMMIT={commit}");
}
