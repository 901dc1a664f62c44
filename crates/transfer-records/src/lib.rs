#![doc = include_str!("../README.md")]

mod claim;
mod config;
mod error;
mod protocol;
mod run;
mod seeds;
mod store;
mod vary;
mod verify;

pub use claim::{ALL, ClaimSpec, ClaimTest};
pub use config::{DatasetIdentity, NetworkShape, RecordKind, StudyConfig, TrainingSettings};
pub use error::RecordError;
pub use protocol::{BackboneStart, Protocol};
pub use run::{
    BackendInfo, CurvePoint, LossPoint, PretrainRecord, Provenance, RunRecord, SavedModel,
    split_at_divergence, utc_timestamp,
};
pub use seeds::{pretrain_seed, run_seed, subset_seed};
pub use store::{
    PretrainLock, ResultsDir, SetAside, StoreError, read_json, write_atomic, write_json,
    write_new_atomic,
};
/// The subset rule of [`TrainingSettings`], from `transfer-data`.
pub use transfer_data::SubsetRule;
pub use vary::{RunSeeds, Source, Sources};
pub use verify::{eval_points, pretrain_file_name, run_file_name, weights_file_name};

/// Lower-case hex SHA-256 of a string (configuration hashes).
pub fn sha256_hex(text: &str) -> String {
    transfer_core::sha256_hex(text.as_bytes())
}

fn sha256_hex_bytes(bytes: &[u8]) -> String {
    transfer_core::sha256_hex(bytes)
}
