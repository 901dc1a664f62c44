//! `cargo xtask bench`: training steps per second for each protocol, evaluation images per
//! second, achieved GFLOP/s, peak memory, and the paper preset's expected time.

use std::path::PathBuf;

use clap::Args;
use serde::{Deserialize, Serialize};
use transfer_model::{CnnConfig, forward_flops_per_image};
use transfer_records::{NetworkShape, Protocol};

use crate::StackArgs;
use crate::backend::Backend;
use crate::dataset::load_dataset;
use crate::error::{Result, XtaskError};
use transfer_study::cost::{
    Costs, Sizes, Timing, seconds_per_eval_image, seconds_per_step, study_seconds,
};
use transfer_study::{Preset, Split, plan};

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
    #[arg(long, default_value_t = transfer_protocols::DEFAULT_EVAL_CHUNK)]
    pub eval_chunk: usize,
    /// The fused CPU kernels' method (flex; default: the fastest this CPU has), to compare
    /// methods end to end.
    #[arg(long, value_enum)]
    pub kernels: Option<Kernels>,
    /// The instruction set of the fused kernels and the classifier's products (flex; default:
    /// the fastest this CPU has): `avx2` measures on an AVX-512 machine what a CPU without
    /// AVX-512 gets.
    #[arg(long, value_enum)]
    pub isa: Option<InstructionSet>,
    /// Networks trained and scored together, as in `study`; rates count every network's
    /// steps and images.
    #[command(flatten)]
    pub stacking: StackArgs,
    /// Also write the figures as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also measure every split of this machine's cores into J jobs of T threads each (J x T
    /// the cores), all jobs timed at once, and print the paper preset's runs per hour for each.
    #[arg(long)]
    pub scaling: bool,
    /// Also time a plain PyTorch implementation of the same model (scripts/pytorch_bench.py)
    /// with the same thread count, and print the ratios.
    #[arg(long)]
    pub compare: bool,
    /// The Python interpreter that has PyTorch, for --compare.
    #[arg(long, default_value = "python3", env = "TRANSFER_PYTHON")]
    pub python: PathBuf,
    /// Directory of the MNIST files.
    #[arg(long, default_value = "data/mnist", env = "MNIST_DIR")]
    pub dir: PathBuf,
}

/// The fused kernels' instruction sets (`transfer_kernels::Isa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InstructionSet {
    /// AVX2 with FMA: x86-64 CPUs since about 2013.
    Avx2,
    /// AVX-512F: server CPUs, AMD since Zen 4.
    Avx512,
}

/// The fused backbone's methods (`transfer_kernels::Method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kernels {
    /// Winograd F(4x4, 3x3) for conv2 (AVX-512 or AVX2).
    Winograd,
    /// Register-blocked direct convolutions (AVX-512 or AVX2).
    Direct,
    /// im2col and `gemm`, any CPU.
    Im2col,
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
    /// Networks trained and scored together; the rates count every network's steps and images.
    pub stack: usize,
    /// How stacked networks computed their convolutions: `grouped` or `gemm`.
    pub stacked_conv: String,
    /// The largest tensor evaluation and cached features created, in MiB.
    pub max_buffer_mib: usize,
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
    /// Forward FLOPs per image used below (multiply-add = 2), counted as direct convolutions
    /// and dense products: Winograd kernels do fewer multiplications, so the GFLOP/s below are
    /// effective rates and can exceed the peak.
    pub forward_flops_per_image: u64,
    /// Effective GFLOP/s of raw training (forward + backward = 3 x forward FLOPs).
    pub gflops: f64,
    /// Effective GFLOP/s of evaluation.
    pub eval_gflops: f64,
    /// Peak GFLOP/s of the CPU, measured with a fused multiply-add loop on every core (see
    /// `hardware::peak_gflops`), for the CPU backends; 0 for GPU backends and where unknown
    /// (not x86-64).
    pub peak_gflops: f64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mb: f64,
    /// The memory model's estimate for one job of runs this size (500 training images, the
    /// study's network and batch, the bench's stack), MiB: what a study is checked against.
    #[serde(default)]
    pub estimated_peak_mb: f64,
    /// Estimated seconds of the paper preset with one job.
    pub paper_estimate_s: f64,
    /// The PyTorch figures measured in the same run (`--compare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pytorch: Option<PytorchFigures>,
    /// Every split of the cores into jobs and threads per job (`--scaling`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaling: Vec<SplitFigures>,
}

