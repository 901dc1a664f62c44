//! The MNIST transfer-learning study as a library: what to run, and running it.
//!
//! - [`Preset`], [`ConfigFile`] and [`build_config`] make a [`StudyConfig`]: a preset (the
//!   published protocol, `quick`, `smoke`), then a TOML file, then overrides.
//! - [`plan`] lists every run in canonical order, [`stacks`] groups runs trained together,
//!   and [`Shard`] picks the slice of the plan one process of a job array runs.
//! - [`Workspace`] binds a dataset, a device and a results directory, checks before anything
//!   trains that every run is feasible, and trains or reads back pretrainings and runs.
//! - [`run_study`] runs a whole configuration: resumable (finished runs are read back, never
//!   redone), in parallel, sharded, then the report. Progress goes to [`StudyEvents`].
//! - [`cost`] measures steps on a device and estimates a study's time.
//!
//! A run's numbers depend only on the training settings, protocol, proportion and repetition
//! (seeds are derived from them), so interrupted, resumed, parallel and sharded studies store
//! the same records.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use burn::prelude::*;
//! use transfer_data::{Manifest, Silent};
//! use transfer_records::{BackendInfo, DatasetIdentity};
//! use transfer_study::{Execution, Preset, Quiet, Workspace, run_study};
//!
//! let mut config = Preset::Smoke.config("flex");
//! config.training.dataset = DatasetIdentity::of(&Manifest::mnist());
//! let dataset = transfer_data::ensure_dataset(Path::new("data/mnist"), &Manifest::mnist(), &Silent)?;
//! let backend = BackendInfo {
//!     backend: "flex".into(),
//!     device: "cpu".into(),
//!     driver: "burn-flex".into(),
//!     threads: 2,
//! };
//! let ws = Workspace::new(&dataset, Device::flex(), backend, Path::new("results/smoke"),
//!     &config.training, &config.proportions)?;
//! run_study(&ws, &config, &Execution::default(), &Quiet)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
pub mod config;
pub mod cost;
mod error;
pub mod plan;
mod study;
mod workspace;

pub use backend::BackendDevice;
pub use config::{ConfigFile, Overrides, Preset, build_config};
pub use error::{Result, StudyError};
pub use plan::{PlannedRun, Shard, plan, stack_label, stacks};
pub use study::{
    Estimate, Execution, Outcome, PlanSummary, Quiet, StudyEvents, report_context, run_study,
};
pub use transfer_records::StudyConfig;
pub use workspace::{Compute, Finished, Workspace, bind_settings, pretrain_loop, run_loop};
