//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while getting, checking or cutting a dataset.
///
/// Every variant that concerns a file names it, so one line of `Display` tells a user
/// which file is wrong and how.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file the manifest lists is in none of the accepted naming styles.
    #[error("{dir}: no file for '{name}' (looked for {tried})")]
    Missing {
        /// Directory searched.
        dir: PathBuf,
        /// Canonical name of the missing file.
        name: String,
        /// The file names that were tried, comma-separated.
        tried: String,
    },
    /// Reading a file failed at the operating-system level.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `.gz` file that is not valid gzip data, or that ends early.
    #[error("{path}: not valid gzip data ({reason})")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// The decompressed content is not what the manifest promises.
    #[error("{path}: {what}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        what: String,
    },
    /// The decompressed content hashes to something other than the manifest's SHA-256.
    #[error(
        "{path}: SHA-256 mismatch: expected {expected}, got {actual} (damaged or not the expected dataset)"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The manifest's hash.
        expected: String,
        /// The hash of what was read.
        actual: String,
    },
    /// The bytes are not a well-formed IDX file.
    #[error("{path}: bad IDX data: {what}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        what: String,
    },
    /// The images and labels files of one split disagree.
    #[error("{what}")]
    Inconsistent {
        /// What disagrees.
        what: String,
    },
    /// A manifest file could not be understood.
    #[error("{path}: bad manifest: {what}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Every mirror failed for a file; one line per mirror says why.
    #[error("could not download {name} from any mirror: {}", .attempts.join("; "))]
    Download {
        /// The file that could not be fetched.
        name: String,
        /// `mirror: reason`, one per mirror tried.
        attempts: Vec<String>,
    },
    /// The crate was built without the `download` feature and a file is missing.
    #[error("{name} is missing and this build cannot download (feature 'download' is off)")]
    DownloadDisabled {
        /// The missing file.
        name: String,
    },
    /// A class set is empty.
    #[error("the class list is empty")]
    NoClasses,
    /// A class appears twice, in one list or in both.
    #[error("class {0} is listed more than once (class sets must not overlap)")]
    DuplicateClass(u8),
    /// A class the data does not contain.
    #[error("{file}: class {class} does not occur (labels present: {present})")]
    UnknownClass {
        /// The label file (and dataset) it is missing from.
        file: String,
        /// The requested class.
        class: u8,
        /// The labels that do occur.
        present: String,
    },
    /// A proportion outside (0, 1].
    #[error("proportion {0} is outside (0, 1]")]
    Proportion(f64),
    /// A subset rule that gives no image, or fewer than one batch.
    #[error(
        "proportion {proportion} of {available} images gives {size} images, fewer than one batch of {batch}"
    )]
    SubsetTooSmall {
        /// The proportion asked for.
        proportion: f64,
        /// Images available.
        available: usize,
        /// Images the rule gives.
        size: usize,
        /// Batch size.
        batch: usize,
    },
    /// Batch size zero.
    #[error("batch size must be at least 1")]
    ZeroBatch,
    /// A subset-rule name that is not known.
    #[error("unknown subset rule '{0}' (accepted: prefix, stratified, drawn)")]
    UnknownRule(String),
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
