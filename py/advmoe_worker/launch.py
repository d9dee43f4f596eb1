"""`--nproc-per-node N`: the worker restarted under torchrun (`torch.distributed.run`).

This process becomes torchrun's agent: it starts N copies of `python -m advmoe_worker`
with the same arguments, and ends all of them, then itself with a non-zero code, as soon
as one fails; so the death of any rank reaches the client as the worker's death. Several
machines are joined by running torchrun directly with `--nnodes` and a rendezvous (README,
"More than one GPU").
"""

from __future__ import annotations

import sys


def without_nproc(argv: list[str]) -> list[str]:
    """`argv` without its `--nproc-per-node N` (or `--nproc-per-node=N`)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc-per-node":
            skip = True
        elif not arg.startswith("--nproc-per-node="):
            out.append(arg)
    return out


def run_under_torchrun(nproc: int, argv: list[str]) -> int:
    """Runs the worker as `nproc` ranks on this machine; returns the agent's exit code."""
    from torch.distributed import run

    args = [
        "--standalone",  # one machine: a private rendezvous on a free local port
        "--nnodes=1",
        f"--nproc-per-node={nproc}",
        "--max-restarts=0",  # a supervised SDK worker restarts the whole group instead
        "--module",
        "advmoe_worker",
        *without_nproc(argv),
    ]
    try:
        run.main(args)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except Exception as exc:  # torchrun's ChildFailedError: one rank died, the group is gone
        print(f"advmoe_worker: a rank failed under torchrun: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0
