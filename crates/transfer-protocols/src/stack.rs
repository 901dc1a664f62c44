//! Several runs of one protocol trained together as one stack ([`CnnStack`], or a
//! [`ClassifierStack`] on cached features for a frozen backbone): one device operation for
//! all members where separate runs would issue one each.
//!
//! Each member keeps everything a separate run has: its own initial weights (or pretrained
//! backbone), its own training subset, batch sampler and dropout stream, and its own Adam
//! moments (Adam works element by element, so a stacked parameter's update is each member's
//! update). The loss is the sum of the members' mean cross-entropies, which gives each member
//! exactly its own gradient. So a member's numbers are a separate run's numbers, to float
//! rounding: the stack only changes how the arithmetic is grouped.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use transfer_data::{BatchSampler, ImageSet, SeededRng, Task};
use transfer_model::{Classifier, ClassifierStack, Cnn, CnnStack, DropoutMaskStack};
use transfer_records::{BackboneStart, CurvePoint, LossPoint};

use crate::OnePassAdam;
use crate::error::TrainError;
use crate::eval::{EvalSet, Tally, read_floats};
use crate::features::FeatureSet;
use crate::masks::draw_keep;
use crate::train::network_config;
use crate::train::{
    DROPOUT_STREAM, LoopSettings, Observer, RunInput, TrainOutcome, pretrain, run_protocol,
};

/// Pretrains one network per seed on the source task, as one stack; outcomes in seed order.
/// A single seed is [`pretrain`]'s run (a stack of one would only be slower on a CPU).
pub fn pretrain_stack(
    device: &Device,
    source: &Task,
    settings: &LoopSettings,
    learning_rate: f64,
    seeds: &[u64],
    observer: &mut dyn Observer,
) -> Result<Vec<TrainOutcome>, TrainError> {
    if let [seed] = seeds {
        return Ok(vec![pretrain(
            device,
            source,
            settings,
            learning_rate,
            *seed,
            observer,
        )?]);
    }
    if seeds.is_empty() {
        return Ok(Vec::new());
    }
    crate::train::check_sets(&source.train, &source.test)?;
    let config = network_config(source.num_classes(), &source.train)?;
    let job = StackJob {
        networks: seeds
            .iter()
            .map(|&seed| config.init(device, seed))
            .collect(),
        trains: vec![&source.train; seeds.len()],
        seeds: seeds.to_vec(),
        test: &source.test,
        settings,
        learning_rate,
        dropout: 0.0,
        freeze_backbone: false,
    };
    job.train(device, observer)
}

/// Runs several runs of one protocol together and returns their outcomes in order.
///
/// The runs must share the protocol, the loop settings, the number of classes and the test
/// set (the same [`ImageSet`]); they differ in seed, training subset and pretrained backbone.
/// A protocol with a frozen backbone trains a stack of classifiers on each member's cached
/// features (as [`run_protocol`] does for one). A single run is [`run_protocol`]'s.
pub fn run_protocol_stack(
    device: &Device,
    runs: &[RunInput<'_>],
    observer: &mut dyn Observer,
) -> Result<Vec<TrainOutcome>, TrainError> {
    let Some(first) = runs.first() else {
        return Ok(Vec::new());
    };
    for run in runs {
        let mismatch = if run.protocol != first.protocol {
            Some("their protocol")
        } else if run.settings != first.settings {
            Some("their loop settings")
        } else if run.num_classes != first.num_classes {
            Some("their number of classes")
        } else if !std::ptr::eq(run.test, first.test) {
            Some("one test set")
        } else {
            None
        };
        if let Some(what) = mismatch {
            return Err(TrainError::Stack(what));
        }
    }
    let protocol = first.protocol;
    protocol.validate()?;
    if let [run] = runs {
        return Ok(vec![run_protocol(device, run, observer)?]);
    }
    let config = network_config(first.num_classes, first.train)?;
    let mut networks = Vec::with_capacity(runs.len());
    for run in runs {
        crate::train::check_sets(run.train, run.test)?;
        let backbone = match protocol.backbone {
            BackboneStart::Fresh => config.init_backbone(device, run.seed),
            BackboneStart::Pretrained => run
                .pretrained
                .ok_or_else(|| TrainError::NoPretrained(protocol.name.clone()))?
                .clone()
                .fork(device),
        };
        networks.push(Cnn {
            backbone,
            classifier: config.init_classifier(device, first.num_classes, run.seed),
        });
    }
    let job = StackJob {
        networks,
        trains: runs.iter().map(|run| run.train).collect(),
        seeds: runs.iter().map(|run| run.seed).collect(),
        test: first.test,
        settings: first.settings,
        learning_rate: protocol.learning_rate,
        dropout: protocol.dropout,
        freeze_backbone: protocol.freeze_backbone,
    };
    job.train(device, observer)
}

/// What a stack trains, on what, and how: member `r` is `networks[r]` trained on
/// `trains[r]` with `seeds[r]` (batches and dropout).
struct StackJob<'a> {
    networks: Vec<Cnn>,
    trains: Vec<&'a ImageSet>,
    seeds: Vec<u64>,
    test: &'a ImageSet,
    settings: &'a LoopSettings,
    learning_rate: f64,
    dropout: f64,
    /// Train only the classifiers, on cached features of the (unchanged) backbones.
    freeze_backbone: bool,
}

