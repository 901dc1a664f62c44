//! Helpers shared by the integration tests: synthetic IDX datasets and the real MNIST.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use transfer_data::{FileSpec, Manifest, SeededRng, sha256_hex, write_idx};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("transfer-data-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The four IDX files of a small synthetic dataset (labels 0-9, 4x3 pixels) and a
/// manifest describing them. Returns (manifest, [(canonical name, raw bytes); 4]).
pub fn synthetic(train: usize, test: usize, seed: u64) -> (Manifest, Vec<(String, Vec<u8>)>) {
    let mut rng = SeededRng::new(seed);
    let mut make = |n: usize| {
        let pixels: Vec<u8> = (0..n * 12).map(|_| rng.below(256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        (write_idx(&[n, 4, 3], &pixels), write_idx(&[n], &labels))
    };
    let (tri, trl) = make(train);
    let (tei, tel) = make(test);
    let files = vec![
        ("train-images-idx3-ubyte".to_owned(), tri),
        ("train-labels-idx1-ubyte".to_owned(), trl),
        ("t10k-images-idx3-ubyte".to_owned(), tei),
        ("t10k-labels-idx1-ubyte".to_owned(), tel),
    ];
    let spec = |i: usize| FileSpec {
        name: files[i].0.clone(),
        bytes: files[i].1.len() as u64,
        sha256: sha256_hex(&files[i].1),
    };
    let manifest = Manifest {
        name: "synthetic".into(),
        train_images: spec(0),
        train_labels: spec(1),
        test_images: spec(2),
        test_labels: spec(3),
        mirrors: vec![],
    };
    (manifest, files)
}

/// Writes the synthetic files into `dir`, gzip-compressed or raw.
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)], gz: bool) {
    for (name, bytes) in files {
        if gz {
            std::fs::write(dir.join(format!("{name}.gz")), gzip(bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

/// The real MNIST: `MNIST_DIR` if set, else the workspace's `data/mnist` (downloading
/// what is missing). Panics with a clear message when neither works: tests that need the
/// real data must never pass silently without it.
pub fn mnist_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MNIST_DIR") {
        return PathBuf::from(dir);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    transfer_data::ensure_dataset(&dir, &Manifest::mnist(), &transfer_data::Silent).unwrap_or_else(
        |e| panic!("real MNIST is needed: set MNIST_DIR or allow the download ({e})"),
    );
    dir
}
