//! `cargo xtask sweep` end to end, on real MNIST: runs shared between points and trained
//! once, each point the study of its settings, a sweep killed and resumed, sharded, grown by
//! a value, and bad sweeps refused before anything is created.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{records, refused, run_ok, temp, xtask};

/// A small study: raw, frozen and finetune at two proportions, 2 repetitions of 4
/// iterations, one evaluation each.
const SMALL: [&str; 13] = [
    "--props",
    "0.005,0.01",
    "--protocols",
    "raw,frozen,finetune",
    "--reps",
    "2",
    "--iters",
    "4",
    "--eval-every",
    "4",
    "--pretrain-iters",
    "4",
    "--no-estimate",
];

/// The sweep of [`SMALL`] over `axes` into `out`.
fn sweep(out: &Path, axes: &[&str], extra: &[&str]) -> Command {
    let mut args = vec!["sweep"];
    args.extend(SMALL);
    for axis in axes {
        args.extend(["--axis", axis]);
    }
    args.extend(["--out", out.to_str().unwrap(), "--quiet"]);
    args.extend(extra);
    xtask(&args)
}

fn sweep_ok(out: &Path, axes: &[&str], extra: &[&str]) -> String {
    let done = sweep(out, axes, extra).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(done.status.success(), "{text}");
    text
}

const RATES: &str = "finetune.learning-rate=0.0001,0.0003";
const POINTS: [&str; 2] = [
    "finetune.learning-rate=0.0001",
    "finetune.learning-rate=0.0003",
];

