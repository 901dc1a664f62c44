//! `cargo xtask`: the command line of the MNIST transfer-learning study.
//!
//! It composes the crates: it parses arguments, picks the backend, shows the study
//! library's progress, and asks the report crate for the outputs. It decides nothing about
//! training, the plan or statistics.

mod alloc;
mod backend;
mod bench;
mod dataset;
mod error;
mod hardware;
mod progress;
mod study;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use transfer_data::{SubsetRule, subset_size};
use transfer_model::StackedConv;
use transfer_protocols::DEFAULT_MAX_BUFFER_BYTES;
use transfer_records::{Protocol, TrainingSettings};

use transfer_study::memory::{MemoryNeed, memory_need};
use transfer_study::{
    Compute, ConfigFile, Execution, Jobs, Overrides, Preset, Shard, Split, StudyError,
    SweepWorkspace, Workspace, bind_settings, build_config, build_sweep,
};

use crate::backend::Backend;

/// The system allocator, with a failed allocation reported in one line naming the run.
#[global_allocator]
static ALLOCATOR: alloc::Reporting = alloc::Reporting;
use crate::dataset::{load_dataset, read_manifest};
use crate::error::{Result, XtaskError};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Transfer learning on MNIST digits: data, training, the whole study, its report",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download (if needed) and verify MNIST, and print the sizes of the splits and subsets.
    Data(DataArgs),
    /// Run one protocol at one proportion (pretraining first when it needs it).
    Train(TrainArgs),
    /// Run the whole study (resumable), then write the table, figures and report.
    Study(StudyArgs),
    /// Run a study over a grid of settings (--axis NAME=V1,V2,...): each point a study of its
    /// own, no run trained twice, then the sweep's report of each setting's effect.
    Sweep(SweepArgs),
    /// Write the report from the records under a results directory (for a sweep's directory:
    /// every point's report with runs, and the sweep's).
    Report(ReportArgs),
    /// Measure training and evaluation speed on a backend.
    Bench(bench::BenchArgs),
    /// Write a run's trained network (kept by --save-models) as safetensors with PyTorch's
    /// names and layouts.
    Export(ExportArgs),
}

#[derive(Args, Clone)]
struct DataOptions {
    /// Directory holding (or receiving) the dataset files.
    #[arg(long, default_value = "data/mnist", env = "MNIST_DIR")]
    dir: PathBuf,
    /// A JSON manifest of another IDX dataset (Fashion-MNIST, KMNIST) instead of MNIST.
    #[arg(long)]
    manifest: Option<PathBuf>,
}

/// How many runs train together, and how: `study`'s and `bench`'s options.
#[derive(Args)]
pub struct StackArgs {
    /// Train up to N repetitions of one protocol and proportion together, as one computation
    /// of N-wide layers: on a GPU, where one run of this small network leaves the device
    /// mostly idle, N runs take little more than the time of one. Each run gets its own
    /// numbers to float rounding; on a CPU, keep 1 (the fused CPU kernels train one network).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub stack: u32,
    /// How stacked runs compute their convolutions: `grouped` (the backend's grouped
    /// convolution kernels) or `gemm` (im2col and batched matrix products, 9 times a layer's
    /// input in memory). The same numbers to float rounding; `bench --stack N --stacked-conv`
    /// tells which is faster on a device.
    #[arg(long, value_enum, default_value = "grouped")]
    pub stacked_conv: StackedConvArg,
    /// The largest tensor, in MiB, that evaluation and cached features create: they go in
    /// parts under it. 128 fits every wgpu device (WebGPU's default, Mesa lavapipe's maximum);
    /// on a GPU that allows larger buffers, more means fewer and larger parts.
    #[arg(long, default_value_t = (DEFAULT_MAX_BUFFER_BYTES >> 20) as u32,
          value_parser = clap::value_parser!(u32).range(1..=1 << 20))]
    pub max_buffer_mib: u32,
}

/// `--stacked-conv`'s choices (`transfer_model::StackedConv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StackedConvArg {
    /// The backend's grouped convolutions.
    Grouped,
    /// im2col and batched matrix products.
    Gemm,
}