/// One split of the cores: `jobs` jobs of `threads` threads, all timed at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitFigures {
    /// Jobs at once.
    pub jobs: usize,
    /// Threads of each job's pool.
    pub threads: usize,
    /// Raw training steps per second of each job (the mean over the jobs).
    pub train_steps_per_s: f64,
    /// Test images scored per second by each job.
    pub eval_images_per_s: f64,
    /// Runs of the paper preset per hour, all jobs together.
    pub paper_runs_per_hour: f64,
}

/// What `scripts/pytorch_bench.py` measures, and this project's speed relative to it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PytorchFigures {
    /// Library and version.
    pub implementation: String,
    /// Threads PyTorch used.
    pub threads: usize,
    /// Training steps per second, batch 100, whole network.
    pub train_steps_per_s: f64,
    /// Frozen protocol steps per second (convolutions run every step, without gradients).
    pub frozen_steps_per_s: f64,
    /// Images per second scoring the target test set in chunks of `--eval-chunk`.
    pub eval_images_per_s: f64,
    /// Estimated seconds of the paper preset with one job, straightforwardly (frozen runs
    /// evaluate the whole network like the others).
    #[serde(default)]
    pub paper_estimate_s: f64,
}

/// Runs the benchmark.
pub fn bench(args: BenchArgs) -> Result<()> {
    choose_kernels(&args)?;
    let backend = args.backend.device()?;
    let (device, info) = (backend.device(), backend.info());
    let dataset = load_dataset(&args.dir, &transfer_data::Manifest::mnist())?;
    let (source, target) = dataset.transfer_tasks(
        &transfer_data::SOURCE_CLASSES,
        &transfer_data::TARGET_CLASSES,
    )?;
    let sizes = Sizes::of(&source, &target);
    let mut figures = measure(&args, device, info, &target, sizes)?;
    // The benchmark trains on 500 training images: the paper preset's runs at that size.
    let config = transfer_records::StudyConfig {
        proportions: vec![0.021],
        ..Preset::Paper.config()
    };
    let need = transfer_study::memory::memory_need(&dataset, &config, args.stacking.compute().0)?;
    figures.estimated_peak_mb = need.total(1) as f64 / f64::from(1u32 << 20);
    print_figures(&figures, &args, info, target.test.len());
    if args.scaling {
        figures.scaling = scaling(&args, device, &target, sizes)?;
        print_scaling(&figures.scaling);
    }
    if args.compare {
        let mut torch = run_pytorch(&args)?;
        let costs = Costs {
            step: 1.0 / torch.train_steps_per_s,
            frozen_step: 1.0 / torch.frozen_steps_per_s,
            eval_image: 1.0 / torch.eval_images_per_s,
            frozen_reuses_features: false,
            disturbed: false,
        };
        torch.paper_estimate_s = paper_seconds(costs, sizes);
        print_comparison(&figures, &torch);
        figures.pytorch = Some(torch);
    }
    if let Some(path) = &args.json {
        transfer_records::write_json(path, &figures)?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

/// Makes the fused backbone use the method and instruction set the arguments name, if any.
fn choose_kernels(args: &BenchArgs) -> Result<()> {
    #[cfg(feature = "flex")]
    if let Some(kernels) = args.kernels {
        use transfer_kernels::Method;
        Method::prefer(Some(match kernels {
            Kernels::Winograd => Method::Winograd,
            Kernels::Direct => Method::Direct,
            Kernels::Im2col => Method::Im2col,
        }));
    }
    prefer_isa(args.isa)
}

/// Makes the fused kernels use `isa`, if given; refused in one line where the CPU lacks it.
pub fn prefer_isa(isa: Option<InstructionSet>) -> Result<()> {
    #[cfg(feature = "flex")]
    if let Some(isa) = isa {
        use transfer_kernels::Isa;
        let isa = match isa {
            InstructionSet::Avx2 => Isa::Avx2,
            InstructionSet::Avx512 => Isa::Avx512,
        };
        if !isa.available() {
            let has: Vec<&str> = Isa::all().iter().map(|i| i.name()).collect();
            return Err(XtaskError::Usage(format!(
                "--isa {}: this CPU lacks it (it has: {})",
                isa.name(),
                if has.is_empty() {
                    "neither".into()
                } else {
                    has.join(", ")
                }
            )));
        }
        Isa::prefer(Some(isa));
    }
    #[cfg(not(feature = "flex"))]
    let _ = isa;
    Ok(())
}

/// Times every protocol's training steps and an evaluation pass on the target task.
fn measure(
    args: &BenchArgs,
    device: &burn::prelude::Device,
    info: &transfer_records::BackendInfo,
    target: &transfer_data::Task,
    sizes: Sizes,
) -> Result<BenchFigures> {
    let network = &NetworkShape::STUDY;
    let (stack, compute) = args.stacking.compute();
    let rate = |name: &str| -> Result<f64> {
        let protocol = Protocol::resolve(name, &[])?;
        let time = seconds_per_step(
            device, target, &protocol, network, args.steps, stack, compute,
        )?;
        if time.disturbed {
            eprintln!(
                "warning: {name}'s step time was disturbed by other work on the machine three times; its figure is an upper bound"
            );
        }
        Ok(1.0 / time.seconds)
    };
    // One untimed pass first, so that the first protocol timed does not pay for the process's
    // first page faults and cold caches.
    rate("raw")?;
    let (raw, frozen, finetune, dropout) = (
        rate("raw")?,
        rate("frozen")?,
        rate("finetune")?,
        rate("dropout")?,
    );
    let (chunk, passes) = (args.eval_chunk, args.eval_passes);
    let eval_image =
        seconds_per_eval_image(device, target, chunk, passes, stack, compute, network)?;
    let flops = forward_flops_per_image(&CnnConfig::new(4), 4);
    let costs = Costs {
        step: 1.0 / raw,
        frozen_step: 1.0 / frozen,
        eval_image,
        frozen_reuses_features: true,
        disturbed: false,
    };
    Ok(BenchFigures {
        backend: info.backend.clone(),
        device: info.device.clone(),
        hardware: crate::hardware::describe(),
        stack,
        stacked_conv: compute.stacked_conv.to_string(),
        max_buffer_mib: compute.max_buffer_bytes >> 20,
        train_steps_per_s: raw,
        frozen_steps_per_s: frozen,
        finetune_steps_per_s: finetune,
        dropout_steps_per_s: dropout,
        eval_images_per_s: 1.0 / eval_image,
        forward_flops_per_image: flops,
        gflops: raw * 100.0 * 3.0 * flops as f64 / 1e9,
        eval_gflops: flops as f64 / eval_image / 1e9,
        peak_gflops: if args.backend.on_cpu() {
            crate::hardware::peak_gflops(1.0, args.isa != Some(InstructionSet::Avx2)).unwrap_or(0.0)
        } else {
            0.0
        },
        peak_rss_mb: crate::hardware::peak_rss_mib().unwrap_or(0.0),
        estimated_peak_mb: 0.0,
        paper_estimate_s: paper_seconds(costs, sizes),
        pytorch: None,
        scaling: Vec::new(),
    })
}

/// Prints the figures of [`measure`].
fn print_figures(
    figures: &BenchFigures,
    args: &BenchArgs,
    info: &transfer_records::BackendInfo,
    test_images: usize,
) {
    let stacked = if figures.stack > 1 {
        format!(
            ", {} networks at once, {} convolutions (steps/s of each counted)",
            figures.stack, figures.stacked_conv
        )
    } else {
        String::new()
    };
    println!(
        "training, batch 100, {} timed steps each ({}; {}; {}){stacked}:",
        args.steps, info.backend, info.device, info.driver
    );
    for (name, rate) in [
        ("raw", figures.train_steps_per_s),
        ("frozen", figures.frozen_steps_per_s),
        ("finetune", figures.finetune_steps_per_s),
        ("dropout", figures.dropout_steps_per_s),
    ] {
        println!("  {name:<9} {rate:8.2} steps/s");
    }
    println!(
        "evaluation: {:.0} images/s over the {test_images} test images (chunks of {}, tensors under {} MiB)",
        figures.eval_images_per_s, args.eval_chunk, figures.max_buffer_mib
    );
    println!(
        "effective: {:.1} GFLOP/s training, {:.1} GFLOP/s evaluation ({:.2} MFLOP forward per image as direct convolutions; Winograd needs fewer)",
        figures.gflops,
        figures.eval_gflops,
        figures.forward_flops_per_image as f64 / 1e6
    );
    if figures.peak_gflops > 0.0 {
        println!(
            "  {:.0}% of the CPU's peak ({:.0} GFLOP/s, measured with an FMA loop{} on every core) in training, {:.0}% in evaluation",
            100.0 * figures.gflops / figures.peak_gflops,
            figures.peak_gflops,
            if args.isa == Some(InstructionSet::Avx2) {
                " of AVX2"
            } else {
                ""
            },
            100.0 * figures.eval_gflops / figures.peak_gflops
        );
    }
    println!(
        "peak memory: {:.0} MiB measured (resident); {:.0} MiB estimated by the memory model for one job of runs this size",
        figures.peak_rss_mb, figures.estimated_peak_mb
    );
    println!(
        "paper preset (160 runs + 10 pretrainings, 1000 iterations, evaluation every 10): about {:.1} h with one job",
        figures.paper_estimate_s / 3600.0
    );
}

/// Every split of the cores into `jobs x threads`: each job in a pool of its own, all at once,
/// timing raw and frozen steps and evaluation as `measure` does.
fn scaling(
    args: &BenchArgs,
    device: &burn::prelude::Device,
    target: &transfer_data::Task,
    sizes: Sizes,
) -> Result<Vec<SplitFigures>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (stack, compute) = args.stacking.compute();
    let network = &NetworkShape::STUDY;
    let paper = Preset::Paper.config();
    let runs = plan(&paper).len() as f64;
    let mut figures = Vec::new();
    for split in Split::candidates(cores, cores) {
        let timing = Timing {
            steps: args.steps,
            eval_chunk: args.eval_chunk,
            eval_passes: args.eval_passes,
        };
        let per_job = split
            .costs_at_once(|| Costs::measure(device, target, network, stack, compute, timing))?;
        let (jobs, threads) = (split.jobs, split.threads.unwrap_or(cores));
        figures.push(SplitFigures {
            jobs,
            threads,
            train_steps_per_s: 1.0 / per_job.step,
            eval_images_per_s: 1.0 / per_job.eval_image,
            paper_runs_per_hour: jobs as f64 * runs * 3600.0 / paper_seconds(per_job, sizes),
        });
    }
    Ok(figures)
}

/// The splits measured by [`scaling`], the best marked.
fn print_scaling(splits: &[SplitFigures]) {
    let best = splits
        .iter()
        .map(|s| s.paper_runs_per_hour)
        .fold(0.0f64, f64::max);
    println!(
        "jobs x threads per job, all jobs timed at once (per job: raw steps/s, eval images/s; all jobs: paper preset runs per hour):"
    );
    for s in splits {
        println!(
            "  {:>3} x {:<3} {:8.2} steps/s {:8.0} images/s {:8.0} runs/h{}",
            s.jobs,
            s.threads,
            s.train_steps_per_s,
            s.eval_images_per_s,
            s.paper_runs_per_hour,
            if s.paper_runs_per_hour == best {
                "  (best)"
            } else {
                ""
            }
        );
    }
}

/// The paper preset's seconds with one job under `costs`.
fn paper_seconds(costs: Costs, sizes: Sizes) -> f64 {
    let paper = Preset::Paper.config();
    study_seconds(
        costs,
        sizes,
        &paper.training,
        paper.repetitions as usize,
        plan(&paper)
            .iter()
            .map(|r| (r.protocol.freeze_backbone, r.proportion)),
    )
}

/// Runs `scripts/pytorch_bench.py` with this machine's thread count and reads its figures.
fn run_pytorch(args: &BenchArgs) -> Result<PytorchFigures> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pytorch_bench.py");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "timing PyTorch ({} {}, {threads} threads)...",
        args.python.display(),
        script.display()
    );
    let mut command = std::process::Command::new(&args.python);
    if args.isa == Some(InstructionSet::Avx2) {
        // PyTorch's own kernels (ATen), oneDNN's and MKL's, held to AVX2 as this side's are.
        println!(
            "  PyTorch held to AVX2 too: ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2"
        );
        command.envs([
            ("ATEN_CPU_CAPABILITY", "avx2"),
            ("DNNL_MAX_CPU_ISA", "AVX2"),
            ("MKL_ENABLE_INSTRUCTIONS", "AVX2"),
        ]);
    }
    let output = command
        .arg(&script)
        .arg("--mnist")
        .arg(&args.dir)
        .args(["--threads", &threads.to_string()])
        .args(["--steps", &args.steps.to_string()])
        .args(["--eval-passes", &args.eval_passes.to_string()])
        .output()
        .map_err(|e| {
            XtaskError::Pytorch(format!(
                "--compare could not run {}: {e}; pass --python with an interpreter that has PyTorch",
                args.python.display()
            ))
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(XtaskError::Pytorch(format!(
            "the PyTorch benchmark failed ({last}); is PyTorch installed (pip install torch) for {}?",
            args.python.display()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).map_err(|e| {
        XtaskError::Pytorch(format!(
            "the PyTorch benchmark printed something other than its figures ({e}): {line}"
        ))
    })
}

fn print_comparison(ours: &BenchFigures, torch: &PytorchFigures) {
    println!(
        "side by side, same machine, {} threads ({}):",
        torch.threads, torch.implementation
    );
    println!(
        "  {:<28} {:>12} {:>12} {:>8}",
        "", "this project", "PyTorch", "ratio"
    );
    let row = |name: &str, a: f64, b: f64| {
        println!("  {name:<28} {a:>12.1} {b:>12.1} {:>7.2}x", a / b);
    };
    row(
        "train steps/s (raw)",
        ours.train_steps_per_s,
        torch.train_steps_per_s,
    );
    row(
        "frozen steps/s",
        ours.frozen_steps_per_s,
        torch.frozen_steps_per_s,
    );
    row(
        "eval images/s",
        ours.eval_images_per_s,
        torch.eval_images_per_s,
    );
    println!(
        "  {:<28} {:>11.2}h {:>11.2}h {:>7.2}x",
        "paper preset, one job",
        ours.paper_estimate_s / 3600.0,
        torch.paper_estimate_s / 3600.0,
        torch.paper_estimate_s / ours.paper_estimate_s
    );
    println!(
        "  (frozen: this project trains the classifier on features computed once; PyTorch runs the frozen convolutions every step)"
    );
}
