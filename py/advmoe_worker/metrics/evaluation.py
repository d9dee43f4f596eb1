"""Robustness evaluation of a dense or MoE classifier: one pass, every metric, exact settings.

`evaluate(model, batches, spec)` runs, per batch, the clean forward and each requested
attack, and tallies: SA, RA per attack, the per-sample worst case over the attacks
(`ra_worst`), AutoAttack accuracy, routing agreement (clean vs
adversarial expert choice, per routing layer and for the whole pathway), the accuracy of
the frozen pathway (routes pinned to the clean choice) on every attack's examples, expert
load and its entropy (clean and adversarial), per-class accuracy, throughput, and warnings
(gradient masking, routing collapse). Every number in the report sits next to the exact
settings of the attack that produced it. The report's shape is `EvaluationReport` in
ts/schemas/evaluation.ts.

Convention (AutoAttack, RobustBench): a sample counts as robust under an attack only if
the model classifies it correctly on the clean input and on that attack's example. Every
robust accuracy here, per class too, is therefore at most the clean accuracy on the same
samples, by construction, whatever an attack happens to return. The model is left as it
was found: eval mode inside, and every module's mode and buffer restored after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .. import distributed
from ..attacks.autoattack import AutoAttack
from ..attacks.base import Attack, model_device, unchanged
from ..attacks.registry import create_attack, create_autoattack, get_attack_class
from ..errors import BadDataError, BadTensorError, CancelledError
from ..models.classifier import Classifier
from ..models.costs import cost_summary, measure_costs
from ..models.routing import routing_stats, routing_warnings
from ..specs import validate

Emit = Callable[[str, dict[str, Any]], None]


def resolve_evaluation_spec(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The evaluation spec with the defaults of `schemas/specs/evaluation.json` filled.

    JSON Schema checks every field; what remains here is what it cannot see: that each
    attack's own settings make sense for it (e.g. a norm it supports).
    """
    resolved = validate("evaluation", {} if spec is None else spec)
    for i, attack in enumerate(resolved["attacks"]):
        get_attack_class(attack.get("name"), f"attacks.{i}")
    return resolved


@dataclass
class Tally:
    """Running counts for one view of the data (clean inputs, or one attack's examples)."""

    samples: int = 0
    correct: int = 0
    class_total: Tensor | None = None  # (K,) long
    class_correct: Tensor | None = None  # (K,) long
    routes: list[Tensor] = field(default_factory=list)  # (B, L) long per batch, on the CPU
    non_finite_scores: int = 0  # router scores that were NaN or infinite
    layer_agree: Tensor | None = None  # (L,) long, samples whose expert is unchanged
    pathway_agree: int = 0  # samples whose experts are unchanged in every layer
    frozen_correct: int = 0  # correct with routes pinned to the clean choice
    seconds: float = 0.0

    def add_hits(self, hit: Tensor, y: Tensor, num_classes: int) -> None:
        """hit (B,) bool: the sample counts as correct (robust) in this view."""
        self.samples += int(y.numel())
        self.correct += int(hit.sum())
        total = torch.bincount(y, minlength=num_classes)[:num_classes].cpu()
        right = torch.bincount(y[hit], minlength=num_classes)[:num_classes].cpu()
        self.class_total = total if self.class_total is None else self.class_total + total
        self.class_correct = right if self.class_correct is None else self.class_correct + right

    def add_routes(self, routes: Tensor, scores: Tensor | None) -> None:
        self.routes.append(routes.detach().cpu())
        if scores is not None:
            self.non_finite_scores += int((~torch.isfinite(scores)).sum())

    def routing(self, num_experts: int) -> dict[str, Any] | None:
        """Expert load over every sample seen (models.routing.routing_stats)."""
        if not self.routes:
            return None
        return routing_stats(torch.cat(self.routes), num_experts)

    def add_agreement(self, clean_routes: Tensor, adv_routes: Tensor) -> None:
        same = clean_routes == adv_routes  # (B, L)
        per_layer = same.sum(dim=0).cpu()
        self.layer_agree = per_layer if self.layer_agree is None else self.layer_agree + per_layer
        self.pathway_agree += int(same.all(dim=1).sum())

    def accuracy(self) -> float | None:
        return self.correct / self.samples if self.samples else None

    def merge(self, other: Tally) -> None:
        """Adds `other`'s counts (another rank's shard of the same batches) to these."""
        self.samples += other.samples
        self.correct += other.correct
        self.non_finite_scores += other.non_finite_scores
        self.pathway_agree += other.pathway_agree
        self.frozen_correct += other.frozen_correct
        self.routes += other.routes
        self.seconds = max(self.seconds, other.seconds)  # the ranks ran side by side
        for name in ("class_total", "class_correct", "layer_agree"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, theirs.clone() if mine is None else mine + theirs)


