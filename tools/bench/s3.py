#!/usr/bin/env python3
"""S3 vs local store benchmark, side by side in one run: `lethe import` and `lethe export`
(release build, 1 thread) of one synthetic safetensors file into a local store and into a
store whose objects live in Ceph RGW (tools/scaleout/start-rgw, memstore OSD on loopback).

Each repeat uses a fresh store (a fresh S3 prefix), so imports never deduplicate. Export is
measured twice on S3: with the local read cache emptied first (every object from RGW) and
again with the cache warm. Best of --repeats wall times.

Usage: tools/bench/s3.py [--workdir DIR] [--bytes N] [--repeats R] [--env RGW_ENV_FILE]
Without --env it starts RGW in WORKDIR/rgw and stops it at the end.
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def sh(*args, **kw):
    return subprocess.run(list(map(str, args)), check=True, **kw)


def timed(args, cwd, env):
    t = time.perf_counter()
    r = subprocess.run(list(map(str, args)), cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stderr}")
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default="/tmp/s3bench")
    ap.add_argument("--bytes", type=int, default=100_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--env")
    a = ap.parse_args()
    work = pathlib.Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    sh("swift", "build", "-c", "release", "--product", "lethe", cwd=ROOT, stdout=subprocess.DEVNULL)
    sh("swift", "build", "-c", "release", "--product", "lethe-bench", cwd=ROOT, stdout=subprocess.DEVNULL)
    bin_dir = pathlib.Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                                          capture_output=True, text=True, check=True).stdout.strip())
    lethe, bench = bin_dir / "lethe", bin_dir / "lethe-bench"
    data = work / "normal.safetensors"
    if not data.exists() or abs(data.stat().st_size - a.bytes) > a.bytes // 10:
        sh(bench, "store-gen", "--out", data, "--bytes", a.bytes)
    size_mb = data.stat().st_size / 1e6

    started = None
    env_file = a.env
    if not env_file:
        started = work / "rgw"
        sh(ROOT / "tools/scaleout/start-rgw", started)
        env_file = started / "env"
    try:
        env = dict(os.environ)
        for line in pathlib.Path(env_file).read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
        bucket = f"bench-{os.getpid()}"
        results = {}
        for backend in ["local", "s3"]:
            for r in range(a.repeats):
                store = work / f"{backend}-{r}"
                shutil.rmtree(store, ignore_errors=True)
                store.mkdir()
                init = ["init"] + (["--objects", f"s3://{bucket}/run-{r}"] if backend == "s3" else [])
                timed([lethe, *init], store, env)
                imp = timed([lethe, "import", data, "--ref", "main", "--no-parent"], store, env)
                out = work / "out.safetensors"
                if backend == "s3":
                    shutil.rmtree(store / ".lethe/cache", ignore_errors=True)
                cold = timed([lethe, "export", "main", "-o", out], store, env)
                warm = timed([lethe, "export", "main", "-o", out], store, env)
                if out.read_bytes() != data.read_bytes():
                    sys.exit(f"{backend}: export differs from the input")
                for k, v in [("import", imp), ("export-cold", cold), ("export-warm", warm)]:
                    results.setdefault((backend, k), []).append(v)
        print(f"file: {size_mb:.1f} MB; best of {a.repeats} wall times; load average {os.getloadavg()[0]:.1f}")
        print("| backend | import MB/s | export MB/s (S3: cache empty) | export MB/s (cache warm) |")
        print("|---|---:|---:|---:|")
        for backend in ["local", "s3"]:
            best = {k: min(results[(backend, k)]) for k in ["import", "export-cold", "export-warm"]}
            label = "local directory" if backend == "local" else "S3 (Ceph RGW 16, memstore OSD, loopback)"
            cold = f"{size_mb / best['export-cold']:.0f} ({best['export-cold']:.2f} s)" if backend == "s3" else "–"
            print(f"| {label} | {size_mb / best['import']:.0f} ({best['import']:.2f} s) | {cold} | "
                  f"{size_mb / best['export-warm']:.0f} ({best['export-warm']:.2f} s) |")
    finally:
        if started:
            sh(ROOT / "tools/scaleout/stop-rgw", started)


if __name__ == "__main__":
    main()