impl StackArgs {
    /// The runs per stack (at least 1) and how runs are computed.
    pub fn compute(&self) -> (usize, Compute) {
        let compute = Compute {
            stacked_conv: match self.stacked_conv {
                StackedConvArg::Grouped => StackedConv::Grouped,
                StackedConvArg::Gemm => StackedConv::Gemm,
            },
            max_buffer_bytes: (self.max_buffer_mib as usize) << 20,
        };
        (self.stack as usize, compute)
    }
}

#[derive(Args)]
struct DataArgs {
    #[command(flatten)]
    data: DataOptions,
}

#[derive(Args)]
struct TrainArgs {
    /// Protocol: raw, frozen, finetune or dropout.
    #[arg(long)]
    protocol: String,
    /// Proportion of the target training set, in (0, 1].
    #[arg(long)]
    proportion: f64,
    /// Repetition index (selects the seeds and the pretrained model).
    #[arg(long, default_value_t = 0)]
    rep: u32,
    /// Training iterations.
    #[arg(long, default_value_t = 1000)]
    iters: u32,
    /// Test accuracy every this many iterations.
    #[arg(long, default_value_t = 10)]
    eval_every: u32,
    /// Pretraining iterations.
    #[arg(long, default_value_t = 1000)]
    pretrain_iters: u32,
    /// Master seed.
    #[arg(long, default_value_t = 2016)]
    seed: u64,
    /// Subset rule.
    #[arg(long, default_value = "prefix")]
    subset: SubsetRule,
    /// Backend.
    #[arg(long, value_enum, default_value_t = Backend::default_compiled())]
    backend: Backend,
    /// Results directory (pretrained models are kept and reused there; default
    /// results/train/settings-HASH, one directory per set of training settings).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the run record to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the trained network beside its record (models/NAME.bpk), for `export`.
    #[arg(long)]
    save_models: bool,
    /// Plain log lines instead of progress bars.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    data: DataOptions,
}

#[derive(Args)]
struct StudyArgs {
    /// Starting configuration (default: paper, or the config file's).
    #[arg(long, value_parser = preset_parser())]
    preset: Option<Preset>,
    /// A TOML configuration file (see docs/study.md); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Backend.
    #[arg(long, value_enum, default_value_t = Backend::default_compiled())]
    backend: Backend,
    /// Repetitions of every configuration.
    #[arg(long)]
    reps: Option<u32>,
    /// Training iterations per run.
    #[arg(long)]
    iters: Option<u32>,
    /// Test accuracy every this many iterations.
    #[arg(long)]
    eval_every: Option<u32>,
    /// Pretraining iterations.
    #[arg(long)]
    pretrain_iters: Option<u32>,
    /// Protocols, comma-separated (raw,frozen,finetune,dropout or the config file's).
    #[arg(long, value_delimiter = ',')]
    protocols: Option<Vec<String>>,
    /// Proportions, comma-separated.
    #[arg(long, value_delimiter = ',')]
    props: Option<Vec<f64>>,
    /// Subset rule: prefix (the report's: the file's first images), stratified (a share of
    /// every class drawn afresh per repetition) or drawn (prefix's image count, drawn afresh
    /// per repetition as stratified draws).
    #[arg(long)]
    subset: Option<SubsetRule>,
    /// Master seed.
    #[arg(long)]
    seed: Option<u64>,
    /// The sources of randomness that change between repetitions, comma-separated: init,
    /// order, dropout, subset (not under prefix), pretraining; the others are held at
    /// repetition 0's draw. Default all: every source the settings can vary.
    #[arg(long, value_name = "SOURCES")]
    vary: Option<String>,
    /// Results directory (default results/PRESET; for a sweep, results/sweep-PRESET).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Runs at once. Default on a CPU: the split of the cores into jobs and threads per job
    /// that the cost model, timing each split with all its jobs at once, finds fastest for
    /// the runs to train (with `--no-estimate`, or on a GPU: 2 jobs sharing the cores). Given
    /// without `--threads-per-job`, the jobs share one pool of a thread per core.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// The instruction set of the fused CPU kernels and the classifier's products (flex;
    /// default: the fastest this CPU has). Both give the same bits; `avx2` times on an AVX-512
    /// machine what a CPU without it gets.
    #[arg(long, value_enum)]
    isa: Option<bench::InstructionSet>,
    /// Give each job a pool of its own of T threads, over which its runs spread their work
    /// (default: see `--jobs`; without `--jobs`, as many jobs as fit). Jobs x T may not exceed
    /// the cores; `cargo xtask bench --scaling` measures every split.
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..))]
    threads_per_job: Option<u32>,
    #[command(flatten)]
    stacking: StackArgs,
    /// Run only slice I of N (or auto/N from SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX).
    #[arg(long)]
    shard: Option<String>,
    /// Plain log lines instead of progress bars.
    #[arg(long)]
    quiet: bool,
    /// Skip the up-front time estimate.
    #[arg(long)]
    no_estimate: bool,
    /// Keep each run's trained network beside its record (models/NAME.bpk), for `export`.
    #[arg(long)]
    save_models: bool,
    #[command(flatten)]
    data: DataOptions,
}