def merge_ranks(tallies: list[Tally]) -> None:
    """Under torchrun: each tally becomes the sum of every rank's, on every rank, in place."""
    if not distributed.active():
        return
    gathered = distributed.gather_objects(tallies)  # per rank, its list of tallies
    for i, tally in enumerate(tallies):
        merged = Tally()
        for theirs in gathered:
            merged.merge(theirs[i])
        vars(tally).update(vars(merged))


@dataclass
class AttackRun:
    """One requested attack, its label in the report and its tally."""

    label: str
    attack: Attack
    tally: Tally = field(default_factory=Tally)


def per_class(tally: Tally) -> list[dict[str, Any]] | None:
    if tally.class_total is None:
        return None
    rows = []
    for k, (total, right) in enumerate(
        zip(tally.class_total.tolist(), tally.class_correct.tolist(), strict=True)
    ):
        rows.append(
            {"class": k, "samples": total, "correct": right, "accuracy": right / total if total else None}
        )
    return rows


def attack_label(settings: Mapping[str, Any]) -> str:
    """A short readable name: 'pgd10-linf-8/255', 'fgsm-l2-0.5'."""
    eps = settings["eps"]
    eps_text = f"{eps * 255:.4g}/255" if settings["norm"] == "linf" else f"{eps:.4g}"
    steps = "" if settings["name"] == "fgsm" else str(settings["steps"])
    return f"{settings['name']}{steps}-{settings['norm']}-{eps_text}"


def iter_batches(
    batches: Iterable[Any], batch_size: int, max_samples: int | None
) -> Iterator[tuple[Tensor, Tensor]]:
    """Re-chunks (x, y) batches to at most `batch_size` and stops after `max_samples`."""
    done = 0
    for i, item in enumerate(batches):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise BadTensorError(f"batch {i} must be an (x, y) pair", {"batch": i})
        x, y = item
        if not isinstance(x, Tensor) or not isinstance(y, Tensor) or x.shape[:1] != y.shape[:1]:
            raise BadTensorError(
                f"batch {i}: x and y must be tensors with the same batch size",
                {"batch": i, "x": _shape(x), "y": _shape(y)},
            )
        for start in range(0, x.shape[0], batch_size):
            if max_samples is not None and done >= max_samples:
                return
            stop = start + batch_size
            if max_samples is not None:
                stop = min(stop, start + max_samples - done)
            xs, ys = x[start:stop], y[start:stop]
            done += xs.shape[0]
            yield xs, ys
        if max_samples is not None and done >= max_samples:
            return