impl StackJob<'_> {
    /// Trains the stack and returns every member's outcome, in order.
    fn train(
        self,
        device: &Device,
        observer: &mut dyn Observer,
    ) -> Result<Vec<TrainOutcome>, TrainError> {
        let start = Instant::now();
        self.settings.validate()?;
        let trained = if self.freeze_backbone {
            train_classifiers_on_features(device, &self, observer)?
        } else {
            train_networks(device, &self, observer)?
        };
        Ok(self.outcomes(trained, start))
    }

    fn members(&self) -> usize {
        self.networks.len()
    }

    /// Every member's logits for its features `[R, B, F]`, through fresh dropout masks when
    /// the protocol drops (each member's drawn from its own stream, in the order a separate
    /// run draws them): [`crate::masks::classify`] for a stack.
    fn classify(
        &self,
        classifier: &ClassifierStack,
        features: Tensor<3>,
        rngs: &mut [SeededRng],
        device: &Device,
    ) -> Tensor<3> {
        if self.dropout <= 0.0 {
            return classifier.forward(features);
        }
        let [members, batch, width] = features.dims();
        let hidden = classifier.fc1.weight.shape().dims::<3>()[2];
        let (mut keep_features, mut keep_hidden) = (Vec::new(), Vec::new());
        for rng in rngs {
            let keep = [&mut keep_features, &mut keep_hidden];
            draw_keep(rng, batch, [width, hidden], self.dropout, keep);
        }
        let masks = DropoutMaskStack::from_keep(
            &keep_features,
            &keep_hidden,
            members,
            batch,
            self.dropout,
            device,
        );
        classifier.forward_masked(features, &masks)
    }

    /// The outcomes from trained networks and their curves, each member with its share of
    /// the time since `start`.
    fn outcomes(&self, (models, curves): (Vec<Cnn>, Curves), start: Instant) -> Vec<TrainOutcome> {
        let members = self.members();
        let wall_seconds = start.elapsed().as_secs_f64() / members as f64;
        models
            .into_iter()
            .zip(curves.accuracy.into_iter().zip(curves.loss))
            .map(|(model, (curve, loss_curve))| TrainOutcome {
                final_accuracy: curve.last().map_or(0.0, |p: &CurvePoint| p.accuracy),
                model,
                curve,
                loss_curve,
                wall_seconds,
                stacked: members,
            })
            .collect()
    }
}

/// Trains whole networks together: the loop of [`crate::train_model`] for every member.
fn train_networks(
    device: &Device,
    job: &StackJob<'_>,
    observer: &mut dyn Observer,
) -> Result<(Vec<Cnn>, Curves), TrainError> {
    let ad = device.clone().autodiff();
    let stack = CnnStack::stack(&job.networks)?
        .with_conv(job.settings.stacked_conv)
        .fork(&ad)
        .train();
    let eval = EvalSet::new(job.test, device, job.settings.eval_chunk)
        .with_max_buffer_bytes(job.settings.max_buffer_bytes);
    let (stack, curves) = optimise_stack(
        stack,
        job,
        observer,
        |stack: &CnnStack, positions: &[&[usize]], rngs: &mut [SeededRng]| {
            let (images, labels) = stacked_batch(&job.trains, positions, &ad);
            let features = stack.backbone.forward(images);
            (job.classify(&stack.classifier, features, rngs, &ad), labels)
        },
        |stack: &CnnStack| eval.accuracies(&stack.valid()),
    )?;
    Ok((stack.valid().unstack(), curves))
}

