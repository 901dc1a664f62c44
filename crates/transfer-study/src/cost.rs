//! The cost model: seconds per training step of a protocol and per image of evaluation,
//! measured on the device, and the seconds a study needs from them. The study's up-front
//! estimate and the command line's benchmark use it.

use std::time::Instant;

use burn::prelude::*;
use transfer_data::{ImageSet, Task};
use transfer_model::{Backbone, CnnConfig, CnnStack};
use transfer_protocols::{EvalSet, LoopSettings, RunInput, Silent, run_protocol_stack};
use transfer_records::{NetworkShape, Protocol, TrainingSettings};

use crate::error::Result;
use crate::workspace::{Compute, pretrain_loop, run_loop};

/// A measured time per step, and whether the measurement was disturbed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTime {
    /// Seconds per step.
    pub seconds: f64,
    /// Whether other work on the machine disturbed the measurement three times running, so
    /// that `seconds` is the long run's time per iteration, set-up included: an upper bound.
    pub disturbed: bool,
}

/// Seconds per training step (batch 100) of one run of `protocol` on a network of shape
/// `network` (a fresh backbone standing in for a pretrained one), trained in stacks of
/// `stack` runs (1: alone) computed as `compute` says, from the difference between runs of `warmup` and
/// `warmup + steps` iterations, which cancels set-up and evaluation. A frozen protocol's
/// steps are ~40 times cheaper than its set-up (the feature pass), so it is timed over 25
/// times as many steps. A difference that comes out at or near zero (below a tenth of the
/// long run's time per iteration: the machine was busy during the short run) is measured
/// again, up to three times, and then the long run's time per iteration is used instead.
pub fn seconds_per_step(
    device: &Device,
    target: &Task,
    protocol: &Protocol,
    network: &NetworkShape,
    steps: u32,
    stack: usize,
    compute: Compute,
) -> Result<StepTime> {
    let train = first(&target.train, 500);
    let test = first(&target.test, 100);
    let stack = stack.max(1);
    let pretrained = &stand_in_backbone(device, network)?;
    let time = |iterations: u32| -> Result<f64> {
        let settings = compute.apply(LoopSettings {
            network: *network,
            ..LoopSettings::new(iterations, iterations)
        });
        let runs: Vec<RunInput> = (1..=stack as u64)
            .map(|seed| RunInput {
                protocol,
                train: &train,
                test: &test,
                num_classes: target.num_classes(),
                pretrained: Some(pretrained),
                settings: &settings,
                seeds: transfer_records::RunSeeds::all(seed, 0),
            })
            .collect();
        let start = Instant::now();
        run_protocol_stack(device, &runs, &mut Silent)?;
        Ok(start.elapsed().as_secs_f64() / stack as f64)
    };
    let steps = if protocol.freeze_backbone {
        steps.saturating_mul(25)
    } else {
        steps
    };
    let warmup = 2;
    time(warmup)?; // first use: allocations, kernel selection
    step_time(time, warmup, steps)
}

/// The time per step from `time(iterations)`, the seconds of a run of that many iterations:
/// the difference of runs of `warmup` and `warmup + steps` iterations per step, measured up
/// to three times while it comes out below a tenth of the long run's time per iteration,
/// else that time per iteration, marked disturbed.
fn step_time(
    mut time: impl FnMut(u32) -> Result<f64>,
    warmup: u32,
    steps: u32,
) -> Result<StepTime> {
    let mut ceiling = f64::INFINITY;
    for _ in 0..3 {
        let short = time(warmup)?;
        let long = time(warmup + steps)?;
        let per_step = (long - short) / f64::from(steps);
        ceiling = ceiling.min(long / f64::from(warmup + steps));
        if per_step.is_finite() && per_step >= 0.1 * ceiling {
            return Ok(StepTime {
                seconds: per_step,
                disturbed: false,
            });
        }
    }
    Ok(StepTime {
        seconds: ceiling.max(1e-9),
        disturbed: true,
    })
}

/// Seconds per image and network of scoring the whole target test set with fresh networks of
/// shape `network`,
/// `stack` of them at once (1: one network alone), computed as `compute` says; the set is uploaded once, as in training.
pub fn seconds_per_eval_image(
    device: &Device,
    target: &Task,
    chunk: usize,
    repeats: u32,
    stack: usize,
    compute: Compute,
    network: &NetworkShape,
) -> Result<f64> {
    let config = transfer_protocols::network_config(target.num_classes(), &target.test, network)?;
    let eval =
        EvalSet::new(&target.test, device, chunk).with_max_buffer_bytes(compute.max_buffer_bytes);
    let networks: Vec<_> = (1..=stack.max(1) as u64)
        .map(|s| config.init(device, s))
        .collect();
    let stacked = if stack > 1 {
        Some(CnnStack::stack(&networks)?.with_conv(compute.stacked_conv))
    } else {
        None
    };
    let score = || -> Result<()> {
        match &stacked {
            Some(stacked) => eval.accuracies(stacked).map(drop)?,
            None => eval.accuracy(&networks[0]).map(drop)?,
        }
        Ok(())
    };
    score()?;
    let start = Instant::now();
    for _ in 0..repeats {
        score()?;
    }
    let images = f64::from(repeats) * target.test.len() as f64 * stack.max(1) as f64;
    Ok(start.elapsed().as_secs_f64() / images)
}

/// A fresh backbone of shape `network` standing in for a pretrained one in timings.
pub fn stand_in_backbone(device: &Device, network: &NetworkShape) -> Result<Backbone> {
    network.validate()?;
    Ok(CnnConfig::new(6)
        .with_channels(network.channels)
        .with_kernel_size(network.kernel_size)
        .init_backbone(device, 1))
}

