//! Peak memory: what a study's runs hold at once, estimated from the network's shape, the
//! batch, the evaluation chunk, the stack and the cached features of frozen runs, and the
//! number of jobs that fits the memory available.
//!
//! A run holds (in 4-byte floats): its parameters five times over (weights, gradients, Adam's
//! two moments, the update's new weights); for a training step, every layer's output before
//! and after its activation for the batch, and as much again for their gradients; the test
//! set uploaded for scoring, and one evaluation chunk's layer outputs; a frozen run, the
//! backbone's features of its training subset and of the test set instead of the backbone's
//! training. A stack of `S` runs holds `S` times a run's networks, steps and chunks.

use transfer_data::{Dataset, subset_size};
use transfer_model::CnnConfig;
use transfer_protocols::DEFAULT_EVAL_CHUNK;
use transfer_records::{NetworkShape, StudyConfig};

use crate::error::{Result, StudyError};
use crate::workspace::feasible_tasks;

const FLOAT: u64 = 4;

/// What a study needs in memory, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryNeed {
    /// What every job holds at its peak: the heaviest run (or stack) of the study.
    pub per_job: u64,
    /// What the process holds once, whatever the jobs: the dataset.
    pub shared: u64,
    /// The heaviest run, in words (`frozen at p = 1`, `pretraining`).
    pub heaviest: String,
}

impl MemoryNeed {
    /// Bytes for `jobs` jobs at once.
    pub fn total(&self, jobs: usize) -> u64 {
        self.shared + self.per_job.saturating_mul(jobs as u64)
    }

    /// The most of `jobs` jobs that fit in `available` bytes: `jobs` itself where they do,
    /// fewer where only they do, and a one-line refusal naming the need and what is available
    /// where one job does not fit.
    pub fn jobs_that_fit(&self, jobs: usize, available: u64, source: &str) -> Result<usize> {
        let jobs = jobs.max(1);
        if self.total(1) > available {
            return Err(StudyError::Infeasible(format!(
                "not enough memory: one job needs about {} ({}: {} per run, {} for the data), and {} is available ({source}); use a smaller network, batch or stack, or a machine with more memory",
                mib(self.total(1)),
                self.heaviest,
                mib(self.per_job),
                mib(self.shared),
                mib(available)
            )));
        }
        Ok((1..=jobs)
            .rev()
            .find(|&j| self.total(j) <= available)
            .unwrap_or(1))
    }
}

