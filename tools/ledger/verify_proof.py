#!/usr/bin/env python3
"""Independent checker for `lethe proof` output: what a third party runs.

Uses only the Python standard library for hashing (RFC 6962 / RFC 9162) and the
`openssl` command line for the Ed25519 checkpoint signature, so it shares no code
with Lethe.

    lethe proof inclusion R1 > r1.proof
    tools/ledger/verify_proof.py r1.proof --public-key HEX      # 64 hex digits
    lethe proof consistency 3 8 > c.proof
    tools/ledger/verify_proof.py c.proof --old-root HEX --new-root HEX

Exit 0 when every proof in the file checks, 1 otherwise (with the reason).
"""
import argparse
import base64
import hashlib
import os
import subprocess
import sys
import tempfile


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, path: list, root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m: int, n: int, old_root: bytes, new_root: bytes, path: list) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if m < 1 or m > n:
        return False
    if m == n:
        return not path and old_root == new_root
    if not path:
        return False
    if m & (m - 1) == 0:
        path = [old_root] + path
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Checks an Ed25519 signature with `openssl pkeyutl -verify -rawin`."""
    spki = bytes.fromhex("302a300506032b6570032100") + public_key
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(spki).decode() + "\n-----END PUBLIC KEY-----\n"
    with tempfile.TemporaryDirectory() as d:
        paths = {name: os.path.join(d, name) for name in ("key.pem", "msg", "sig")}
        with open(paths["key.pem"], "w") as f:
            f.write(pem)
        with open(paths["msg"], "wb") as f:
            f.write(message)
        with open(paths["sig"], "wb") as f:
            f.write(signature)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["key.pem"], "-rawin",
                            "-in", paths["msg"], "-sigfile", paths["sig"]], capture_output=True)
        return r.returncode == 0


def check_note(lines: list, public_key: bytes, tree_size: int, root: bytes) -> str:
    """Checks a C2SP signed note (body, blank line, '— origin base64(keyhash4 || sig)')."""
    blank = lines.index("")
    body_lines, sig_line = lines[:blank], lines[blank + 1]
    body = ("\n".join(body_lines) + "\n").encode()
    origin, size, root_b64 = body_lines[0], int(body_lines[1]), body_lines[2]
    if size != tree_size or base64.b64decode(root_b64) != root:
        return "the checkpoint is for another tree head"
    dash, name, blob = sig_line.split(" ")
    raw = base64.b64decode(blob)
    key_hash = hashlib.sha256(origin.encode() + b"\n\x01" + public_key).digest()[:4]
    if dash != "\u2014" or name != origin or raw[:4] != key_hash:
        return "the signature line does not name this key"
    if not ed25519_verify(public_key, body, raw[4:]):
        return "the checkpoint signature does not verify"
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("proof", help="file with `lethe proof` text output")
    ap.add_argument("--public-key", help="store public key, 64 hex digits (required to check checkpoints)")
    ap.add_argument("--old-root", help="consistency: the old root you trust (hex)")
    ap.add_argument("--new-root", help="consistency: the new root you trust (hex)")
    args = ap.parse_args()
    text = open(args.proof, encoding="utf-8").read()
    blocks, current = [], None
    for line in text.split("\n"):
        if line in ("lethe inclusion proof v1", "lethe consistency proof v1"):
            current = [line[len("lethe "):]]
            blocks.append(current)
        elif current is not None:
            current.append(line)
    key = bytes.fromhex(args.public_key) if args.public_key else None
    failures = 0
    for lines in blocks:
        header, rest = lines[0], lines[1:]
        fields, paths, note = {}, [], None
        for i, line in enumerate(rest):
            if line == "checkpoint:":
                note = rest[i + 1:]
                break
            if ": " in line:
                k, v = line.split(": ", 1)
                if k == "path":
                    paths.append(bytes.fromhex(v))
                else:
                    fields[k] = v
        if header == "inclusion proof v1":
            entry = bytes.fromhex(fields["entry-bytes"])
            leaf = leaf_hash(entry)
            size, index, root = int(fields["tree-size"]), int(fields["leaf-index"]), bytes.fromhex(fields["root"])
            why = ""
            if leaf.hex() != fields["leaf-hash"]:
                why = "leaf-hash is not SHA-256(0x00 || entry-bytes)"
            elif not verify_inclusion(leaf, index, size, paths, root):
                why = "the audit path does not lead to the root"
            elif key is not None:
                why = "no signed checkpoint in the proof" if note is None else check_note(note, key, size, root)
            label = f"entry {fields['entry']}"
        elif header == "consistency proof v1":
            m, n = int(fields["old-size"]), int(fields["new-size"])
            old_root, new_root = bytes.fromhex(fields["old-root"]), bytes.fromhex(fields["new-root"])
            why = ""
            if args.old_root and old_root.hex() != args.old_root.lower():
                why = "old-root is not the root you trust"
            elif args.new_root and new_root.hex() != args.new_root.lower():
                why = "new-root is not the root you trust"
            elif not verify_consistency(m, n, old_root, new_root, paths):
                why = "the consistency path does not connect the two roots"
            label = f"sizes {m} -> {n}"
        else:
            print(f"unknown proof kind: {header}", file=sys.stderr)
            return 1
        if why:
            failures += 1
            print(f"FAIL {label}: {why}")
        else:
            print(f"ok   {label}")
    return 1 if failures or not blocks else 0


if __name__ == "__main__":
    sys.exit(main())