#[derive(Args)]
struct SweepArgs {
    /// A setting and its values, NAME=V1,V2,... (repeatable: several axes form the full
    /// grid). NAME: iters, eval-every, pretrain-iters, batch, subset, source-classes,
    /// target-classes, pretrain-learning-rate, seed, channels, kernel-size, fc-width, vary,
    /// or PROTOCOL.learning-rate, PROTOCOL.dropout. Digit sets are written together (012345),
    /// channels as N or AxB, sources as init+order or all. See docs/study.md.
    #[arg(long = "axis", value_name = "NAME=V1,V2,...")]
    axes: Vec<String>,
    /// A results directory (or a sweep's) whose verified records a point can use: every run
    /// and pretrained backbone whose settings give a point the same numbers is copied into it
    /// before anything trains, noting where it was trained. Repeatable.
    #[arg(long = "reuse", value_name = "DIR")]
    reuse: Vec<PathBuf>,
    #[command(flatten)]
    study: StudyArgs,
}

#[derive(Args)]
struct ExportArgs {
    /// The run: its record (`DIR/runs/NAME.json`) or its model (`DIR/models/NAME.bpk`).
    run: PathBuf,
    /// The safetensors file to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ReportArgs {
    /// The results directory.
    #[arg(long)]
    out: PathBuf,
}

/// `--preset`'s values: the study library's presets by name.
fn preset_parser() -> impl clap::builder::TypedValueParser<Value = Preset> {
    use clap::builder::TypedValueParser;
    let names = Preset::ALL.map(Preset::name);
    clap::builder::PossibleValuesParser::new(names).try_map(|name| name.parse::<Preset>())
}

/// The command line as typed after the program's name: `study --preset quick`.
pub fn command_line() -> String {
    std::env::args().skip(1).collect::<Vec<_>>().join(" ")
}

/// The machine's cores (logical CPUs this process may use).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A panic is a bug, never a user's mistake: it is reported as an internal error with its
/// message and where it happened, and with a backtrace when `RUST_BACKTRACE` asks for one
/// (`1` or `full`), as Rust's own hook does.
fn report_panic(info: &std::panic::PanicHookInfo<'_>) {
    let message = info
        .payload()
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let place = info
        .location()
        .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    eprintln!(
        "internal error{place}: {}",
        message.lines().next().unwrap_or("")
    );
    let backtrace = std::backtrace::Backtrace::capture();
    match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => eprintln!("{backtrace}"),
        _ => eprintln!("(run with RUST_BACKTRACE=1 for a backtrace; please report this)"),
    }
}

