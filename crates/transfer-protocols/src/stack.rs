//! Several runs of one protocol trained together as one [`CnnStack`]: one device operation
//! for every member where separate runs would issue one each.
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
use transfer_data::{Batch, BatchSampler, ImageSet, SeededRng, Task};
use transfer_model::{Cnn, CnnConfig, CnnStack, DropoutMaskStack};
use transfer_records::{BackboneStart, CurvePoint, LossPoint};

use crate::OnePassAdam;
use crate::error::TrainError;
use crate::eval::{EvalSet, read_floats, read_ints};
use crate::masks::draw_keep;
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
    let config = CnnConfig::new(source.num_classes());
    let networks = seeds
        .iter()
        .map(|&seed| config.init(device, seed))
        .collect();
    let members = seeds
        .iter()
        .map(|&seed| Member {
            train: &source.train,
            seed,
        })
        .collect::<Vec<_>>();
    let job = StackJob {
        members: &members,
        test: &source.test,
        settings,
        learning_rate,
        dropout: 0.0,
    };
    train_stack(device, networks, &job, observer)
}

/// Runs several runs of one protocol together and returns their outcomes in order.
///
/// The runs must share the protocol, the loop settings, the number of classes and the test
/// set (the same [`ImageSet`]); they differ in seed, training subset and pretrained backbone.
/// A protocol with a frozen backbone trains only a classifier on cached features, which is
/// already cheap: its runs go one after the other through [`run_protocol`], as does a single
/// run.
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
    if protocol.freeze_backbone || runs.len() == 1 {
        return runs
            .iter()
            .map(|run| run_protocol(device, run, observer))
            .collect();
    }
    let config = CnnConfig::new(first.num_classes);
    let mut networks = Vec::with_capacity(runs.len());
    for run in runs {
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
    let members = runs
        .iter()
        .map(|run| Member {
            train: run.train,
            seed: run.seed,
        })
        .collect::<Vec<_>>();
    let job = StackJob {
        members: &members,
        test: first.test,
        settings: first.settings,
        learning_rate: protocol.learning_rate,
        dropout: protocol.dropout,
    };
    train_stack(device, networks, &job, observer)
}

/// One member of a stack: its training set and seed (batches and dropout).
struct Member<'a> {
    train: &'a ImageSet,
    seed: u64,
}

/// What a stack trains on, and how.
struct StackJob<'a> {
    members: &'a [Member<'a>],
    test: &'a ImageSet,
    settings: &'a LoopSettings,
    learning_rate: f64,
    dropout: f64,
}

/// Trains `networks` (one per member, in order) together: the loop of
/// [`crate::train_model`], member by member in one pass.
fn train_stack(
    device: &Device,
    networks: Vec<Cnn>,
    job: &StackJob<'_>,
    observer: &mut dyn Observer,
) -> Result<Vec<TrainOutcome>, TrainError> {
    let start = Instant::now();
    let settings = job.settings;
    settings.validate()?;
    let ad = device.clone().autodiff();
    let mut stack = CnnStack::stack(&networks)?.fork(&ad).train();
    drop(networks);
    let members = job.members.len();
    let eval = EvalSet::new(job.test, device, settings.eval_chunk);
    let mut samplers = job
        .members
        .iter()
        .map(|m| BatchSampler::new(m.train.len(), settings.batch_size, m.seed))
        .collect::<Result<Vec<_>, _>>()?;
    let mut masks_rngs: Vec<SeededRng> = job
        .members
        .iter()
        .map(|m| SeededRng::stream(m.seed, DROPOUT_STREAM))
        .collect();
    let mut optimizer = ModuleOptimizer::from(OnePassAdam::new(0.9, 0.999, 1e-8));
    let [_, features, hidden] = stack.classifier.fc1.weight.shape().dims::<3>();
    let mut inputs = StackedBatch::new(members);
    let mut curves = vec![Vec::new(); members];
    let mut loss_curves = vec![Vec::new(); members];
    let mut pending_losses: Vec<Tensor<1>> = Vec::new();
    for iteration in 1..=settings.iterations {
        let (samplers, rngs) = (&mut samplers, &mut masks_rngs);
        inputs.fill(job.members, samplers, rngs, [features, hidden], job.dropout);
        let (images, labels) = inputs.tensors(&ad);
        let logits = if job.dropout > 0.0 {
            stack.forward_masked(images, &inputs.masks(job.dropout, &ad))
        } else {
            stack.forward(images)
        };
        let losses = cross_entropy_per_member(logits, labels);
        pending_losses.push(losses.clone().detach().without_autodiff());
        let grads = GradientsParams::from_grads(losses.sum().backward(), &stack);
        stack = optimizer.step(job.learning_rate, stack, grads);
        observer.on_step(iteration);
        if iteration % settings.eval_every == 0 || iteration == settings.iterations {
            let steps = pending_losses.len() as f64;
            let sums = Tensor::stack::<2>(std::mem::take(&mut pending_losses), 0).sum_dim(0);
            let sums = read_floats(sums.reshape([members]))?;
            let accuracies = eval.accuracies(&stack.valid())?;
            for r in 0..members {
                loss_curves[r].push(LossPoint {
                    iteration,
                    loss: sums.get(r).copied().unwrap_or(f64::NAN) / steps,
                });
                curves[r].push(CurvePoint {
                    iteration,
                    accuracy: accuracies[r],
                });
            }
            observer.on_eval(&CurvePoint {
                iteration,
                accuracy: accuracies.iter().sum::<f64>() / members as f64,
            });
        }
    }
    let wall_seconds = start.elapsed().as_secs_f64() / members as f64;
    let models = stack.valid().unstack();
    Ok(models
        .into_iter()
        .zip(curves.into_iter().zip(loss_curves))
        .map(|(model, (curve, loss_curve))| TrainOutcome {
            final_accuracy: curve.last().map_or(0.0, |p| p.accuracy),
            model,
            curve,
            loss_curve,
            wall_seconds,
            stacked: members,
        })
        .collect())
}

