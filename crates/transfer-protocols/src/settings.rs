//! What a training run is given and what it gives back: loop settings, the optimisation,
//! a target-task run's inputs, the outcome, and the observer of progress.

use transfer_data::ImageSet;
use transfer_model::{Backbone, Cnn, CnnConfig, StackedConv};
use transfer_records::{CurvePoint, LossPoint, NetworkShape, Protocol, RunSeeds};

use crate::error::TrainError;
use crate::eval::DEFAULT_MAX_BUFFER_BYTES;

/// Stream of a run's seed that drives dropout masks.
pub(crate) const DROPOUT_STREAM: u64 = 0x0D50_90A7;

/// Images per evaluation chunk unless set: the fastest on burn-flex with the fused kernels
/// (fc1's product amortises its weight's packing over the chunk's rows; docs/performance.md).
pub const DEFAULT_EVAL_CHUNK: usize = 500;

/// How long to train and how often to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSettings {
    /// Training iterations (Adam updates).
    pub iterations: u32,
    /// Test accuracy is measured every this many iterations, and after the last.
    pub eval_every: u32,
    /// Images per training batch.
    pub batch_size: usize,
    /// Images per evaluation chunk (memory versus speed; results do not depend on it
    /// beyond float rounding).
    pub eval_chunk: usize,
    /// How runs trained as a stack compute their convolutions (speed versus memory; results
    /// do not depend on it beyond float rounding).
    pub stacked_conv: StackedConv,
    /// The largest tensor evaluation and the cached features create, in bytes: scoring and
    /// caching go in parts under it. Raise it on devices whose buffers allow more (fewer,
    /// larger parts); results do not depend on it beyond float rounding.
    pub max_buffer_bytes: usize,
    /// The shape of the network trained (channels, kernel, fc1's width).
    pub network: NetworkShape,
}

impl LoopSettings {
    /// `iterations` of the study's network at batch 100, evaluating every `eval_every`, in
    /// chunks of [`DEFAULT_EVAL_CHUNK`] and parts under [`DEFAULT_MAX_BUFFER_BYTES`]; stacks
    /// use grouped convolutions.
    pub fn new(iterations: u32, eval_every: u32) -> Self {
        LoopSettings {
            iterations,
            eval_every,
            batch_size: 100,
            eval_chunk: DEFAULT_EVAL_CHUNK,
            stacked_conv: StackedConv::Grouped,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
            network: NetworkShape::STUDY,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), TrainError> {
        if self.iterations == 0 || self.eval_every == 0 || self.batch_size == 0 {
            return Err(transfer_records::RecordError::Invalid(
                "iterations, eval-every and batch size must be at least 1".into(),
            )
            .into());
        }
        Ok(())
    }
}

/// Receives progress from the training loop.
pub trait Observer {
    /// An iteration finished.
    fn on_step(&mut self, _iteration: u32) {}
    /// The test set was scored after `point.iteration` iterations.
    fn on_eval(&mut self, _point: &CurvePoint) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {}

/// What a training produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The trained network, in inference mode, off the autodiff device.
    pub model: Cnn,
    /// Test accuracy at every evaluation point.
    pub curve: Vec<CurvePoint>,
    /// Mean training loss between evaluation points.
    pub loss_curve: Vec<LossPoint>,
    /// Test accuracy after the last iteration.
    pub final_accuracy: f64,
    /// Seconds taken, training and evaluation; for a run trained in a stack, its share (the
    /// stack's time divided by its members), so that summing runs counts a stack once.
    pub wall_seconds: f64,
    /// Networks trained together in one computation with this one, itself included (1: alone;
    /// see [`crate::run_protocol_stack`]).
    pub stacked: usize,
}

/// How parameters are updated: Adam's step size, and the probability with which dropout
/// zeroes fc1's inputs and the head's inputs during training (0: no dropout).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimisation {
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Dropout probability.
    pub dropout: f64,
}

impl Optimisation {
    /// A protocol's learning rate and dropout.
    pub fn of(protocol: &Protocol) -> Optimisation {
        Optimisation {
            learning_rate: protocol.learning_rate,
            dropout: protocol.dropout,
        }
    }

    /// `learning_rate` without dropout (pretraining).
    pub fn without_dropout(learning_rate: f64) -> Optimisation {
        Optimisation {
            learning_rate,
            dropout: 0.0,
        }
    }
}

/// One target-task run.
#[derive(Debug, Clone, Copy)]
pub struct RunInput<'a> {
    /// The protocol.
    pub protocol: &'a Protocol,
    /// The training subset (already cut to the proportion).
    pub train: &'a ImageSet,
    /// The test set scored during training.
    pub test: &'a ImageSet,
    /// Classes of the target task.
    pub num_classes: usize,
    /// The pretrained backbone, for protocols that start from one.
    pub pretrained: Option<&'a Backbone>,
    /// Iterations and evaluation.
    pub settings: &'a LoopSettings,
    /// The run's seeds: fresh weights (the classifier, and the backbone where it starts
    /// fresh), batches and dropout masks (the subset and the backbone are already chosen).
    pub seeds: RunSeeds,
}

impl RunInput<'_> {
    /// The seeds of the training loop: batches and dropout masks.
    pub fn loop_seeds(&self) -> LoopSeeds {
        LoopSeeds {
            order: self.seeds.order,
            dropout: self.seeds.dropout,
        }
    }
}

/// The seeds of a training loop: the batches' and the dropout masks'. One seed for both is
/// `LoopSeeds::from(seed)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopSeeds {
    /// The order of the batches.
    pub order: u64,
    /// The dropout masks (a stream of this seed).
    pub dropout: u64,
}

impl From<u64> for LoopSeeds {
    fn from(seed: u64) -> LoopSeeds {
        LoopSeeds {
            order: seed,
            dropout: seed,
        }
    }
}

/// The network of shape `network` for `num_classes` classes on images the size of
/// `images`', checked (sides from 2 to [`transfer_model::MAX_IMAGE_SIDE`], a kernel the images
/// can take).
pub fn network_config(
    num_classes: usize,
    images: &ImageSet,
    network: &NetworkShape,
) -> Result<CnnConfig, TrainError> {
    network.validate()?;
    let config = CnnConfig::new(num_classes)
        .with_image_size([images.rows, images.cols])
        .with_channels(network.channels)
        .with_kernel_size(network.kernel_size)
        .with_fc_width(network.fc_width);
    config.validate()?;
    Ok(config)
}

/// Refuses training or scoring on an empty set, before any work is done.
pub(crate) fn check_sets(train: &ImageSet, test: &ImageSet) -> Result<(), TrainError> {
    if train.is_empty() {
        return Err(TrainError::Empty("training set"));
    }
    if test.is_empty() {
        return Err(TrainError::Empty("test set"));
    }
    Ok(())
}
