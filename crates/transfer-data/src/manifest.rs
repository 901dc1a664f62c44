//! What a dataset's four files must be: names, decompressed sizes, SHA-256, mirrors.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// One file of a dataset, described by its decompressed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Canonical file name without `.gz`, e.g. `train-images-idx3-ubyte`.
    pub name: String,
    /// Size of the decompressed content in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the decompressed content.
    pub sha256: String,
}

/// A dataset in the IDX format: four files and where to download them.
///
/// [`Manifest::mnist`] is canonical MNIST; any dataset sharing the format (Fashion-MNIST,
/// KMNIST) is described by a JSON file of the same shape and read with
/// [`Manifest::from_json_file`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Human name, e.g. `MNIST`.
    pub name: String,
    /// Training images (IDX rank 3).
    pub train_images: FileSpec,
    /// Training labels (IDX rank 1).
    pub train_labels: FileSpec,
    /// Test images (IDX rank 3).
    pub test_images: FileSpec,
    /// Test labels (IDX rank 1).
    pub test_labels: FileSpec,
    /// Base URLs serving `<name>.gz`, tried in order.
    #[serde(default)]
    pub mirrors: Vec<String>,
}

/// The HTTPS mirrors of canonical MNIST (the ones torchvision and TensorFlow use).
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

impl Manifest {
    /// Canonical MNIST: 60,000 training and 10,000 test images of 28x28 pixels.
    pub fn mnist() -> Self {
        let spec = |name: &str, bytes, sha256: &str| FileSpec {
            name: name.to_owned(),
            bytes,
            sha256: sha256.to_owned(),
        };
        Manifest {
            name: "MNIST".to_owned(),
            train_images: spec(
                "train-images-idx3-ubyte",
                47_040_016,
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            train_labels: spec(
                "train-labels-idx1-ubyte",
                60_008,
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            test_images: spec(
                "t10k-images-idx3-ubyte",
                7_840_016,
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            test_labels: spec(
                "t10k-labels-idx1-ubyte",
                10_008,
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
            mirrors: MNIST_MIRRORS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    /// Reads a manifest from a JSON file (see `examples/fashion-mnist.json`).
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| DataError::Manifest {
            path: path.to_owned(),
            what: e.to_string(),
        })?;
        manifest.validate().map_err(|what| DataError::Manifest {
            path: path.to_owned(),
            what,
        })?;
        Ok(manifest)
    }

    /// Checks what the files and directories will be named after: every file name is a plain
    /// name (letters, digits, `.`, `-`, `_`; not hidden, no directory part), the four names
    /// differ, every SHA-256 is 64 lower-case hex digits, and every mirror is an HTTP(S) URL.
    /// The error is a sentence without the manifest's path; callers add it.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (i, file) in self.files().into_iter().enumerate() {
            if !is_plain_name(&file.name) {
                return Err(format!(
                    "file name {:?} is not a plain file name (letters, digits, '.', '-', '_', not starting with '.')",
                    file.name
                ));
            }
            if self.files()[..i].iter().any(|f| f.name == file.name) {
                return Err(format!("file name {:?} is listed twice", file.name));
            }
            let hex_ok = file.sha256.len() == 64
                && file
                    .sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !hex_ok {
                return Err(format!(
                    "sha256 of {} is not 64 lower-case hex digits",
                    file.name
                ));
            }
        }
        if let Some(bad) = self
            .mirrors
            .iter()
            .find(|m| !(m.starts_with("https://") || m.starts_with("http://")))
        {
            return Err(format!("mirror {bad:?} is not an http:// or https:// URL"));
        }
        Ok(())
    }

    /// The four files, in the order train images, train labels, test images, test labels.
    pub fn files(&self) -> [&FileSpec; 4] {
        [
            &self.train_images,
            &self.train_labels,
            &self.test_images,
            &self.test_labels,
        ]
    }
}

/// Whether `name` can be joined to a directory without leaving it or hiding: non-empty,
/// at most 255 bytes, ASCII letters, digits, `.`, `-` and `_` only, not starting with `.`.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The file names accepted for a canonical name: both naming styles
/// (`train-images-idx3-ubyte` and `train-images.idx3-ubyte`), each raw or with `.gz`.
pub fn accepted_names(canonical: &str) -> Vec<String> {
    let mut styles = vec![canonical.to_owned()];
    let dotted = canonical.replacen("-idx", ".idx", 1);
    if dotted != canonical {
        styles.push(dotted);
    }
    let mut names = Vec::with_capacity(styles.len() * 2);
    for style in styles {
        names.push(format!("{style}.gz"));
        names.push(style);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_naming_styles_are_accepted() {
        let names = accepted_names("train-images-idx3-ubyte");
        assert_eq!(
            names,
            [
                "train-images-idx3-ubyte.gz",
                "train-images-idx3-ubyte",
                "train-images.idx3-ubyte.gz",
                "train-images.idx3-ubyte"
            ]
        );
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        for bad in ["/etc/passwd", "../x", "a/b", ".hidden", "", "a b", "x\\y"] {
            let mut m = Manifest::mnist();
            m.test_labels.name = bad.to_owned();
            let err = m.validate().unwrap_err();
            assert!(err.contains("plain file name"), "{bad}: {err}");
        }
        let mut m = Manifest::mnist();
        m.test_labels.name = m.train_labels.name.clone();
        assert!(m.validate().unwrap_err().contains("twice"));
        let mut m = Manifest::mnist();
        m.mirrors = vec!["file:///etc/".into()];
        assert!(m.validate().unwrap_err().contains("mirror"));
        assert!(Manifest::mnist().validate().is_ok());
    }

    #[test]
    fn manifest_json_round_trip() {
        let m = Manifest::mnist();
        let json = serde_json::to_string(&m).unwrap();
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(m, back);
    }
}
