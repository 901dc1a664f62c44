//! The command line end to end, on real MNIST: the smoke study and its resumption, a study
//! killed with SIGKILL and resumed, sharding, and errors in plain words.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{mnist_dir, records, run_err, run_ok, temp, xtask};

#[test]
fn smoke_study_writes_everything_and_a_rerun_trains_nothing() {
    let out = temp("smoke");
    let o = out.to_str().unwrap();
    run_ok(&[
        "study",
        "--preset",
        "smoke",
        "--out",
        o,
        "--quiet",
        "--no-estimate",
    ]);
    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "protocol,proportion,train_samples,reps,mean,std,ci95_low,ci95_high,report_value,delta"
    );
    assert_eq!(lines.len(), 17, "{csv}");
    for file in [
        "summary.json",
        "report.md",
        "table.md",
        "study.json",
        "figures/protocol-frozen.png",
        "figures/proportion-0.005.svg",
        "figures/accuracy-vs-proportion.png",
        "figures/gain-over-raw.svg",
        "figures/pretraining.png",
    ] {
        assert!(out.join(file).is_file(), "{file} is missing");
    }
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 32, "{runs}");
    let curves = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    assert_eq!(
        curves.lines().count(),
        1 + 32,
        "one evaluation per smoke run: {curves}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("## Provenance") && report.contains("study --preset smoke"),
        "{report}"
    );
    let before = records(&out);
    assert_eq!(before.len(), 32);
    let started = Instant::now();
    let text = run_ok(&["study", "--preset", "smoke", "--out", o, "--quiet"]);
    assert!(text.contains("32 already finished, 0 to run"), "{text}");
    assert_eq!(records(&out), before);
    eprintln!("rerun took {:.1} s", started.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&out).unwrap();
}

/// A small study: 12 runs of 4 iterations, one evaluation each.
const SMALL: [&str; 14] = small_study("0.005,0.01", "raw,frozen,dropout");

/// A study of these proportions and protocols, 2 repetitions of 4 iterations, one evaluation
/// each.
const fn small_study(props: &'static str, protocols: &'static str) -> [&'static str; 14] {
    [
        "study",
        "--props",
        props,
        "--protocols",
        protocols,
        "--reps",
        "2",
        "--iters",
        "4",
        "--eval-every",
        "4",
        "--pretrain-iters",
        "4",
        "--no-estimate",
    ]
}

fn small(out: &Path, extra: &[&str]) -> Command {
    let mut args: Vec<&str> = SMALL.to_vec();
    args.extend(["--out", out.to_str().unwrap(), "--quiet"]);
    args.extend(extra);
    xtask(&args)
}

