//! Records the git commit the library is built from (when built from a checkout of its
//! repository), for the provenance every run record carries: `-dirty` follows it when the
//! sources that compute (the crates, `xtask`, the manifests) differ from that commit.
//!
//! Rules this script keeps, so that the commit is that of the checkout being built even when
//! checkouts in different folders share one target directory (cargo gives their builds the
//! same identity):
//! - the checkout is found when the script runs (git, from the package's own folder), never
//!   from a path compiled into the script;
//! - every watched path is printed relative to the package's folder, so cargo checks it in
//!   the checkout being built, not in the one that ran the script first;
//! - only paths that exist are watched (cargo reruns a script whose watched file is missing on
//!   every build): HEAD, the branch's loose ref where there is one, else the packed refs and
//!   the folder a new loose ref would appear in.

use std::path::Path;
use std::process::Command;

/// Where this package sits in its repository.
const PACKAGE_PREFIX: &str = "crates/transfer-study/";
/// The sources whose changes make a build `-dirty`.
const SOURCES: [&str; 4] = ["crates", "xtask", "Cargo.toml", "Cargo.lock"];

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}

fn watch(path: &str) {
    println!("cargo:rerun-if-changed={path}");
}

fn main() {
    watch("build.rs");
    let here = Path::new(".");
    // Built from a package (a tarball, a registry) rather than this repository's checkout:
    // no commit to record. An enclosing repository of another project does not count.
    let in_checkout =
        git(here, &["rev-parse", "--show-prefix"]).is_some_and(|prefix| prefix == PACKAGE_PREFIX);
    let commit = if in_checkout { commit(here) } else { None };
    println!(
        "cargo:rustc-env=TRANSFER_GIT_COMMIT={}",
        commit.unwrap_or_default()
    );
}

/// Watches what moves HEAD and the sources, and returns the commit (`-dirty` when the sources
/// differ from it).
fn commit(here: &Path) -> Option<String> {
    let git_path = |path: &str| git(here, &["rev-parse", "--git-path", path]);
    let exists = |path: &String| Path::new(path).exists();
    if let Some(head) = git_path("HEAD") {
        watch(&head);
    }
    if let Some(branch) = git(here, &["symbolic-ref", "-q", "HEAD"]) {
        match git_path(&branch).filter(exists) {
            Some(loose) => watch(&loose),
            None => {
                let packed = git_path("packed-refs").filter(exists);
                let folder = Path::new(&branch)
                    .parent()
                    .and_then(|parent| git_path(&parent.to_string_lossy()))
                    .filter(exists);
                packed.iter().chain(&folder).for_each(|path| watch(path));
            }
        }
    }
    let root = git(here, &["rev-parse", "--show-cdup"])?;
    let root = if root.is_empty() { "." } else { root.as_str() };
    let root = Path::new(root);
    for source in SOURCES {
        let path = root.join(source);
        if path.exists() {
            watch(&path.to_string_lossy());
        }
    }
    let mut commit = git(root, &["rev-parse", "HEAD"])?;
    let status = [
        &["status", "--porcelain", "--untracked-files=no", "--"][..],
        &SOURCES,
    ]
    .concat();
    if git(root, &status).is_some_and(|changes| !changes.is_empty()) {
        commit.push_str("-dirty");
    }
    Some(commit)
}