/// Trains classifiers together on each member's cached backbone features (the backbones
/// stay as they are): the frozen path of [`crate::run_protocol`] for every member.
fn train_classifiers_on_features(
    device: &Device,
    job: &StackJob<'_>,
    observer: &mut dyn Observer,
) -> Result<(Vec<Cnn>, Curves), TrainError> {
    let ad = device.clone().autodiff();
    let (chunk, max_bytes) = (job.settings.eval_chunk, job.settings.max_buffer_bytes);
    let backbones: Vec<_> = job.networks.iter().map(|n| n.backbone.valid()).collect();
    let mut trains = Vec::with_capacity(job.members());
    let mut tests = Vec::with_capacity(job.members());
    for (backbone, train) in backbones.iter().zip(&job.trains) {
        trains.push(FeatureSet::compute(
            backbone, train, device, chunk, max_bytes,
        ));
        tests.push(FeatureSet::compute(
            backbone, job.test, device, chunk, max_bytes,
        ));
    }
    let classifiers: Vec<&Classifier> = job.networks.iter().map(|n| &n.classifier).collect();
    let stack = ClassifierStack::stack(&classifiers)?.fork(&ad).train();
    let (stack, curves) = optimise_stack(
        stack,
        job,
        observer,
        |stack: &ClassifierStack, positions: &[&[usize]], rngs: &mut [SeededRng]| {
            let batch = positions[0].len();
            let mut rows = Vec::with_capacity(trains.len());
            let mut labels = Vec::with_capacity(trains.len() * batch);
            for ((set, images), positions) in trains.iter().zip(&job.trains).zip(positions) {
                rows.push(set.rows(positions, device));
                labels.extend(positions.iter().map(|&p| i64::from(images.labels[p])));
            }
            let features_batch = Tensor::stack::<3>(rows, 0).autodiff();
            let members = trains.len();
            let labels = Tensor::from_data(TensorData::new(labels, [members, batch]), &ad);
            (job.classify(stack, features_batch, rngs, &ad), labels)
        },
        |stack: &ClassifierStack| feature_accuracies(&stack.valid(), &tests, max_bytes),
    )?;
    let stack = stack.valid();
    let models = backbones
        .into_iter()
        .enumerate()
        .map(|(r, backbone)| Cnn {
            backbone,
            classifier: stack.member(r),
        })
        .collect();
    Ok((models, curves))
}

/// Every member's accuracy and loss curves.
struct Curves {
    accuracy: Vec<Vec<CurvePoint>>,
    loss: Vec<Vec<LossPoint>>,
}

/// The loop shared by both kinds of stack: every member's next batch, forward, the sum of
/// the members' cross-entropies, backward, Adam, and every member scored every `eval_every`
/// iterations and after the last (the observer sees the members' mean accuracy).
fn optimise_stack<M: Module>(
    mut stack: M,
    job: &StackJob<'_>,
    observer: &mut dyn Observer,
    mut forward: impl FnMut(&M, &[&[usize]], &mut [SeededRng]) -> (Tensor<3>, Tensor<2, Int>),
    mut evaluate: impl FnMut(&M) -> Result<Vec<f64>, TrainError>,
) -> Result<(M, Curves), TrainError> {
    let settings = job.settings;
    let members = job.members();
    let mut samplers = job
        .trains
        .iter()
        .zip(&job.seeds)
        .map(|(train, &seed)| BatchSampler::new(train.len(), settings.batch_size, seed))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rngs: Vec<SeededRng> = job
        .seeds
        .iter()
        .map(|&seed| SeededRng::stream(seed, DROPOUT_STREAM))
        .collect();
    let mut optimizer = ModuleOptimizer::from(OnePassAdam::new(0.9, 0.999, 1e-8));
    let mut curves = Curves {
        accuracy: vec![Vec::new(); members],
        loss: vec![Vec::new(); members],
    };
    let mut pending_losses: Vec<Tensor<1>> = Vec::new();
    for iteration in 1..=settings.iterations {
        let positions: Vec<&[usize]> = samplers.iter_mut().map(|s| s.next_batch()).collect();
        let (logits, labels) = forward(&stack, &positions, &mut rngs);
        let losses = cross_entropy_per_member(logits, labels);
        pending_losses.push(losses.clone().detach().without_autodiff());
        let grads = GradientsParams::from_grads(losses.sum().backward(), &stack);
        stack = optimizer.step(job.learning_rate, stack, grads);
        observer.on_step(iteration);
        if iteration % settings.eval_every == 0 || iteration == settings.iterations {
            let steps = pending_losses.len() as f64;
            let sums = Tensor::stack::<2>(std::mem::take(&mut pending_losses), 0).sum_dim(0);
            let sums = read_floats(sums.reshape([members]))?;
            let accuracies = evaluate(&stack)?;
            for r in 0..members {
                curves.loss[r].push(LossPoint {
                    iteration,
                    loss: sums.get(r).copied().unwrap_or(f64::NAN) / steps,
                });
                curves.accuracy[r].push(CurvePoint {
                    iteration,
                    accuracy: accuracies.get(r).copied().unwrap_or(0.0),
                });
            }
            observer.on_eval(&CurvePoint {
                iteration,
                accuracy: accuracies.iter().sum::<f64>() / members as f64,
            });
        }
    }
    Ok((stack, curves))
}

