//! The one training loop, for one network and for a stack of them: every member's next batch,
//! forward, cross-entropy, backward, Adam (beta 0.9/0.999, eps 1e-8, fresh state), and every
//! member scored every `eval_every` iterations and after the last.

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use transfer_data::{BatchSampler, SeededRng};
use transfer_records::{CurvePoint, LossPoint};

use crate::OnePassAdam;
use crate::error::TrainError;
use crate::eval::read_floats;
use crate::settings::{DROPOUT_STREAM, LoopSeeds, LoopSettings, Observer};

/// What the loop minimises and how it scores: one network's loss, or a stack's.
pub(crate) trait Objective<M> {
    /// The loss to differentiate for the members' batches at `positions` (one slice each,
    /// dropout masks drawn from `rngs`), and each member's loss, detached: `[R]`.
    fn losses(
        &mut self,
        model: &M,
        positions: &[&[usize]],
        rngs: &mut [SeededRng],
    ) -> (Tensor<1>, Tensor<1>);
    /// Each member's mean loss over `pending`, the detached losses since the last evaluation.
    fn mean_losses(&self, pending: Vec<Tensor<1>>) -> Result<Vec<f64>, TrainError>;
    /// Each member's test accuracy.
    fn accuracies(&mut self, model: &M) -> Result<Vec<f64>, TrainError>;
}

/// Every member's accuracy and loss curves.
pub(crate) struct Curves {
    pub(crate) accuracy: Vec<Vec<CurvePoint>>,
    pub(crate) loss: Vec<Vec<LossPoint>>,
}

/// One member of a training: how many images it samples from, and the seeds of its batches
/// and dropout masks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    pub(crate) images: usize,
    pub(crate) seeds: LoopSeeds,
}

/// Trains `model` for `settings.iterations` steps of `learning_rate`, every member on its own
/// batches and dropout stream. The observer sees every step, and at every evaluation the
/// members' mean accuracy.
pub(crate) fn optimise<M: Module>(
    mut model: M,
    members: &[Member],
    settings: &LoopSettings,
    learning_rate: f64,
    objective: &mut impl Objective<M>,
    observer: &mut dyn Observer,
) -> Result<(M, Curves), TrainError> {
    let mut samplers = members
        .iter()
        .map(|m| BatchSampler::new(m.images, settings.batch_size, m.seeds.order))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rngs: Vec<SeededRng> = members
        .iter()
        .map(|m| SeededRng::stream(m.seeds.dropout, DROPOUT_STREAM))
        .collect();
    let mut optimizer = ModuleOptimizer::from(OnePassAdam::new(0.9, 0.999, 1e-8));
    let mut curves = Curves {
        accuracy: vec![Vec::new(); members.len()],
        loss: vec![Vec::new(); members.len()],
    };
    let mut pending: Vec<Tensor<1>> = Vec::new();
    for iteration in 1..=settings.iterations {
        let positions: Vec<&[usize]> = samplers.iter_mut().map(|s| s.next_batch()).collect();
        let (loss, losses) = objective.losses(&model, &positions, &mut rngs);
        pending.push(losses);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(learning_rate, model, grads);
        observer.on_step(iteration);
        if iteration % settings.eval_every == 0 || iteration == settings.iterations {
            let losses = objective.mean_losses(std::mem::take(&mut pending))?;
            let accuracies = objective.accuracies(&model)?;
            for (r, (accuracy, loss)) in
                curves.accuracy.iter_mut().zip(&mut curves.loss).enumerate()
            {
                loss.push(LossPoint {
                    iteration,
                    loss: losses.get(r).copied().unwrap_or(f64::NAN),
                });
                accuracy.push(CurvePoint {
                    iteration,
                    accuracy: accuracies.get(r).copied().unwrap_or(0.0),
                });
            }
            observer.on_eval(&CurvePoint {
                iteration,
                accuracy: accuracies.iter().sum::<f64>() / members.len() as f64,
            });
        }
    }
    Ok((model, curves))
}

/// A module trained alone, with its test-accuracy and loss curves.
pub(crate) type Trained<M> = (M, Vec<CurvePoint>, Vec<LossPoint>);

