//! MNIST for a transfer-learning study, without any tensor library.
//!
//! The crate gets a dataset in the IDX format onto the machine ([`download_missing`]),
//! proves it is the expected one ([`Dataset::load`] checks every file's SHA-256 before
//! parsing), cuts it into class tasks ([`Dataset::task`]), chooses training subsets by
//! proportion ([`select_subset`]) and draws seeded batches ([`BatchSampler`]) that come out
//! as flat `f32` NCHW buffers ([`Batch`]) ready for any framework.
//!
//! ```no_run
//! use transfer_data::{BatchSampler, Dataset, Manifest, SubsetRule, select_subset};
//!
//! # fn main() -> Result<(), transfer_data::DataError> {
//! let mnist = Dataset::load("data/mnist".as_ref(), &Manifest::mnist())?;
//! let (_source, target) = mnist.transfer_tasks(&[0, 1, 2, 3, 4, 5], &[6, 7, 8, 9])?;
//! let subset = select_subset(&target.train.labels, 4, 0.01, SubsetRule::Prefix, 100, 0)?;
//! assert_eq!(subset.len(), 200);
//! let train = target.train.select(&subset);
//! let mut sampler = BatchSampler::new(train.len(), 100, 42)?;
//! let batch = train.batch(sampler.next_batch());
//! assert_eq!(batch.shape(), [100, 1, 28, 28]);
//! # Ok(()) }
//! ```

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
pub use split::{SOURCE_CLASSES, TARGET_CLASSES, Task, check_classes};
pub use subset::{SubsetRule, SubsetSpec, select_subset, subset_size};
/// The generator behind subsets and batches, and the hash behind every check, from
/// `transfer-core`.
pub use transfer_core::{SeededRng, sha256_hex};
