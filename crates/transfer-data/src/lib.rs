#![doc = include_str!("../README.md")]

#[cfg(feature = "download")]
mod download;
mod error;
mod idx;
mod images;
mod load;
mod manifest;
mod sampler;
mod split;
mod subset;

#[cfg(feature = "download")]
pub use download::{
    DownloadOptions, DownloadProgress, Silent, download_missing, ensure_dataset, part_path,
};
pub use error::{DataError, Result};
pub use idx::{IdxArray, parse_idx, write_idx};
pub use images::{Batch, ImageSet};
pub use load::{Dataset, locate, missing_files, read_content, read_verified, verify_content};
pub use manifest::{FileSpec, MNIST_MIRRORS, Manifest, accepted_names, is_plain_name};
pub use sampler::BatchSampler;
pub use split::{MNIST_TEST_DIGITS, SOURCE_CLASSES, TARGET_CLASSES, Task, check_classes};
pub use subset::{SubsetRule, SubsetSpec, select_subset, subset_size};
/// The generator behind subsets and batches, and the hash behind every check, from
/// `transfer-core`.
pub use transfer_core::{SeededRng, sha256_hex};
