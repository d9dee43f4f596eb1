"""TensorBoard event files of a training run, written from the events the trainer emits.

The writer is one more subscriber to `Trainer.emit`: the engine knows nothing of it. Tags:
`step/*` by global step, `epoch/*` by epochs completed, `eval/*` by the global step at which
the epoch-end evaluation ran. Expert load goes in as per-expert scalars and as a histogram
over expert indices (bucket e holds expert e's share).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SpecError

NUMERIC = (int, float)


def _number(value: Any) -> bool:
    return isinstance(value, NUMERIC) and not isinstance(value, bool)


class TensorBoardLogger:
    """Writes a trainer's `step`, `epoch` and `eval` events under `log_dir`."""

    def __init__(self, log_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch raises ImportError when the tensorboard package is absent
            raise SpecError(
                "log_dir",
                "tensorboard_installed",
                "log_dir: writing TensorBoard files needs the 'tensorboard' package on the worker "
                "(pip install 'advmoe-worker[tensorboard]')",
            ) from exc
        self.log_dir = log_dir
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.global_step = 0

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "step":
            self._step(data)
        elif event == "epoch":
            self._epoch(data)
        elif event == "eval":
            self._eval(data)

    def _scalars(self, prefix: str, data: dict[str, Any], keys: tuple[str, ...], step: int) -> None:
        for key in keys:
            if _number(data.get(key)):
                self.writer.add_scalar(f"{prefix}/{key}", data[key], step)
        for group in ("lr", "terms", "balance"):
            values = data.get(group)
            if isinstance(values, dict):
                for name, value in values.items():
                    if _number(value):
                        self.writer.add_scalar(f"{prefix}/{group}/{name}", value, step)

    def _load(self, tag: str, load: list[float] | None, step: int) -> None:
        if not load:
            return
        for expert, share in enumerate(load):
            self.writer.add_scalar(f"{tag}/{expert}", share, step)
        total = float(sum(load))
        mean = sum(e * s for e, s in enumerate(load)) / total if total > 0 else 0.0
        self.writer.add_histogram_raw(
            f"{tag}_histogram",
            min=0.0,
            max=float(len(load) - 1),
            num=total,
            sum=mean * total,
            sum_squares=sum(e * e * s for e, s in enumerate(load)),
            bucket_limits=[float(e) + 0.5 for e in range(len(load))],
            bucket_counts=[float(s) for s in load],
            global_step=step,
        )

    def _step(self, m: dict[str, Any]) -> None:
        step = int(m["step"])
        self.global_step = step
        keys = ("loss", "clean_acc", "adv_acc", "router_entropy", "grad_norm", "images_per_s")
        self._scalars("step", m, keys, step)
        self._load("step/expert_load", m.get("expert_load"), step)
        self._load("step/expert_load_adv", m.get("expert_load_adv"), step)

    def _epoch(self, s: dict[str, Any]) -> None:
        epoch = int(s["epochs_completed"])
        self._scalars("epoch", s, ("loss", "clean_acc", "adv_acc", "time_s", "images_per_s"), epoch)
        self._load("epoch/expert_load", s.get("expert_load"), epoch)
        self.writer.flush()

    def _eval(self, report: dict[str, Any]) -> None:
        step = self.global_step
        summary = report["summary"]
        for key in ("sa", "ra_worst", "aa", "aa_worst", "ra_router", "ra_pathway"):
            if _number(summary.get(key)):
                self.writer.add_scalar(f"eval/{key}", summary[key], step)
        for label, value in summary["ra"].items():
            self.writer.add_scalar(f"eval/ra/{label}", value, step)
        rows = [f"| SA | {summary['sa']:.4f} |"]
        rows += [f"| RA {label} | {value:.4f} |" for label, value in summary["ra"].items()]
        if _number(summary.get("aa")):
            rows.append(f"| AA | {summary['aa']:.4f} |")
        text = "| metric | accuracy |\n|---|---:|\n" + "\n".join(rows)
        self.writer.add_text("eval/summary", f"{report['samples']} samples\n\n{text}", step)
        self.writer.flush()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
