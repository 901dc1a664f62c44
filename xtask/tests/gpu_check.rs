//! `scripts/gpu-check.sh`'s choices, with stand-in binaries: which benches it runs, how it
//! reports a failed, crashed or timed-out bench, and which way the study runs. The stand-ins
//! answer `bench` with a paper estimate taken from the environment (`E_<backend>_<way>`, way
//! `alone`, `grouped` or `gemm`; `fail`, `crash` or `hang` instead of a number) and `study`
//! with a line naming themselves and their arguments.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const STAND_IN: &str = r#"#!/usr/bin/env bash
cmd="$1"; shift
stack=1; conv=grouped; json=""; backend=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack=$2; shift ;;
    --stacked-conv) conv=$2; shift ;;
    --json) json=$2; shift ;;
    --backend) backend=$2; shift ;;
  esac
  shift
done
me=$(basename "$0")
case "$cmd" in
  --version) echo "$me" ;;
  bench)
    if [ "$backend" = flex ]; then echo "cpu bench"; exit 0; fi
    [ "$stack" = 1 ] && conv=alone
    var="E_${backend}_${conv}"
    case "${!var:-100}" in
      fail) echo "error: the device failed"; exit 1 ;;
      crash) kill -SEGV $$ ;;
      hang) sleep 30 ;;
      *) printf '{"backend": "%s", "paper_estimate_s": %s}\n' "$backend" "${!var:-100}" > "$json" ;;
    esac ;;
  study) echo "study by $me: --backend $backend --stack $stack --stacked-conv $conv" ;;
esac
"#;

/// A temporary folder with the two stand-in binaries, `xtask-wgpu` and `xtask-vulkan`.
fn stand_ins(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpu-check-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["xtask-wgpu", "xtask-vulkan"] {
        let path = dir.join(name);
        std::fs::write(&path, STAND_IN).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Runs the check with the stand-ins and `env`, returning bench.txt and study.txt.
fn check(tag: &str, env: &[(&str, &str)]) -> (String, String) {
    let dir = stand_ins(tag);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gpu-check.sh");
    let out = dir.join("out");
    let mut command = Command::new("bash");
    command.arg(&script).arg(&out).current_dir(&dir);
    // The script's settings come from the test alone, not from the caller's environment.
    for setting in [
        "BACKENDS",
        "PRESET",
        "STEPS",
        "EVAL_PASSES",
        "STACK",
        "MAX_BUFFER_MIB",
        "JOBS",
        "BENCH_LIMIT",
        "STUDY_MIN",
        "DEADLINE",
    ] {
        command.env_remove(setting);
    }
    let status = command
        .env("XTASK_BIN", dir.join("xtask-wgpu"))
        .env("XTASK_VULKAN_BIN", dir.join("xtask-vulkan"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let (bench, study) = (read("bench.txt"), read("study.txt"));
    assert!(
        status.status.success(),
        "the check failed:\n{}\n{bench}",
        String::from_utf8_lossy(&status.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    (bench, study)
}

/// Asserts that the study ran on `backend`, with that backend's binary, in stacks of `stack`
/// with `conv` convolutions.
fn assert_study_ran(study: &str, backend: &str, stack: usize, conv: &str) {
    let expected = format!(
        "study by xtask-{backend}: --backend {backend} --stack {stack} --stacked-conv {conv}"
    );
    assert!(
        study.contains(&expected),
        "expected {expected:?} in:\n{study}"
    );
}

#[test]
fn the_study_runs_the_way_and_with_the_binary_estimated_fastest() {
    let (bench, study) = check(
        "fastest",
        &[
            ("E_wgpu_alone", "500"),
            ("E_vulkan_alone", "400"),
            ("E_vulkan_grouped", "100"),
            ("E_vulkan_gemm", "50.5"),
            ("E_wgpu_grouped", "60"),
            ("E_wgpu_gemm", "70"),
        ],
    );
    assert_study_ran(&study, "vulkan", 10, "gemm");
    assert!(bench.contains("estimate 50.5 s"), "{bench}");
    // Both backends alone, then stacks of both (the fastest alone first).
    let order: Vec<&str> = bench
        .lines()
        .filter_map(|l| l.strip_prefix("== bench "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(
        order,
        [
            "wgpu-stack1",
            "vulkan-stack1",
            "vulkan-stack10-grouped",
            "vulkan-stack10-gemm",
            "wgpu-stack10-grouped",
            "wgpu-stack10-gemm",
            "flex (this machine's CPU)"
        ]
    );
}

#[test]
fn a_faster_stack_wins_over_a_faster_backend_alone() {
    let (_, study) = check(
        "stack-wins",
        &[
            ("E_wgpu_alone", "300"),
            ("E_vulkan_alone", "400"),
            ("E_vulkan_grouped", "20"),
            ("E_wgpu_grouped", "600"),
            ("E_wgpu_gemm", "700"),
        ],
    );
    assert_study_ran(&study, "vulkan", 10, "grouped");
}

#[test]
fn failed_and_crashed_benches_are_reported_and_never_chosen() {
    let (bench, study) = check(
        "failures",
        &[
            ("E_wgpu_alone", "500"),
            ("E_vulkan_alone", "crash"),
            ("E_wgpu_grouped", "60"),
            ("E_wgpu_gemm", "fail"),
        ],
    );
    assert!(bench.contains("== vulkan-stack1: crashed"), "{bench}");
    assert!(
        bench.contains("== wgpu-stack10-gemm: failed (exit 1)"),
        "{bench}"
    );
    assert!(!bench.contains("vulkan-stack10"), "{bench}");
    assert_study_ran(&study, "wgpu", 10, "grouped");
}

#[test]
fn benches_stop_at_their_limit_and_without_any_there_is_no_study() {
    let (bench, study) = check(
        "limits",
        &[
            ("BENCH_LIMIT", "1"),
            ("E_wgpu_alone", "hang"),
            ("E_vulkan_alone", "fail"),
        ],
    );
    assert!(
        bench.contains("== wgpu-stack1: stopped at its time limit (1 s)"),
        "{bench}"
    );
    assert!(study.contains("no GPU bench completed"), "{study}");
}

#[test]
fn stack_benches_are_skipped_when_the_study_would_lose_its_time() {
    // 120 s to the deadline, 100 kept for the study: 20 s is too little for a stack bench.
    let (bench, study) = check(
        "skips",
        &[
            ("DEADLINE", "120"),
            ("STUDY_MIN", "100"),
            ("E_wgpu_alone", "300"),
            ("E_vulkan_alone", "400"),
        ],
    );
    assert!(
        bench.contains("== bench wgpu-stack10-grouped: skipped"),
        "{bench}"
    );
    assert_study_ran(&study, "wgpu", 1, "grouped");
}
