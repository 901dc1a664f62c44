#![doc = include_str!("../README.md")]

mod backend;
pub mod config;
pub mod cost;
mod error;
pub mod memory;
pub mod plan;
mod split;
mod study;
pub mod sweep;
mod sweep_run;
mod workspace;

pub use backend::BackendDevice;
pub use config::{ConfigFile, Overrides, Preset, SweepTable, build_config, build_sweep};
pub use error::{Result, StudyError};
pub use plan::{PlannedRun, Shard, plan, stack_label, stacks};
pub use split::{Jobs, Split};
pub use study::{
    Estimate, Execution, Outcome, PlanSummary, Quiet, StudyEvents, report_context, run_study,
};
pub use sweep::{Axis, AxisValue, Setting, Sweep, SweepPoint};
pub use sweep_run::{
    PointWorkspace, Reused, SWEEP_FILE, SweepOutcome, SweepWorkspace, read_sweep, run_sweep,
    sweep_report_context, sweep_results,
};
pub use transfer_records::StudyConfig;
pub use workspace::{
    Compute, Finished, Workspace, bind_settings, feasible_tasks, pretrain_loop, run_loop,
};
