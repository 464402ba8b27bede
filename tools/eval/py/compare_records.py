#!/usr/bin/env python3
"""Compares PGU across two directories of lethe-eval cell records (e.g. two engine settings on the same cells).

For every Fashion-MNIST sample request present in both (random1000, random1000v, seq4x250, seq4x250v),
per model: requests refused, PGU's test accuracy minus the Original's (mean and worst, points), the
smallest and the median Retrain/PGU CPU-seconds ratio, and PGU's CPU seconds summed.

    python3 tools/eval/py/compare_records.py tools/eval/results-unlimited tools/eval/results
"""
import glob, json, statistics, sys

SAMPLE = ("random1000", "random1000v", "seq4x250", "seq4x250v")


def load(directory):
    out = {}
    for path in glob.glob(directory + "/fashion-mnist-*.json"):
        cell = json.load(open(path))
        if cell["setting"] not in SAMPLE:
            continue
        for step in cell["steps"]:
            rows = {r["method"]: r for r in step["rows"]}
            p, o, r = rows["pgu"], rows["original"], rows["retrain"]
            ratio = r["cpuSeconds"] / p["cpuSeconds"] if r.get("cpuSeconds") and p.get("cpuSeconds") else None
            out[(cell["arch"], cell["setting"], cell["seed"], step["step"])] = dict(
                test=(p["testAccuracy"] - o["testAccuracy"]) * 100, applied=step["pguRun"]["status"] == "applied",
                ratio=ratio, cpu=p.get("cpuSeconds"))
    return out


def main():
    a, b = sys.argv[1], sys.argv[2]
    records = {a: load(a), b: load(b)}
    for arch in ("mlp", "cnn"):
        keys = [k for k in records[a] if k[0] == arch and k in records[b]]
        for name in (a, b):
            d = records[name]
            test = [d[k]["test"] for k in keys]
            ratios = [d[k]["ratio"] for k in keys if d[k]["ratio"]]
            cpu = sum(d[k]["cpu"] for k in keys if d[k]["cpu"])
            print(f"{arch} {name}: {len(keys)} requests, refused {sum(not d[k]['applied'] for k in keys)}, "
                  f"test change mean {statistics.mean(test):+.2f} worst {min(test):+.2f}, CPU ratio min "
                  f"{min(ratios):.1f} median {statistics.median(ratios):.1f}, PGU CPU s {cpu:.0f}")


if __name__ == "__main__":
    main()
