"""Runs a benchmark command and writes its output into BENCHMARKS.md, command beside it.

The section sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; it is
replaced whole (or appended with `--title` when missing), so the numbers in the file
are always a run's own output, never typed by hand.
Usage: python scripts/bench-section.py NAME [--title T] [--note TEXT] -- COMMAND...
"""

from __future__ import annotations

import argparse
import datetime
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--")
    p = argparse.ArgumentParser()
    p.add_argument("name")
    p.add_argument("--title", default=None)
    p.add_argument("--note", default="")
    args = p.parse_args(argv[:split])
    command = argv[split + 1 :]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.stderr.write(run.stdout + run.stderr)
        sys.exit(f"{' '.join(command)} exited with {run.returncode}; BENCHMARKS.md left as it was")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    body = [
        f"`{' '.join(command)}` ({stamp}, load average {load} on this 2-core machine)",
        "",
        *([args.note, ""] if args.note else []),
        run.stdout.rstrip(),
    ]
    begin, end = f"<!-- bench:{args.name} -->", f"<!-- /bench:{args.name} -->"
    block = "\n".join([begin, *body, end])
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        title = f"\n### {args.title}\n\n" if args.title else "\n"
        text = text.rstrip() + "\n" + title + block + "\n"
    path.write_text(text)
    print(run.stdout.rstrip())


if __name__ == "__main__":
    main()