/// Each member's mean softmax cross-entropy: logits `[R, B, K]`, labels `[R, B]` -> `[R]`.
fn cross_entropy_per_member(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let [members, batch, _] = logits.dims();
    let picked = log_softmax(logits, 2).gather(2, labels.unsqueeze_dim(2));
    picked.sum_dim(1).reshape([members]).neg() / batch as f32
}

/// The members' batches laid out for a stack, built on the host and uploaded at once.
struct StackedBatch {
    /// Member `r`'s batch.
    batches: Vec<Batch>,
    keep_features: Vec<bool>,
    keep_hidden: Vec<bool>,
}

impl StackedBatch {
    fn new(members: usize) -> StackedBatch {
        StackedBatch {
            batches: vec![Batch::default(); members],
            keep_features: Vec::new(),
            keep_hidden: Vec::new(),
        }
    }

    /// Draws every member's next batch, and its dropout decisions (the widths of the
    /// features and of fc1's output) when `drop > 0`, in the order a separate run draws them.
    fn fill(
        &mut self,
        members: &[Member<'_>],
        samplers: &mut [BatchSampler],
        rngs: &mut [SeededRng],
        widths: [usize; 2],
        drop: f64,
    ) {
        self.keep_features.clear();
        self.keep_hidden.clear();
        let each = self
            .batches
            .iter_mut()
            .zip(members)
            .zip(samplers.iter_mut().zip(rngs));
        for ((batch, member), (sampler, rng)) in each {
            member.train.fill_batch(sampler.next_batch(), batch);
            if drop > 0.0 {
                let keep = [&mut self.keep_features, &mut self.keep_hidden];
                draw_keep(rng, batch.len(), widths, drop, keep);
            }
        }
    }

    /// Images `[B, R, rows, cols]` (member `r`'s image `b` at `[b, r]`) and labels `[R, B]`.
    fn tensors(&self, device: &Device) -> (Tensor<4>, Tensor<2, Int>) {
        let members = self.batches.len();
        let first = &self.batches[0];
        let (batch, image_len) = (first.len(), first.rows * first.cols);
        let mut values = Vec::with_capacity(batch * members * image_len);
        for b in 0..batch {
            for member in &self.batches {
                values.extend_from_slice(&member.images[b * image_len..(b + 1) * image_len]);
            }
        }
        let shape = [batch, members, first.rows, first.cols];
        let images = Tensor::from_data(TensorData::new(values, shape), device);
        let labels: Vec<i64> = self
            .batches
            .iter()
            .flat_map(|b| b.labels.iter().map(|&l| i64::from(l)))
            .collect();
        let labels = Tensor::from_data(TensorData::new(labels, [members, batch]), device);
        (images, labels)
    }

    fn masks(&self, drop: f64, device: &Device) -> DropoutMaskStack {
        DropoutMaskStack::from_keep(
            &self.keep_features,
            &self.keep_hidden,
            self.batches.len(),
            self.batches[0].len(),
            drop,
            device,
        )
    }
}

/// The largest tensor a stack's evaluation creates, in bytes: 128 MiB, the largest buffer
/// every wgpu device accepts (WebGPU's default limit, and Mesa lavapipe's maximum; a stack
/// of 3 scoring 500 images at once needs 150 MB there and failed).
pub const STACK_EVAL_BUFFER_BYTES: usize = 128 << 20;

impl EvalSet {
    /// Each member's fraction of images classified correctly, in member order. Every chunk
    /// is scored in parts small enough for [`STACK_EVAL_BUFFER_BYTES`].
    pub fn accuracies(&self, stack: &CnnStack) -> Result<Vec<f64>, TrainError> {
        let members = stack.members();
        // Counted on the device and read once: one synchronisation per evaluation.
        let mut correct: Option<Tensor<1, Int>> = None;
        for (images, labels) in self.chunks() {
            let [n, _, height, width] = images.dims();
            let per_image = stack.backbone.activation_bytes(1, height, width);
            let rows = (STACK_EVAL_BUFFER_BYTES / per_image.max(1)).max(1);
            for start in (0..n).step_by(rows) {
                let len = rows.min(n - start);
                let images = images.clone().narrow(0, start, len).repeat_dim(1, members);
                let predicted = stack.forward(images).argmax(2).reshape([members, len]);
                let labels = labels.clone().narrow(0, start, len);
                let labels = labels.reshape([1, len]).repeat_dim(0, members);
                let counts = predicted.equal(labels).int().sum_dim(1).reshape([members]);
                correct = Some(match correct {
                    Some(total) => total + counts,
                    None => counts,
                });
            }
        }
        let correct = match correct {
            Some(counts) => read_ints(counts)?,
            None => vec![0; members],
        };
        Ok(correct
            .into_iter()
            .map(|c| c as f64 / self.len().max(1) as f64)
            .collect())
    }
}
