//! The dataset of a command: its manifest, and its files verified (downloaded with a progress
//! bar when missing).

use std::path::Path;

use transfer_data::{Dataset, Manifest};

use crate::error::Result;
use crate::progress::DownloadBar;

/// The manifest of a dataset: the file's, or canonical MNIST's.
pub fn read_manifest(manifest: Option<&Path>) -> Result<Manifest> {
    Ok(match manifest {
        Some(path) => Manifest::from_json_file(path)?,
        None => Manifest::mnist(),
    })
}

/// Loads (downloading if needed) and verifies the dataset of `manifest` from `dir`.
pub fn load_dataset(dir: &Path, manifest: &Manifest) -> Result<Dataset> {
    Ok(transfer_data::ensure_dataset(
        dir,
        manifest,
        &DownloadBar::new(),
    )?)
}