def _shape(t: Any) -> Any:
    return list(t.shape) if isinstance(t, Tensor) else type(t).__name__


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _routed(
    model: nn.Module, x: Tensor, routes: Tensor | None = None
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Logits, (B, L) routes and (B, L, E) router scores; None, None without `forward_routed`."""
    if hasattr(model, "forward_routed"):
        out = model.forward_routed(x, routes=routes)
        return out.logits, out.routes, out.scores
    return model(x), None, None


def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    spec: Mapping[str, Any] | None = None,
    *,
    emit: Emit | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Evaluates `model` on `batches` of (x (B, C, H, W) in [0, 1], y (B,)) CPU tensors.

    `emit("progress", data)` is called after every batch with the batch index, samples done
    and running SA/RA/AA. `should_stop()` is polled before each batch and each attack; when
    it returns True this raises CancelledError (a partial report is never returned).
    """
    spec = resolve_evaluation_spec(spec)
    device = model_device(model)
    is_moe = bool(getattr(model, "is_moe", False))
    num_experts = int(getattr(model, "num_experts", 1))
    warnings: list[dict[str, Any]] = []

    runs: list[AttackRun] = []
    for i, attack_spec in enumerate(spec["attacks"]):
        cls = get_attack_class(attack_spec.get("name"), f"attacks.{i}")
        if cls.requires_moe and not is_moe:
            warnings.append(
                {
                    "code": "attack_skipped",
                    "message": f"attacks.{i}: {cls.name!r} targets the routing; skipped on this dense model",
                    "attack": cls.name,
                }
            )
            continue
        attack = create_attack(attack_spec, model, path=f"attacks.{i}", default_seed=spec["seed"])
        label = attack_label(attack.settings())
        taken = {run.label for run in runs}
        if label in taken:
            n = 2
            while f"{label}#{n}" in taken:
                n += 1
            label = f"{label}#{n}"
        runs.append(AttackRun(label, attack))

    aa_spec = spec["autoattack"]
    autoattack: AutoAttack | None = None
    aa_tally = Tally()
    if aa_spec is not None:
        autoattack = create_autoattack(aa_spec, model, default_seed=spec["seed"])
    aa_limit = None if aa_spec is None else aa_spec["max_samples"]

    clean = Tally()
    worst = Tally()  # robust under every attack of `runs` at once
    aa_clean = Tally()  # clean accuracy on the samples AutoAttack saw
    aa_worst = Tally()  # robust under AutoAttack and every attack of `runs` at once
    batch_index = -1
    input_size: int | None = None

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise CancelledError(
                f"evaluation cancelled after {batch_index} batches ({clean.samples} samples)",
                {"batches_done": max(batch_index, 0), "samples_done": clean.samples},
            )

    started = time.perf_counter()
    aa_done = 0  # samples AutoAttack has seen, over all ranks
    with unchanged(model):
        for batch_index, (x_all, y_all) in enumerate(
            iter_batches(batches, spec["batch_size"], spec["max_samples"])
        ):
            check_stop()
            # Under torchrun each rank evaluates its contiguous shard of every batch; the counts
            # are summed at the end. Every rank polls check_stop the same number of times.
            part = distributed.shard(x_all.shape[0])
            x_cpu, y_cpu = x_all[part], y_all[part]
            input_size = x_cpu.shape[-1] if x_cpu.shape[-1] == x_cpu.shape[-2] else None
            if x_cpu.shape[0] == 0:  # a batch smaller than the number of ranks
                for _ in runs:
                    check_stop()
                if autoattack is not None and (aa_limit is None or aa_done < aa_limit):
                    check_stop()
                    aa_done += x_all.shape[0] if aa_limit is None else min(x_all.shape[0], aa_limit - aa_done)
                continue
            x = x_cpu.to(device, non_blocking=True)
            y = y_cpu.to(device, dtype=torch.long, non_blocking=True)

            _sync(device)
            t0 = time.perf_counter()
            with torch.no_grad():
                logits, routes, scores = _routed(model, x)
            num_classes = int(logits.shape[1])
            clean_hit = logits.argmax(dim=1) == y  # (B,)
            clean.add_hits(clean_hit, y, num_classes)
            if is_moe and routes is not None:
                clean.add_routes(routes, scores)
            _sync(device)
            clean.seconds += time.perf_counter() - t0

            robust_all = clean_hit.clone()
            for run in runs:
                check_stop()
                t0 = time.perf_counter()
                x_adv = run.attack(x, y, seed=run.attack.seed + batch_index)
                with torch.no_grad():
                    adv_logits, adv_routes, adv_scores = _routed(model, x_adv)
                    robust = (adv_logits.argmax(dim=1) == y) & clean_hit
                    run.tally.add_hits(robust, y, num_classes)
                    robust_all &= robust
                    if is_moe and routes is not None and adv_routes is not None:
                        run.tally.add_routes(adv_routes, adv_scores)
                        run.tally.add_agreement(routes, adv_routes)
                        frozen_logits, _, _ = _routed(model, x_adv, routes)
                        frozen = (frozen_logits.argmax(dim=1) == y) & clean_hit
                        run.tally.frozen_correct += int(frozen.sum())
                _sync(device)
                run.tally.seconds += time.perf_counter() - t0
            worst.add_hits(robust_all, y, num_classes)

            n = 0  # this shard's rows among the batch's first `taken`, which AutoAttack sees
            if autoattack is not None and (aa_limit is None or aa_done < aa_limit):
                check_stop()
                taken = x_all.shape[0] if aa_limit is None else min(x_all.shape[0], aa_limit - aa_done)
                aa_done += taken
                n = max(0, min(part.stop, taken) - part.start)
            if autoattack is not None and n > 0:
                t0 = time.perf_counter()
                x_adv = autoattack(x[:n], y[:n], seed=autoattack.seed + batch_index)
                with torch.no_grad():
                    aa_robust = (model(x_adv).argmax(dim=1) == y[:n]) & clean_hit[:n]
                aa_tally.add_hits(aa_robust, y[:n], num_classes)
                aa_clean.add_hits(clean_hit[:n], y[:n], num_classes)
                aa_worst.add_hits(aa_robust & robust_all[:n], y[:n], num_classes)
                _sync(device)
                aa_tally.seconds += time.perf_counter() - t0

            if emit is not None:
                emit(
                    "progress",
                    {
                        "stage": "evaluate",
                        "batch": batch_index,
                        "samples": clean.samples,
                        "sa": clean.accuracy(),
                        "ra": {run.label: run.tally.accuracy() for run in runs},
                        "ra_worst": worst.accuracy() if runs else None,
                        "aa": aa_tally.accuracy() if aa_tally.samples else None,
                    },
                )
        total_seconds = time.perf_counter() - started
        merge_ranks([clean, worst, aa_tally, aa_clean, aa_worst, *(run.tally for run in runs)])
        if clean.samples == 0:
            raise BadDataError("evaluation got no samples", {"path": "batches"})
        costs = _costs(model, input_size)

    attacks_report = []
    for run in runs:
        attacks_report.append(_attack_entry(run, is_moe, num_experts, spec["per_class"]))
        warnings += _gradient_warnings(run.label, run.attack)
        warnings += _routing_warnings(run.tally, num_experts, spec["max_share"], run.label)
    warnings = _routing_warnings(clean, num_experts, spec["max_share"], None) + warnings

    aa_report = None
    if autoattack is not None:
        aa_report = {
            "settings": {**autoattack.settings(), "max_samples": aa_limit},
            "samples": aa_tally.samples,
            "clean_accuracy": aa_clean.accuracy(),
            "robust_accuracy": aa_tally.accuracy(),
            "worst_case_accuracy": aa_worst.accuracy(),
            "per_class": per_class(aa_tally) if spec["per_class"] else None,
            "seconds": aa_tally.seconds,
            "images_per_second": _rate(aa_tally),
        }

    first = {name: next((r for r in runs if r.attack.name == name), None) for name in ("router", "pathway")}
    summary = {
        "sa": clean.accuracy(),
        "ra": {run.label: run.tally.accuracy() for run in runs},
        "ra_worst": worst.accuracy() if runs else None,
        "ra_worst_over": [run.label for run in runs],
        "aa": aa_report["robust_accuracy"] if aa_report else None,
        "aa_worst": aa_report["worst_case_accuracy"] if aa_report else None,
        "ra_router": first["router"].tally.accuracy() if first["router"] else None,
        "ra_pathway": (
            first["pathway"].tally.frozen_correct / first["pathway"].tally.samples
            if first["pathway"]
            else None
        ),
    }

    return {
        "samples": clean.samples,
        "num_classes": len(clean.class_total) if clean.class_total is not None else 0,
        "model": {
            "is_moe": is_moe,
            "num_experts": num_experts,
            "num_routing_layers": int(getattr(model, "num_routing_layers", 0)),
        },
        "settings": {
            "batch_size": spec["batch_size"],
            "max_samples": spec["max_samples"],
            "per_class": spec["per_class"],
            "max_share": spec["max_share"],
            "seed": spec["seed"],
            "device": str(device),
        },
        "summary": summary,
        "clean": {
            "accuracy": clean.accuracy(),
            "per_class": per_class(clean) if spec["per_class"] else None,
            "expert_load": clean.routing(num_experts),
            "seconds": clean.seconds,
            "images_per_second": _rate(clean),
        },
        "attacks": attacks_report,
        "autoattack": aa_report,
        "costs": costs,
        "seconds": total_seconds,
        "warnings": warnings,
    }


def _rate(tally: Tally) -> float | None:
    return tally.samples / tally.seconds if tally.seconds > 0 else None


def _attack_entry(run: AttackRun, is_moe: bool, num_experts: int, with_classes: bool) -> dict[str, Any]:
    t = run.tally
    agreement = None
    if is_moe and t.layer_agree is not None:
        agreement = {
            "overall": t.pathway_agree / t.samples,
            "per_layer": [int(v) / t.samples for v in t.layer_agree],
        }
    return {
        "label": run.label,
        "settings": run.attack.settings(),
        "samples": t.samples,
        "robust_accuracy": t.accuracy(),
        "frozen_pathway_accuracy": t.frozen_correct / t.samples if is_moe else None,
        "routing_agreement": agreement,
        "expert_load": t.routing(num_experts),
        "per_class": per_class(t) if with_classes else None,
        "gradients": run.attack.stats.to_dict(),
        "seconds": t.seconds,
        "images_per_second": _rate(t),
    }


def _gradient_warnings(label: str, attack: Attack) -> list[dict[str, Any]]:
    stats = attack.stats
    found = []
    if stats.non_finite:
        found.append(
            {
                "code": "gradient_masking",
                "message": f"{label}: {stats.non_finite} of {stats.sample_steps} sample-steps had NaN or "
                "infinite input gradients (zeroed before the step); the robust accuracy may be overstated",
                "attack": label,
            }
        )
    if stats.zero:
        found.append(
            {
                "code": "gradient_masking",
                "message": f"{label}: {stats.zero} of {stats.sample_steps} sample-steps had an all-zero input "
                "gradient (flat or saturated loss); the robust accuracy may be overstated: check with "
                "AutoAttack (Square needs no gradient)",
                "attack": label,
            }
        )
    return found


def _routing_warnings(
    tally: Tally, num_experts: int, max_share: float, label: str | None
) -> list[dict[str, Any]]:
    """models.routing's collapse warnings over every sample of one view, plus NaN scores."""
    stats = tally.routing(num_experts)
    if stats is None:
        return []
    where = "clean inputs" if label is None else f"{label} examples"
    found = []
    for warning in routing_warnings(stats, max_share=max_share):
        found.append({**warning, "message": f"{where}: {warning['message']}", "attack": label})
    if tally.non_finite_scores:
        found.append(
            {
                "code": "non_finite_scores",
                "count": tally.non_finite_scores,
                "message": f"{where}: {tally.non_finite_scores} router scores were NaN or infinite",
                "attack": label,
            }
        )
    return found


def _costs(model: nn.Module, input_size: int | None) -> dict[str, Any] | None:
    """MACs per sample (models.costs) at the evaluated input size; None for foreign models."""
    if not isinstance(model, Classifier) or input_size is None:
        return None
    c = measure_costs(model, input_size)
    summary = cost_summary(c)
    return {"input_size": c["input_size"], **summary, "macs_per_sample": summary["macs"]["total_active"]}
