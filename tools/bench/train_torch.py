"""PyTorch CPU side of `lethe-bench train`: training throughput of the same models.

Usage: python3 tools/bench/train_torch.py --arch cnn|mlp --batches N --batch-size 128 --threads 2
Prints one JSON line: {"arch", "samples_per_second", "seconds", "batches", "threads", "torch"}.
Same work per step as Lethe: gather a shuffled batch, forward, cross-entropy, backward,
SGD (lr 0.05, momentum 0.9, weight decay 5e-4).
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))
from models import CNN, MLP  # noqa: E402


def load_images(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    n, h, w = (int.from_bytes(b[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(b, dtype=np.uint8, offset=16).reshape(n, 1, h, w)


def load_labels(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    return np.frombuffer(b, dtype=np.uint8, offset=8).astype(np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = load_images(os.path.join(a.data, "train-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    x = torch.from_numpy((x - x.mean()) / x.std())
    y = torch.from_numpy(load_labels(os.path.join(a.data, "train-labels-idx1-ubyte.gz")))
    model = CNN((1, 28, 28), 10) if a.arch == "cnn" else MLP((1, 28, 28), 10)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(x.shape[0])

    def step(i):
        idx = perm[(i * a.batch_size) % (x.shape[0] - a.batch_size):][: a.batch_size]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()

    for i in range(5):
        step(i)
    best = float("inf")
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for i in range(a.batches):
            step(i)
        best = min(best, time.perf_counter() - t0)
    print(json.dumps({"arch": a.arch, "samples_per_second": a.batches * a.batch_size / best, "seconds": best,
                      "batches": a.batches, "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
