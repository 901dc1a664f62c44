//! The downloader against a local HTTP server on 127.0.0.1: one mirror that answers 404,
//! one that serves corrupted bytes, one that refuses connections, and one that is good.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{TempDir, gzip, mnist_dir, synthetic};
use transfer_data::{
    DataError, Dataset, DownloadOptions, Manifest, Silent, download_missing, part_path,
};

/// A minimal HTTP/1.1 file server: `/good/NAME` serves `root/NAME`, `/corrupt/NAME` the
/// same bytes with one flipped, anything else 404. Honours `Range: bytes=N-`.
struct Server {
    base: String,
    ranged: Arc<AtomicUsize>,
}

impl Server {
    fn start(root: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let ranged = Arc::new(AtomicUsize::new(0));
        let counter = ranged.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = root.clone();
                let counter = counter.clone();
                std::thread::spawn(move || serve(stream, &root, &counter));
            }
        });
        Server { base, ranged }
    }
    fn mirror(&self, kind: &str) -> String {
        format!("{}/{kind}/", self.base)
    }
}

fn serve(mut stream: TcpStream, root: &Path, ranged: &AtomicUsize) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut start = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(range) = lower.strip_prefix("range: bytes=") {
            start = range.trim().trim_end_matches('-').parse().unwrap_or(0);
            ranged.fetch_add(1, Ordering::SeqCst);
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let body = match (kind, std::fs::read(root.join(name))) {
        ("good", Ok(b)) => Some(b),
        ("corrupt", Ok(mut b)) => {
            let mid = b.len() / 2;
            b[mid] ^= 0x55;
            Some(b)
        }
        _ => None,
    };
    let response = match body {
        None => {
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
        }
        Some(b) if start > 0 && start < b.len() => {
            let mut r = format!(
                "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {}-{}/{}\r\nconnection: close\r\n\r\n",
                b.len() - start, start, b.len() - 1, b.len()
            )
            .into_bytes();
            r.extend_from_slice(&b[start..]);
            r
        }
        Some(b) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                b.len()
            )
            .into_bytes();
            r.extend_from_slice(&b);
            r
        }
    };
    let _ = stream.write_all(&response);
}

fn refused_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}

fn options(mirrors: Vec<String>) -> DownloadOptions {
    DownloadOptions {
        mirrors,
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(20),
        max_bytes: 64 << 20,
    }
}

#[test]
fn falls_through_bad_mirrors_to_the_good_one_on_real_mnist() {
    let server = Server::start(mnist_dir());
    let dest = TempDir::new("dl-real");
    let manifest = Manifest::mnist();
    let opts = options(vec![
        server.mirror("missing"),
        refused_mirror(),
        server.mirror("corrupt"),
        server.mirror("good"),
    ]);
    let fetched = download_missing(dest.path(), &manifest, &opts, &Silent).unwrap();
    assert_eq!(fetched.len(), 4);
    let mnist = Dataset::load(dest.path(), &manifest).unwrap();
    assert_eq!((mnist.train().len(), mnist.test().len()), (60_000, 10_000));
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
    // A second call has nothing to do.
    assert!(
        download_missing(dest.path(), &manifest, &opts, &Silent)
            .unwrap()
            .is_empty()
    );
}

/// Serves the synthetic dataset's files gzip-compressed from a fresh directory.
fn synthetic_mirror() -> (TempDir, Manifest, Vec<(String, Vec<u8>)>) {
    let (manifest, files) = synthetic(200, 50, 11);
    let root = TempDir::new("dl-root");
    for (name, bytes) in &files {
        std::fs::write(root.path().join(format!("{name}.gz")), gzip(bytes)).unwrap();
    }
    (root, manifest, files)
}

