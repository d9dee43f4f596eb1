"""In-process baseline for bench/control_overhead.ts: the same AdvMoE steps, no wire.

Prints one JSON line: {"seconds": [...], "steps": N}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "py"))

import torch  # noqa: E402

from advmoe_worker.data import create_dataset  # noqa: E402
from advmoe_worker.models import create_model  # noqa: E402
from advmoe_worker.specs import validate  # noqa: E402
from advmoe_worker.training import Trainer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True, help="JSON with data, model and trainer specs")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = json.loads(args.config)
    seconds = []
    for _ in range(args.repeats):
        data = create_dataset(validate("data", config["data"]))
        model = create_model(validate("model", config["model"]))
        trainer = Trainer(model, data, validate("trainer", config["trainer"]))
        trainer.step()  # warm-up, as on the TS side
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.step()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "steps": args.steps}))


if __name__ == "__main__":
    main()
