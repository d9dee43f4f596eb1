"""Summarizes a profile as a markdown table of the hottest functions by self time.

Reads py-spy's raw (collapsed) output or a V8 `.cpuprofile` from `node --cpu-prof`.
Usage: python bench/profile_summary.py PROFILE [--top 15] [--only TEXT]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path


def pyspy(path: Path, only: str | None) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if only and not any(only in f for f in frames):
            continue
        if frames[-1]:  # empty: a sample outside any Python frame
            counts[frames[-1]] += int(n)
    return counts


def cpuprofile(path: Path, only: str | None) -> collections.Counter:
    prof = json.loads(path.read_text())
    nodes = {n["id"]: n for n in prof["nodes"]}
    counts: collections.Counter = collections.Counter()
    for sample, delta in zip(prof["samples"], prof["timeDeltas"], strict=True):
        frame = nodes[sample]["callFrame"]
        url = frame["url"].split("/node_modules/")[-1].split("/")[-1]
        name = frame["functionName"] or "(anonymous)"
        counts[f"{name} {url}:{frame['lineNumber'] + 1}" if url else name] += delta
    return counts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--only", default=None, help="py-spy: keep stacks with a frame containing this")
    args = p.parse_args()
    counts = (
        cpuprofile(args.profile, args.only)
        if args.profile.suffix == ".cpuprofile"
        else pyspy(args.profile, args.only)
    )
    total = sum(counts.values())
    print("| function (self time) | share |")
    print("|---|---:|")
    for name, n in counts.most_common(args.top):
        print(f"| `{name.replace('|', '/')}` | {n / total * 100:.1f}% |")


if __name__ == "__main__":
    main()
