//! A sweep of one's own through the study library: does a wider fc1 change what frozen
//! pretrained features give over raw training? Three widths, each point a study of its own,
//! then the sweep's report (`sweep.md`) with each step of the width tested.
//!
//! `MNIST_DIR=path/to/mnist cargo run --release --bin custom_sweep -- OUT [ITERATIONS [REPS]]`

use std::path::PathBuf;

use transfer_data::{Manifest, Silent, ensure_dataset};
use transfer_records::Protocol;
use transfer_study::{
    Axis, BackendDevice, Execution, Preset, Quiet, Sweep, SweepOutcome, SweepWorkspace, run_sweep,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "results/fc-width".into()));
    let iterations: u32 = args.next().map_or(Ok(200), |a| a.parse())?;
    let repetitions: u32 = args.next().map_or(Ok(3), |a| a.parse())?;
    let mnist = std::env::var_os("MNIST_DIR").map_or(PathBuf::from("data/mnist"), PathBuf::from);
    let dataset = ensure_dataset(&mnist, &Manifest::mnist(), &Silent)?;

    let mut config = Preset::Quick.config();
    config.preset = "fc-width".into();
    (config.repetitions, config.training.iterations) = (repetitions, iterations);
    config.training.eval_every = iterations.min(50);
    config.training.pretrain_iterations = iterations;
    config.proportions = vec![0.01];
    config.protocols = vec![
        Protocol::resolve("raw", &[])?,
        Protocol::resolve("frozen", &[])?,
    ];
    let width: Axis = "fc-width=32,128,512".parse()?;
    let sweep = Sweep::new(config, vec![width])?;

    let sw = SweepWorkspace::new(&dataset, BackendDevice::flex(), &out, &sweep)?;
    if let SweepOutcome::Complete(_) = run_sweep(&sw, &Execution::default(), &Quiet)? {
        println!("{}", std::fs::read_to_string(out.join("sweep.md"))?);
    }
    Ok(())
}
