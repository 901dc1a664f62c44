"""Checks a network exported by `cargo xtask export` outside Rust and burn.

Loads the safetensors file with the `safetensors` package, runs the network in numpy on the
first target-digit (6-9) test images of MNIST, and compares its logits with the ones the study's
network gave for the same images (a JSON list of lists).

    python3 scripts/check_export.py NET.safetensors MNIST_DIR LOGITS.json
"""

import gzip
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def read_idx(directory, name):
    for candidate in (name + ".gz", name, name.replace("-idx", ".idx", 1)):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            rank = data[3]
            dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank)]
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)
    raise SystemExit(f"{name} not found in {directory}")


def conv_same(x, weight, bias):
    """3x3 (any odd k) convolution, stride 1, zero padding k//2: [N,C,H,W] -> [N,O,H,W]."""
    k = weight.shape[-1]
    padded = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", windows, weight) + bias[None, :, None, None]


def forward(t, images):
    x = np.maximum(conv_same(images, t["conv1.weight"], t["conv1.bias"]), 0)
    x = np.maximum(conv_same(x, t["conv2.weight"], t["conv2.bias"]), 0)
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    x = x.reshape(n, -1)
    x = np.maximum(x @ t["fc1.weight"].T + t["fc1.bias"], 0)
    return x @ t["head.weight"].T + t["head.bias"]


def main():
    net, mnist, expected_path = sys.argv[1:4]
    tensors = {k: v.astype(np.float64) for k, v in load_file(net).items()}
    with open(expected_path) as f:
        expected = np.array(json.load(f))
    images = read_idx(mnist, "t10k-images-idx3-ubyte")
    labels = read_idx(mnist, "t10k-labels-idx1-ubyte")
    target = images[labels >= 6][: len(expected)]
    logits = forward(tensors, target[:, None, :, :].astype(np.float64) / 255.0)
    agree = (logits.argmax(1) == expected.argmax(1)).mean()
    gap = np.abs(logits - expected).max() / max(np.abs(expected).max(), 1e-12)
    print(f"{len(expected)} images: predictions agree on {agree:.4f}, logits within {gap:.2e} of their scale")
    if agree != 1.0 or gap > 1e-4:
        sys.exit(1)


main()
