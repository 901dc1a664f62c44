//! A study of one's own from another program: raw training against frozen pretrained features
//! on digits 0-4 (pretrained on 5-9), at two proportions, 3 repetitions of 200 iterations.
//!
//! `MNIST_DIR=path/to/mnist cargo run --release -p transfer-study --example custom_study`

use std::path::PathBuf;

use transfer_data::{Manifest, Silent, ensure_dataset};
use transfer_records::Protocol;
use transfer_study::{BackendDevice, Execution, Outcome, Preset, Quiet, Workspace, run_study};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var_os("MNIST_DIR").map_or(PathBuf::from("data/mnist"), PathBuf::from);
    let dataset = ensure_dataset(&dir, &Manifest::mnist(), &Silent)?;
    let mut config = Preset::Quick.config();
    config.preset = "digits-0-4".into();
    (config.repetitions, config.training.iterations) = (3, 200);
    config.proportions = vec![0.01, 0.1];
    config.protocols = vec![
        Protocol::resolve("raw", &[])?,
        Protocol::resolve("frozen", &[])?,
    ];
    config.training.source_classes = vec![5, 6, 7, 8, 9];
    config.training.target_classes = vec![0, 1, 2, 3, 4];
    config.validate()?;
    let out = std::env::temp_dir().join("custom-study");
    let ws = Workspace::new(
        &dataset,
        BackendDevice::flex(),
        &out,
        &config.training,
        &config.proportions,
    )?;
    if let Outcome::Complete(_) = run_study(&ws, &config, &Execution::default(), &Quiet)? {
        println!("{}", std::fs::read_to_string(out.join("table.md"))?);
    }
    Ok(())
}
