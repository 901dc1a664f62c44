//! Fetching missing dataset files from a list of mirrors.
//!
//! Each file is downloaded to a hidden `.part` file beside its final name, resumed with an
//! HTTP range request when a previous attempt left one, verified (decompressed size and
//! SHA-256), and only then renamed into place: a half-downloaded or corrupted file never
//! looks complete. Any failure at one mirror (HTTP error, refused connection, time-out,
//! wrong checksum) moves on to the next; when all fail, the error lists each mirror's reason.
//!
//! Any number of processes may fill one directory at once (the first start of a cluster job
//! array): each file is fetched under an exclusive lock on a hidden `.NAME.lock` beside it, and
//! a process that waited for the lock finds the file in place and moves on.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{DataError, Result};
use crate::load::{locate, read_content, verify_content};
use crate::manifest::{FileSpec, Manifest};

/// Receives download progress; the command line draws a progress bar with it.
pub trait DownloadProgress: Sync {
    /// A transfer of `file` from `url` starts; `total` is its length if the server said,
    /// `resumed_from` the bytes already on disk.
    fn started(&self, _file: &str, _url: &str, _total: Option<u64>, _resumed_from: u64) {}
    /// `bytes` more bytes arrived.
    fn advanced(&self, _bytes: u64) {}
    /// The transfer ended, verified or not.
    fn ended(&self) {}
    /// A mirror failed for `file`; the next one will be tried.
    fn mirror_failed(&self, _file: &str, _url: &str, _reason: &str) {}
}

/// A [`DownloadProgress`] that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl DownloadProgress for Silent {}

/// Where and how to download.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Base URLs tried in order; `<base>/<name>.gz` is fetched.
    pub mirrors: Vec<String>,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed without receiving a byte.
    pub read_timeout: Duration,
    /// Largest body accepted from a server, in bytes.
    pub max_bytes: u64,
}

impl DownloadOptions {
    /// The manifest's mirrors with time-outs suited to a slow connection.
    pub fn for_manifest(manifest: &Manifest) -> Self {
        DownloadOptions {
            mirrors: manifest.mirrors.clone(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            max_bytes: 256 << 20,
        }
    }
}

/// Downloads every file of `manifest` that `dir` lacks, creating `dir` if needed.
/// Returns the names of the files it fetched (empty when nothing was missing).
pub fn download_missing(
    dir: &Path,
    manifest: &Manifest,
    options: &DownloadOptions,
    progress: &dyn DownloadProgress,
) -> Result<Vec<String>> {
    // The file names become paths under `dir`: only plain names get that far.
    manifest.validate().map_err(|what| DataError::Manifest {
        path: dir.to_owned(),
        what,
    })?;
    let missing: Vec<&FileSpec> = manifest
        .files()
        .into_iter()
        .filter(|spec| locate(dir, spec).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(options.connect_timeout))
            .timeout_recv_response(Some(options.read_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .http_status_as_error(false)
            .build(),
    );
    let mut fetched = Vec::new();
    for spec in missing {
        let lock_path = dir.join(format!(".{}.lock", spec.name));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DataError::io(&lock_path, e))?;
        lock.lock().map_err(|e| DataError::io(&lock_path, e))?;
        if locate(dir, spec).is_some() {
            // Another process fetched it while this one waited for the lock.
            continue;
        }
        let mut attempts = Vec::new();
        let mut done = false;
        if options.mirrors.is_empty() {
            attempts.push("no mirror is configured".to_owned());
        }
        for mirror in &options.mirrors {
            let url = format!("{}/{}.gz", mirror.trim_end_matches('/'), spec.name);
            match fetch_one(&agent, &url, dir, spec, options.max_bytes, progress) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(reason) => {
                    progress.mirror_failed(&spec.name, &url, &reason);
                    attempts.push(format!("{url}: {reason}"));
                }
            }
        }
        if !done {
            return Err(DataError::Download {
                name: spec.name.clone(),
                attempts,
            });
        }
        fetched.push(spec.name.clone());
    }
    Ok(fetched)
}

/// The hidden file a download of `spec` is written to before it is verified.
pub fn part_path(dir: &Path, spec: &FileSpec) -> PathBuf {
    dir.join(format!(".{}.gz.part", spec.name))
}

fn fetch_one(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    spec: &FileSpec,
    max_bytes: u64,
    progress: &dyn DownloadProgress,
) -> std::result::Result<(), String> {
    let part = part_path(dir, spec);
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let mut response = request.call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let resumed_from = match status {
        206 if have > 0 => have,
        200 => 0,
        416 if have > 0 => {
            // The range starts at or past the end: the part file is stale or complete.
            // Start over at the next attempt rather than trusting it.
            let _ = std::fs::remove_file(&part);
            return Err("server refused to resume (HTTP 416); partial file discarded".into());
        }
        other => return Err(format!("HTTP {other}")),
    };
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|len| len + resumed_from);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    file.set_len(resumed_from)
        .and_then(|()| file.seek(SeekFrom::Start(resumed_from)).map(|_| ()))
        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    progress.started(&spec.name, url, total, resumed_from);
    let copied = copy_body(
        response.body_mut().with_config().limit(max_bytes).reader(),
        &mut file,
        progress,
    );
    progress.ended();
    copied.and_then(|()| file.sync_all().map_err(|e| e.to_string()))?;
    drop(file);
    // Verify before anything gets a final name.
    let verified =
        read_content(&part, spec.bytes).and_then(|content| verify_content(&part, &content, spec));
    if let Err(e) = verified {
        let _ = std::fs::remove_file(&part);
        return Err(match e {
            DataError::Checksum { .. } => "corrupted copy: wrong SHA-256".to_owned(),
            DataError::Gzip { reason, .. } => format!("corrupted copy: not valid gzip ({reason})"),
            DataError::Content { what, .. } => format!("corrupted copy: {what}"),
            other => other.to_string(),
        });
    }
    let gzipped = std::fs::File::open(&part)
        .and_then(|mut f| {
            let mut magic = [0u8; 2];
            f.read_exact(&mut magic).map(|()| magic == [0x1f, 0x8b])
        })
        .unwrap_or(false);
    let final_path = if gzipped {
        dir.join(format!("{}.gz", spec.name))
    } else {
        dir.join(&spec.name)
    };
    std::fs::rename(&part, &final_path)
        .map_err(|e| format!("cannot rename to {}: {e}", final_path.display()))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn copy_body(
    mut body: impl Read,
    file: &mut File,
    progress: &dyn DownloadProgress,
) -> std::result::Result<(), String> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        file.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        progress.advanced(n as u64);
    }
}

/// Loads the dataset of `manifest` from `dir`, first downloading whatever is missing from
/// the manifest's mirrors. The one call a program needs to get verified data.
pub fn ensure_dataset(
    dir: &Path,
    manifest: &Manifest,
    progress: &dyn DownloadProgress,
) -> Result<crate::Dataset> {
    download_missing(
        dir,
        manifest,
        &DownloadOptions::for_manifest(manifest),
        progress,
    )?;
    crate::Dataset::load(dir, manifest)
}