#[test]
fn a_sweep_trains_shared_runs_once_and_each_point_is_the_study_of_its_settings() {
    let out = temp("sweep");
    let text = sweep_ok(&out, &[RATES], &[]);
    // Raw and frozen read no learning rate of finetune: the second point's are the first's.
    assert!(
        text.contains("16 runs in this sweep (8 more runs of the 2 points are the same runs as another point's"),
        "{text}"
    );
    assert!(text.contains("2 pretrained models to train"), "{text}");
    assert!(text.contains("sweep complete"), "{text}");
    for point in POINTS {
        assert_eq!(records(&out.join(point)).len(), 12, "{point}");
        assert!(out.join(point).join("table.csv").is_file(), "{point}");
    }
    let second = out.join(POINTS[1]);
    let copied = std::fs::read_to_string(second.join("runs/raw-p0.01-rep-01.json")).unwrap();
    assert!(
        copied.contains(&format!("\"trained_in\": \"../{}\"", POINTS[0])),
        "{copied}"
    );

    // The point at finetune's own learning rate is exactly the study of those settings.
    let study = temp("sweep-study");
    let mut args = vec!["study"];
    args.extend(SMALL);
    args.extend(["--out", study.to_str().unwrap(), "--quiet"]);
    run_ok(&args);
    assert_eq!(records(&second), records(&study));
    let table = |dir: &Path| std::fs::read(dir.join("table.csv")).unwrap();
    assert_eq!(table(&second), table(&study));
    run_ok(&["report", "--out", second.to_str().unwrap()]);
    assert_eq!(table(&second), table(&study));

    // The sweep's report: a row per run of every point, each axis's effect, its figures.
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(
        csv.starts_with("finetune.learning-rate,protocol,proportion,repetition,seed,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 24);
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(md.contains("## Effect of `finetune.learning-rate`"), "{md}");
    assert!(md.contains("same runs"), "{md}");
    assert!(md.contains("Complete: 2 points"), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json["points"].as_array().unwrap().len(), 2);
    for figure in [
        "sweep-accuracy-by-finetune.learning-rate",
        "sweep-gain-by-finetune.learning-rate",
    ] {
        for ext in ["svg", "png"] {
            let file = out.join("figures").join(format!("{figure}.{ext}"));
            assert!(file.is_file(), "{}", file.display());
        }
    }

    // Run again: nothing to train. A value added to the axis trains only its own runs.
    let text = sweep_ok(&out, &[RATES], &[]);
    assert!(text.contains("16 already finished, 0 to run"), "{text}");
    let text = sweep_ok(&out, &["finetune.learning-rate=0.0001,0.0003,0.001"], &[]);
    assert!(text.contains("4 to run; 0 pretrained models"), "{text}");
    for dir in [out, study] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_killed_or_sharded_sweep_ends_with_the_records_of_an_uninterrupted_one() {
    let axes = ["pretrain-iters=4,8"];
    let whole = temp("sweep-whole");
    sweep_ok(&whole, &axes, &[]);
    let points = ["pretrain-iters=4", "pretrain-iters=8"];
    let expected: Vec<_> = points.iter().map(|p| records(&whole.join(p))).collect();

    // Killed with SIGKILL once a few runs are stored, then resumed.
    let killed = temp("sweep-killed");
    let mut child = sweep(&killed, &axes, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let stored = || {
        std::fs::read_dir(killed.join(points[0]).join("runs"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    while stored() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("sweep.md").exists(),
        "finished before the kill"
    );
    // A shared run reaches the other point as soon as it is trained, not when the sweep ends
    // (the kill may fall between a record and its copy: one may be missing).
    let raw = |point: &str| {
        std::fs::read_dir(killed.join(point).join("runs"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("raw-"))
                })
                .count()
            })
            .unwrap_or(0)
    };
    assert!(
        raw(points[1]) + 1 >= raw(points[0]),
        "{} against {}",
        raw(points[1]),
        raw(points[0])
    );
    sweep_ok(&killed, &axes, &[]);

    // Two shards of the whole grid into one directory, the second completing it.
    let sharded = temp("sweep-sharded");
    let text = sweep_ok(&sharded, &axes, &["--shard", "0/2"]);
    assert!(text.contains("runs in this shard"), "{text}");
    assert!(!sharded.join("sweep.md").exists());
    let text = sweep_ok(&sharded, &axes, &["--shard", "1/2", "--jobs", "2"]);
    assert!(text.contains("sweep complete"), "{text}");
    for dir in [&killed, &sharded] {
        let got: Vec<_> = points.iter().map(|p| records(&dir.join(p))).collect();
        assert_eq!(got, expected, "{}", dir.display());
        assert_eq!(
            std::fs::read_to_string(dir.join("sweep.csv"))
                .unwrap()
                .lines()
                .count(),
            std::fs::read_to_string(whole.join("sweep.csv"))
                .unwrap()
                .lines()
                .count()
        );
    }
    run_ok(&["report", "--out", sharded.to_str().unwrap()]);
    for dir in [whole, killed, sharded] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_sweep_over_vary_trains_repetition_0_once_and_holds_what_does_not_vary() {
    let out = temp("sweep-vary");
    let extra = ["--subset", "drawn"];
    let text = sweep_ok(&out, &["vary=order,subset,all"], &extra);
    // 3 points of 3 protocols at 2 proportions, 2 repetitions: repetition 0 is one run.
    assert!(
        text.contains("24 runs in this sweep (12 more runs of the 3 points are the same runs as another point's"),
        "{text}"
    );
    // The configuration shows the axis's values where the base's are replaced.
    assert!(
        text.contains("repetitions vary {order, subset, all}; the other sources are held"),
        "{text}"
    );
    // Backbone 1 only for the point that varies the pretraining.
    assert!(text.contains("2 pretrained models to train"), "{text}");
    let points = ["vary=order", "vary=subset", "vary=all"];
    let runs: Vec<_> = points.iter().map(|p| records(&out.join(p))).collect();
    // A record as trained: the settings' hash is each point's own.
    let run = |point: usize, name: &str| {
        let mut record = runs[point]
            .iter()
            .find(|(file, _)| file == name)
            .map(|(_, record)| record.clone())
            .unwrap_or_else(|| panic!("{}: no {name}", points[point]));
        record.as_object_mut().unwrap().remove("settings_hash");
        record
    };
    for point in 1..3 {
        assert_eq!(
            run(point, "frozen-p0.01-rep-00.json"),
            run(0, "frozen-p0.01-rep-00.json")
        );
    }
    // Held: repetition 1 starts from repetition 0's backbone; varied: from its own.
    let pretrained = |point, rep: u32| {
        run(point, &format!("frozen-p0.005-rep-0{rep}.json"))["pretrain_seed"].clone()
    };
    assert_eq!(pretrained(0, 1), pretrained(0, 0));
    assert_eq!(pretrained(1, 1), pretrained(1, 0));
    assert_ne!(pretrained(2, 1), pretrained(2, 0));
    // Each source alone still moves the training.
    for (point, name) in points.iter().enumerate() {
        let losses: Vec<_> = (0..2)
            .map(|rep| run(point, &format!("raw-p0.01-rep-0{rep}.json"))["loss_curve"].clone())
            .collect();
        assert_ne!(losses[1], losses[0], "{name}");
    }
    let report = std::fs::read_to_string(out.join("vary=subset/report.md")).unwrap();
    assert!(
        report.contains("The repetitions vary subset; they hold init, order, dropout and pretraining at repetition 0's draw. Images drawn afresh"),
        "{report}"
    );
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn a_sweep_reuses_the_records_of_a_study_with_a_points_settings() {
    let study = temp("reuse-study");
    let mut args = vec!["study"];
    args.extend(SMALL);
    args.extend(["--out", study.to_str().unwrap(), "--quiet"]);
    run_ok(&args);
    let out = temp("reuse-sweep");
    let reuse = ["--reuse", study.to_str().unwrap()];
    let text = sweep_ok(&out, &["pretrain-iters=4,8"], &reuse);
    // The study is the point pretrain-iters=4: its 12 runs and 2 backbones; raw's 4 runs are
    // the other point's too, which trains only its frozen and finetune runs.
    assert!(
        text.contains("16 runs and 2 pretrained models whose settings are a point's"),
        "{text}"
    );
    assert!(text.contains("12 already finished, 8 to run"), "{text}");
    let point = out.join("pretrain-iters=4");
    assert_eq!(records(&point).len(), 12);
    let copied = std::fs::read_to_string(point.join("runs/frozen-p0.01-rep-01.json")).unwrap();
    assert!(copied.contains("\"trained_in\": \""), "{copied}");
    let without_hash = |dir: &Path| {
        records(dir)
            .into_iter()
            .map(|(name, mut v)| {
                v.as_object_mut().unwrap().remove("settings_hash");
                (name, v)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_hash(&point), without_hash(&study));
    // Not a results directory: refused before anything is created.
    let other = temp("reuse-refused");
    let err = refused(&[
        "sweep",
        "--preset",
        "smoke",
        "--axis",
        "iters=5",
        "--reuse",
        "/nonexistent",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--reuse /nonexistent: not a results directory"),
        "{err}"
    );
    assert!(!other.exists());
    for dir in [study, out] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn bad_sweeps_are_refused_in_one_line_before_anything_is_created() {
    let out = temp("sweep-refused");
    for (axes, expected) in [
        (&["iterations=10"][..], "unknown setting (accepted: iters,"),
        (&["iters=10,x"], "'x' is not a whole number"),
        (&["iters="], "no values"),
        (&["iters=10,10"], "10 is listed twice"),
        (&["iters=10", "iters=20"], "two axes"),
        (
            &["dropout.dropout=0.25,0.5"],
            "protocol 'dropout' is not in the study (raw, frozen, finetune)",
        ),
        (
            &["batch=100,100000"],
            "sweep point batch=100000: dataset MNIST (train-images-idx3-ubyte): the source task (classes [0, 1, 2, 3, 4, 5]) has 36017 training images, fewer than one batch of 100000",
        ),
        (
            &["kernel-size=3,57"],
            "too wide for images of 28x28 pixels (at most 55",
        ),
        (&["channels=16,0"], "conv1 channels 0"),
        (
            &["vary=init,subset"],
            "sweep point vary=subset: vary: subset cannot vary under the prefix rule",
        ),
        (&["vary=init,seed"], "'seed' is not a source"),
        (&[], "at least one --axis"),
    ] {
        let mut args = vec!["sweep"];
        args.extend(SMALL);
        for axis in axes {
            args.extend(["--axis", axis]);
        }
        args.extend(["--out", out.to_str().unwrap()]);
        let err = refused(&args);
        assert!(err.contains(expected), "{axes:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(!out.exists(), "{axes:?} created {}", out.display());
    }
}

#[test]
fn a_two_axis_sweep_tests_each_axis_within_the_other_and_draws_heat_maps() {
    let out = temp("sweep-grid");
    let args = [
        "sweep",
        "--props",
        "0.01",
        "--protocols",
        "raw,frozen",
        "--reps",
        "2",
        "--iters",
        "4",
        "--eval-every",
        "4",
        "--pretrain-iters",
        "4",
        "--no-estimate",
        "--quiet",
        "--axis",
        "fc-width=32,64",
        "--axis",
        "channels=8,16x8",
        "--out",
        out.to_str().unwrap(),
    ];
    let text = run_ok(&args);
    assert!(text.contains("sweep complete"), "{text}");
    assert!(out.join("fc-width=64,channels=16x8/table.csv").is_file());
    let settings =
        std::fs::read_to_string(out.join("fc-width=64,channels=16x8/settings.json")).unwrap();
    assert!(settings.contains("\"fc_width\": 64"), "{settings}");
    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    for expected in [
        "## Effect of `fc-width`",
        "## Effect of `channels`",
        "| channels=16x8 | raw | 0.01 | 32 → 64 |",
        "| fc-width=32 | frozen | 0.01 | 8 → 16x8 |",
    ] {
        assert!(md.contains(expected), "{expected}: {md}");
    }
    for figure in [
        "sweep-accuracy-by-fc-width-channels=8",
        "sweep-gain-by-channels-fc-width=64",
        "sweep-heatmap-mean-raw",
        "sweep-heatmap-mean-frozen",
        "sweep-heatmap-gain-frozen",
    ] {
        let svg = out.join("figures").join(format!("{figure}.svg"));
        assert!(svg.is_file(), "{}", svg.display());
        assert!(out.join("figures").join(format!("{figure}.png")).is_file());
    }
    let heat = std::fs::read_to_string(out.join("figures/sweep-heatmap-mean-raw.svg")).unwrap();
    assert!(heat.contains("16x8") && heat.contains("p = 0.01"), "{heat}");
    std::fs::remove_dir_all(out).unwrap();
}