fn main() -> ExitCode {
    transfer_protocols::keep_freed_memory();
    std::panic::set_hook(Box::new(report_panic));
    // The version names the backends built in, which decide what `--backend` runs without
    // a rebuild (and, for a carried binary, at all). Leaked: clap keeps it for the process.
    let version: &'static str = format!(
        "{} (backends: {})",
        env!("CARGO_PKG_VERSION"),
        Backend::compiled_names().join(", ")
    )
    .leak();
    let matches = Cli::command().version(version).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    let backend = match &cli.command {
        Command::Train(a) => Some(a.backend),
        Command::Study(a) => Some(a.backend),
        Command::Sweep(a) => Some(a.study.backend),
        Command::Bench(a) => Some(a.backend),
        Command::Data(_) | Command::Report(_) | Command::Export(_) => None,
    };
    if let Some(backend) = backend
        && let Some(code) = backend::rerun_with_feature(backend)?
    {
        return Ok(u8::try_from(code).unwrap_or(1));
    }
    match cli.command {
        Command::Data(args) => data(args),
        Command::Train(args) => train(args),
        Command::Study(args) => study(args),
        Command::Sweep(args) => sweep(args),
        Command::Report(args) => report(args),
        Command::Bench(args) => bench::bench(args),
        Command::Export(args) => export(args),
    }
    .map(|()| 0)
}

fn data(args: DataArgs) -> Result<()> {
    let start = std::time::Instant::now();
    let dataset = load_dataset(
        &args.data.dir,
        &read_manifest(args.data.manifest.as_deref())?,
    )?;
    println!(
        "{} in {}: verified (SHA-256 of every file) and loaded in {:.2} s",
        dataset.name(),
        args.data.dir.display(),
        start.elapsed().as_secs_f64()
    );
    let (source, target) = dataset.transfer_tasks(
        &transfer_data::SOURCE_CLASSES,
        &transfer_data::TARGET_CLASSES,
    )?;
    println!("\n| split | digits | train | test |\n| --- | --- | --- | --- |");
    println!(
        "| all | 0-9 | {} | {} |",
        dataset.train().len(),
        dataset.test().len()
    );
    println!(
        "| source | 0-5 | {} | {} |",
        source.train.len(),
        source.test.len()
    );
    println!(
        "| target | 6-9 | {} | {} |",
        target.train.len(),
        target.test.len()
    );
    println!(
        "\n| proportion | prefix subset (batch 100) | stratified subset |\n| --- | --- | --- |"
    );
    for p in [0.005, 0.01, 0.1, 1.0] {
        let prefix = subset_size(SubsetRule::Prefix, target.train.len(), p, 100)?;
        let stratified = subset_size(SubsetRule::Stratified, target.train.len(), p, 100)?;
        println!("| {p} | {prefix} | {stratified} |");
    }
    Ok(())
}

/// The training settings of `train`'s arguments, checked (their dataset and backend are the
/// workspace's to bind).
fn train_settings(args: &TrainArgs) -> Result<TrainingSettings> {
    let mut settings = Preset::Paper.config().training;
    settings.iterations = args.iters;
    settings.eval_every = args.eval_every;
    settings.pretrain_iterations = args.pretrain_iters;
    settings.seed = args.seed;
    settings.subset = args.subset;
    settings.validate()?;
    if !(args.proportion > 0.0 && args.proportion <= 1.0) {
        return Err(XtaskError::Usage(format!(
            "--proportion {} is outside (0, 1] (the study uses 0.005, 0.01, 0.1 and 1)",
            args.proportion
        )));
    }
    Ok(settings)
}

/// `train`'s default results directory: one per set of training settings, so one-off runs
/// with different settings never refuse each other, and runs with the same ones share their
/// pretrained models.
fn default_train_dir(settings: &TrainingSettings) -> PathBuf {
    PathBuf::from("results/train").join(format!("settings-{}", &settings.hash()[..12]))
}