#[test]
fn every_mirror_failing_is_reported_per_mirror_and_leaves_nothing() {
    let (root, manifest, _) = synthetic_mirror();
    let server = Server::start(root.path().to_owned());
    let dest = TempDir::new("dl-fail");
    let refused = refused_mirror();
    let opts = options(vec![
        server.mirror("missing"),
        server.mirror("corrupt"),
        refused.clone(),
    ]);
    let err = download_missing(dest.path(), &manifest, &opts, &Silent).unwrap_err();
    let DataError::Download { name, attempts } = &err else {
        panic!("unexpected error {err}");
    };
    assert_eq!(name, "train-images-idx3-ubyte");
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts[0].contains("/missing/") && attempts[0].contains("404"),
        "{attempts:?}"
    );
    assert!(
        attempts[1].contains("/corrupt/") && attempts[1].contains("corrupted copy"),
        "{attempts:?}"
    );
    assert!(attempts[2].starts_with(&refused), "{attempts:?}");
    // Nothing but the (empty) lock file of the file it tried.
    let left: Vec<String> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [".train-images-idx3-ubyte.lock"]);
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn a_partial_file_is_resumed_with_a_range_request() {
    let (root, manifest, _) = synthetic_mirror();
    let server = Server::start(root.path().to_owned());
    let dest = TempDir::new("dl-resume");
    let gz = std::fs::read(root.path().join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(
        part_path(dest.path(), &manifest.train_images),
        &gz[..gz.len() / 3],
    )
    .unwrap();
    download_missing(
        dest.path(),
        &manifest,
        &options(vec![server.mirror("good")]),
        &Silent,
    )
    .unwrap();
    assert_eq!(server.ranged.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::fs::read(dest.path().join("train-images-idx3-ubyte.gz")).unwrap(),
        gz
    );
    Dataset::load(dest.path(), &manifest).unwrap();
}

#[test]
fn a_stale_partial_file_is_discarded_not_trusted() {
    let (root, manifest, _) = synthetic_mirror();
    let server = Server::start(root.path().to_owned());
    let dest = TempDir::new("dl-stale");
    // Garbage that is not a prefix of the real file: the resumed file fails its checksum,
    // is deleted, and the next mirror (the same good one) starts from scratch.
    std::fs::write(
        part_path(dest.path(), &manifest.train_images),
        vec![7u8; 100],
    )
    .unwrap();
    let opts = options(vec![server.mirror("good"), server.mirror("good")]);
    download_missing(dest.path(), &manifest, &opts, &Silent).unwrap();
    // The first mirror resumed from the garbage (one range request) and failed its
    // checksum; the second started afresh.
    assert_eq!(server.ranged.load(Ordering::SeqCst), 1);
    assert_eq!(
        std::fs::read(dest.path().join("train-images-idx3-ubyte.gz")).unwrap(),
        std::fs::read(root.path().join("train-images-idx3-ubyte.gz")).unwrap()
    );
    assert!(!part_path(dest.path(), &manifest.train_images).exists());
    Dataset::load(dest.path(), &manifest).unwrap();
}

#[test]
fn many_processes_filling_one_directory_at_once_all_succeed() {
    let (root, manifest, _) = synthetic_mirror();
    let server = Server::start(root.path().to_owned());
    let dest = TempDir::new("dl-concurrent");
    let opts = options(vec![server.mirror("good")]);
    let fetched: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| download_missing(dest.path(), &manifest, &opts, &Silent)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap().unwrap())
            .collect()
    });
    // Each file was fetched exactly once, by whichever worker took its lock first.
    let mut all: Vec<String> = fetched.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all.len(), 4, "{all:?}");
    all.dedup();
    assert_eq!(all.len(), 4, "{all:?}");
    Dataset::load(dest.path(), &manifest).unwrap();
    for spec in manifest.files() {
        assert!(!part_path(dest.path(), spec).exists());
    }
}

#[test]
fn a_manifest_naming_a_path_is_refused_before_anything_is_fetched() {
    let (root, mut manifest, _) = synthetic_mirror();
    let server = Server::start(root.path().to_owned());
    let dest = TempDir::new("dl-escape");
    manifest.test_labels.name = "../escape".into();
    let opts = options(vec![server.mirror("good")]);
    let err = download_missing(dest.path(), &manifest, &opts, &Silent)
        .unwrap_err()
        .to_string();
    assert!(err.contains("plain file name"), "{err}");
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
    assert!(!dest.path().join("../escape.gz").exists());
}
