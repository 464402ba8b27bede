#!/usr/bin/env python3
"""How far apart the two stratified halves of Fashion-MNIST's test split can sit for a trained mlp.

lethe-eval cuts the 10k test split into a validation half (the held-out set PGU's stopping rule reads)
and a test half with one stratified split (seed 7) for every model seed. This script takes the cached
Original `mlp` models (784-256-256-10, lethe-eval's cache), evaluates them on the test split with the
same preprocessing (pixels / 255, standardized with the training split's mean and std), and reports
the validation-minus-test accuracy difference over random stratified halvings, to place the fixed
split's difference (from the cell records) in that distribution.

    python3 tools/eval/py/split_spread.py /tmp/c9/cache [--splits 2000]

Needs only numpy; not part of the product or the tests.
"""
import argparse, glob, gzip, json, struct
import numpy as np

DATA = "/usr/share/datasets/fashion-mnist/"


def idx(path):
    raw = gzip.open(path).read()
    return np.frombuffer(raw, np.uint8, offset=16 if raw[3] == 3 else 8)


def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        a, b = v["data_offsets"]
        assert v["dtype"] == "F32", v["dtype"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], np.float32).reshape(v["shape"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cache")
    ap.add_argument("--splits", type=int, default=2000)
    args = ap.parse_args()
    train = idx(glob.glob(DATA + "train-images*")[0]).reshape(-1, 784) / 255.0
    test = idx(glob.glob(DATA + "t10k-images*")[0]).reshape(-1, 784) / 255.0
    labels = idx(glob.glob(DATA + "t10k-labels*")[0])
    x = ((test - train.mean()) / train.std()).astype(np.float32)
    for path in sorted(glob.glob(args.cache + "/eval-fashion-mnist-mlp-e15-s*-full-t1.safetensors")):
        w = safetensors(path)
        h = x
        for i, layer in enumerate(["classifier.1", "classifier.3", "classifier.5"]):
            h = h @ w[layer + ".weight"].T + w[layer + ".bias"]
            if i < 2:
                h = np.maximum(h, 0)
        correct = (h.argmax(1) == labels).astype(float)
        rng = np.random.default_rng(0)
        diffs = []
        for _ in range(args.splits):
            val = np.zeros(len(labels), bool)
            for c in range(10):
                members = np.flatnonzero(labels == c)
                val[rng.permutation(members)[:len(members) // 2]] = True
            diffs.append(correct[val].mean() - correct[~val].mean())
        d = np.array(diffs) * 100
        print(f"{path.split('/')[-1]}: test split {correct.mean() * 100:.2f}%; validation - test over {args.splits} "
              f"stratified halvings: mean {d.mean():+.2f}, sd {d.std():.2f}, 2.5% {np.percentile(d, 2.5):+.2f}, "
              f"5% {np.percentile(d, 5):+.2f} points")


if __name__ == "__main__":
    main()
