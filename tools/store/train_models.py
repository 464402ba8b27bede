#!/usr/bin/env python3
"""Trains small `cnn` and `allcnn` models on Fashion-MNIST with PyTorch and saves their
weights as safetensors, plus a simulated PGU-style update of each, for the store benchmark.

The update is a SIMULATION, not PGU: every conv/linear weight W (viewed as out × rest) gets
a rank-4 perturbation scaled to ‖ΔW‖ = 1e-3·‖W‖, biases and batch-norm buffers unchanged —
the shape of change a projected low-rank unlearning step makes.

Usage: tools/store/train_models.py OUTDIR [--samples N] [--epochs E]
Needs: pip install torch==2.13.0+cpu safetensors; apt dataset-fashion-mnist.
"""
import argparse
import gzip
import pathlib

import numpy as np
import torch
from safetensors.torch import save_file

DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")


def load(kind):
    with gzip.open(DATA / f"{kind}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(DATA / f"{kind}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.tensor(x, dtype=torch.float32) / 255.0, torch.tensor(y, dtype=torch.int64)


def cnn():
    n = torch.nn
    return n.Sequential(n.Conv2d(1, 32, 3), n.ReLU(), n.MaxPool2d(2), n.Conv2d(32, 64, 3), n.ReLU(), n.MaxPool2d(2),
                        n.Flatten(), n.Linear(64 * 5 * 5, 128), n.ReLU(), n.Linear(128, 10))


def allcnn():
    # All-CNN-C (Springenberg et al. 2015) adapted to 1×28×28, with batch norm.
    n = torch.nn
    def block(i, o, s):
        return [n.Conv2d(i, o, 3, stride=s, padding=1), n.BatchNorm2d(o), n.ReLU()]
    layers = block(1, 96, 1) + block(96, 96, 1) + block(96, 96, 2) + block(96, 192, 1) + block(192, 192, 1) \
        + block(192, 192, 2) + block(192, 192, 1) + [n.Conv2d(192, 192, 1), n.ReLU(), n.Conv2d(192, 10, 1),
                                                      n.AdaptiveAvgPool2d(1), n.Flatten()]
    return n.Sequential(*layers)


def train(model, x, y, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    return loss.item()


def low_rank_update(state, rank=4, rel=1e-3, seed=1):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in state.items():
        if k.endswith("weight") and v.dim() >= 2:
            m = v.reshape(v.shape[0], -1)
            a = torch.randn(m.shape[0], rank, generator=g)
            b = torch.randn(rank, m.shape[1], generator=g)
            d = a @ b
            d *= rel * m.norm() / d.norm()
            out[k] = (m + d).reshape(v.shape).contiguous()
        else:
            out[k] = v
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("outdir")
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=1)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = load("train")
    x, y = x[:a.samples], y[:a.samples]
    xt, yt = load("t10k")
    out = pathlib.Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in [("cnn", cnn), ("allcnn", allcnn)]:
        model = make()
        loss = train(model, x, y, a.epochs)
        model.eval()
        with torch.no_grad():
            acc = (model(xt[:2000]).argmax(1) == yt[:2000]).float().mean().item()
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(out / f"{name}.safetensors"), metadata={"format": "pt"})
        save_file(low_rank_update(state), str(out / f"{name}_update.safetensors"), metadata={"format": "pt"})
        params = sum(v.numel() for v in state.values())
        print(f"{name}: {params} values, last loss {loss:.3f}, test accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
