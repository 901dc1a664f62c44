//! Training and evaluating the study's CNN on any burn device: pretraining on the source
//! task, and the protocols (raw, frozen, finetune, dropout, or any [`Protocol`] value) on the
//! target task, all through one training loop.
//!
//! The crate takes a [`burn::prelude::Device`] and never names a backend; the caller picks
//! one. It knows nothing of files, plots or the terminal: progress goes to an [`Observer`].
//!
//! ```no_run
//! use burn::prelude::*;
//! use transfer_data::{Dataset, Manifest};
//! use transfer_protocols::{LoopSettings, Silent, pretrain, run_protocol, RunInput};
//! use transfer_records::Protocol;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::flex();
//! let mnist = Dataset::load("data/mnist".as_ref(), &Manifest::mnist())?;
//! let (source, target) = mnist.transfer_tasks(&[0, 1, 2, 3, 4, 5], &[6, 7, 8, 9])?;
//! let settings = LoopSettings::new(300, 100);
//! let pretrained = pretrain(&device, &source, &settings, 1e-3, 7, &mut Silent)?;
//! let outcome = run_protocol(&device, &RunInput {
//!     protocol: &Protocol::preset("frozen").unwrap(),
//!     train: &target.train.select(&(0..100).collect::<Vec<_>>()),
//!     test: &target.test,
//!     num_classes: 4,
//!     pretrained: Some(&pretrained.model.backbone),
//!     settings: &settings,
//!     seed: 11,
//! }, &mut Silent)?;
//! println!("final accuracy {:.4}", outcome.final_accuracy);
//! # Ok(()) }
//! ```

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
    DEFAULT_EVAL_CHUNK, LoopSettings, Observer, Optimisation, RunInput, Silent, TrainOutcome,
    network_config,
};
pub use stack::{pretrain_stack, run_protocol_stack};
pub use train::{pretrain, run_protocol, train_model};

pub use transfer_model::StackedConv;
pub use transfer_records::Protocol;
