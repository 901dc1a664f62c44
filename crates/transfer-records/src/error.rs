//! Errors of the record types.

/// A protocol, configuration or record that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A protocol name that is neither a preset nor defined by the configuration.
    #[error("unknown protocol '{name}' (accepted: {accepted})")]
    UnknownProtocol {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        accepted: String,
    },
    /// A value outside its range.
    #[error("{0}")]
    Invalid(String),
}
