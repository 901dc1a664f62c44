#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, measure the backends, one run at a time and
# in stacks, and run the paper preset, writing timings, the table and the device's description
# under one folder (device.txt, bench.txt, bench-*.json, study.txt, results.tar.gz).
#
#   scripts/gpu-check.sh OUT_DIR
#
# On a machine without a package registry (the lent GPU machines), build here and carry two
# ignored paths, 28 MB in all (the stripped binary is 62 MiB, 17 MB gzipped):
#
#   cargo build --release -p xtask --features wgpu      # add cuda where cubecl-cuda builds
#   mkdir -p target/gpu && strip -o target/gpu/xtask "${CARGO_TARGET_DIR:-target}/release/xtask"
#   gzip -9f target/gpu/xtask && cp ../shared/mnist/*.gz data/mnist/
#   # carry target/gpu and data/mnist; there: XTASK_BIN=target/gpu/xtask.gz scripts/gpu-check.sh "$OUT"
#
# Environment:
#   XTASK_BIN     a release xtask built with the GPU features, or that file gzipped (.gz)
#                 (default target/release/xtask)
#   MNIST_DIR     the MNIST files (default data/mnist)
#   BACKENDS      backends to measure and use, the first that works runs the study (default
#                 "wgpu"; "cuda wgpu" with a binary built with both)
#   PRESET        the study's preset (default paper)
#   STEPS, EVAL_PASSES   bench's timed steps per protocol and evaluation passes (50, 5)
#   STUDY_LIMIT   seconds allowed for the study (default 420); it resumes if run again
#   JOBS          runs (or stacks) at once (default 4)
#   STACK         runs trained together, `study --stack` (default 10: the paper's repetitions;
#                 bench measures 1 and STACK)
set -uo pipefail
out="${1:?usage: scripts/gpu-check.sh OUT_DIR}"
bin="${XTASK_BIN:-target/release/xtask}"
if [ "${bin%.gz}" != "$bin" ]; then
  gunzip -c "$bin" > "${bin%.gz}" && chmod +x "${bin%.gz}" || exit 1
  bin="${bin%.gz}"
fi
mnist="${MNIST_DIR:-data/mnist}"
backends="${BACKENDS:-wgpu}"
preset="${PRESET:-paper}"
steps="${STEPS:-50}"
passes="${EVAL_PASSES:-5}"
limit="${STUDY_LIMIT:-420}"
jobs="${JOBS:-4}"
stack="${STACK:-10}"
mkdir -p "$out"
export MNIST_DIR="$mnist"

{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) ($(nproc) cores)"
  "$bin" --version
} > "$out/device.txt" 2>&1

study_backend=""
for b in $backends; do
  for s in 1 "$stack"; do
    echo "== bench $b, stacks of $s" >> "$out/bench.txt"
    if "$bin" bench --backend "$b" --stack "$s" --steps "$steps" --eval-passes "$passes" \
      --json "$out/bench-$b-stack$s.json" >> "$out/bench.txt" 2>&1; then
      [ -z "$study_backend" ] && study_backend="$b"
    fi
  done
done
echo "== bench flex (this machine's CPU)" >> "$out/bench.txt"
"$bin" bench --backend flex --steps 10 --eval-passes 1 --json "$out/bench-flex.json" >> "$out/bench.txt" 2>&1

if [ -n "$study_backend" ]; then
  start=$(date +%s)
  timeout "$limit" "$bin" study --preset "$preset" --backend "$study_backend" --jobs "$jobs" \
    --stack "$stack" --out results/"$preset-$study_backend" --quiet > "$out/study.txt" 2>&1
  echo "exit $? after $(( $(date +%s) - start )) s" >> "$out/study.txt"
  tar czf "$out/results.tar.gz" results/"$preset-$study_backend" 2>/dev/null
else
  echo "no GPU backend started; see bench.txt" > "$out/study.txt"
fi
ls -la "$out"
