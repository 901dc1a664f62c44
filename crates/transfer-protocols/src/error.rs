//! The crate's error type.

/// Why a training run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The data could not be cut or sampled as asked.
    #[error(transparent)]
    Data(#[from] transfer_data::DataError),
    /// The model could not be built, saved or loaded.
    #[error(transparent)]
    Model(#[from] transfer_model::ModelError),
    /// A protocol or setting is out of range.
    #[error(transparent)]
    Record(#[from] transfer_records::RecordError),
    /// A protocol starts from a pretrained backbone but none was given.
    #[error("protocol '{0}' needs a pretrained backbone")]
    NoPretrained(String),
    /// Runs given to be trained together differ where they must agree.
    #[error("runs trained together must share {0}")]
    Stack(&'static str),
    /// A set of images to train on or score on holds none.
    #[error("the {0} holds no image")]
    Empty(&'static str),
    /// Reading a value back from the device failed.
    #[error("the device failed: {0}")]
    Device(String),
}