/// [`optimise`] for one module.
pub(crate) fn optimise_one<M: Module>(
    model: M,
    member: Member,
    settings: &LoopSettings,
    learning_rate: f64,
    objective: &mut impl Objective<M>,
    observer: &mut dyn Observer,
) -> Result<Trained<M>, TrainError> {
    let members = [member];
    let (model, mut curves) = optimise(
        model,
        &members,
        settings,
        learning_rate,
        objective,
        observer,
    )?;
    let (curve, loss_curve) = (curves.accuracy.remove(0), curves.loss.remove(0));
    Ok((model, curve, loss_curve))
}

/// One network (or classifier): `forward` gives the logits `[B, K]` and labels of a batch,
/// `evaluate` the test accuracy; the loss is the batch's mean cross-entropy.
pub(crate) struct One<F, E> {
    loss: CrossEntropyLoss,
    forward: F,
    evaluate: E,
}

impl<F, E> One<F, E> {
    /// The objective of one network trained on `device` (with autodiff).
    pub(crate) fn new(device: &Device, forward: F, evaluate: E) -> Self {
        One {
            loss: CrossEntropyLossConfig::new().init(device),
            forward,
            evaluate,
        }
    }
}

impl<M, F, E> Objective<M> for One<F, E>
where
    F: FnMut(&M, &[usize], &mut SeededRng) -> (Tensor<2>, Tensor<1, Int>),
    E: FnMut(&M) -> Result<f64, TrainError>,
{
    fn losses(
        &mut self,
        model: &M,
        positions: &[&[usize]],
        rngs: &mut [SeededRng],
    ) -> (Tensor<1>, Tensor<1>) {
        let (logits, labels) = (self.forward)(model, positions[0], &mut rngs[0]);
        let loss = self.loss.forward(logits, labels);
        (loss.clone(), loss.detach().without_autodiff())
    }

    fn mean_losses(&self, pending: Vec<Tensor<1>>) -> Result<Vec<f64>, TrainError> {
        let losses = Tensor::cat(pending, 0);
        let count = losses.dims()[0] as f64;
        let sum = read_floats(losses.sum())?;
        Ok(vec![sum.first().copied().unwrap_or(f64::NAN) / count])
    }

    fn accuracies(&mut self, model: &M) -> Result<Vec<f64>, TrainError> {
        Ok(vec![(self.evaluate)(model)?])
    }
}

/// A stack of `members` networks (or classifiers): `forward` gives every member's logits
/// `[R, B, K]` and labels `[R, B]`, `evaluate` every member's accuracy; the loss is the sum of
/// the members' mean cross-entropies, which gives each member exactly its own gradient.
pub(crate) struct Stacked<F, E> {
    members: usize,
    forward: F,
    evaluate: E,
}

impl<F, E> Stacked<F, E> {
    /// The objective of a stack of `members`.
    pub(crate) fn new(members: usize, forward: F, evaluate: E) -> Self {
        Stacked {
            members,
            forward,
            evaluate,
        }
    }
}

impl<M, F, E> Objective<M> for Stacked<F, E>
where
    F: FnMut(&M, &[&[usize]], &mut [SeededRng]) -> (Tensor<3>, Tensor<2, Int>),
    E: FnMut(&M) -> Result<Vec<f64>, TrainError>,
{
    fn losses(
        &mut self,
        model: &M,
        positions: &[&[usize]],
        rngs: &mut [SeededRng],
    ) -> (Tensor<1>, Tensor<1>) {
        let (logits, labels) = (self.forward)(model, positions, rngs);
        let losses = cross_entropy_per_member(logits, labels);
        (losses.clone().sum(), losses.detach().without_autodiff())
    }

    fn mean_losses(&self, pending: Vec<Tensor<1>>) -> Result<Vec<f64>, TrainError> {
        let steps = pending.len() as f64;
        let sums = Tensor::stack::<2>(pending, 0).sum_dim(0);
        let sums = read_floats(sums.reshape([self.members]))?;
        Ok(sums.iter().map(|sum| sum / steps).collect())
    }

    fn accuracies(&mut self, model: &M) -> Result<Vec<f64>, TrainError> {
        (self.evaluate)(model)
    }
}

/// Each member's mean softmax cross-entropy: logits `[R, B, K]`, labels `[R, B]` -> `[R]`.
fn cross_entropy_per_member(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let [members, batch, _] = logits.dims();
    let picked = log_softmax(logits, 2).gather(2, labels.unsqueeze_dim(2));
    picked.sum_dim(1).reshape([members]).neg() / batch as f32
}