/// Each member's mean softmax cross-entropy: logits `[R, B, K]`, labels `[R, B]` -> `[R]`.
fn cross_entropy_per_member(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let [members, batch, _] = logits.dims();
    let picked = log_softmax(logits, 2).gather(2, labels.unsqueeze_dim(2));
    picked.sum_dim(1).reshape([members]).neg() / batch as f32
}

/// Member `r`'s images at `positions[r]` of `trains[r]` as one upload, images `[B, R, rows,
/// cols]` (member `r`'s image `b` at `[b, r]`, scaled as [`ImageSet::fill_batch`] scales them)
/// and labels `[R, B]`, written straight into the stacked layout.
fn stacked_batch(
    trains: &[&ImageSet],
    positions: &[&[usize]],
    device: &Device,
) -> (Tensor<4>, Tensor<2, Int>) {
    let (members, batch) = (trains.len(), positions.first().map_or(0, |p| p.len()));
    let (rows, cols) = trains.first().map_or((0, 0), |t| (t.rows, t.cols));
    let mut values = Vec::with_capacity(batch * members * rows * cols);
    for b in 0..batch {
        for (train, positions) in trains.iter().zip(positions) {
            let image = train.image(positions[b]);
            values.extend(image.iter().map(|&p| f32::from(p) / 255.0));
        }
    }
    let images = TensorData::new(values, [batch, members, rows, cols]);
    let labels: Vec<i64> = trains
        .iter()
        .zip(positions)
        .flat_map(|(train, positions)| positions.iter().map(|&p| i64::from(train.labels[p])))
        .collect();
    let labels = TensorData::new(labels, [members, batch]);
    (
        Tensor::from_data(images, device),
        Tensor::from_data(labels, device),
    )
}

/// Each member's accuracy on its own features of one test set (`tests[r]` for member `r`,
/// the same labels and blocks), scored in parts under `max_bytes`.
fn feature_accuracies(
    stack: &ClassifierStack,
    tests: &[FeatureSet],
    max_bytes: usize,
) -> Result<Vec<f64>, TrainError> {
    let members = tests.len();
    let Some(first) = tests.first() else {
        return Ok(Vec::new());
    };
    let mut tally = Tally::new(members);
    let mut member_blocks: Vec<_> = tests.iter().map(FeatureSet::blocks).collect();
    for (start, block) in first.blocks() {
        let [rows, width] = block.dims();
        let blocks: Vec<&Tensor<2>> = member_blocks
            .iter_mut()
            .filter_map(|b| b.next().map(|(_, block)| block))
            .collect();
        let part = (max_bytes / (members * width * 4).max(1)).max(1);
        for offset in (0..rows).step_by(part) {
            let len = part.min(rows - offset);
            let features = blocks.iter().map(|b| (*b).clone().narrow(0, offset, len));
            let logits = stack.forward(Tensor::stack::<3>(features.collect(), 0));
            tally.add(logits, first.labels.clone().narrow(0, start + offset, len));
        }
    }
    tally.accuracies(first.len())
}

impl EvalSet {
    /// Each member's fraction of images classified correctly, in member order. Every chunk
    /// is scored in parts small enough for [`EvalSet::max_buffer_bytes`].
    pub fn accuracies(&self, stack: &CnnStack) -> Result<Vec<f64>, TrainError> {
        let mut tally = Tally::new(stack.members());
        for (images, labels) in self.chunks() {
            let [n, _, height, width] = images.dims();
            let per_image = stack.backbone.activation_bytes(1, height, width);
            let rows = (self.max_buffer_bytes() / per_image.max(1)).max(1);
            for start in (0..n).step_by(rows) {
                let len = rows.min(n - start);
                let images = images.clone().narrow(0, start, len);
                let logits = stack.forward(images.repeat_dim(1, stack.members()));
                tally.add(logits, labels.clone().narrow(0, start, len));
            }
        }
        tally.accuracies(self.len())
    }
}
