//! Finding, decompressing, verifying and parsing a dataset's four files.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::idx::parse_idx;
use crate::images::ImageSet;
use crate::manifest::{FileSpec, Manifest, accepted_names};

/// A verified dataset: training and test images with their original labels, and the manifest
/// whose sizes and SHA-256 its files matched. Only [`Dataset::load`] makes one, so holding a
/// `Dataset` means holding data that was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub(crate) manifest: Manifest,
    pub(crate) train: ImageSet,
    pub(crate) test: ImageSet,
}

impl Dataset {
    /// The manifest's name (e.g. `MNIST`).
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The manifest the files were verified against: their names, sizes and SHA-256.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's file names: train images, train labels, test images, test labels.
    pub fn files(&self) -> [&str; 4] {
        self.manifest.files().map(|f| f.name.as_str())
    }

    /// The training split.
    pub fn train(&self) -> &ImageSet {
        &self.train
    }

    /// The test split.
    pub fn test(&self) -> &ImageSet {
        &self.test
    }

    /// Loads the four files of `manifest` from `dir`, each gzip-compressed or raw and under
    /// either naming style, and verifies every file's decompressed size and SHA-256 before
    /// parsing it. Nothing unverified is ever returned.
    pub fn load(dir: &Path, manifest: &Manifest) -> Result<Dataset> {
        manifest.validate().map_err(|what| DataError::Manifest {
            path: dir.to_owned(),
            what,
        })?;
        let [train_images, train_labels, test_images, test_labels] = manifest.files();
        let (train, test) = std::thread::scope(|scope| {
            let test = scope.spawn(|| load_split(dir, test_images, test_labels));
            let train = load_split(dir, train_images, train_labels);
            let test = test.join().unwrap_or_else(|_| {
                Err(DataError::Inconsistent {
                    what: "the thread loading the test split panicked".to_owned(),
                })
            });
            (train, test)
        });
        let (train, test) = (train?, test?);
        if (train.rows, train.cols) != (test.rows, test.cols) {
            return Err(DataError::Inconsistent {
                what: format!(
                    "training images are {}x{} but test images are {}x{}",
                    train.rows, train.cols, test.rows, test.cols
                ),
            });
        }
        Ok(Dataset {
            manifest: manifest.clone(),
            train,
            test,
        })
    }
}

/// Where a manifest file lies in `dir`, if it is there under an accepted name.
pub fn locate(dir: &Path, spec: &FileSpec) -> Option<PathBuf> {
    accepted_names(&spec.name)
        .into_iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// The names of the manifest's files that are not in `dir`.
pub fn missing_files<'m>(dir: &Path, manifest: &'m Manifest) -> Vec<&'m FileSpec> {
    manifest
        .files()
        .into_iter()
        .filter(|spec| locate(dir, spec).is_none())
        .collect()
}

fn load_split(dir: &Path, images: &FileSpec, labels: &FileSpec) -> Result<ImageSet> {
    let (images_path, images_bytes) = read_verified(dir, images)?;
    let (labels_path, labels_bytes) = read_verified(dir, labels)?;
    let images = parse_idx(&images_bytes, 3).map_err(|what| DataError::Idx {
        path: images_path.clone(),
        what,
    })?;
    let labels = parse_idx(&labels_bytes, 1).map_err(|what| DataError::Idx {
        path: labels_path.clone(),
        what,
    })?;
    if images.dims[1] == 0 || images.dims[2] == 0 {
        return Err(DataError::Idx {
            path: images_path,
            what: format!("images of {}x{} pixels", images.dims[1], images.dims[2]),
        });
    }
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::Inconsistent {
            what: format!(
                "{} holds {} images but {} holds {} labels",
                images_path.display(),
                images.dims[0],
                labels_path.display(),
                labels.dims[0]
            ),
        });
    }
    Ok(ImageSet {
        rows: images.dims[1],
        cols: images.dims[2],
        pixels: images.data,
        labels: labels.data,
    })
}

/// Reads one file (decompressing it when it is gzip) and checks its decompressed size and
/// SHA-256 against the manifest. Returns the path it read and the verified content.
pub fn read_verified(dir: &Path, spec: &FileSpec) -> Result<(PathBuf, Vec<u8>)> {
    let path = locate(dir, spec).ok_or_else(|| DataError::Missing {
        dir: dir.to_owned(),
        name: spec.name.clone(),
        tried: accepted_names(&spec.name).join(", "),
    })?;
    let content = read_content(&path, spec.bytes)?;
    verify_content(&path, &content, spec)?;
    Ok((path, content))
}

/// Reads a file's content, gunzipping it when it starts with the gzip magic bytes or is
/// named `.gz`. At most `expected_len + 1` bytes are ever decompressed, so a damaged or
/// hostile file cannot exhaust memory.
pub fn read_content(path: &Path, expected_len: u64) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let named_gz = path.extension().is_some_and(|e| e == "gz");
    let is_gzip = raw.starts_with(&[0x1f, 0x8b]);
    if !is_gzip {
        if named_gz {
            return Err(DataError::Gzip {
                path: path.to_owned(),
                reason: "no gzip header".to_owned(),
            });
        }
        return Ok(raw);
    }
    // Deflate expands at most 1032-fold: no more is reserved than the file can produce.
    let capacity = usize::try_from(expected_len)
        .unwrap_or(usize::MAX)
        .min(raw.len().saturating_mul(1032))
        .min(1 << 30);
    let mut content = Vec::with_capacity(capacity);
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .take(expected_len.saturating_add(1))
        .read_to_end(&mut content)
        .map_err(|e| DataError::Gzip {
            path: path.to_owned(),
            reason: match e.kind() {
                std::io::ErrorKind::UnexpectedEof => "the data ends early (truncated)".to_owned(),
                _ => e.to_string(),
            },
        })?;
    Ok(content)
}

/// Checks decompressed content against a manifest entry: size first, then SHA-256.
pub fn verify_content(path: &Path, content: &[u8], spec: &FileSpec) -> Result<()> {
    if content.len() as u64 != spec.bytes {
        let found = if content.len() as u64 > spec.bytes {
            "is longer than".to_owned()
        } else {
            format!("is {} bytes, not", content.len())
        };
        return Err(DataError::Content {
            path: path.to_owned(),
            what: format!(
                "decompressed content {found} the expected {} bytes (truncated, padded or another dataset)",
                spec.bytes
            ),
        });
    }
    let actual = transfer_core::sha256_hex(content);
    if actual != spec.sha256 {
        return Err(DataError::Checksum {
            path: path.to_owned(),
            expected: spec.sha256.clone(),
            actual,
        });
    }
    Ok(())
}
