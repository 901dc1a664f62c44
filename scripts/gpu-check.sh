#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, measure the GPU backends one run at a time,
# then the fastest of them in stacks (with grouped convolutions and as matrix products), and run
# the paper preset the way the benches estimate fastest, writing timings, the table and the
# device's description under one folder (device.txt; bench.txt and bench.json, every bench's
# output and figures; gpu-use.csv, the GPU's use sampled every second; study.txt;
# results.tar.gz).
#
#   scripts/gpu-check.sh OUT_DIR
#
# On a machine without a package registry, build elsewhere and carry the binaries and MNIST,
# 55 MB in all (each stripped binary is about 80 MB, 22 MB gzipped). Features unify within a
# build, so SPIR-V kernels (`vulkan`) need a binary of their own:
#
#   cargo build --release -p xtask --features wgpu      # add cuda where cubecl-cuda builds
#   mkdir -p target/gpu && strip -o target/gpu/xtask "${CARGO_TARGET_DIR:-target}/release/xtask"
#   cargo build --release -p xtask --features vulkan
#   strip -o target/gpu/xtask-vulkan "${CARGO_TARGET_DIR:-target}/release/xtask"
#   gzip -9f target/gpu/xtask target/gpu/xtask-vulkan && cp ../shared/mnist/*.gz data/mnist/
#   # then there: XTASK_BIN=target/gpu/xtask.gz XTASK_VULKAN_BIN=target/gpu/xtask-vulkan.gz \
#   #   scripts/gpu-check.sh "$OUT"
#
# wgpu needs the Vulkan loader (libvulkan.so.1) and the NVIDIA driver's Vulkan ICD; the script
# says in device.txt when either is missing. Where the driver's ICD is only under
# /usr/local/nvidia (as NVIDIA's container runtime mounts it), VK_DRIVER_FILES is set to it, so
# that wgpu does not fall back to a software driver.
#
# Environment:
#   XTASK_BIN     a release xtask built with the GPU features, or that file gzipped (.gz)
#                 (default target/release/xtask)
#   XTASK_VULKAN_BIN  a release xtask built with `--features vulkan` (gzipped or not), for the
#                 `vulkan` backend; when set, BACKENDS defaults to "wgpu vulkan"
#   MNIST_DIR     the MNIST files (default data/mnist)
#   BACKENDS      GPU backends to measure (default "wgpu"; "cuda wgpu" with a binary built
#                 with both)
#   PRESET        the study's preset (default paper)
#   STEPS, EVAL_PASSES   bench's timed steps per protocol and evaluation passes (50, 5)
#   STACK         runs trained together, `study --stack` (default 10: the paper's repetitions);
#                 the backends are benched alone, then in stacks from the fastest alone on,
#                 while the time left allows
#   MAX_BUFFER_MIB  `--max-buffer-mib` for stacks (default 1024; where the device allows less,
#                 those benches fail in one line and are not chosen)
#   JOBS          runs (or stacks) at once (default 4)
#   BENCH_LIMIT   seconds allowed for each bench (default 150)
#   STUDY_MIN     seconds kept for the study: a stack bench starts only if that many remain
#                 after it (default 180)
#   DEADLINE      seconds the whole script may take (default 460, under 8 minutes): the
#                 study gets what the GPU benches leave, less 60 s (the CPU bench runs
#                 after it, in what is left); it resumes where it stopped if run again
set -uo pipefail
start=$(date +%s)
out="${1:?usage: scripts/gpu-check.sh OUT_DIR}"
# `unpack FILE`: FILE's path, or where it was unpacked to if it is gzipped.
unpack() {
  if [ "${1%.gz}" != "$1" ]; then
    # Unpacked outside the working tree, which may be read-only or carried again.
    local unpacked
    unpacked="$(mktemp -d)/xtask"
    gunzip -c "$1" > "$unpacked" && chmod +x "$unpacked" && echo "$unpacked"
  else
    echo "$1"
  fi
}
bin=$(unpack "${XTASK_BIN:-target/release/xtask}") || exit 1
vulkan_bin=""
if [ -n "${XTASK_VULKAN_BIN:-}" ]; then
  vulkan_bin=$(unpack "$XTASK_VULKAN_BIN") || exit 1
fi
# The binary that runs backend $1.
bin_for() {
  if [ "$1" = vulkan ] && [ -n "$vulkan_bin" ]; then echo "$vulkan_bin"; else echo "$bin"; fi
}
mnist="${MNIST_DIR:-data/mnist}"
backends="${BACKENDS:-wgpu${vulkan_bin:+ vulkan}}"
preset="${PRESET:-paper}"
steps="${STEPS:-50}"
passes="${EVAL_PASSES:-5}"
jobs="${JOBS:-4}"
stack="${STACK:-10}"
buffer="${MAX_BUFFER_MIB:-1024}"
bench_limit="${BENCH_LIMIT:-150}"
study_min="${STUDY_MIN:-180}"
deadline="${DEADLINE:-460}"
mkdir -p "$out"
export MNIST_DIR="$mnist"
mounted_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$mounted_icd" ] \
  && ! grep -qsi nvidia /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; then
  export VK_DRIVER_FILES="$mounted_icd"
fi

