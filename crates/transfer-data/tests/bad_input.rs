//! Every kind of damaged input gives a one-line error naming the file, never a panic.

mod common;

use common::{TempDir, gzip, synthetic, write_files};
use transfer_data::{DataError, Dataset, write_idx};

fn load_err(dir: &TempDir, manifest: &transfer_data::Manifest) -> String {
    let err = Dataset::load(dir.path(), manifest).unwrap_err();
    let line = err.to_string();
    assert!(!line.contains('\n'), "error spans lines: {line}");
    line
}

#[test]
fn good_files_load_raw_gzip_and_dotted() {
    let (manifest, files) = synthetic(50, 20, 1);
    for (gz, dotted) in [(false, false), (true, false), (true, true), (false, true)] {
        let dir = TempDir::new("good");
        let renamed: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(n, b)| {
                let n = if dotted {
                    n.replacen("-idx", ".idx", 1)
                } else {
                    n.clone()
                };
                (n, b.clone())
            })
            .collect();
        write_files(dir.path(), &renamed, gz);
        let d = Dataset::load(dir.path(), &manifest).unwrap();
        assert_eq!(
            (
                d.train().len(),
                d.test().len(),
                d.train().rows,
                d.train().cols
            ),
            (50, 20, 4, 3)
        );
        assert_eq!(d.train().labels[13], 3);
    }
}

#[test]
fn missing_file_is_named() {
    let (manifest, files) = synthetic(10, 10, 2);
    let dir = TempDir::new("missing");
    write_files(dir.path(), &files[..3], true);
    let line = load_err(&dir, &manifest);
    assert!(line.contains("t10k-labels-idx1-ubyte"), "{line}");
    assert!(line.contains("no file"), "{line}");
}

#[test]
fn truncated_gzip_is_refused() {
    let (manifest, files) = synthetic(30, 10, 3);
    let dir = TempDir::new("trunc");
    write_files(dir.path(), &files, true);
    let path = dir.path().join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let line = load_err(&dir, &manifest);
    assert!(line.contains("train-images-idx3-ubyte.gz"), "{line}");
    assert!(
        line.contains("gzip") || line.contains("truncated"),
        "{line}"
    );
}

#[test]
fn non_gzip_data_under_gz_name_is_refused() {
    let (manifest, files) = synthetic(10, 10, 4);
    let dir = TempDir::new("notgz");
    write_files(dir.path(), &files, true);
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte.gz"),
        b"hello, not gzip",
    )
    .unwrap();
    let line = load_err(&dir, &manifest);
    assert!(
        line.contains("t10k-images-idx3-ubyte.gz") && line.contains("not valid gzip"),
        "{line}"
    );
}

#[test]
fn checksum_mismatch_is_refused() {
    let (manifest, mut files) = synthetic(10, 10, 5);
    files[0].1[40] ^= 0xff;
    let dir = TempDir::new("sha");
    write_files(dir.path(), &files, false);
    let err = Dataset::load(dir.path(), &manifest).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("train-images-idx3-ubyte"));
}

/// A manifest that trusts whatever bytes are written, so the IDX parser itself is reached.
fn trusting(files: &[(String, Vec<u8>)]) -> transfer_data::Manifest {
    let spec = |i: usize| transfer_data::FileSpec {
        name: files[i].0.clone(),
        bytes: files[i].1.len() as u64,
        sha256: transfer_data::sha256_hex(&files[i].1),
    };
    transfer_data::Manifest {
        name: "t".into(),
        train_images: spec(0),
        train_labels: spec(1),
        test_images: spec(2),
        test_labels: spec(3),
        mirrors: vec![],
    }
}

#[test]
fn bad_idx_headers_are_refused_even_when_checksums_match() {
    let (_, files) = synthetic(10, 10, 6);
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Damage)> = vec![
        ("magic", Box::new(|b: &mut Vec<u8>| b[0] = 7)),
        ("dimensions", Box::new(|b: &mut Vec<u8>| b[3] = 2)),
        (
            "promises",
            Box::new(|b: &mut Vec<u8>| b[4..8].copy_from_slice(&(1u32 << 31).to_be_bytes())),
        ),
    ];
    for (expect, damage) in cases {
        let mut files = files.clone();
        damage(&mut files[2].1);
        let manifest = trusting(&files);
        let dir = TempDir::new("idx");
        write_files(dir.path(), &files, true);
        let line = load_err(&dir, &manifest);
        assert!(
            line.contains("t10k-images-idx3-ubyte") && line.contains(expect),
            "{expect}: {line}"
        );
    }
}

#[test]
fn image_and_label_counts_must_agree() {
    let (_, mut files) = synthetic(10, 10, 7);
    files[1].1 = write_idx(&[9], &[0; 9]);
    let manifest = trusting(&files);
    let dir = TempDir::new("count");
    write_files(dir.path(), &files, false);
    let line = load_err(&dir, &manifest);
    assert!(
        line.contains("10 images") && line.contains("9 labels"),
        "{line}"
    );
}

#[test]
fn gzip_bomb_is_cut_at_the_expected_size() {
    let (manifest, files) = synthetic(10, 10, 8);
    let dir = TempDir::new("bomb");
    write_files(dir.path(), &files, true);
    // 64 MiB of zeros in place of a file expected to be a few hundred bytes.
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte.gz"),
        gzip(&vec![0u8; 64 << 20]),
    )
    .unwrap();
    let line = load_err(&dir, &manifest);
    assert!(line.contains("longer than"), "{line}");
}

#[test]
fn manifest_file_is_read_and_checked() {
    let (manifest, _) = synthetic(10, 10, 9);
    let dir = TempDir::new("manifest");
    let path = dir.path().join("m.json");
    std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
    assert_eq!(
        transfer_data::Manifest::from_json_file(&path).unwrap(),
        manifest
    );
    std::fs::write(&path, r#"{"name": "x", "colour": 1}"#).unwrap();
    let err = transfer_data::Manifest::from_json_file(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("m.json") && err.contains("colour"), "{err}");
}
