//! Helpers shared by the command line's end-to-end tests: the binary, temporary
//! directories, records, and small synthetic IDX datasets with their manifests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn mnist_dir() -> PathBuf {
    std::env::var_os("MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist"))
}

pub fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The binary with `args`, reading MNIST from the test data directory.
pub fn xtask(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args).env("MNIST_DIR", mnist_dir());
    cmd
}

pub fn run_ok(args: &[&str]) -> String {
    let out = xtask(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?} failed:\n{text}");
    text
}

pub fn run_err(args: &[&str]) -> String {
    let out: Output = xtask(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err
}

/// Runs `xtask` with `args`, expects a refusal and returns its message: nothing printed on
/// stdout before it (no plan or configuration of what is refused).
pub fn refused(args: &[&str]) -> String {
    let out: Output = xtask(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.trim().is_empty(),
        "{args:?} printed before refusing:\n{stdout}"
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    err
}

/// The run records of a results directory without what differs between invocations (wall
/// time, provenance, and so the checksum), by file name.
pub fn records(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            let fields = v.as_object_mut().unwrap();
            fields.remove("wall_seconds");
            fields.remove("checksum");
            fields.remove("provenance");
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A small IDX dataset written into `dir` with its manifest (`dir/manifest.json`): `train`
/// and `test` images of `rows` x `cols` pixels, labels cycling through `classes`, each image
/// a bright block whose place depends on its label (so a network can learn it). Returns the
/// manifest's path.
pub fn synthetic_dataset(
    dir: &Path,
    (train, test): (usize, usize),
    (rows, cols): (usize, usize),
    classes: &[u8],
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let make = |n: usize, salt: usize| {
        let labels: Vec<u8> = (0..n).map(|i| classes[i % classes.len()]).collect();
        let mut pixels = vec![0u8; n * rows * cols];
        for (i, &label) in labels.iter().enumerate() {
            let image = &mut pixels[i * rows * cols..(i + 1) * rows * cols];
            for (j, p) in image.iter_mut().enumerate() {
                let (r, c) = (j / cols, j % cols);
                let lit = (r * 10 / rows.max(1) == usize::from(label))
                    || (c + r + i + salt).is_multiple_of(17);
                *p = if lit {
                    200 + (j % 50) as u8
                } else {
                    ((i + j) % 7) as u8
                };
            }
        }
        (
            transfer_data::write_idx(&[n, rows, cols], &pixels),
            transfer_data::write_idx(&[n], &labels),
        )
    };
    let (tri, trl) = make(train, 0);
    let (tei, tel) = make(test, 5);
    let names = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];
    let mut specs = Vec::new();
    for (name, bytes) in names.iter().zip([tri, trl, tei, tel]) {
        std::fs::write(dir.join(name), &bytes).unwrap();
        specs.push(serde_json::json!({
            "name": name,
            "bytes": bytes.len(),
            "sha256": transfer_data::sha256_hex(&bytes),
        }));
    }
    let manifest = serde_json::json!({
        "name": format!("synthetic-{rows}x{cols}"),
        "train_images": specs[0],
        "train_labels": specs[1],
        "test_images": specs[2],
        "test_labels": specs[3],
    });
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    path
}

/// The ten digits, as a synthetic dataset's classes.
pub const DIGITS: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