{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) ($(nproc) cores)"
  "$bin" --version
  [ -z "$vulkan_bin" ] || echo "vulkan binary: $("$vulkan_bin" --version)"
  loader=$(ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' | sed 's/.*=> //' | head -1)
  if [ -n "$loader" ]; then
    echo "vulkan loader: $loader"
  else
    echo "vulkan loader: libvulkan.so.1 not found: wgpu cannot start (install libvulkan1)"
  fi
  icds=$(ls ${VK_DRIVER_FILES:-} /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json \
    /usr/local/nvidia/share/vulkan/icd.d/*.json 2>/dev/null | xargs)
  echo "vulkan ICDs: ${icds:-none found (set VK_DRIVER_FILES to the NVIDIA driver nvidia_icd.json)}"
  echo "VK_DRIVER_FILES: ${VK_DRIVER_FILES:-unset}"
} > "$out/device.txt" 2>&1

figures=$(mktemp -d)
# The GPU's use and power every second while the script runs: low use in a study means
# launching, not arithmetic, bounds it.
nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.memory,memory.used,power.draw \
  --format=csv -l 1 > "$out/gpu-use.csv" 2>/dev/null &
sampler=$!

# `bench NAME LIMIT BACKEND ARGS...`: one bench of BACKEND for at most LIMIT seconds, its
# figures in $figures/NAME.json; fails if it did.
bench() {
  local name="$1" limit="$2" backend="$3"
  shift 3
  echo "== bench $name: --backend $backend $*" >> "$out/bench.txt"
  timeout "$limit" "$(bin_for "$backend")" bench --backend "$backend" "$@" --steps "$steps" \
    --eval-passes "$passes" --json "$figures/$name.json" >> "$out/bench.txt" 2>&1
  local status=$?
  case "$status" in
    0) ;;
    124) echo "== $name: stopped at its time limit ($limit s)" ;;
    139) echo "== $name: crashed (segmentation fault, in the driver or the binary)" ;;
    *) echo "== $name: failed (exit $status)" ;;
  esac >> "$out/bench.txt"
  return "$status"
}

# The paper-preset estimate of a bench's JSON, in seconds (empty if it has none).
estimate() {
  grep -o '"paper_estimate_s": *[0-9.e+-]*' "$figures/$1.json" 2>/dev/null | sed 's/.*: *//'
}

# Whether the number $1 is less than $2.
faster() {
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

# Seconds left before the deadline.
left() {
  echo $(( deadline - ($(date +%s) - start) ))
}

# `consider NAME BACKEND STACK CONV`: the study's way becomes bench NAME's if its estimate is
# the best so far.
study_backend="" study_stack=1 study_conv="grouped" best=""
consider() {
  local e
  e=$(estimate "$1")
  if [ -n "$e" ] && { [ -z "$best" ] || faster "$e" "$best"; }; then
    best="$e" study_backend="$2" study_stack="$3" study_conv="$4"
  fi
}

# Every backend alone; then those that worked, fastest first, in stacks while STUDY_MIN
# seconds would remain.
for b in $backends; do
  bench "$b-stack1" "$bench_limit" "$b" --stack 1 && consider "$b-stack1" "$b" 1 grouped
done
working=$(for b in $backends; do
  e=$(estimate "$b-stack1")
  [ -n "$e" ] && echo "$e $b"
done | sort -g | cut -d' ' -f2)
if [ "$stack" -gt 1 ]; then
  for b in $working; do
    for conv in grouped gemm; do
      limit=$(( $(left) - study_min ))
      [ "$limit" -gt "$bench_limit" ] && limit="$bench_limit"
      if [ "$limit" -lt 30 ]; then
        echo "== bench $b-stack$stack-$conv: skipped, $(left) s left" >> "$out/bench.txt"
        continue
      fi
      bench "$b-stack$stack-$conv" "$limit" "$b" --stack "$stack" --stacked-conv "$conv" \
        --max-buffer-mib "$buffer" && consider "$b-stack$stack-$conv" "$b" "$stack" "$conv"
    done
  done
fi
if [ -n "$study_backend" ]; then
  {
    echo "== paper estimates (s):"
    for f in "$figures"/*.json; do
      [ -f "$f" ] && echo "   $(basename "$f" .json): $(estimate "$(basename "$f" .json)")"
    done
    echo "   the study uses --backend $study_backend --stack $study_stack" \
      "--stacked-conv $study_conv (estimate ${best:-none} s)"
  } >> "$out/bench.txt"
  # What the GPU benches left, less 60 s: 40 for the CPU bench after it, 20 to spare.
  limit=$(( $(left) - 60 ))
  study_start=$(date +%s)
  if [ "$limit" -gt 30 ]; then
    timeout "$limit" "$(bin_for "$study_backend")" study --preset "$preset" \
      --backend "$study_backend" --jobs "$jobs" --stack "$study_stack" \
      --stacked-conv "$study_conv" --max-buffer-mib "$buffer" \
      --out results/"$preset-$study_backend" --quiet > "$out/study.txt" 2>&1
    echo "exit $? after $(( $(date +%s) - study_start )) s (limit $limit s)" >> "$out/study.txt"
    tar czf "$out/results.tar.gz" results/"$preset-$study_backend" 2>/dev/null
  else
    echo "no time left for the study ($limit s)" > "$out/study.txt"
  fi
else
  echo "no GPU bench completed; see bench.txt and device.txt" > "$out/study.txt"
fi
# The CPU of the same machine, for comparison, in what time is left (after the study, which
# the deadline is for).
cpu_limit=$(( $(left) - 10 ))
if [ "$cpu_limit" -gt 20 ]; then
  echo "== bench flex (this machine's CPU)" >> "$out/bench.txt"
  timeout "$cpu_limit" "$bin" bench --backend flex --steps 10 --eval-passes 1 \
    >> "$out/bench.txt" 2>&1
fi
kill "$sampler" 2>/dev/null
# Every bench's figures as one JSON object, by bench name.
{
  echo "{"
  separator=""
  for f in "$figures"/*.json; do
    [ -f "$f" ] || continue
    printf '%s"%s": ' "$separator" "$(basename "$f" .json)"
    cat "$f"
    separator=","
  done
  echo "}"
} > "$out/bench.json"
rm -rf "$figures"
ls -la "$out"
