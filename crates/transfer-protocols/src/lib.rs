#![doc = include_str!("../README.md")]

// The one unsafe block is an allocator setting (`keep_freed_memory`); nothing else may add one.

mod adam;
mod error;
mod eval;
mod features;
mod masks;
mod memory;
mod optimise;
mod settings;
mod stack;
mod train;

pub use adam::OnePassAdam;
pub use error::TrainError;
pub use eval::{DEFAULT_MAX_BUFFER_BYTES, EvalSet, batch_tensors};
pub use features::{FeatureSet, train_classifier_on_features};
pub use memory::keep_freed_memory;
pub use settings::{
    DEFAULT_EVAL_CHUNK, LoopSeeds, LoopSettings, Observer, Optimisation, RunInput, Silent,
    TrainOutcome, network_config,
};
pub use stack::{pretrain_stack, run_protocol_stack};
pub use train::{pretrain, run_protocol, train_model};

pub use transfer_model::StackedConv;
pub use transfer_records::Protocol;
