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
use burn::prelude::*;
use transfer_data::{ImageSet, SeededRng, Task};
use transfer_model::{Classifier, ClassifierStack, Cnn, CnnStack, DropoutMaskStack};
use transfer_records::{BackboneStart, CurvePoint};

use crate::error::TrainError;
use crate::eval::EvalSet;
use crate::features::{FeatureSet, stack_accuracies};
use crate::masks::draw_keep;
use crate::optimise::{Curves, Member, Stacked, optimise};
use crate::settings::{
    LoopSeeds, LoopSettings, Observer, Optimisation, RunInput, TrainOutcome, check_sets,
    network_config,
};
use crate::train::{pretrain, run_protocol};

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
    check_sets(&source.train, &source.test)?;
    let config = network_config(source.num_classes(), &source.train, &settings.network)?;
    let job = StackJob {
        networks: seeds
            .iter()
            .map(|&seed| config.init(device, seed))
            .collect(),
        trains: vec![&source.train; seeds.len()],
        seeds: seeds.iter().map(|&seed| LoopSeeds::from(seed)).collect(),
        test: &source.test,
        settings,
        optimisation: Optimisation::without_dropout(learning_rate),
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
    let config = network_config(first.num_classes, first.train, &first.settings.network)?;
    let mut networks = Vec::with_capacity(runs.len());
    for run in runs {
        check_sets(run.train, run.test)?;
        let backbone = match protocol.backbone {
            BackboneStart::Fresh => config.init_backbone(device, run.seeds.init),
            BackboneStart::Pretrained => run
                .pretrained
                .ok_or_else(|| TrainError::NoPretrained(protocol.name.clone()))?
                .clone()
                .fork(device),
        };
        networks.push(Cnn {
            backbone,
            classifier: config.init_classifier(device, first.num_classes, run.seeds.init),
        });
    }
    let job = StackJob {
        networks,
        trains: runs.iter().map(|run| run.train).collect(),
        seeds: runs.iter().map(RunInput::loop_seeds).collect(),
        test: first.test,
        settings: first.settings,
        optimisation: Optimisation::of(protocol),
        freeze_backbone: protocol.freeze_backbone,
    };
    job.train(device, observer)
}

/// What a stack trains, on what, and how: member `r` is `networks[r]` trained on
/// `trains[r]` with `seeds[r]` (batches and dropout masks).
struct StackJob<'a> {
    networks: Vec<Cnn>,
    trains: Vec<&'a ImageSet>,
    seeds: Vec<LoopSeeds>,
    test: &'a ImageSet,
    settings: &'a LoopSettings,
    optimisation: Optimisation,
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

    /// Each member's training-set size and seeds.
    fn loop_members(&self) -> Vec<Member> {
        let sizes = self.trains.iter().map(|t| t.len());
        sizes
            .zip(&self.seeds)
            .map(|(images, &seeds)| Member { images, seeds })
            .collect()
    }

    /// Trains `model` (the stack) with the shared loop.
    fn optimise<M: Module>(
        &self,
        model: M,
        forward: impl FnMut(&M, &[&[usize]], &mut [SeededRng]) -> (Tensor<3>, Tensor<2, Int>),
        evaluate: impl FnMut(&M) -> Result<Vec<f64>, TrainError>,
        observer: &mut dyn Observer,
    ) -> Result<(M, Curves), TrainError> {
        let mut objective = Stacked::new(self.members(), forward, evaluate);
        let members = self.loop_members();
        let learning_rate = self.optimisation.learning_rate;
        optimise(
            model,
            &members,
            self.settings,
            learning_rate,
            &mut objective,
            observer,
        )
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
        let dropout = self.optimisation.dropout;
        if dropout <= 0.0 {
            return classifier.forward(features);
        }
        let [members, batch, width] = features.dims();
        let hidden = classifier.fc1.weight.shape().dims::<3>()[2];
        let (mut keep_features, mut keep_hidden) = (Vec::new(), Vec::new());
        for rng in rngs {
            let keep = [&mut keep_features, &mut keep_hidden];
            draw_keep(rng, batch, [width, hidden], dropout, keep);
        }
        let masks = DropoutMaskStack::from_keep(
            &keep_features,
            &keep_hidden,
            members,
            batch,
            dropout,
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
    let (stack, curves) = job.optimise(
        stack,
        |stack: &CnnStack, positions: &[&[usize]], rngs: &mut [SeededRng]| {
            let (images, labels) = stacked_batch(&job.trains, positions, &ad);
            let features = stack.backbone.forward(images);
            (job.classify(&stack.classifier, features, rngs, &ad), labels)
        },
        |stack: &CnnStack| eval.accuracies(&stack.valid()),
        observer,
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
    let (stack, curves) = job.optimise(
        stack,
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
        |stack: &ClassifierStack| stack_accuracies(&stack.valid(), &tests, max_bytes),
        observer,
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
