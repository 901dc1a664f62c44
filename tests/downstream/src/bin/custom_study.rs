//! A study of one's own through the study library: raw training against frozen pretrained
//! features on digits 0-4 (pretrained on 5-9), resumable, with the full report.
//!
//! `MNIST_DIR=path/to/mnist cargo run --release --bin custom_study -- OUT [ITERATIONS [REPS]]`

use std::path::PathBuf;

use transfer_data::{Manifest, Silent, ensure_dataset};
use transfer_records::Protocol;
use transfer_study::{BackendDevice, Execution, Outcome, Preset, Quiet, Workspace, run_study};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "results/digits-0-4".into()));
    let iterations: u32 = args.next().map_or(Ok(200), |a| a.parse())?;
    let repetitions: u32 = args.next().map_or(Ok(3), |a| a.parse())?;
    let mnist = std::env::var_os("MNIST_DIR").map_or(PathBuf::from("data/mnist"), PathBuf::from);
    let dataset = ensure_dataset(&mnist, &Manifest::mnist(), &Silent)?;

    let mut config = Preset::Quick.config();
    config.preset = "digits-0-4".into();
    (config.repetitions, config.training.iterations) = (repetitions, iterations);
    config.training.eval_every = iterations.min(50);
    config.training.pretrain_iterations = iterations;
    config.proportions = vec![0.01, 0.1];
    config.protocols = vec![
        Protocol::resolve("raw", &[])?,
        Protocol::resolve("frozen", &[])?,
    ];
    config.training.source_classes = vec![5, 6, 7, 8, 9];
    config.training.target_classes = vec![0, 1, 2, 3, 4];
    config.validate()?;

    let backend = BackendDevice::flex();
    let ws = Workspace::new(
        &dataset,
        backend,
        &out,
        &config.training,
        &config.proportions,
    )?;
    if let Outcome::Complete(_) = run_study(&ws, &config, &Execution::default(), &Quiet)? {
        println!("{}", std::fs::read_to_string(out.join("table.md"))?);
    }
    Ok(())
}
