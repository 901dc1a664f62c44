//! The build script's provenance: the commit it records is the checkout's being built, also
//! when checkouts share a target directory, and an unchanged checkout rebuilds nothing.
//!
//! The script is this crate's own `build.rs`, compiled into a small package laid out as this
//! repository is (`crates/transfer-study`), so the test needs git and cargo but no registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUILD_SCRIPT: &str = include_str!("../build.rs");

fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn git(dir: &Path, args: &[&str]) -> String {
    String::from_utf8_lossy(&run(dir, "git", args).stdout)
        .trim()
        .to_owned()
}

/// A repository holding a package at `crates/transfer-study` whose binary prints the commit
/// its build script recorded, with two commits; returns (repository, first, second commit).
fn origin(root: &Path) -> (PathBuf, String, String) {
    let repo = root.join("origin");
    let package = repo.join("crates/transfer-study");
    std::fs::create_dir_all(package.join("src")).unwrap();
    std::fs::write(
        repo.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"crates/transfer-study\"]\n",
    )
    .unwrap();
    std::fs::write(
        package.join("Cargo.toml"),
        "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(package.join("build.rs"), BUILD_SCRIPT).unwrap();
    std::fs::write(
        package.join("src/main.rs"),
        "fn main() { println!(\"{}\", env!(\"TRANSFER_GIT_COMMIT\")); }\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(package.join("src/extra.rs"), "// a second commit\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "second"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    (repo, first, second)
}

fn clone(root: &Path, origin: &Path, name: &str, commit: &str) -> PathBuf {
    let dir = root.join(name);
    run(
        root,
        "git",
        &["clone", "-q", &origin.to_string_lossy(), name],
    );
    git(&dir, &["checkout", "-q", "-B", "main", commit]);
    dir
}

/// Builds the checkout into `target`; returns cargo's verbose output and what the binary
/// prints.
fn build(checkout: &Path, target: &Path) -> (String, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["build", "--offline", "-v", "--bin", "probe"])
        .current_dir(checkout)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTC_WRAPPER")
        .output()
        .unwrap_or_else(|e| panic!("{cargo}: {e}"));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "build of {}: {log}",
        checkout.display()
    );
    let printed = run(checkout, &target.join("debug/probe").to_string_lossy(), &[]);
    (
        log,
        String::from_utf8_lossy(&printed.stdout).trim().to_owned(),
    )
}

/// Whether cargo compiled or ran anything (it says `Fresh` for what it reuses).
fn rebuilt(log: &str) -> bool {
    log.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("Compiling") || line.starts_with("Running")
    })
}

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("transfer-provenance-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn clones_sharing_a_target_directory_each_record_their_own_commit() {
    let root = tempdir("shared");
    let (origin, first, second) = origin(&root);
    let target = root.join("target");
    let a = clone(&root, &origin, "a", &first);
    assert_eq!(build(&a, &target).1, first);
    let b = clone(&root, &origin, "b", &second);
    assert_eq!(build(&b, &target).1, second);
    std::fs::remove_dir_all(&a).unwrap();
    let (log, commit) = build(&b, &target);
    assert_eq!(commit, second, "after the other clone is gone");
    assert!(!rebuilt(&log), "an unchanged checkout was rebuilt:\n{log}");
    // A source edited since the commit is recorded as such.
    std::fs::write(b.join("crates/transfer-study/src/extra.rs"), "// edited\n").unwrap();
    assert_eq!(build(&b, &target).1, format!("{second}-dirty"));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_unchanged_checkout_rebuilds_nothing_with_loose_or_packed_refs() {
    let root = tempdir("refs");
    let (origin, first, second) = origin(&root);
    for packed in [false, true] {
        let name = if packed { "packed" } else { "loose" };
        let checkout = clone(&root, &origin, name, &second);
        let packed_refs = checkout.join(".git/packed-refs");
        if packed {
            git(&checkout, &["pack-refs", "--all"]);
            assert!(!checkout.join(".git/refs/heads/main").exists());
        } else if packed_refs.exists() {
            std::fs::remove_file(&packed_refs).unwrap();
        }
        let target = root.join(format!("target-{name}"));
        assert_eq!(build(&checkout, &target).1, second);
        let (log, commit) = build(&checkout, &target);
        assert_eq!(commit, second);
        assert!(!rebuilt(&log), "{name} refs: rebuilt\n{log}");
        // HEAD moving is still seen: a commit on a packed branch writes a loose ref.
        git(&checkout, &["checkout", "-q", "-B", "main", &first]);
        assert_eq!(build(&checkout, &target).1, first, "{name} refs");
        git(&checkout, &["commit", "-q", "--allow-empty", "-m", "third"]);
        let third = git(&checkout, &["rev-parse", "HEAD"]);
        assert_eq!(build(&checkout, &target).1, third, "{name} refs");
    }
    let _ = std::fs::remove_dir_all(&root);
}
