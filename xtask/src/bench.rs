//! `cargo xtask bench`: training steps per second for each protocol, evaluation images per
//! second, achieved GFLOP/s, peak memory, and the paper preset's expected time.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use transfer_model::{CnnConfig, forward_flops_per_image};
use transfer_records::Protocol;

use crate::backend::Backend;
use crate::error::Result;
use crate::plan::{Preset, plan};
use crate::runner::load_dataset;
use crate::timing::{
    Costs, Sizes, seconds_per_eval_image, seconds_per_step, stand_in_backbone, study_seconds,
};

/// Arguments of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Backend to measure.
    #[arg(long, value_enum, default_value_t = Backend::default_compiled())]
    pub backend: Backend,
    /// Training steps timed per protocol.
    #[arg(long, default_value_t = 20)]
    pub steps: u32,
    /// Evaluation passes over the target test set.
    #[arg(long, default_value_t = 3)]
    pub eval_passes: u32,
    /// Images per evaluation chunk.
    #[arg(long, default_value_t = 100)]
    pub eval_chunk: usize,
    /// Also write the figures as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Directory of the MNIST files.
    #[arg(long, default_value = "data/mnist", env = "MNIST_DIR")]
    pub dir: PathBuf,
}

/// The figures `bench` prints and writes.
#[derive(Debug, Serialize)]
pub struct BenchFigures {
    /// Backend name.
    pub backend: String,
    /// Device description.
    pub device: String,
    /// Machine description.
    pub hardware: String,
    /// Training steps per second at batch 100, raw protocol.
    pub train_steps_per_s: f64,
    /// Frozen protocol (classifier on cached features).
    pub frozen_steps_per_s: f64,
    /// Finetune protocol.
    pub finetune_steps_per_s: f64,
    /// Dropout protocol.
    pub dropout_steps_per_s: f64,
    /// Images per second scoring the 3,969-image target test set.
    pub eval_images_per_s: f64,
    /// Forward FLOPs per image used below (multiply-add = 2).
    pub forward_flops_per_image: u64,
    /// Achieved GFLOP/s of raw training (forward + backward = 3 x forward FLOPs).
    pub gflops: f64,
    /// Achieved GFLOP/s of evaluation.
    pub eval_gflops: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mb: f64,
    /// Estimated seconds of the paper preset with one job.
    pub paper_estimate_s: f64,
}

/// Runs the benchmark.
pub fn bench(args: BenchArgs) -> Result<()> {
    let (device, info) = args.backend.device()?;
    let dataset = load_dataset(&args.dir, None)?;
    let (source, target) = dataset.transfer_tasks(
        &transfer_data::SOURCE_CLASSES,
        &transfer_data::TARGET_CLASSES,
    )?;
    let stand_in = stand_in_backbone(&device);
    let rate = |name: &str| -> Result<f64> {
        let protocol = Protocol::resolve(name, &[])?;
        let seconds = seconds_per_step(&device, &target, &protocol, &stand_in, args.steps)?;
        println!("  {name:<9} {:8.2} steps/s", 1.0 / seconds);
        Ok(1.0 / seconds)
    };
    println!(
        "training, batch 100, {} timed steps each ({}):",
        args.steps, info.backend
    );
    let raw = rate("raw")?;
    let frozen = rate("frozen")?;
    let finetune = rate("finetune")?;
    let dropout = rate("dropout")?;
    let eval_image = seconds_per_eval_image(&device, &target, args.eval_chunk, args.eval_passes)?;
    let flops = forward_flops_per_image(&CnnConfig::new(4), 4);
    let figures = BenchFigures {
        backend: info.backend.clone(),
        device: info.device.clone(),
        hardware: crate::hardware::describe(),
        train_steps_per_s: raw,
        frozen_steps_per_s: frozen,
        finetune_steps_per_s: finetune,
        dropout_steps_per_s: dropout,
        eval_images_per_s: 1.0 / eval_image,
        forward_flops_per_image: flops,
        gflops: raw * 100.0 * 3.0 * flops as f64 / 1e9,
        eval_gflops: flops as f64 / eval_image / 1e9,
        peak_rss_mb: crate::hardware::peak_rss_mib().unwrap_or(0.0),
        paper_estimate_s: {
            let paper = Preset::Paper.config(&info.backend);
            study_seconds(
                Costs {
                    step: 1.0 / raw,
                    frozen_step: 1.0 / frozen,
                    eval_image,
                },
                Sizes::of(&source, &target),
                &paper.training,
                paper.repetitions as usize,
                plan(&paper)
                    .iter()
                    .map(|r| (r.protocol.freeze_backbone, r.proportion)),
            )
        },
    };
    println!(
        "evaluation: {:.0} images/s over the {} test images (chunks of {})",
        figures.eval_images_per_s,
        target.test.len(),
        args.eval_chunk
    );
    println!(
        "achieved: {:.1} GFLOP/s training, {:.1} GFLOP/s evaluation ({:.2} MFLOP forward per image)",
        figures.gflops,
        figures.eval_gflops,
        flops as f64 / 1e6
    );
    println!("peak memory: {:.0} MiB", figures.peak_rss_mb);
    println!(
        "paper preset (160 runs + 10 pretrainings, 1000 iterations, evaluation every 10): about {:.1} h with one job",
        figures.paper_estimate_s / 3600.0
    );
    if let Some(path) = &args.json {
        transfer_records::write_json(path, &figures)?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}