/// `bytes` in MiB or GiB, for messages.
pub fn mib(bytes: u64) -> String {
    let mib = bytes as f64 / f64::from(1u32 << 20);
    if mib >= 10_240.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

/// The sizes of one network: parameters, and floats per image kept by a training step (both
/// directions) and by scoring.
struct NetworkSize {
    parameters: u64,
    backbone_parameters: u64,
    features: u64,
    train_per_image: u64,
    eval_per_image: u64,
}

fn network_size(network: &NetworkShape, image: [usize; 2], classes: usize) -> NetworkSize {
    let [c1, c2] = network.channels.map(|c| c as u64);
    let k2 = (network.kernel_size * network.kernel_size) as u64;
    let (fc, classes) = (network.fc_width as u64, classes as u64);
    let pixels = (image[0] * image[1]) as u64;
    // fc1's inputs as the model defines them.
    let features = CnnConfig::new(classes as usize)
        .with_image_size(image)
        .with_channels(network.channels)
        .feature_len() as u64;
    let backbone_parameters = c1 * k2 + c1 + c2 * c1 * k2 + c2;
    let parameters = backbone_parameters + features * fc + fc + fc * classes + classes;
    // Each layer's output before and after its activation; the input; the logits.
    let forward = pixels + 2 * (c1 + c2) * pixels + 2 * features + 2 * fc + 2 * classes;
    NetworkSize {
        parameters,
        backbone_parameters,
        features,
        train_per_image: 2 * forward,
        eval_per_image: pixels + (c1 + c2) * pixels + features + fc + classes,
    }
}

/// Bytes one job holds at the peak of a run (or a stack of `stack` runs): `frozen` with the
/// features of `subset` training images cached, else a training of the whole network; scored
/// on `test` images in chunks of `chunk`.
fn run_bytes(
    size: &NetworkSize,
    batch: usize,
    chunk: usize,
    stack: usize,
    test: usize,
    pixels: usize,
    frozen_subset: Option<usize>,
) -> u64 {
    let stack = stack.max(1) as u64;
    let scoring = (test * pixels) as u64 + chunk.min(test.max(1)) as u64 * size.eval_per_image;
    let floats = match frozen_subset {
        Some(subset) => {
            let classifier = size.parameters - size.backbone_parameters;
            size.backbone_parameters
                + 5 * classifier
                + (subset + test) as u64 * size.features
                + batch as u64 * 2 * size.features
        }
        None => 5 * size.parameters + batch as u64 * size.train_per_image,
    };
    FLOAT * stack * (floats + scoring)
}

/// What the study `config` needs on `dataset` with runs trained in stacks of `stack`: the
/// heaviest of its pretraining and its runs, and the dataset itself. Checks the study's
/// feasibility as [`feasible_tasks`] does.
pub fn memory_need(dataset: &Dataset, config: &StudyConfig, stack: usize) -> Result<MemoryNeed> {
    let s = &config.training;
    let (source, target) = feasible_tasks(dataset, s, &config.proportions)?;
    let image = [target.train.rows, target.train.cols];
    let pixels = image[0] * image[1];
    let chunk = DEFAULT_EVAL_CHUNK;
    let mut heaviest = (0, String::new());
    let mut consider = |bytes: u64, what: String| {
        if bytes > heaviest.0 {
            heaviest = (bytes, what);
        }
    };
    if config.needs_pretraining() {
        let size = network_size(&s.network, image, source.num_classes());
        let bytes = run_bytes(
            &size,
            s.batch_size,
            chunk,
            stack,
            source.test.len(),
            pixels,
            None,
        );
        consider(bytes, "pretraining".into());
    }
    let size = network_size(&s.network, image, target.num_classes());
    for protocol in &config.protocols {
        for &proportion in &config.proportions {
            let subset = subset_size(s.subset, target.train.len(), proportion, s.batch_size)?;
            let frozen = protocol.freeze_backbone.then_some(subset);
            let bytes = run_bytes(
                &size,
                s.batch_size,
                chunk,
                stack,
                target.test.len(),
                pixels,
                frozen,
            );
            consider(bytes, format!("{} at p = {proportion}", protocol.name));
        }
    }
    // The tasks' images, and the dataset they were cut from (at least as many again).
    let images: usize = [&source.train, &source.test, &target.train, &target.test]
        .iter()
        .map(|set| set.pixels.len())
        .sum();
    Ok(MemoryNeed {
        per_job: heaviest.0,
        shared: 2 * images as u64,
        heaviest: heaviest.1,
    })
}

/// The heavier of the needs of several studies (a sweep's points).
pub fn heaviest(needs: impl IntoIterator<Item = MemoryNeed>) -> Option<MemoryNeed> {
    needs.into_iter().max_by_key(|n| n.per_job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_networks_parameters_are_counted_as_the_model_holds_them() {
        let size = network_size(&NetworkShape::STUDY, [28, 28], 4);
        // conv1 32x1x3x3 + 32, conv2 32x32x3x3 + 32, fc1 6272x128 + 128, head 128x4 + 4.
        assert_eq!(size.parameters, 320 + 9248 + 802_944 + 516);
        assert_eq!(size.features, 6272);
    }

    #[test]
    fn a_wide_network_needs_gigabytes_and_one_job_is_refused_in_one_line() {
        // channels 256 and fc1 4096 wide: fc1's weight alone is 822,083,584 bytes.
        let wide = NetworkShape {
            channels: [256, 256],
            kernel_size: 3,
            fc_width: 4096,
        };
        let size = network_size(&wide, [28, 28], 4);
        assert_eq!(size.features * 4096 * FLOAT, 822_083_584);
        let bytes = run_bytes(&size, 100, 500, 1, 3969, 784, None);
        assert!(bytes > 5 * 822_083_584, "{}", mib(bytes));
        let need = MemoryNeed {
            per_job: bytes,
            shared: 200 << 20,
            heaviest: "raw at p = 0.005".into(),
        };
        let err = need
            .jobs_that_fit(2, 3 << 30, "the limit set")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("not enough memory: one job needs about"),
            "{err}"
        );
        assert!(
            err.contains("raw at p = 0.005")
                && err.contains("3072 MiB is available (the limit set)"),
            "{err}"
        );
        assert!(!err.contains('\n'));
        // Room for one job but not two: one job.
        assert_eq!(need.jobs_that_fit(2, need.total(1) + 1, "x").unwrap(), 1);
        assert_eq!(need.jobs_that_fit(2, need.total(2), "x").unwrap(), 2);
    }

    #[test]
    fn frozen_runs_hold_their_features() {
        let size = network_size(&NetworkShape::STUDY, [28, 28], 4);
        let full = run_bytes(&size, 100, 500, 1, 3969, 784, Some(23_900));
        let small = run_bytes(&size, 100, 500, 1, 3969, 784, Some(100));
        // 23,800 more images' features of 6272 floats.
        assert_eq!(full - small, 23_800 * 6272 * FLOAT);
        let stacked = run_bytes(&size, 100, 500, 10, 3969, 784, None);
        assert_eq!(stacked, 10 * run_bytes(&size, 100, 500, 1, 3969, 784, None));
    }
}
