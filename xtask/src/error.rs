//! The command line's error: every failure as one line of plain words.

/// Anything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum XtaskError {
    /// The dataset could not be had.
    #[error(transparent)]
    Data(#[from] transfer_data::DataError),
    /// A model could not be saved or loaded.
    #[error(transparent)]
    Model(#[from] transfer_model::ModelError),
    /// A protocol or configuration is invalid.
    #[error(transparent)]
    Record(#[from] transfer_records::RecordError),
    /// The results directory cannot be used.
    #[error(transparent)]
    Store(#[from] transfer_records::StoreError),
    /// A network could not be exported.
    #[error(transparent)]
    Export(#[from] transfer_model::SafetensorsError),
    /// The study could not run.
    #[error(transparent)]
    Study(#[from] transfer_study::StudyError),
    /// The report could not be written.
    #[error(transparent)]
    Report(#[from] transfer_report::ReportError),
    /// A backend cannot be used.
    #[error("{0}")]
    Backend(String),
    /// The PyTorch side of `bench --compare` could not be run or read.
    #[error("{0}")]
    Pytorch(String),
    /// Arguments that do not make sense together.
    #[error("{0}")]
    Usage(String),
}

/// The command line's result type.
pub type Result<T, E = XtaskError> = std::result::Result<T, E>;
