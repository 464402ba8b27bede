#!/usr/bin/env python3
"""Store benchmark, side by side in one run: `lethe import` / `lethe export` (release build)
against `zstd -3 -T1` / `zstd -d` on the same files, with peak RSS from /usr/bin/time.

Files: a synthetic safetensors of normally distributed float32 (default 1 GiB), and, when
PyTorch is installed, the weights of small `cnn` and `allcnn` models trained on Fashion-MNIST
by tools/store/train_models.py plus a simulated low-rank (PGU-like) update of each.

Usage: tools/bench/store.py [--workdir DIR] [--bytes N] [--repeats R] [--no-train]
Needs: apt zstd (tools/install-deps --test); for trained weights pip torch + safetensors.
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def sh(*args, **kw):
    return subprocess.run(list(map(str, args)), check=True, **kw)


def timed(*args):
    """Runs a command under /usr/bin/time; returns (seconds, peak RSS in MB, stdout)."""
    r = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stderr}")
    line = [l for l in r.stderr.splitlines() if l.startswith("TIME ")][-1].split()
    return float(line[1]), int(line[2]) / 1024, r.stdout


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workdir", default="/tmp/lethe-store-bench")
    p.add_argument("--bytes", type=int, default=1 << 30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-train", action="store_true")
    a = p.parse_args()
    work = pathlib.Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    sh("swift", "build", "-c", "release", "--product", "lethe", cwd=ROOT, stdout=subprocess.DEVNULL)
    sh("swift", "build", "-c", "release", "--product", "lethe-bench", cwd=ROOT, stdout=subprocess.DEVNULL)
    bin_dir = pathlib.Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                                          capture_output=True, text=True, check=True).stdout.strip())
    lethe, bench = bin_dir / "lethe", bin_dir / "lethe-bench"

    normal = work / "normal.safetensors"
    if not normal.exists() or normal.stat().st_size < a.bytes:
        sh(bench, "store-gen", "--out", normal, "--bytes", a.bytes)
    cases = [("synthetic N(0, 0.02²) float32", normal, None)]
    if not a.no_train:
        try:
            import torch  # noqa: F401
            if not (work / "allcnn_update.safetensors").exists():
                sh(sys.executable, ROOT / "tools/store/train_models.py", work)
            cases = [("trained cnn (Fashion-MNIST)", work / "cnn.safetensors", work / "cnn_update.safetensors"),
                     ("trained allcnn (Fashion-MNIST)", work / "allcnn.safetensors", work / "allcnn_update.safetensors")] + cases
        except ImportError:
            print("torch not installed: trained-model rows skipped", file=sys.stderr)

    rows = []
    for label, path, update in cases:
        size = path.stat().st_size
        repeats = a.repeats if size > (64 << 20) else 5
        sh("cat", path, stdout=subprocess.DEVNULL)  # warm the page cache for both tools
        zst, back, out = work / "x.zst", work / "x.out", work / "x.safetensors"
        best = {}
        for r in range(repeats):
            t, m, _ = timed("zstd", "-3", "-T1", "-q", "-f", path, "-o", zst)
            best["zc"] = min(best.get("zc", (1e9, 0)), (t, m))
            t, m, _ = timed("zstd", "-d", "-q", "-f", zst, "-o", back)
            best["zd"] = min(best.get("zd", (1e9, 0)), (t, m))
            store = work / "store"
            shutil.rmtree(store, ignore_errors=True)
            store.mkdir()
            sh(lethe, "init", store, stdout=subprocess.DEVNULL)
            t, m, o = timed(lethe, "--store", store, "import", path, "--json")
            imp = json.loads(o)
            best["li"] = min(best.get("li", (1e9, 0)), (t, m))
            t, m, _ = timed(lethe, "--store", store, "export", "main", "-o", out)
            best["le"] = min(best.get("le", (1e9, 0)), (t, m))
        zsize = zst.stat().st_size
        identical = sha256(out) == sha256(path)
        stored = imp["stored_bytes"]
        row = {"label": label, "size": size, "zstd_size": zsize, "stored": stored, "identical": identical,
               "zc": best["zc"], "zd": best["zd"], "li": best["li"], "le": best["le"]}
        if update:
            _, _, o = timed(lethe, "--store", store, "import", update, "--json", "-m", "simulated low-rank update")
            row["update_stored"] = json.loads(o)["stored_bytes"]
            row["update_codecs"] = json.loads(o)["codecs"]
            timed(lethe, "--store", store, "export", "main", "-o", out)
            row["update_identical"] = sha256(out) == sha256(update)
            fsck = subprocess.run([lethe, "--store", store, "fsck"], capture_output=True, text=True)
            row["fsck"] = fsck.returncode == 0
        rows.append(row)
        for f in (zst, back, out):
            f.unlink(missing_ok=True)
        shutil.rmtree(work / "store", ignore_errors=True)

    mb = 1e6
    print(f"\nStore benchmark (release, 1 thread each; best of {a.repeats} for large files, 5 for small; page cache warm;"
          " lethe fsyncs every object, zstd does not)\n")
    print("| weights | raw | zstd -3 size | lethe stored | stored / zstd (goal ≤ 0.90) | import MB/s (zstd -3) | ratio (goal ≥ 0.8) "
          "| export MB/s (zstd -d) | ratio (goal ≥ 0.8) | peak RSS import / export (goal ≤ 300 MB) | byte-identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ratio = r["stored"] / r["zstd_size"]
        ok = lambda b: "met" if b else "**not met**"
        if r["size"] >= (64 << 20):
            imp_speed, zc_speed = r["size"] / r["li"][0] / mb, r["size"] / r["zc"][0] / mb
            exp_speed, zd_speed = r["size"] / r["le"][0] / mb, r["size"] / r["zd"][0] / mb
            speeds = (f"| {imp_speed:.0f} ({zc_speed:.0f}) | {imp_speed / zc_speed:.2f} ({ok(imp_speed >= 0.8 * zc_speed)}) "
                      f"| {exp_speed:.0f} ({zd_speed:.0f}) | {exp_speed / zd_speed:.2f} ({ok(exp_speed >= 0.8 * zd_speed)}) ")
        else:
            speeds = (f"| {r['li'][0]:.2f} s ({r['zc'][0]:.2f} s) | start-up bound | {r['le'][0]:.2f} s ({r['zd'][0]:.2f} s) | start-up bound ")
        print(f"| {r['label']} | {r['size'] / mb:.1f} MB | {r['zstd_size'] / mb:.3f} MB | {r['stored'] / mb:.3f} MB "
              f"| {ratio:.4f} ({ok(ratio <= 0.90)}) " + speeds +
              f"| {r['li'][1]:.0f} / {r['le'][1]:.0f} MB ({ok(max(r['li'][1], r['le'][1]) <= 300)}) | {'yes' if r['identical'] else 'NO'} |")
    updates = [r for r in rows if "update_stored" in r]
    if updates:
        print("\n| simulated low-rank update of | parent stored | update stored | update / parent (goal ≤ 0.40) | codecs of new chunks | export identical | fsck |")
        print("|---|---:|---:|---:|---|---|---|")
        for r in updates:
            q = r["update_stored"] / r["stored"]
            print(f"| {r['label']} | {r['stored'] / 1e3:.1f} kB | {r['update_stored'] / 1e3:.1f} kB | {q:.3f} ({'met' if q <= 0.40 else '**not met**'}) "
                  f"| {', '.join(f'{k} ×{v}' for k, v in sorted(r['update_codecs'].items()))} | {'yes' if r['update_identical'] else 'NO'} | {'ok' if r['fsck'] else 'FAILED'} |")
    print("\nSmall files: throughput is dominated by process start-up for both tools; the 1 GiB row is the speed measurement.")


if __name__ == "__main__":
    main()
