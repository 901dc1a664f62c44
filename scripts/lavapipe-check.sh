#!/usr/bin/env bash
# The GPU backend (burn-wgpu) against the CPU backend (burn-flex) on a machine without a GPU:
# Mesa's software Vulkan driver ("lavapipe") runs xtask/tests/backends.rs, where the same weights
# must give the same logits and gradients, and a short training run the same curve, alone and
# in stacks. Installs the driver with apt-get when it is missing and this user is root.
#
#   MNIST_DIR=../shared/mnist scripts/lavapipe-check.sh
#
# The wgpu build is a second build of burn with other features: about 40 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    echo "lavapipe is missing: install mesa-vulkan-drivers (needs root and apt-get)" >&2
    exit 1
  fi
fi
XDG_RUNTIME_DIR="$(mktemp -d)"
export XDG_RUNTIME_DIR CUBECL_AUTOTUNE_LEVEL=minimal
cargo test -p xtask --features wgpu --test backends -- --nocapture
