#!/usr/bin/env python3
"""Fetches the public migration histories that `just generate-sweep` measures the generator
on, at pinned commits, and writes each as one directory of sqlx-named up files
(`<version>_<description>.sql`, contents unchanged, in the original order).

Usage: scripts/histories.py DIR. A history already in DIR is kept. Needs git and network.
"""
import os
import re
import subprocess
import sys
import tempfile

# name: (GitHub repository, commit, layout, directory of the migrations, last step kept or None)
HISTORIES = {
    "element-hq__matrix-authentication-service": (
        "element-hq/matrix-authentication-service", "682b8d26d3b3666b6652490f66618ab3d640fa5d",
        "sqlx", "crates/storage-pg/migrations", None),
    # Cut before 2025-08-01-000016: that step needs PostgreSQL 16 (a subquery in FROM without
    # an alias), and the history must stay a prefix that applies on 15.
    "LemmyNet__lemmy": (
        "LemmyNet/lemmy", "439734dd638a2c06a2f907beab7dcf4646e88f86",
        "diesel", "migrations", "20250801000015"),
    "rust-lang__crates.io": (
        "rust-lang/crates.io", "57fa000662f511321daa61e6769f190ea0e80771",
        "diesel-wide", "migrations", None),
    "atuinsh__atuin": (
        "atuinsh/atuin", "824c8716d82bed774ee6a83c683087ae77715814",
        "sqlx", "crates/atuin-server-postgres/migrations", None),
    "dani-garcia__vaultwarden": (
        "dani-garcia/vaultwarden", "46d71107f5094460dd5ecbe1dbac6e6c71e5189a",
        "diesel", "migrations/postgresql", None),
}


def description(text):
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "migration"


def steps(checkout, layout, base):
    """(version, description, path) of every up file, in the original order."""
    root = os.path.join(checkout, base)
    out = []
    if layout == "sqlx":
        for name in os.listdir(root):
            if not name.endswith(".sql") or name.endswith(".down.sql"):
                continue
            stem = name[:-4].removesuffix(".up")
            version, desc = stem.split("_", 1)
            out.append((int(version), version, description(desc), os.path.join(root, name)))
    else:
        for folder in os.listdir(root):
            up = os.path.join(root, folder, "up.sql")
            if not os.path.isfile(up):
                continue
            stamp, desc = folder.split("_", 1)
            digits = re.sub(r"\D", "", stamp)
            if layout == "diesel-wide":
                # Two folders share a 14-digit stamp: 4 more digits keep diesel's order.
                suffix = "%04d" % (int(digits[14:]) + 1) if len(digits) == 18 else "0000"
                version = digits[:14] + suffix
            else:
                version = digits[:14]
            out.append((stamp.replace("-", ""), version, description(desc), up))
    out.sort()
    return [(v, d, p) for _, v, d, p in out]


def main():
    target = sys.argv[1]
    os.makedirs(target, exist_ok=True)
    for name, (repo, commit, layout, base, last) in HISTORIES.items():
        out = os.path.join(target, name)
        if os.path.isdir(out) and os.listdir(out):
            continue
        with tempfile.TemporaryDirectory() as checkout:
            git = ["git", "-C", checkout]
            subprocess.run(["git", "init", "-q", checkout], check=True)
            subprocess.run(git + ["remote", "add", "origin", f"https://github.com/{repo}"], check=True)
            subprocess.run(git + ["fetch", "-q", "--depth", "1", "origin", commit], check=True)
            subprocess.run(git + ["checkout", "-q", "FETCH_HEAD"], check=True)
            kept = 0
            os.makedirs(out, exist_ok=True)
            for version, desc, path in steps(checkout, layout, base):
                if last is not None and int(version) > int(last):
                    break
                with open(path, "rb") as src, open(os.path.join(out, f"{version}_{desc}.sql"), "wb") as dst:
                    dst.write(src.read())
                kept += 1
        print(f"{name}: {kept} steps at {commit[:12]}")


if __name__ == "__main__":
    main()
