"""Training throughput (images/s) of pgd-at and advmoe steps: dense vs masked MoE vs sparse MoE.

All variants run in one process, interleaved round by round so that machine noise hits
them alike; the table reports the median over rounds and ratios against the dense model.
Both methods use the PGD robust loss (CE on the training attack's examples, 2 steps), so
the columns differ only by the alternation.

  python bench/train_throughput.py --device auto
  python bench/train_throughput.py --device cuda --width 1 --batch-size 128 --amp bf16 --channels-last
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))

from advmoe_worker.data import create_dataset  # noqa: E402
from advmoe_worker.training import Trainer  # noqa: E402


def model_factory():
    try:
        from advmoe_worker.models import create_model

        return create_model
    except ImportError:  # older model package without re-exports
        import importlib

        for name in ("resnet", "wide_resnet", "vgg", "densenet"):
            importlib.import_module(f"advmoe_worker.models.{name}")
        from advmoe_worker.models.factory import create_model

        return create_model


def model_spec(args, variant: str) -> dict:
    spec = {
        "arch": args.arch,
        "num_classes": 10,
        "in_channels": 3,
        "input_size": args.input_size,
        "width": args.width,
        "ratio": 1.0,
        "normalize": None,
        "moe": None,
        "seed": 0,
    }
    if variant == "s-dense":
        spec["ratio"] = args.ratio
    elif variant.startswith("moe"):
        spec["ratio"] = args.ratio
        spec["moe"] = {
            "experts": args.experts,
            "router": "image",
            "execution": variant.split("-")[1],
            "noise": 0.0,
            "temperature": 1.0,
            "router_width": args.router_width,
        }
    return spec


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--width", type=float, default=0.5, help="backbone width multiplier (default 0.5)")
    parser.add_argument("--ratio", type=float, default=0.5, help="expert width ratio r (default 0.5)")
    parser.add_argument("--experts", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", default="none", choices=["none", "bf16"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; 0 = torch's choice (default 1: steady on shared cores)",
    )
    parser.add_argument(
        "--router-width", type=float, default=1.0, help="image router channel multiplier (default 1)"
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    create_model = model_factory()
    data = create_dataset(
        {
            "kind": "synthetic",
            "size": args.input_size,
            "train_size": args.batch_size * 8,
            "test_size": 0,
            "augment": {"crop_padding": 4, "flip": True},
        }
    )
    variants = ["dense", "s-dense", "moe-masked", "moe-sparse"]
    runs = []  # (variant, method, trainer)
    for variant in variants:
        for method in ("pgd-at", "advmoe"):
            if method == "advmoe" and not variant.startswith("moe"):
                continue
            model = create_model(model_spec(args, variant)).to(device)
            spec = {
                "method": method,
                "batch_size": args.batch_size,
                "amp": args.amp,
                "channels_last": args.channels_last,
                "robust_loss": "pgd",
            }
            trainer = Trainer(model, data, spec)
            for _ in range(args.warmup):
                trainer.step()
            runs.append((variant, method, trainer))

    results: dict[tuple[str, str], list[float]] = {(v, m): [] for v, m, _ in runs}
    for _ in range(args.rounds):
        for variant, method, trainer in runs:
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.step()
            sync(device)
            results[(variant, method)].append(args.batch_size * args.steps / (time.perf_counter() - start))

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu x{torch.get_num_threads()} threads"
    )
    print(
        f"# training throughput, {args.arch} width {args.width}, r={args.ratio}, E={args.experts}, "
        f"router width {args.router_width}, {args.input_size}px, batch {args.batch_size}, attack 2 steps, amp {args.amp}, "
        f"channels_last {args.channels_last}, {name}, torch {torch.__version__}"
    )
    print(f"# median of {args.rounds} rounds x {args.steps} steps (advmoe alternates router/expert steps)")
    base = statistics.median(results[("dense", "pgd-at")])
    print(f"{'model':<12} {'method':<8} {'images/s':>10} {'vs dense pgd-at':>16}")
    for (variant, method), values in results.items():
        ips = statistics.median(values)
        print(f"{variant:<12} {method:<8} {ips:>10.1f} {ips / base:>15.2f}x")
    for method in ("pgd-at", "advmoe"):
        masked = statistics.median(results[("moe-masked", method)])
        sparse = statistics.median(results[("moe-sparse", method)])
        print(f"# {method}: sparse / masked MoE = {sparse / masked:.2f}x")


if __name__ == "__main__":
    main()
