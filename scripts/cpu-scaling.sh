#!/usr/bin/env bash
# Every split of this machine's cores into jobs and threads per job, measured in one run, then
# the quick preset timed with the split the study chooses by default (its cost model measures
# the splits), with bench's best split, and with 2 jobs sharing the cores: on a machine with
# many cores, one step gives its scaling table and measured studies. Beside gpu-check.sh, for
# the same machine:
#
#   scripts/cpu-scaling.sh OUT_DIR
#
# Writes OUT_DIR/scaling.txt and scaling.json (`bench --scaling`) and OUT_DIR/quick.txt (each
# split's wall time for the quick preset, and its table.csv checksum: the same for every split).
#
# Environment:
#   XTASK_BIN   a release xtask (default $CARGO_TARGET_DIR/release/xtask, or target/release/xtask)
#   MNIST_DIR   the MNIST files (default data/mnist)
set -euo pipefail
out="${1:?usage: scripts/cpu-scaling.sh OUT_DIR}"
bin="${XTASK_BIN:-${CARGO_TARGET_DIR:-target}/release/xtask}"
export MNIST_DIR="${MNIST_DIR:-data/mnist}"
mkdir -p "$out"
"$bin" bench --backend flex --scaling --steps 20 --eval-passes 2 --json "$out/scaling.json" \
  --dir "$MNIST_DIR" | tee "$out/scaling.txt"
# The split with the most paper-preset runs per hour.
read -r jobs threads < <(python3 -c '
import json, sys
splits = json.load(open(sys.argv[1]))["scaling"]
best = max(splits, key=lambda s: s["paper_runs_per_hour"])
print(best["jobs"], best["threads"])' "$out/scaling.json")
: > "$out/quick.txt"
for name in chosen "bench-best-${jobs}x${threads}" shared-2; do
  case "$name" in
    chosen) flags=() ;;
    shared-2) flags=(--jobs 2 --no-estimate) ;;
    *) flags=(--jobs "$jobs" --threads-per-job "$threads" --no-estimate) ;;
  esac
  dir="$out/quick-$name"
  rm -rf "$dir"
  start=$(date +%s%N)
  "$bin" study --preset quick --quiet --out "$dir" "${flags[@]}" > "$dir.log" 2>&1
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  printf '%s: quick preset %d.%03d s of wall time, table.csv sha256 %s\n' "$name" \
    $((ms / 1000)) $((ms % 1000)) "$(sha256sum "$dir/table.csv" | cut -c1-16)" | tee -a "$out/quick.txt"
done
