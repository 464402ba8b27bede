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
    """Runs a command under /usr/bin/time; returns ((wall seconds, CPU seconds), peak RSS in MB, stdout)."""
    r = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M %U %S", *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stderr}")
    line = [l for l in r.stderr.splitlines() if l.startswith("TIME ")][-1].split()
    return (float(line[1]), float(line[3]) + float(line[4])), int(line[2]) / 1024, r.stdout


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def xor_plane_entropy_bytes(a_path, b_path):
    """Order-0 entropy (bytes) of the byte planes of XOR(a, b) over the F32 tensors, each word
    rotated left by one bit as the store's grouping does: what any per-plane entropy coder of
    the XOR delta needs at least. None when numpy is missing."""
    try:
        import numpy as np
    except ImportError:
        return None

    def load(p):
        b = pathlib.Path(p).read_bytes()
        n = int.from_bytes(b[:8], "little")
        h = json.loads(b[8:8 + n])
        d = b[8 + n:]
        return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], dtype=np.uint32)
                for k, v in h.items() if k != "__metadata__" and v["dtype"] == "F32"}

    a, b = load(a_path), load(b_path)
    bits = 0.0
    for k in a:
        x = a[k] ^ b[k]
        x = (x << np.uint32(1)) | (x >> np.uint32(31))
        for j in range(4):
            p = np.bincount(((x >> np.uint32(8 * j)) & np.uint32(0xFF)).astype(np.int64), minlength=256) / len(x)
            p = p[p > 0]
            bits += float(-(p * np.log2(p)).sum()) * len(x)
    return bits / 8


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
        large = size >= (64 << 20)

        def run(key, *cmd):
            sh("sync")  # no step pays for the previous one's dirty pages
            (wall, cpu), m, o = timed(*cmd)
            w0, c0, m0 = best.get(key, (1e9, 1e9, 0))
            best[key] = (min(w0, wall), min(c0, cpu), max(m0, m))  # best wall, best CPU, worst peak RSS
            return o

        for r in range(repeats):
            run("zc", "zstd", "-3", "-T1", "-q", "-f", path, "-o", zst)
            run("zd", "zstd", "-d", "-q", "-f", zst, "-o", back)
            back.unlink()
            for threads in ([1, 2] if large else [1]):
                store = work / "store"
                shutil.rmtree(store, ignore_errors=True)
                store.mkdir()
                sh(lethe, "init", store, stdout=subprocess.DEVNULL)
                imp = json.loads(run(f"li{threads}", lethe, "--store", store, "import", path, "--json", "--threads", threads))
                out.unlink(missing_ok=True)  # like zstd's output: a fresh file, not a rename over an old one
                run(f"le{threads}", lethe, "--store", store, "export", "main", "-o", out, "--threads", threads)
            if large:
                run("zc2", "zstd", "-3", "-T2", "-q", "-f", path, "-o", zst)
        best["li"], best["le"] = best["li1"], best["le1"]
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
            row["update_bound"] = xor_plane_entropy_bytes(path, update)
            fsck = subprocess.run([lethe, "--store", store, "fsck"], capture_output=True, text=True)
            row["fsck"] = fsck.returncode == 0
        rows.append(row)
        if large:
            row["threads2"] = (best["li2"], best["le2"], best["zc2"])
        for f in (zst, back, out):
            f.unlink(missing_ok=True)
        shutil.rmtree(work / "store", ignore_errors=True)

    mb = 1e6
    print(f"\nStore benchmark (release build, 1 thread each; best of {a.repeats} for large files, 5 for small; input in page cache; "
          "`sync` before every step; lethe fsyncs every object, zstd does not fsync; machine shared with other builds)\n")
    print("| weights | raw | zstd -3 size | lethe stored | stored / zstd (goal ≤ 0.90) | import MB/s wall (zstd -3) | ratio wall (goal ≥ 0.8) | ratio CPU time "
          "| export MB/s wall (zstd -d) | ratio wall (goal ≥ 0.8) | ratio CPU time | peak RSS import / export (goal ≤ 300 MB) | byte-identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ratio = r["stored"] / r["zstd_size"]
        ok = lambda b: "met" if b else "**not met**"
        if r["size"] >= (64 << 20):
            imp_speed, zc_speed = r["size"] / r["li"][0] / mb, r["size"] / r["zc"][0] / mb
            exp_speed, zd_speed = r["size"] / r["le"][0] / mb, r["size"] / r["zd"][0] / mb
            ci, ce = r["zc"][1] / r["li"][1], r["zd"][1] / r["le"][1]
            speeds = (f"| {imp_speed:.0f} ({zc_speed:.0f}) | {imp_speed / zc_speed:.2f} ({ok(imp_speed >= 0.8 * zc_speed)}) | {ci:.2f} "
                      f"| {exp_speed:.0f} ({zd_speed:.0f}) | {exp_speed / zd_speed:.2f} ({ok(exp_speed >= 0.8 * zd_speed)}) | {ce:.2f} ")
        else:
            speeds = (f"| {r['li'][0]:.2f} s ({r['zc'][0]:.2f} s) | start-up bound | – | {r['le'][0]:.2f} s ({r['zd'][0]:.2f} s) | start-up bound | – ")
        print(f"| {r['label']} | {r['size'] / mb:.1f} MB | {r['zstd_size'] / mb:.3f} MB | {r['stored'] / mb:.3f} MB "
              f"| {ratio:.4f} ({ok(ratio <= 0.90)}) " + speeds +
              f"| {r['li'][2]:.0f} / {r['le'][2]:.0f} MB ({ok(max(r['li'][2], r['le'][2]) <= 300)}) | {'yes' if r['identical'] else 'NO'} |")
    updates = [r for r in rows if "update_stored" in r]
    if updates:
        print("\n| simulated low-rank update of | parent stored | update stored | update / parent (goal ≤ 0.40) | plane-entropy bound of the XOR delta | codecs of new chunks | export identical | fsck |")
        print("|---|---:|---:|---:|---:|---|---|---|")
        for r in updates:
            q = r["update_stored"] / r["stored"]
            bound = r.get("update_bound")
            bound_text = f"{bound / 1e3:.1f} kB ({bound / r['stored']:.3f})" if bound else "n/a"
            print(f"| {r['label']} | {r['stored'] / 1e3:.1f} kB | {r['update_stored'] / 1e3:.1f} kB | {q:.3f} ({'met' if q <= 0.40 else '**not met**'}) | {bound_text} "
                  f"| {', '.join(f'{k} ×{v}' for k, v in sorted(r['update_codecs'].items()))} | {'yes' if r['update_identical'] else 'NO'} | {'ok' if r['fsck'] else 'FAILED'} |")
    for r in rows:
        if "threads2" in r:
            li2, le2, zc2 = r["threads2"]
            print(f"\nWith 2 threads on {r['label']}: lethe import {r['size'] / li2[0] / mb:.0f} MB/s (zstd -3 -T2 {r['size'] / zc2[0] / mb:.0f} MB/s), "
                  f"lethe export {r['size'] / le2[0] / mb:.0f} MB/s (zstd -d {r['size'] / r['zd'][0] / mb:.0f} MB/s, single-threaded); "
                  f"peak RSS {li2[2]:.0f} / {le2[2]:.0f} MB.")
    print("\nSmall files: throughput is dominated by process start-up for both tools; the 1 GiB row is the speed measurement. "
          "'ratio CPU time' = zstd's user+sys seconds / lethe's (best of the runs): the speed ratio free of the other builds sharing the 2 cores.")


if __name__ == "__main__":
    main()
