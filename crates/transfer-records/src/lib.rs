//! The plain records of the MNIST transfer-learning study: what a protocol is, how a study
//! is configured, what one training run produced, and how every run's seed is derived.
//!
//! No tensor library is involved: the reporting layer, or any other program, reads results
//! with this crate alone.
//!
//! ```
//! use transfer_records::{Protocol, run_seed};
//!
//! let frozen = Protocol::preset("frozen").unwrap();
//! assert!(frozen.needs_pretraining() && frozen.freeze_backbone);
//! // A run's seed depends on (master seed, protocol, proportion, repetition) only.
//! assert_eq!(run_seed(1, "raw", 0.1, 3), run_seed(1, "raw", 0.1, 3));
//! assert_ne!(run_seed(1, "raw", 0.1, 3), run_seed(1, "raw", 0.1, 4));
//! ```

mod config;
mod error;
mod protocol;
mod run;
mod seeds;
mod store;

pub use config::{StudyConfig, TrainingSettings};
pub use error::RecordError;
pub use protocol::{BackboneStart, Protocol};
pub use run::{BackendInfo, CurvePoint, LossPoint, PretrainRecord, RunRecord};
pub use seeds::{pretrain_seed, run_seed};
pub use store::{ResultsDir, StoreError, read_json, write_atomic, write_json};

/// Lower-case hex SHA-256 of a string (configuration hashes).
pub fn sha256_hex(text: &str) -> String {
    transfer_data::sha256_hex(text.as_bytes())
}
