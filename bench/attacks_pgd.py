"""PGD-10 throughput (images/s): our PGD against torchattacks' PGD, same model, same run.

    .venv/bin/python bench/attacks_pgd.py --device auto

Both attacks run L∞ PGD-10 (ε 8/255, step 2/255, random start from the same seed, so the
same examples) on the same inputs, on a
ResNet-18 MoE (r = 0.5, E = 2, image router) and on the dense ResNet-18 of the same width.
Timings alternate between the two attacks, repeat after a warm-up, and report medians, so
both see the same machine state. The ratio is ours / theirs (above 1: ours is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

try:
    import advmoe_worker  # noqa: F401
except ImportError:  # run from a checkout without the worker installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))

from advmoe_worker.attacks import create_attack
from advmoe_worker.models import create_model


def model_spec(moe: bool, width: float, size: int, classes: int) -> dict:
    return {
        "arch": "resnet18",
        "num_classes": classes,
        "in_channels": 3,
        "input_size": size,
        "width": width,
        "ratio": 0.5 if moe else 1.0,
        "normalize": None,
        "moe": (
            {
                "experts": 2,
                "router": "image",
                "execution": "sparse",
                "noise": 0.0,
                "temperature": 1.0,
                "router_width": 1.0,
            }
            if moe
            else None
        ),
        "seed": 0,
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def bench_model(name: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int) -> dict:
    import torchattacks

    device = x.device
    ours = create_attack({"name": "pgd", "steps": 10, "seed": 0}, model)
    theirs = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10, random_start=True)

    def run_theirs() -> torch.Tensor:
        # Same random start as ours (torchattacks draws it from the global RNG): the two
        # attacks then compute the same examples, and an MoE routes them the same way, so
        # both time the same work (a different start can change how the batch splits
        # over experts, and with it the cost of the sparse path).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return theirs(x, y)

    runs = {"ours": lambda: ours(x, y), "torchattacks": run_theirs}
    for fn in runs.values():  # warm-up: allocator, cuDNN autotuning, lazy init
        timed(fn, device)
    times: dict[str, list[float]] = {key: [] for key in runs}
    for i in range(repeats):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))
        for key in order:
            times[key].append(timed(runs[key], device))
    rate = {key: x.shape[0] / statistics.median(t) for key, t in times.items()}
    best = {key: x.shape[0] / min(t) for key, t in times.items()}
    return {
        "model": name,
        "ours_images_per_s": rate["ours"],
        "torchattacks_images_per_s": rate["torchattacks"],
        "ratio": rate["ours"] / rate["torchattacks"],
        "ratio_best": best["ours"] / best["torchattacks"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--width", type=float, default=None, help="width multiplier (default 0.25 on CPU, 1 on CUDA)"
    )
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 32 on CPU, 256 on CUDA)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    width = args.width if args.width is not None else (1.0 if device.type == "cuda" else 0.25)
    batch = args.batch if args.batch is not None else (256 if device.type == "cuda" else 32)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, args.input_size, args.input_size, generator=g).to(device)
    y = torch.randint(0, args.classes, (batch,), generator=g).to(device)
    results = []
    for name, moe in (("resnet18-moe r=0.5 E=2", True), ("resnet18-dense", False)):
        model = create_model(model_spec(moe, width, args.input_size, args.classes)).to(device).eval()
        results.append(bench_model(name, model, x, y, args.repeats))

    setup = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "width": width,
        "input_size": args.input_size,
        "batch": batch,
        "repeats": args.repeats,
        "attack": "PGD-10 linf eps 8/255 step 2/255, random start",
    }
    if args.json:
        print(json.dumps({"setup": setup, "results": results}, indent=2))
        return
    print("PGD-10 throughput, " + ", ".join(f"{k}={v}" for k, v in setup.items()))
    print("median of the repeats; 'best' compares the fastest repeat of each")
    print(f"{'model':<26}{'ours img/s':>12}{'torchattacks img/s':>20}{'ratio':>8}{'best':>8}")
    for r in results:
        print(
            f"{r['model']:<26}{r['ours_images_per_s']:>12.1f}{r['torchattacks_images_per_s']:>20.1f}"
            f"{r['ratio']:>7.2f}x{r['ratio_best']:>7.2f}x"
        )


if __name__ == "__main__":
    main()