fn train(args: TrainArgs) -> Result<()> {
    let protocol = Protocol::resolve(&args.protocol, &[])?;
    let manifest = read_manifest(args.data.manifest.as_deref())?;
    let settings = train_settings(&args)?;
    let backend = args.backend.device()?;
    let dataset = load_dataset(&args.data.dir, &manifest)?;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_train_dir(&bind_settings(&settings, &dataset, &backend)),
    };
    let mut ws = Workspace::new(&dataset, backend, &out, &settings, &[args.proportion])?;
    ws.save_models = args.save_models;
    ws.provenance.command = command_line();
    for moved in ws.set_aside_untrusted()? {
        println!("{}", study::set_aside_line(&moved));
    }
    let progress = progress::Progress::new(1, args.quiet, "runs");
    let pretrained = if protocol.needs_pretraining() {
        let mut observer = progress.run(
            &format!("pretrain rep {}", args.rep),
            settings.pretrain_iterations,
        );
        let (backbone, finished) = ws.pretrained(args.rep, &mut observer)?;
        drop(observer);
        progress.line(&format!(
            "pretrained model (rep {}): source test accuracy {:.4}{}",
            args.rep,
            finished.record.source_test_accuracy,
            if finished.reused {
                " (reused from the results directory)"
            } else {
                ""
            }
        ));
        Some((backbone, finished.record.seed))
    } else {
        None
    };
    let label = format!("{} p={} rep {}", protocol.name, args.proportion, args.rep);
    let mut observer = progress.run(&label, settings.iterations);
    let finished = ws.run(
        &protocol,
        args.proportion,
        args.rep,
        pretrained.as_ref().map(|(b, s)| (b, *s)),
        &mut observer,
    )?;
    drop(observer);
    progress.finish();
    let r = &finished.record;
    println!(
        "{label}: {} training images, final test accuracy {:.4} ({:.1} s{})",
        r.train_samples,
        r.final_accuracy,
        r.wall_seconds,
        if finished.reused { ", reused" } else { "" }
    );
    println!("record in {}", ws.store.root().join("runs").display());
    if let Some(path) = args.json {
        transfer_records::write_json(&path, r)?;
        println!("run record written to {}", path.display());
    }
    Ok(())
}

/// What `study` and `sweep` take from their common flags, checked before anything loads.
struct StudyInputs {
    file: Option<ConfigFile>,
    config: transfer_study::StudyConfig,
    shard: Option<Shard>,
}

fn study_inputs(args: &StudyArgs) -> Result<StudyInputs> {
    let file = args.config.as_deref().map(ConfigFile::read).transpose()?;
    let flags = Overrides {
        reps: args.reps,
        iters: args.iters,
        eval_every: args.eval_every,
        pretrain_iters: args.pretrain_iters,
        protocols: args.protocols.clone(),
        props: args.props.clone(),
        subset: args.subset,
        seed: args.seed,
        vary: args.vary.clone(),
    };
    let config = build_config(args.preset, file.as_ref(), &flags)?;
    let shard = args
        .shard
        .as_deref()
        .map(|s| Shard::parse(s, |v| std::env::var(v).ok()))
        .transpose()?;
    Ok(StudyInputs {
        file,
        config,
        shard,
    })
}

/// The jobs of `wanted` that fit in the memory available for the studies `needs` (each
/// named for messages), and a line saying so where fewer fit; a one-line refusal where one
/// job does not.
fn jobs_in_memory(
    needs: impl IntoIterator<Item = (String, transfer_study::Result<MemoryNeed>)>,
    wanted: usize,
) -> Result<(usize, Option<String>)> {
    let mut heaviest: Option<MemoryNeed> = None;
    for (name, need) in needs {
        let mut need = need.map_err(|e| match name.as_str() {
            "" => e,
            _ => StudyError::Config(format!("sweep point {name}: {e}")),
        })?;
        if !name.is_empty() {
            need.heaviest = format!("{name}: {}", need.heaviest);
        }
        if heaviest.as_ref().is_none_or(|h| need.per_job > h.per_job) {
            heaviest = Some(need);
        }
    }
    let (Some(need), Some((available, source))) = (heaviest, hardware::available_memory()) else {
        return Ok((wanted, None));
    };
    let jobs = need.jobs_that_fit(wanted, available, &source)?;
    let note = (jobs < wanted).then(|| {
        format!(
            "memory: {wanted} jobs need about {}, and {} is available ({source}): running {jobs} at once",
            transfer_study::memory::mib(need.total(wanted)),
            transfer_study::memory::mib(available)
        )
    });
    Ok((jobs, note))
}

/// Refuses more threads than cores: `--jobs` times `--threads-per-job`, or
/// `--threads-per-job` alone.
fn check_threads(args: &StudyArgs) -> Result<()> {
    let cores = cores();
    match (args.jobs, args.threads_per_job) {
        (Some(j), Some(t)) if u64::from(j) * u64::from(t) > cores as u64 => {
            Err(XtaskError::Usage(format!(
                "--jobs {j} x --threads-per-job {t} = {} threads, more than this machine's {cores} cores",
                u64::from(j) * u64::from(t)
            )))
        }
        (None, Some(t)) if t as usize > cores => Err(XtaskError::Usage(format!(
            "--threads-per-job {t}: more than this machine's {cores} cores"
        ))),
        _ => Ok(()),
    }
}

