#!/usr/bin/env python3
"""The study's model in plain PyTorch, timed the way `cargo xtask bench` times this project.

A straightforward implementation: nn.Conv2d/nn.Linear, Adam (lr 1e-3, eps 1e-8), softmax
cross-entropy, batch 100 drawn from the target task's training images (digits 6-9); the
frozen protocol sets requires_grad=False on the convolutions and still runs them every step;
evaluation scores the 3,969 target test images in chunks of 100 under torch.no_grad().

Prints one JSON object on its last line. `cargo xtask bench --compare` runs it; it can also
run alone:

    python3 scripts/pytorch_bench.py --mnist ../shared/mnist --threads 2
"""

import argparse
import gzip
import json
import os
import time


def read_idx(path):
    import numpy as np

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(directory, stem):
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise SystemExit(f"{stem} not found in {directory}")


def target(directory, split):
    import numpy as np
    import torch

    images = read_idx(find(directory, f"{split}-images-idx3-ubyte"))
    labels = read_idx(find(directory, f"{split}-labels-idx1-ubyte"))
    keep = labels >= 6
    x = torch.from_numpy(images[keep].astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels[keep].astype(np.int64) - 6)
    return x, y


def model():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6272, 128),
        nn.ReLU(),
        nn.Linear(128, 4),
    )


def steps_per_second(net, x, y, steps, frozen):
    import torch

    if frozen:
        for layer in (net[0], net[2]):
            for p in layer.parameters():
                p.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)

    def step():
        idx = torch.randint(0, x.shape[0], (100,), generator=gen)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def eval_images_per_second(net, x, passes):
    import torch

    net.eval()
    with torch.no_grad():
        def one_pass():
            for i in range(0, x.shape[0], 100):
                net(x[i : i + 100]).argmax(1)

        one_pass()
        start = time.perf_counter()
        for _ in range(passes):
            one_pass()
        seconds = time.perf_counter() - start
    return passes * x.shape[0] / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, help="directory of the MNIST files")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--eval-passes", type=int, default=3)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_x, train_y = target(args.mnist, "train")
    test_x, _ = target(args.mnist, "t10k")
    figures = {
        "implementation": f"PyTorch {torch.__version__.split('+')[0]} CPU",
        "threads": torch.get_num_threads(),
        "train_steps_per_s": steps_per_second(model(), train_x, train_y, args.steps, False),
        "frozen_steps_per_s": steps_per_second(model(), train_x, train_y, args.steps * 2, True),
        "eval_images_per_s": eval_images_per_second(model(), test_x, args.eval_passes),
        "test_images": int(test_x.shape[0]),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
