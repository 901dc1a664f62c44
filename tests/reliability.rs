//! What users can feed the study, end to end: other datasets and image sizes, damaged,
//! tampered and duplicated records, diverged runs, infeasible settings, concurrent studies,
//! links and path names. Every case ends in a result or a one-line refusal naming the file
//! or setting, with nothing computed lost. docs/reliability.md tabulates these tests.

mod common;

use std::path::{Path, PathBuf};

use common::{DIGITS, records, run_err, run_ok, synthetic_dataset, temp, xtask};

/// A study of every protocol at one proportion on the dataset of `manifest`: 1 repetition of
/// 2 iterations (pretraining 2), scored once; flags in `extra` replace these.
fn tiny(manifest: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let data = manifest.parent().unwrap().display().to_string();
    let (manifest, out) = (manifest.display().to_string(), out.display().to_string());
    let defaults = [
        ("--props", "1"),
        ("--reps", "1"),
        ("--iters", "2"),
        ("--eval-every", "2"),
        ("--pretrain-iters", "2"),
        ("--dir", &data),
        ("--manifest", &manifest),
        ("--out", &out),
    ];
    let mut args = vec!["study".to_owned(), "--quiet".into(), "--no-estimate".into()];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn ok(args: &[String]) -> String {
    run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Runs `args`, which must fail, and returns stderr: one line, no panic, no internal error.
fn refused(args: &[String]) -> String {
    let err = run_err(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("internal error"), "{err}");
    err
}

fn dataset(tag: &str, sizes: (usize, usize), side: (usize, usize)) -> (PathBuf, PathBuf) {
    let dir = temp(tag);
    let manifest = synthetic_dataset(&dir.join("data"), sizes, side, &DIGITS);
    (dir, manifest)
}

#[test]
fn images_of_any_reasonable_size_train_and_too_small_ones_are_refused() {
    // Square and even (the fused kernels), odd and oblong (burn's modules).
    for side in [(32, 32), (16, 20), (29, 31), (2, 2)] {
        let (dir, manifest) = dataset("sizes", (400, 80), side);
        let out = dir.join("out");
        ok(&tiny(&manifest, &out, &[]));
        assert_eq!(records(&out).len(), 4, "{side:?}");
        assert!(out.join("table.csv").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let (dir, manifest) = dataset("sizes-small", (400, 80), (1, 5));
    let err = refused(&tiny(&manifest, &dir.join("out"), &[]));
    assert!(err.contains("1x5") && err.contains("too small"), "{err}");
    assert!(!dir.join("out/runs").exists(), "nothing may start: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_splits_and_missing_classes_are_refused_before_anything_trains() {
    for (sizes, classes, expected) in [
        ((400, 0), &DIGITS[..], "t10k-labels-idx1-ubyte"),
        ((0, 80), &DIGITS[..], "train-labels-idx1-ubyte"),
        ((400, 80), &[0, 1, 2, 3, 4, 5, 6, 7, 8][..], "class 9"),
    ] {
        let dir = temp("splits");
        let manifest = synthetic_dataset(&dir.join("data"), sizes, (28, 28), classes);
        let err = refused(&tiny(&manifest, &dir.join("out"), &[]));
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(!dir.join("out/runs").exists(), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn infeasible_proportions_are_refused_before_any_pretraining() {
    // 40 target images per class: p = 0.5 gives 80, fewer than a batch of 100.
    let (dir, manifest) = dataset("infeasible", (400, 80), (28, 28));
    let out = dir.join("out");
    let err = refused(&tiny(&manifest, &out, &["--props", "1,0.5"]));
    assert!(
        err.contains("proportion 0.5") && err.contains("fewer than one batch"),
        "{err}"
    );
    assert!(
        !out.exists(),
        "the results directory was created before the refusal"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_results_directory_never_mixes_datasets() {
    let (dir, manifest) = dataset("datasets", (400, 80), (28, 28));
    let other = synthetic_dataset(
        &dir.join("other"),
        (400, 80),
        (28, 28),
        &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    );
    let out = dir.join("out");
    ok(&tiny(&manifest, &out, &[]));
    let err = refused(&tiny(&other, &out, &[]));
    assert!(
        err.contains("dataset:") && err.contains("choose another --out"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn diverged_runs_are_results_that_resume_and_report() {
    let (dir, manifest) = dataset("diverged", (400, 80), (28, 28));
    let config = dir.join("study.toml");
    std::fs::write(
        &config,
        "protocols = [\"raw\", \"wild\"]\n[[protocol]]\nname = \"wild\"\nbackbone = \"fresh\"\nfreeze_backbone = false\ndropout = 0.0\nlearning_rate = 1e10\n",
    )
    .unwrap();
    let out = dir.join("out");
    let args = tiny(
        &manifest,
        &out,
        &[
            "--config",
            config.to_str().unwrap(),
            "--iters",
            "6",
            "--eval-every",
            "2",
        ],
    );
    ok(&args);
    let wild = records(&out)
        .into_iter()
        .find(|(name, _)| name.starts_with("wild"))
        .unwrap()
        .1;
    let at = wild["diverged_at"].as_u64().expect("the wild run diverged");
    assert!((2..=6).contains(&at), "{wild}");
    assert!(
        !serde_json::to_string(&wild["loss_curve"])
            .unwrap()
            .contains("null")
    );
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("diverged (1 of 1)"), "{table}");
    let again = ok(&args);
    assert!(again.contains("0 to run"), "{again}");
    run_ok(&["report", "--out", out.to_str().unwrap()]);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Diverged runs"), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tampered_and_duplicated_records_are_refused_then_set_aside_and_run_again() {
    let (dir, manifest) = dataset("tampered", (400, 80), (28, 28));
    let out = dir.join("out");
    let args = tiny(&manifest, &out, &["--reps", "2"]);
    ok(&args);
    let expected = records(&out);
    let table = std::fs::read_to_string(out.join("table.csv")).unwrap();
    let runs = out.join("runs");
    // An edited value, a record copied under another run's name, a stray copy.
    let edited = runs.join("raw-p1-rep-00.json");
    let text = std::fs::read_to_string(&edited).unwrap();
    let (_, raw) = expected
        .iter()
        .find(|(n, _)| n == "raw-p1-rep-00.json")
        .unwrap();
    let value = raw["final_accuracy"].to_string();
    std::fs::write(
        &edited,
        text.replacen(
            &format!("\"final_accuracy\": {value}"),
            "\"final_accuracy\": 7.5",
            1,
        ),
    )
    .unwrap();
    std::fs::copy(
        runs.join("frozen-p1-rep-00.json"),
        runs.join("frozen-p1-rep-01.json"),
    )
    .unwrap();
    std::fs::copy(
        runs.join("dropout-p1-rep-00.json"),
        runs.join("dropout copy.json"),
    )
    .unwrap();

    let err = refused(&["report".into(), "--out".into(), out.display().to_string()]);
    for name in [
        "raw-p1-rep-00.json",
        "frozen-p1-rep-01.json",
        "dropout copy.json",
    ] {
        assert!(err.contains(name), "{name}: {err}");
    }
    assert!(err.starts_with("error: 3 record(s)"), "{err}");

    let text = ok(&args);
    assert_eq!(text.matches("not trusted").count(), 3, "{text}");
    assert!(text.contains("2 to run"), "{text}");
    assert_eq!(std::fs::read_dir(out.join("rejected")).unwrap().count(), 3);
    assert_eq!(records(&out), expected);
    assert_eq!(
        std::fs::read_to_string(out.join("table.csv")).unwrap(),
        table
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_pretrained_model_is_trained_again() {
    let (dir, manifest) = dataset("weights", (400, 80), (28, 28));
    let out = dir.join("out");
    let args = tiny(&manifest, &out, &["--protocols", "frozen"]);
    ok(&args);
    let expected = records(&out);
    let weights = out.join("pretrained/rep-00.bpk");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    std::fs::remove_file(out.join("runs/frozen-p1-rep-00.json")).unwrap();
    let text = ok(&args);
    assert!(
        text.contains("rep-00.json: not trusted") && text.contains("weights"),
        "{text}"
    );
    assert!(text.contains("1 pretrained models to train"), "{text}");
    assert_eq!(records(&out), expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn concurrent_studies_share_a_directory_or_are_refused() {
    let (dir, manifest) = dataset("concurrent", (400, 80), (28, 28));
    let out = dir.join("out");
    let mut shards: Vec<_> = ["0/3", "1/3", "2/3"]
        .iter()
        .map(|shard| {
            let args = tiny(&manifest, &out, &["--reps", "2", "--shard", shard]);
            xtask(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let other = tiny(&manifest, &out, &["--reps", "2", "--seed", "7"]);
    shards.push(
        xtask(&other.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let outcomes: Vec<_> = shards
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    // Whichever settings.json came first, the other settings are refused; the seed-7 study
    // wins only if it created the directory, and then all three shards are refused.
    let settings = std::fs::read_to_string(out.join("settings.json")).unwrap();
    if settings.contains("\"seed\": 7") {
        assert_eq!(failed.len(), 3, "{failed:?}");
    } else {
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(records(&out).len(), 8);
        run_ok(&["report", "--out", out.to_str().unwrap()]);
    }
    assert!(
        failed
            .iter()
            .all(|e| e.contains("seed: ") && e.trim().lines().count() == 1),
        "{failed:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg(unix)]
fn the_report_replaces_links_and_never_writes_outside_its_directory() {
    let (dir, manifest) = dataset("links", (400, 80), (28, 28));
    let out = dir.join("out");
    ok(&tiny(&manifest, &out, &["--protocols", "raw"]));
    let outside = dir.join("precious.txt");
    std::fs::write(&outside, "keep").unwrap();
    for name in [
        "figures/protocol-raw.png",
        "figures/protocol-raw.svg",
        "table.csv",
        "report.md",
    ] {
        let link = out.join(name);
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&outside, &link).unwrap();
    }
    run_ok(&["report", "--out", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    let meta = std::fs::symlink_metadata(out.join("figures/protocol-raw.png")).unwrap();
    assert!(meta.file_type().is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifest_names_that_leave_the_data_directory_are_refused() {
    let (dir, manifest) = dataset("names", (400, 80), (28, 28));
    let text = std::fs::read_to_string(&manifest).unwrap();
    for bad in ["/etc/passwd", "../escape", ".hidden"] {
        std::fs::write(&manifest, text.replace("t10k-labels-idx1-ubyte", bad)).unwrap();
        let err = refused(&tiny(&manifest, &dir.join("out"), &[]));
        assert!(
            err.contains("manifest.json") && err.contains("plain file name"),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_network_that_cannot_fit_is_refused_before_anything_is_created() {
    // The test's own limit on the address space: 3 GB, which a 256-channel network with a
    // 4096-wide fc1 (fc1's weight alone is 784 MiB, held five times over) cannot fit.
    let out = temp("memory");
    let command = format!(
        "ulimit -v 3000000 && exec \"$0\" sweep --preset smoke --axis channels=256 --axis fc-width=4096 --no-estimate --out {}",
        out.display()
    );
    let done = std::process::Command::new("sh")
        .args(["-c", &command, env!("CARGO_BIN_EXE_xtask")])
        .env("MNIST_DIR", common::mnist_dir())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(!done.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: not enough memory: one job needs about")
            && err.contains("(channels=256,fc-width=4096: frozen at p = 1: "),
        "{err}"
    );
    assert!(
        err.contains("is available (the address-space limit (ulimit -v)"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&done.stdout).trim().is_empty());
    assert!(!out.exists(), "{} was created", out.display());
}
