//! The one training loop, and the two things it trains: a whole network, or a classifier
//! on frozen features.

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use transfer_data::{Batch, BatchSampler, ImageSet, SeededRng, Task};
use transfer_model::{Backbone, Cnn, CnnConfig, StackedConv};
use transfer_records::{BackboneStart, CurvePoint, LossPoint, Protocol};

use crate::OnePassAdam;
use crate::error::TrainError;
use crate::eval::{DEFAULT_MAX_BUFFER_BYTES, EvalSet, batch_tensors, read_floats};
use crate::features::{FeatureSet, train_classifier_on_features};
use crate::masks::classify;

/// Stream of a run's seed that drives dropout masks.
pub(crate) const DROPOUT_STREAM: u64 = 0x0D50_90A7;

/// Images per evaluation chunk unless set: on burn-flex with the fused kernels, chunks of 500
/// scored 8-12% more images per second than chunks of 100 (fc1's product amortises its
/// weight's packing over more rows), and larger chunks gained nothing more.
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
}

impl LoopSettings {
    /// `iterations` at batch 100, evaluating every `eval_every`, in chunks of
    /// [`DEFAULT_EVAL_CHUNK`] and parts under [`DEFAULT_MAX_BUFFER_BYTES`]; stacks use grouped
    /// convolutions.
    pub fn new(iterations: u32, eval_every: u32) -> Self {
        LoopSettings {
            iterations,
            eval_every,
            batch_size: 100,
            eval_chunk: DEFAULT_EVAL_CHUNK,
            stacked_conv: StackedConv::Grouped,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
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
    /// The run's seed: classifier (and fresh backbone) initialisation, batches, dropout.
    pub seed: u64,
}

/// The study's network for `num_classes` classes on images the size of `images`', checked
/// (sides from 2 to [`transfer_model::MAX_IMAGE_SIDE`]).
pub fn network_config(num_classes: usize, images: &ImageSet) -> Result<CnnConfig, TrainError> {
    let config = CnnConfig::new(num_classes).with_image_size([images.rows, images.cols]);
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

/// Trains a fresh network on the source task (all its training images) and scores it on
/// the source test set.
pub fn pretrain(
    device: &Device,
    source: &Task,
    settings: &LoopSettings,
    learning_rate: f64,
    seed: u64,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    check_sets(&source.train, &source.test)?;
    let model =
        network_config(source.num_classes(), &source.train)?.init(&device.clone().autodiff(), seed);
    train_model(
        device,
        model,
        &source.train,
        &source.test,
        settings,
        learning_rate,
        0.0,
        seed,
        observer,
    )
}

/// Runs one protocol on the target task.
///
/// A protocol with a frozen backbone trains its classifier on the backbone's features,
/// computed once for the training subset and once for the test set: the same numbers as
/// running the frozen convolutions at every step (to float rounding), many times faster.
pub fn run_protocol(
    device: &Device,
    input: &RunInput<'_>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let protocol = input.protocol;
    protocol.validate()?;
    check_sets(input.train, input.test)?;
    let ad = device.clone().autodiff();
    let config = network_config(input.num_classes, input.train)?;
    let backbone = match protocol.backbone {
        BackboneStart::Fresh => config.init_backbone(&ad, input.seed),
        BackboneStart::Pretrained => input
            .pretrained
            .ok_or_else(|| TrainError::NoPretrained(protocol.name.clone()))?
            .clone()
            .fork(&ad)
            .train(),
    };
    let model = Cnn {
        backbone,
        classifier: config.init_classifier(&ad, input.num_classes, input.seed),
    };
    if protocol.freeze_backbone {
        let start = Instant::now();
        input.settings.validate()?;
        let backbone = model.backbone.valid();
        let (chunk, max_bytes) = (input.settings.eval_chunk, input.settings.max_buffer_bytes);
        let train = FeatureSet::compute(&backbone, input.train, device, chunk, max_bytes);
        let test = FeatureSet::compute(&backbone, input.test, device, chunk, max_bytes);
        let (classifier, curve, loss_curve) = train_classifier_on_features(
            device,
            model.classifier,
            &train,
            &test,
            input.settings,
            protocol.learning_rate,
            protocol.dropout,
            input.seed,
            observer,
        )?;
        let final_accuracy = curve.last().map_or(0.0, |p| p.accuracy);
        return Ok(TrainOutcome {
            model: Cnn {
                backbone,
                classifier,
            },
            curve,
            loss_curve,
            final_accuracy,
            wall_seconds: start.elapsed().as_secs_f64(),
            stacked: 1,
        });
    }
    train_model(
        device,
        model,
        input.train,
        input.test,
        input.settings,
        protocol.learning_rate,
        protocol.dropout,
        input.seed,
        observer,
    )
}

/// Trains every trainable parameter of `model` (parameters set to `no_grad` stay as they
/// are: no gradient is computed for them and Adam keeps no state for them) on `train`,
/// scoring on `test` every `eval_every` iterations.
#[allow(clippy::too_many_arguments)]
pub fn train_model(
    device: &Device,
    model: Cnn,
    train: &ImageSet,
    test: &ImageSet,
    settings: &LoopSettings,
    learning_rate: f64,
    dropout: f64,
    seed: u64,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, TrainError> {
    let start = Instant::now();
    settings.validate()?;
    let ad = device.clone().autodiff();
    // `train` re-enables gradients a `valid` copy had switched off; `no_grad` parameters
    // stay frozen.
    let model = model.fork(&ad).train();
    let eval = EvalSet::new(test, device, settings.eval_chunk);
    let mut batch = Batch::default();
    let (model, curve, loss_curve) = optimise(
        model,
        &ad,
        settings,
        learning_rate,
        train.len(),
        seed,
        observer,
        |model: &Cnn, positions: &[usize], masks_rng: &mut SeededRng| {
            train.fill_batch(positions, &mut batch);
            let (images, labels) = batch_tensors(&batch, &ad);
            let features = model.backbone.forward(images);
            let logits = classify(&model.classifier, features, dropout, masks_rng, &ad);
            (logits, labels)
        },
        |model: &Cnn| eval.accuracy(&model.valid()),
    )?;
    let final_accuracy = curve.last().map_or(0.0, |p| p.accuracy);
    Ok(TrainOutcome {
        model: model.valid(),
        curve,
        loss_curve,
        final_accuracy,
        wall_seconds: start.elapsed().as_secs_f64(),
        stacked: 1,
    })
}

/// Result of [`optimise`]: the trained module and its accuracy and loss curves.
pub(crate) type Optimised<M> = (M, Vec<CurvePoint>, Vec<LossPoint>);

/// The loop shared by every kind of training: sample a batch, forward, softmax
/// cross-entropy, backward, Adam (docs/protocol.md section 4: beta 0.9/0.999, eps 1e-8, fresh state),
/// and score every `eval_every` iterations and after the last.
#[allow(clippy::too_many_arguments)]
pub(crate) fn optimise<M: Module>(
    mut model: M,
    ad: &Device,
    settings: &LoopSettings,
    learning_rate: f64,
    train_len: usize,
    seed: u64,
    observer: &mut dyn Observer,
    mut forward: impl FnMut(&M, &[usize], &mut SeededRng) -> (Tensor<2>, Tensor<1, Int>),
    mut evaluate: impl FnMut(&M) -> Result<f64, TrainError>,
) -> Result<Optimised<M>, TrainError> {
    let mut sampler = BatchSampler::new(train_len, settings.batch_size, seed)?;
    let mut masks_rng = SeededRng::stream(seed, DROPOUT_STREAM);
    let mut optimizer = ModuleOptimizer::from(OnePassAdam::new(0.9, 0.999, 1e-8));
    let loss_fn = CrossEntropyLossConfig::new().init(ad);
    let mut curve = Vec::new();
    let mut loss_curve = Vec::new();
    let mut pending_losses: Vec<Tensor<1>> = Vec::new();
    for iteration in 1..=settings.iterations {
        let (logits, labels) = forward(&model, sampler.next_batch(), &mut masks_rng);
        let loss = loss_fn.forward(logits, labels);
        pending_losses.push(loss.clone().detach().without_autodiff());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(learning_rate, model, grads);
        observer.on_step(iteration);
        if iteration % settings.eval_every == 0 || iteration == settings.iterations {
            let losses = Tensor::cat(std::mem::take(&mut pending_losses), 0);
            let count = losses.dims()[0] as f64;
            let sum = read_floats(losses.sum())?;
            loss_curve.push(LossPoint {
                iteration,
                loss: sum.first().copied().unwrap_or(f64::NAN) / count,
            });
            let point = CurvePoint {
                iteration,
                accuracy: evaluate(&model)?,
            };
            observer.on_eval(&point);
            curve.push(point);
        }
    }
    Ok((model, curve, loss_curve))
}