/// The jobs `study` and `sweep` want before memory is checked: `--jobs`, else as many as
/// `--threads-per-job` leaves room for, else one per core on a CPU (the cost model then
/// measures the splits) and 2 elsewhere.
fn wanted_jobs(args: &StudyArgs) -> usize {
    match (args.jobs, args.threads_per_job) {
        (Some(j), _) => j as usize,
        (None, Some(t)) => (cores() / t as usize).max(1),
        (None, None) if measures_split(args) => cores(),
        (None, None) => cores().min(2),
    }
}

/// Whether the cost model chooses the split: neither flag given, on a CPU, with the
/// estimate's measurements.
fn measures_split(args: &StudyArgs) -> bool {
    args.jobs.is_none()
        && args.threads_per_job.is_none()
        && args.backend.on_cpu()
        && !args.no_estimate
}

/// How `study` and `sweep` execute, with at most `jobs` jobs (what fits in memory).
fn execution(args: &StudyArgs, shard: Option<Shard>, jobs: usize) -> (Execution, Compute) {
    let (stack, compute) = args.stacking.compute();
    let jobs = match args.threads_per_job {
        Some(t) => Jobs::Given(Split::pools(jobs, t as usize)),
        None if measures_split(args) => Jobs::Fastest {
            cores: cores(),
            max_jobs: jobs,
        },
        None => Jobs::Given(Split::shared(jobs)),
    };
    let exec = Execution {
        jobs,
        stack,
        shard,
        estimate: !args.no_estimate,
    };
    (exec, compute)
}

fn study(args: StudyArgs) -> Result<()> {
    check_threads(&args)?;
    bench::prefer_isa(args.isa)?;
    let StudyInputs {
        file,
        config,
        shard,
    } = study_inputs(&args)?;
    if file.as_ref().is_some_and(|f| f.sweep.is_some()) {
        return Err(XtaskError::Usage(format!(
            "{}: the configuration has a [sweep] table; run it with `cargo xtask sweep`",
            args.config
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display()
        )));
    }
    let manifest = read_manifest(args.data.manifest.as_deref())?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&config.preset));
    let backend = args.backend.device()?;
    let dataset = load_dataset(&args.data.dir, &manifest)?;
    let stack = args.stacking.compute().0;
    let (jobs, memory_note) = jobs_in_memory(
        [(String::new(), memory_need(&dataset, &config, stack))],
        wanted_jobs(&args),
    )?;
    let mut ws = Workspace::new(
        &dataset,
        backend,
        &out,
        &config.training,
        &config.proportions,
    )?;
    // Printed once every check has passed: a refusal comes alone.
    study::print_configuration(&config, args.backend.name(), &out, &[]);
    memory_note.iter().for_each(|note| println!("{note}"));
    let (exec, compute) = execution(&args, shard, jobs);
    ws.compute = compute;
    ws.save_models = args.save_models;
    ws.provenance.command = command_line();
    study::run(&ws, &config, &exec, args.quiet)
}

