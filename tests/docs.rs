//! What the documentation shows is what is compiled: the README's program from another project
//! is `tests/downstream`'s, which CI builds and runs.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_readme_shows_the_downstream_study_as_it_is_compiled() {
    let readme = read("README.md");
    let program = read("tests/downstream/src/bin/custom_study.rs");
    assert!(
        readme.contains(&format!("```rust\n{program}```")),
        "README.md must show tests/downstream/src/bin/custom_study.rs verbatim"
    );
}

#[test]
fn the_downstream_project_depends_on_the_crates_by_version() {
    let manifest = read("tests/downstream/Cargo.toml");
    for name in [
        "transfer-data",
        "transfer-model",
        "transfer-records",
        "transfer-study",
    ] {
        let line = manifest
            .lines()
            .find(|l| l.starts_with(&format!("{name} =")))
            .unwrap_or_else(|| panic!("tests/downstream/Cargo.toml does not depend on {name}"));
        assert!(line.contains("version = \"0.1.0\""), "{line}");
    }
    assert!(
        manifest.contains("\n[workspace]\n"),
        "it must be a workspace of its own"
    );
}

#[test]
fn the_published_claims_in_docs_are_the_default_set() {
    let study = read("docs/study.md");
    let start = study
        .find("are the default set:\n\n```toml\n")
        .expect("docs/study.md lists the default claims")
        + "are the default set:\n\n```toml\n".len();
    let block = &study[start..start + study[start..].find("```").unwrap()];
    let file: transfer_study::ConfigFile = toml::from_str(block).unwrap();
    assert_eq!(file.claim, transfer_records::ClaimSpec::published());
}

#[test]
fn the_downstream_lock_file_is_up_to_date() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/downstream/Cargo.toml");
    let out = std::process::Command::new(env!("CARGO"))
        // Host-platform packages only, which the workspace's own build has fetched.
        .args([
            "tree",
            "--locked",
            "--offline",
            "--edges",
            "normal",
            "--prefix",
            "none",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tests/downstream/Cargo.lock is out of date (see its Cargo.toml): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
