//! The study's error: every failure as one line of plain words, naming the file where there is
//! one.

use std::path::PathBuf;

/// Anything that stops a study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The dataset could not be had.
    #[error(transparent)]
    Data(#[from] transfer_data::DataError),
    /// A training run failed.
    #[error(transparent)]
    Train(#[from] transfer_protocols::TrainError),
    /// A model could not be saved or loaded.
    #[error(transparent)]
    Model(#[from] transfer_model::ModelError),
    /// A protocol or configuration is invalid.
    #[error(transparent)]
    Record(#[from] transfer_records::RecordError),
    /// The results directory cannot be used.
    #[error(transparent)]
    Store(#[from] transfer_records::StoreError),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] transfer_report::ReportError),
    /// A configuration file is wrong.
    #[error("{path}: {what}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Settings that cannot be trained on this data, found before anything trains.
    #[error("{0}")]
    Infeasible(String),
    /// A configuration that does not make sense (an unknown preset, a bad shard).
    #[error("{0}")]
    Config(String),
    /// A record in the results directory was made with another definition of its protocol.
    #[error(
        "{path}: made with another definition of protocol '{protocol}'; choose another --out or rename the protocol"
    )]
    ProtocolChanged {
        /// The record.
        path: PathBuf,
        /// The protocol's name.
        protocol: String,
    },
    /// A broken invariant of this crate: a bug, never a user's mistake.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A worker thread panicked.
    #[error("a worker thread failed")]
    WorkerFailed,
}

/// The study's result type.
pub type Result<T, E = StudyError> = std::result::Result<T, E>;