fn first(set: &ImageSet, n: usize) -> ImageSet {
    set.select(&(0..n.min(set.len())).collect::<Vec<_>>())
}

/// Measured costs of the study's building blocks, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    /// One training step of the whole network (batch 100).
    pub step: f64,
    /// One training step of the classifier on cached features.
    pub frozen_step: f64,
    /// Scoring (or extracting the features of) one image.
    pub eval_image: f64,
    /// Whether frozen runs compute the backbone's features once and train and score the
    /// classifier on them (this project), rather than running the whole network at every
    /// step and evaluation (a straightforward implementation).
    pub frozen_reuses_features: bool,
    /// Whether a step time could not be measured cleanly ([`StepTime::disturbed`]).
    pub disturbed: bool,
}

/// How [`Costs::measure`] times a device.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Training steps timed per protocol ([`seconds_per_step`]).
    pub steps: u32,
    /// Test images scored per chunk ([`seconds_per_eval_image`]).
    pub eval_chunk: usize,
    /// Passes over the test set timed.
    pub eval_passes: u32,
}

impl Costs {
    /// The costs of networks of shape `network` on `device` for `target`: a `raw` and a
    /// `frozen` training step and an image of evaluation, in stacks of `stack` computed as
    /// `compute` says, timed as `timing` says; disturbed where either step time was.
    pub fn measure(
        device: &Device,
        target: &Task,
        network: &NetworkShape,
        stack: usize,
        compute: Compute,
        timing: Timing,
    ) -> Result<Costs> {
        let step = |name: &str| -> Result<StepTime> {
            let protocol = Protocol::resolve(name, &[])?;
            seconds_per_step(
                device,
                target,
                &protocol,
                network,
                timing.steps,
                stack,
                compute,
            )
        };
        let (full, frozen) = (step("raw")?, step("frozen")?);
        let eval_image = seconds_per_eval_image(
            device,
            target,
            timing.eval_chunk,
            timing.eval_passes,
            stack,
            compute,
            network,
        )?;
        Ok(Costs {
            step: full.seconds,
            frozen_step: frozen.seconds,
            eval_image,
            frozen_reuses_features: true,
            disturbed: full.disturbed || frozen.disturbed,
        })
    }
}

/// Image counts the cost model needs.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Target training images.
    pub target_train: usize,
    /// Target test images.
    pub target_test: usize,
    /// Source test images.
    pub source_test: usize,
}

impl Sizes {
    /// The sizes of a source and a target task.
    pub fn of(source: &Task, target: &Task) -> Sizes {
        Sizes {
            target_train: target.train.len(),
            target_test: target.test.len(),
            source_test: source.test.len(),
        }
    }
}

/// Seconds one job needs for `pretrainings` pretrainings and the runs given as
/// `(frozen backbone, proportion)` under `settings`: training steps, evaluations, and for
/// frozen runs the feature pass over the subset and the test set.
pub fn study_seconds(
    costs: Costs,
    sizes: Sizes,
    settings: &TrainingSettings,
    pretrainings: usize,
    runs: impl IntoIterator<Item = (bool, f64)>,
) -> f64 {
    let pre = pretrain_loop(settings);
    let run = run_loop(settings);
    let iterations = f64::from(run.iterations);
    let test = sizes.target_test as f64;
    let pre_evals = f64::from(pre.iterations.div_ceil(pre.eval_every));
    let evals = f64::from(run.iterations.div_ceil(run.eval_every));
    let mut seconds = pretrainings as f64
        * (f64::from(pre.iterations) * costs.step
            + pre_evals * sizes.source_test as f64 * costs.eval_image);
    for (frozen, proportion) in runs {
        seconds += if frozen && costs.frozen_reuses_features {
            (sizes.target_train as f64 * proportion + test) * costs.eval_image
                + iterations * costs.frozen_step
        } else if frozen {
            iterations * costs.frozen_step + evals * test * costs.eval_image
        } else {
            iterations * costs.step + evals * test * costs.eval_image
        };
    }
    seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timer whose runs take `setup + iterations * step`, but for the `slow` calls (0-based),
    /// which another process slowed by `extra` seconds.
    fn timer(
        step: f64,
        setup: f64,
        slow: &'static [usize],
        extra: f64,
    ) -> impl FnMut(u32) -> Result<f64> {
        let mut call = 0;
        move |iterations| {
            let seconds = setup
                + f64::from(iterations) * step
                + if slow.contains(&call) { extra } else { 0.0 };
            call += 1;
            Ok(seconds)
        }
    }

    #[test]
    fn a_clean_measurement_is_the_difference_per_step() {
        let t = step_time(timer(0.025, 0.3, &[], 0.0), 2, 3).unwrap();
        assert!((t.seconds - 0.025).abs() < 1e-12 && !t.disturbed, "{t:?}");
    }

    #[test]
    fn a_short_run_slowed_by_other_work_is_measured_again() {
        // The first short run took a second longer: the difference came out negative.
        let t = step_time(timer(0.025, 0.3, &[0], 1.0), 2, 3).unwrap();
        assert!((t.seconds - 0.025).abs() < 1e-12 && !t.disturbed, "{t:?}");
    }

    #[test]
    fn a_measurement_disturbed_every_time_is_an_upper_bound_and_says_so() {
        let t = step_time(timer(0.025, 0.3, &[0, 2, 4], 1.0), 2, 3).unwrap();
        assert!(t.disturbed, "{t:?}");
        // The long run's time per iteration, set-up included: never near zero.
        assert!(
            (t.seconds - (0.3 + 5.0 * 0.025) / 5.0).abs() < 1e-12,
            "{t:?}"
        );
    }
}