/// Runs [`small`] to the end and asserts that it succeeded, showing its errors otherwise.
fn small_ok(out: &Path, extra: &[&str]) {
    let done = small(out, extra).output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn killed_resumed_and_sharded_studies_equal_an_uninterrupted_one() {
    let whole = temp("whole");
    assert!(small(&whole, &[]).output().unwrap().status.success());
    let expected = records(&whole);
    assert_eq!(expected.len(), 12);
    let table = std::fs::read_to_string(whole.join("table.csv")).unwrap();

    // Killed with SIGKILL once a few runs are stored, then resumed.
    let killed = temp("killed");
    let mut child = small(&killed, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let stored = std::fs::read_dir(killed.join("runs"))
            .map(|d| d.count())
            .unwrap_or(0);
        if stored >= 3 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = records(&killed).len();
    assert!(partial < 12, "the study finished before it could be killed");
    assert!(small(&killed, &[]).output().unwrap().status.success());
    assert_eq!(records(&killed), expected);
    assert_eq!(
        std::fs::read_to_string(killed.join("table.csv")).unwrap(),
        table
    );

    // Two shards into one directory, two runs at a time, then the report from their union.
    let sharded = temp("sharded");
    for (i, shard) in ["0/2", "1/2"].into_iter().enumerate() {
        small_ok(&sharded, &["--shard", shard, "--jobs", "2"]);
        if i == 0 {
            assert!(
                !sharded.join("table.csv").exists(),
                "a partial study must not write the table"
            );
        }
    }
    run_ok(&["report", "--out", sharded.to_str().unwrap()]);
    assert_eq!(records(&sharded), expected);
    assert_eq!(
        std::fs::read_to_string(sharded.join("table.csv")).unwrap(),
        table
    );

    // Other settings into the same directory are refused, naming what differs.
    let mut args: Vec<&str> = SMALL.to_vec();
    args[8] = "7";
    args.extend(["--out", whole.to_str().unwrap()]);
    let err = run_err(&args);
    assert!(err.contains("iterations: 4 there, 7 now"), "{err}");

    for dir in [whole, killed, sharded] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn stacked_studies_resume_and_shard_to_the_same_records() {
    let whole = temp("stacked");
    small_ok(&whole, &["--stack", "2"]);
    let expected = records(&whole);
    assert_eq!(expected.len(), 12);
    for (name, record) in &expected {
        let driver = record["backend"]["driver"].as_str().unwrap();
        assert!(driver.ends_with(", 2 runs stacked"), "{name}: {driver}");
    }

    // A stack with one run missing is trained again whole, and gives the same numbers.
    std::fs::remove_file(whole.join("runs/raw-p0.01-rep-01.json")).unwrap();
    let text = run_ok(
        &[
            &SMALL[..],
            &["--out", whole.to_str().unwrap(), "--stack", "2"],
        ]
        .concat(),
    );
    assert!(text.contains("11 already finished, 1 to run"), "{text}");
    assert_eq!(records(&whole), expected);

    // Shards take whole stacks.
    let sharded = temp("stacked-sharded");
    for shard in ["0/2", "1/2"] {
        small_ok(&sharded, &["--shard", shard, "--stack", "2"]);
    }
    assert_eq!(records(&sharded), expected);

    // Convolutions as matrix products, evaluated in parts of 8 images: the same runs to
    // float rounding, and the records say how they were computed.
    let gemm = temp("stacked-gemm");
    let done = xtask(
        &[
            &small_study("0.005", "raw,frozen")[..],
            &["--quiet", "--out", gemm.to_str().unwrap(), "--stack", "2"],
            &["--stacked-conv", "gemm", "--max-buffer-mib", "16"],
        ]
        .concat(),
    )
    .output()
    .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let got = records(&gemm);
    assert_eq!(got.len(), 4);
    for (name, record) in &got {
        let (_, alone) = expected.iter().find(|(n, _)| n == name).unwrap();
        let driver = record["backend"]["driver"].as_str().unwrap();
        let suffix = if name.starts_with("frozen") {
            ", 2 runs stacked"
        } else {
            ", 2 runs stacked (gemm convolutions)"
        };
        assert!(driver.ends_with(suffix), "{name}: {driver}");
        let accuracy = |r: &serde_json::Value| r["final_accuracy"].as_f64().unwrap();
        let (a, b) = (accuracy(record), accuracy(alone));
        assert!((a - b).abs() <= 0.003, "{name}: accuracy {a} vs {b}");
    }
    for dir in [whole, sharded, gemm] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn train_writes_its_record_and_rejects_bad_arguments() {
    let out = temp("train");
    let json = out.join("run.json");
    let text = run_ok(&[
        "train",
        "--protocol",
        "frozen",
        "--proportion",
        "0.005",
        "--iters",
        "4",
        "--eval-every",
        "2",
        "--pretrain-iters",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(text.contains("source test accuracy"), "{text}");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(record["final_accuracy"].as_f64().unwrap() > 0.0);
    assert_eq!(record["curve"].as_array().unwrap().len(), 2);
    assert_eq!(record["curve"][1]["iteration"], 4);
    let err = run_err(&["train", "--protocol", "nope", "--proportion", "0.1"]);
    assert!(err.contains("raw, frozen, finetune, dropout"), "{err}");
    let err = run_err(&["train", "--protocol", "raw", "--proportion", "0"]);
    assert!(err.contains("outside (0, 1]"), "{err}");
    let err = run_err(&[
        "train",
        "--protocol",
        "raw",
        "--proportion",
        "0.1",
        "--iters",
        "0",
    ]);
    assert!(err.contains("at least 1"), "{err}");
    let err = run_err(&[
        "train",
        "--protocol",
        "frozen",
        "--proportion",
        "0.1",
        "--pretrain-iters",
        "0",
    ]);
    assert!(
        err.contains("pretrain-iters") && err.contains("raw"),
        "{err}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn one_off_runs_with_other_settings_do_not_refuse_each_other() {
    let cwd = temp("train-default-dir");
    std::fs::create_dir_all(&cwd).unwrap();
    let train = |iters: &str| {
        let args = [
            "train",
            "--protocol",
            "raw",
            "--proportion",
            "0.005",
            "--iters",
            iters,
            "--eval-every",
            "2",
            "--quiet",
        ];
        let out = xtask(&args).current_dir(&cwd).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}{err}");
        text
    };
    let first = train("2");
    let second = train("4");
    let again = train("2");
    assert!(again.contains("reused"), "{again}");
    let dirs: Vec<_> = std::fs::read_dir(cwd.join("results/train"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}\n{first}\n{second}");
    assert!(dirs.iter().all(|d| d.starts_with("settings-")), "{dirs:?}");
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[test]
fn a_damaged_dataset_fails_in_one_line() {
    let dir = temp("damaged");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(mnist_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "gz") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let labels = dir.join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() - 10]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["data", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("t10k-labels-idx1-ubyte.gz"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_version_names_the_backends_built_in() {
    let version = run_ok(&["--version"]);
    let backends = version
        .split("(backends: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no backends in {version:?}"));
    let names: Vec<&str> = backends.split(", ").collect();
    assert!(names.contains(&"flex"), "{version}");
    assert_eq!(names.contains(&"wgpu"), cfg!(feature = "wgpu"), "{version}");
}

#[test]
fn the_threads_of_a_jobs_own_pool_change_no_number() {
    // The records without their `backend`, which must say `threads`; the table; stdout.
    let run = |tag: &str, flags: &[&str], threads: Option<u64>, isa: &str| {
        let out = temp(&format!("threads-{tag}"));
        let mut args = vec!["study", "--preset", "smoke", "--quiet", "--out"];
        args.push(out.to_str().unwrap());
        args.extend_from_slice(flags);
        let stdout = run_ok(&args);
        let mut seen = Vec::new();
        let records: Vec<(String, serde_json::Value)> = records(&out)
            .into_iter()
            .map(|(name, mut record)| {
                let backend = record.as_object_mut().unwrap().remove("backend").unwrap();
                let t = backend["threads"].as_u64().unwrap();
                // The record says how many threads computed it.
                assert!(threads.is_none_or(|want| want == t), "{name}: {backend}");
                let driver = backend["driver"].as_str().unwrap();
                assert!(driver.contains(isa), "{name}: {backend}");
                // The record names gemm's instruction set too (it computes the products where
                // it runs AVX-512, the same bits as the products' own kernels elsewhere).
                #[cfg(feature = "flex")]
                if let Some(products) = transfer_kernels::Isa::of_products() {
                    let gemm = format!(", gemm {}", products.name());
                    assert!(driver.ends_with(&gemm), "{name}: {backend}");
                }
                seen.push(t);
                (name, record)
            })
            .collect();
        let table = std::fs::read(out.join("table.csv")).unwrap();
        std::fs::remove_dir_all(&out).unwrap();
        ((records, table), stdout, seen)
    };
    let pools = |t: &'static str| ["--jobs", "1", "--threads-per-job", t, "--no-estimate"];
    let (one, _, _) = run("1", &pools("1"), Some(1), "");
    assert_eq!(one.0.len(), 32);
    // Two threads, and on x86-64 the kernels held to AVX2 (the records say so; the products'
    // own AVX2 kernels then replace gemm's AVX-512 ones): the same numbers as one thread with
    // the fastest instruction set.
    #[cfg(target_arch = "x86_64")]
    let avx2 =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    let mut flags = pools("2").to_vec();
    if avx2 {
        flags.extend(["--isa", "avx2"]);
    }
    let (two, _, _) = run("2", &flags, Some(2), if avx2 { "avx2" } else { "" });
    assert_eq!(one, two);
    // By default the cost model times every split of the cores, all jobs at once, and trains
    // with the fastest: the estimate names it, the records say its threads, the numbers are
    // the same.
    let (chosen, stdout, seen) = run("chosen", &[], None, "");
    assert_eq!(one, chosen);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let line = stdout
        .lines()
        .find(|l| l.starts_with("estimated time:"))
        .unwrap_or_else(|| panic!("no estimate in {stdout}"));
    let split = transfer_study::Split::candidates(cores, cores)
        .into_iter()
        .find(|s| line.contains(&format!("with {s} (")))
        .unwrap_or_else(|| panic!("no split of {cores} cores in {line:?}"));
    assert!(
        seen.iter().all(|&t| Some(t as usize) == split.threads),
        "{seen:?} {split}"
    );
    if cores > 1 {
        assert!(
            stdout.contains("the fastest split of this machine's cores"),
            "{stdout}"
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let too_many = (cores + 1).to_string();
    let err = run_err(&[
        "study",
        "--preset",
        "smoke",
        "--jobs",
        "1",
        "--threads-per-job",
        &too_many,
        "--out",
        temp("threads-refused").to_str().unwrap(),
    ]);
    assert!(
        err.contains(&format!("--jobs 1 x --threads-per-job {too_many} = {too_many} threads, more than this machine's {cores} cores")),
        "{err}"
    );
}

#[test]
fn bench_scaling_measures_every_split_of_the_cores() {
    let json = temp("scaling").with_extension("json");
    run_ok(&[
        "bench",
        "--steps",
        "2",
        "--eval-passes",
        "1",
        "--scaling",
        "--json",
        json.to_str().unwrap(),
        "--dir",
        mnist_dir().to_str().unwrap(),
    ]);
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let splits = figures["scaling"].as_array().unwrap();
    let divisors = (1..=cores).filter(|t| cores.is_multiple_of(*t)).count();
    assert_eq!(splits.len(), divisors, "{splits:?}");
    for split in splits {
        let (jobs, threads) = (
            split["jobs"].as_u64().unwrap(),
            split["threads"].as_u64().unwrap(),
        );
        assert_eq!(jobs * threads, cores, "{split}");
        for rate in [
            "train_steps_per_s",
            "eval_images_per_s",
            "paper_runs_per_hour",
        ] {
            assert!(split[rate].as_f64().unwrap() > 0.0, "{split}");
        }
    }
    std::fs::remove_file(json).unwrap();
}
