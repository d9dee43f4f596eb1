"""Inference throughput of ResNet-18: dense, S-Dense, and MoE (E=2, r=0.5) masked vs sparse.

All models run in one process on the same inputs, interleaved round by round so that load
from other processes hits every model alike; the table gives the median images/s over the
repeats and the ratios sparse/dense and sparse/masked. The MoE models keep their router in
the timing (it is part of inference). Routes are balanced and unsorted by default (half the
batch per expert, in random order: the sparse path's worst case for regrouping);
`--routes natural` uses whatever the freshly initialized router picks instead.

    python bench/models_inference.py                  # CPU or CUDA, whichever is there
    python bench/models_inference.py --device cpu --repeats 5 --batch 128
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))

from advmoe_worker.models import create_model  # noqa: E402
from advmoe_worker.specs import validate  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32, help="input height = width (px)")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--iters", type=int, default=1, help="forward passes per timed round")
    parser.add_argument("--routes", choices=["balanced", "natural"], default="balanced")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format

    def build(**spec):
        model = create_model(
            validate(
                "model", {"arch": "resnet18", "input_size": args.size, "width": args.width, "seed": 0, **spec}
            )
        )
        return model.to(device, memory_format=memory_format).eval()

    dense = build()
    sdense = build(ratio=0.5)
    moe = build(ratio=0.5, moe={"experts": 2, "router": "image"})
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    x = x.to(device).contiguous(memory_format=memory_format)
    routes = None
    if args.routes == "balanced":
        routes = (torch.randperm(args.batch, generator=g) % 2)[:, None].to(device)

    def moe_run(execution):
        def run():
            moe.set_execution(execution)
            return moe.forward_routed(x, routes=routes).logits

        return run

    runs = {
        "dense (r=1)": lambda: dense(x),
        "S-Dense (r=0.5)": lambda: sdense(x),
        "MoE masked (E=2, r=0.5)": moe_run("masked"),
        "MoE sparse (E=2, r=0.5)": moe_run("sparse"),
    }
    with torch.inference_mode():
        torch.testing.assert_close(runs["MoE sparse (E=2, r=0.5)"](), runs["MoE masked (E=2, r=0.5)"]())
        chosen = moe.forward_routed(x, routes=routes).routes[:, 0]
        timings: dict[str, list[float]] = {name: [] for name in runs}
        for round_ in range(args.warmup + args.repeats):
            for name, run in runs.items():
                sync(device)
                start = time.perf_counter()
                for _ in range(args.iters):
                    run()
                sync(device)
                if round_ >= args.warmup:
                    timings[name].append(args.batch * args.iters / (time.perf_counter() - start))

    median = {name: statistics.median(v) for name, v in timings.items()}
    print(
        f"ResNet-18 inference, {device.type} ({describe(device)}), batch {args.batch}, "
        f"{args.size}x{args.size}, width {args.width}, threads {torch.get_num_threads()}, "
        f"{'channels_last' if args.channels_last else 'NCHW'}, routes {args.routes} "
        f"{torch.bincount(chosen, minlength=2).tolist()}, median of {args.repeats} "
        f"(after {args.warmup} warm-up), torch {torch.__version__}"
    )
    print()
    print("| model | images/s (median) | min | max |")
    print("|---|---:|---:|---:|")
    for name, values in timings.items():
        print(f"| {name} | {median[name]:,.0f} | {min(values):,.0f} | {max(values):,.0f} |")
    sparse = median["MoE sparse (E=2, r=0.5)"]
    print()
    print(f"sparse / dense  = {sparse / median['dense (r=1)']:.2f}x  (target >= 1.6x)")
    print(f"sparse / masked = {sparse / median['MoE masked (E=2, r=0.5)']:.2f}x  (target >= 2x)")
    print(f"sparse / S-Dense = {sparse / median['S-Dense (r=0.5)']:.2f}x  (1.0 = no MoE overhead)")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} threads"


if __name__ == "__main__":
    main()
