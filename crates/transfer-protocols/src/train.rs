//! Training one network: pretraining on the source task, and one protocol's run on the
//! target task (on cached features when the backbone is frozen).

use std::time::Instant;

use burn::module::Module;
use burn::prelude::*;
use transfer_data::{Batch, ImageSet, SeededRng, Task};
use transfer_model::Cnn;
use transfer_records::BackboneStart;

use crate::error::TrainError;
use crate::eval::{EvalSet, batch_tensors};
use crate::features::{FeatureSet, train_classifier_on_features};
use crate::masks::classify;
use crate::optimise::{Member, One, optimise_one};
use crate::settings::{
    LoopSeeds, LoopSettings, Observer, Optimisation, RunInput, TrainOutcome, check_sets,
    network_config,
};

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
    let model = network_config(source.num_classes(), &source.train, &settings.network)?
        .init(&device.clone().autodiff(), seed);
    let optimisation = Optimisation::without_dropout(learning_rate);
    let sets = (&source.train, &source.test);
    train_model(device, model, sets, settings, optimisation, seed, observer)
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
    let config = network_config(input.num_classes, input.train, &input.settings.network)?;
    let backbone = match protocol.backbone {
        BackboneStart::Fresh => config.init_backbone(&ad, input.seeds.init),
        BackboneStart::Pretrained => input
            .pretrained
            .ok_or_else(|| TrainError::NoPretrained(protocol.name.clone()))?
            .clone()
            .fork(&ad)
            .train(),
    };
    let model = Cnn {
        backbone,
        classifier: config.init_classifier(&ad, input.num_classes, input.seeds.init),
    };
    if protocol.freeze_backbone {
        let start = Instant::now();
        input.settings.validate()?;
        let backbone = model.backbone.valid();
        let (chunk, max_bytes) = (input.settings.eval_chunk, input.settings.max_buffer_bytes);
        let train = FeatureSet::compute(&backbone, input.train, device, chunk, max_bytes);
        let test = FeatureSet::compute(&backbone, input.test, device, chunk, max_bytes);
        let optimisation = Optimisation::of(protocol);
        let (classifier, curve, loss_curve) = train_classifier_on_features(
            device,
            model.classifier,
            (&train, &test),
            input.settings,
            optimisation,
            input.loop_seeds(),
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
    let sets = (input.train, input.test);
    let optimisation = Optimisation::of(protocol);
    train_model(
        device,
        model,
        sets,
        input.settings,
        optimisation,
        input.loop_seeds(),
        observer,
    )
}

/// Trains every trainable parameter of `model` (parameters set to `no_grad` stay as they
/// are: no gradient is computed for them and Adam keeps no state for them) on the first of
/// `(train, test)`, scoring on the second every `eval_every` iterations.
pub fn train_model(
    device: &Device,
    model: Cnn,
    (train, test): (&ImageSet, &ImageSet),
    settings: &LoopSettings,
    optimisation: Optimisation,
    seeds: impl Into<LoopSeeds>,
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
    let mut objective = One::new(
        &ad,
        |model: &Cnn, positions: &[usize], masks_rng: &mut SeededRng| {
            train.fill_batch(positions, &mut batch);
            let (images, labels) = batch_tensors(&batch, &ad);
            let features = model.backbone.forward(images);
            let dropout = optimisation.dropout;
            let logits = classify(&model.classifier, features, dropout, masks_rng, &ad);
            (logits, labels)
        },
        |model: &Cnn| eval.accuracy(&model.valid()),
    );
    let member = Member {
        images: train.len(),
        seeds: seeds.into(),
    };
    let learning_rate = optimisation.learning_rate;
    let (model, curve, loss_curve) = optimise_one(
        model,
        member,
        settings,
        learning_rate,
        &mut objective,
        observer,
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