fn sweep(args: SweepArgs) -> Result<()> {
    let study_args = &args.study;
    check_threads(study_args)?;
    bench::prefer_isa(study_args.isa)?;
    let StudyInputs {
        file,
        config,
        shard,
    } = study_inputs(study_args)?;
    let sweep = build_sweep(config, file.as_ref(), &args.axes)?;
    let manifest = read_manifest(study_args.data.manifest.as_deref())?;
    let out = study_args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(format!("sweep-{}", sweep.base().preset)));
    let backend = study_args.backend.device()?;
    let dataset = load_dataset(&study_args.data.dir, &manifest)?;
    let stack = study_args.stacking.compute().0;
    let needs = sweep
        .points()
        .into_iter()
        .map(|p| (p.name, memory_need(&dataset, &p.config, stack)));
    let (jobs, memory_note) = jobs_in_memory(needs, wanted_jobs(study_args))?;
    for dir in &args.reuse {
        if !dir.join("settings.json").is_file() && !dir.join(transfer_study::SWEEP_FILE).is_file() {
            return Err(XtaskError::Usage(format!(
                "--reuse {}: not a results directory (no settings.json) nor a sweep's (no {})",
                dir.display(),
                transfer_study::SWEEP_FILE
            )));
        }
    }
    let mut sw = SweepWorkspace::new(&dataset, backend, &out, &sweep)?;
    // Printed once every point has passed its checks: a refusal comes alone.
    study::print_sweep(&sweep, study_args.backend.name(), &out);
    memory_note.iter().for_each(|note| println!("{note}"));
    for dir in &args.reuse {
        let reused = sw.reuse(dir)?;
        println!(
            "reused from {}: {} runs and {} pretrained models whose settings are a point's",
            dir.display(),
            reused.runs,
            reused.pretrainings
        );
    }
    let (exec, compute) = execution(study_args, shard, jobs);
    for point in &mut sw.points {
        point.ws.compute = compute;
        point.ws.save_models = study_args.save_models;
        point.ws.provenance.command = command_line();
    }
    study::run_sweep(&sw, &exec, study_args.quiet)
}

fn export(args: ExportArgs) -> Result<()> {
    let not_a_run = || {
        XtaskError::Usage(format!(
            "{}: not a run of a results directory (DIR/runs/NAME.json or DIR/models/NAME.bpk)",
            args.run.display()
        ))
    };
    // A run is named by its record, DIR/runs/NAME.json, or its model, DIR/models/NAME.bpk.
    let folder = args.run.parent().and_then(|p| p.file_name());
    let extension = args.run.extension();
    let named_like_a_run = matches!(
        (
            folder.and_then(|f| f.to_str()),
            extension.and_then(|e| e.to_str())
        ),
        (Some("runs"), Some("json")) | (Some("models"), Some("bpk"))
    );
    if !named_like_a_run {
        return Err(not_a_run());
    }
    if !args.run.is_file() {
        return Err(XtaskError::Usage(format!(
            "{}: no such file",
            args.run.display()
        )));
    }
    let stem = args.run.file_stem().ok_or_else(not_a_run)?;
    let dir = args
        .run
        .parent()
        .and_then(|p| p.parent())
        .ok_or_else(not_a_run)?;
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    let store = transfer_records::ResultsDir::open(dir)?;
    let record_name = format!("{}.json", stem.to_string_lossy());
    let record = store.read_run(&dir.join("runs").join(record_name))?;
    let model_path = store.saved_model(&record)?;
    let saved = record.model.as_ref().ok_or_else(not_a_run)?;
    let config =
        transfer_model::CnnConfig::new(saved.num_classes).with_image_size(saved.image_size);
    config.validate()?;
    let backend = Backend::default_compiled().device()?;
    let model = config.init(backend.device(), 0).load(&model_path)?;
    transfer_model::to_safetensors(&model, &args.out)?;
    println!(
        "{} p={} rep {} (final test accuracy {:.4}) written to {} with PyTorch's names and layouts",
        record.protocol.name,
        record.proportion,
        record.repetition,
        record.final_accuracy,
        args.out.display()
    );
    Ok(())
}

fn report(args: ReportArgs) -> Result<()> {
    if args.out.join(transfer_study::SWEEP_FILE).exists() {
        return study::report_sweep(&args.out);
    }
    let results = transfer_report::StudyResults::read(&args.out)?;
    let ctx = match &results.config {
        Some(config) => transfer_study::report_context(config, "", None),
        None => transfer_report::ReportContext::default(),
    };
    let files = transfer_report::write_report(&args.out, &results, &ctx)?;
    let completeness = results.analysis().completeness;
    let planned = match completeness.planned_runs {
        Some(planned) if !completeness.complete => format!(
            " of {planned} planned (INCOMPLETE: {} cells lack runs; the report says which)",
            completeness.short_cells.len()
        ),
        Some(planned) => format!(" of {planned} planned"),
        None => String::new(),
    };
    println!(
        "{} runs{planned} reported; {} files written to {}",
        results.runs.len(),
        files.len(),
        args.out.display()
    );
    Ok(())
}
