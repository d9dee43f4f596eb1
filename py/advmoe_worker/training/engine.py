"""The training engine: one loop for every method, driven a step, an epoch or a run at a time.

A step is: pick the phase, take a minibatch, freeze what the phase does not train, make the
training attack's examples, compute the method's loss, refuse non-finite values, backprop,
clip, take one optimizer step, put back the running statistics of the frozen part.

AdvMoE phases (the bi-level view: router = upper level, experts = lower level):
  router  experts frozen (no gradient, BatchNorm statistics restored after the step);
          x_adv made against the whole MoE; the router optimizer minimizes the robust
          loss of the MoE, whose gradient reaches the router through the straight-through
          top-1 gate.
  expert  router frozen the same way; fresh x_adv against the current model; the expert
          optimizer (everything that is not router: experts, stem, shared convs, BN,
          classifier) minimizes the same robust loss.
The cycle is `phases` (default one router step then one expert step); with `share_batch`
the steps of one cycle see the same minibatch, as in the paper's code, each with its own
attack. Other methods have one phase, 'joint', over all parameters and one optimizer.

Determinism: the data order and augmentation are pure functions of (seed, epoch, batch),
the attack's random start of (seed, global step), learning rates of the counters. The
remaining state (weights, buffers, optimizer moments, counters, global RNG streams) is in
the checkpoint, so a resumed CPU run ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import random
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..attacks.base import eval_mode
from ..data.dataset import DataSplits, ImageDataset, TensorDataset
from ..data.loader import BatchLoader, eval_batches
from ..data.seeding import derive_seed
from ..errors import NonFiniteError, SpecError
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from .methods import Forward, LossOutput, create_method, forward
from .optim import create_optimizer, lr_at, set_lr
from .spec import resolve_trainer_spec

Emit = Callable[[str, dict[str, Any]], None]
ShouldStop = Callable[[], bool]

DATA_STREAM, ATTACK_STREAM = 61, 62
CHECKPOINT_NAME = "last.pt"

# set(): field -> (spec section, key); the changed spec is checked whole against the schema.
# Router fields exist only for advmoe.
SETTABLE: dict[str, tuple[str | None, str]] = {
    "lr": ("optimizer", "lr"),
    "momentum": ("optimizer", "momentum"),
    "weight_decay": ("optimizer", "weight_decay"),
    "router_lr": ("router_optimizer", "lr"),
    "router_momentum": ("router_optimizer", "momentum"),
    "router_weight_decay": ("router_optimizer", "weight_decay"),
    "beta": (None, "beta"),
    "alpha": (None, "alpha"),
    "eps": ("attack", "eps"),
    "steps": ("attack", "steps"),
    "step_size": ("attack", "step_size"),
    "random_start": ("attack", "random_start"),
    "grad_clip": (None, "grad_clip"),
    "epochs": (None, "epochs"),
}


def apply_changes(spec: dict[str, Any], hparams: dict[str, Any]) -> None:
    """Writes settable `hparams` into a trainer spec; a first router field copies `optimizer`."""
    for field, value in hparams.items():
        section, key = SETTABLE[field]
        if section == "router_optimizer" and spec["router_optimizer"] is None:
            spec["router_optimizer"] = copy.deepcopy(spec["optimizer"])
        target = spec if section is None else spec[section]
        target[key] = value


def _get(spec: dict[str, Any], field: str) -> Any:
    section, key = SETTABLE[field]
    return (spec if section is None else spec[section])[key]


def name_settable_field(err: SpecError, hparams: dict[str, Any]) -> SpecError:
    """`err` about `optimizer.lr` renamed to the `lr` the caller passed to set()."""
    paths = {".".join(p for p in SETTABLE[field] if p is not None): field for field in hparams}
    field = paths.get(err.path)
    if field is None:
        return err
    message = err.message.removeprefix(f"{err.path}: ")
    details = {k: v for k, v in err.details.items() if k not in ("path", "rule")}
    return SpecError(field, err.rule, f"{field}: {message}", details)


class Trainer:
    """Trains `model` on `train_data` with the method a TrainerSpec names.

    `train_data` is an ImageDataset, a DataSplits (its `train`, and its `val` unless
    `val_data` is given; its `workers` > 0 turns on batch prefetching) or an (images,
    labels) pair. Construction seeds the global torch/numpy/python RNGs with `seed`. `emit(event, data)` receives
    'step' metrics, 'epoch' summaries, 'eval' reports, 'checkpoint' and 'warning' events.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: ImageDataset | DataSplits | tuple[torch.Tensor, torch.Tensor],
        spec: dict[str, Any],
        *,
        val_data: ImageDataset | None = None,
        emit: Emit | None = None,
        data_spec: dict[str, Any] | None = None,
        resolve_path: Callable[[str, str], Path] | None = None,
    ):
        self.spec = resolve_trainer_spec(spec)
        self.model = model
        self.emit_fn = emit
        self.resolve_path = resolve_path
        self.method = create_method(self.spec)
        self.device = next(model.parameters()).device
        self.is_moe = bool(getattr(model, "is_moe", False))
        self._check_model()

        workers = 0
        if isinstance(train_data, DataSplits):
            workers = train_data.workers
            data_spec = data_spec or train_data.spec
            val_data = val_data if val_data is not None else train_data.val
            train_data = train_data.train
        elif isinstance(train_data, tuple):
            train_data = TensorDataset(*train_data, name="train_data")
        self.train_data: ImageDataset = train_data
        self.val_data = val_data
        self.data_spec = copy.deepcopy(data_spec)
        if self.spec["eval"] is not None and val_data is None:
            raise SpecError(
                "eval", "requires_val_data", "eval: epoch-end evaluation needs val_data (or a val split)"
            )

        seed = self.spec["seed"]
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        self.loader = BatchLoader(
            train_data,
            self.spec["batch_size"],
            seed=derive_seed(seed, DATA_STREAM),
            drop_last=self.spec["drop_last"],
            device=self.device,
            prefetch=workers > 0,
        )
        if self.loader.batches_per_epoch == 0:
            raise SpecError(
                "batch_size",
                "fits_data",
                f"batch_size: {self.spec['batch_size']} with drop_last leaves no batch in {len(train_data)} samples",
            )

        if self.method.name == "advmoe":
            self.cycle = [p["phase"] for p in self.spec["phases"] for _ in range(p["steps"])]
        else:
            self.cycle = list(self.method.phases)

        self._setup_devices()
        self._build_optimizers()
        self._build_attack()
        self._partition_buffers()

        self.global_step = 0
        self.cycle_pos = 0
        self.epochs_completed = 0
        self.phase_steps = {p: 0 for p in self.method.phases}
        self._batch: tuple[torch.Tensor, torch.Tensor, int, int] | None = None
        self._batch_pos: tuple[int, int] | None = None
        self._epoch_stats = self._new_epoch_stats()
        self._should_stop: ShouldStop | None = None

    # ---- construction -------------------------------------------------------------------

    def _check_model(self) -> None:
        if self.method.needs_moe and not self.is_moe:
            raise SpecError(
                "method",
                "requires_moe",
                f"method: {self.method.name!r} trains a router and experts; this model is dense",
                {"received": self.method.name},
            )

    def _setup_devices(self) -> None:
        cuda = self.device.type == "cuda"
        self.amp = self.spec["amp"] == "bf16" and cuda
        if self.spec["amp"] != "none" and not cuda:
            self._warn(
                f"amp {self.spec['amp']!r} is CUDA-only and is ignored on {self.device.type}",
                code="amp_ignored",
            )
        self.channels_last = self.spec["channels_last"] and cuda
        if self.spec["channels_last"] and not cuda:
            self._warn(
                f"channels_last is CUDA-only and is ignored on {self.device.type}",
                code="channels_last_ignored",
            )
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _build_optimizers(self) -> None:
        if self.method.name == "advmoe":
            self.params = {
                "router": list(self.model.router_parameters()),
                "expert": list(self.model.expert_parameters()),
            }
            self.optimizers = {
                "router": create_optimizer(self.params["router"], self._optimizer_spec("router")),
                "expert": create_optimizer(self.params["expert"], self._optimizer_spec("expert")),
            }
            self.phase_optimizer = {"router": "router", "expert": "expert"}
        else:
            self.params = {"model": list(self.model.parameters())}
            self.optimizers = {"model": create_optimizer(self.params["model"], self.spec["optimizer"])}
            self.phase_optimizer = {"joint": "model"}

    def _optimizer_spec(self, name: str) -> dict[str, Any]:
        if name == "router" and self.spec["router_optimizer"] is not None:
            return self.spec["router_optimizer"]
        return self.spec["optimizer"]

    def _schedule_spec(self, name: str) -> dict[str, Any]:
        if name == "router" and self.spec["router_schedule"] is not None:
            return self.spec["router_schedule"]
        return self.spec["schedule"]

    def _build_attack(self) -> None:
        attack_spec = self.method.attack_spec(self.model)
        self.attack = None
        if attack_spec is not None:
            from ..attacks import create_attack

            self.attack = create_attack(attack_spec, self.model, path="attack")
        self.attack_spec = attack_spec

    def _partition_buffers(self) -> None:
        """Names of the router's buffers and of everything else's (BatchNorm statistics)."""
        router_modules = list(self.model.router_modules()) if hasattr(self.model, "router_modules") else []
        router_ids = {id(b) for m in router_modules for b in m.buffers()}
        names = [n for n, _ in self.model.named_buffers()]
        buffers = dict(self.model.named_buffers())
        router = [n for n in names if id(buffers[n]) in router_ids]
        self.frozen_buffers = {
            "router": [n for n in names if n not in set(router)],  # the router phase freezes the rest
            "expert": router,
            "joint": [],
        }

    # ---- public API ---------------------------------------------------------------------

    @property
    def phases(self) -> tuple[str, ...]:
        return self.method.phases

    @property
    def next_phase(self) -> str:
        return self.cycle[self.cycle_pos]

    @property
    def steps_per_epoch(self) -> int:
        reuse = len(self.cycle) if self.spec["share_batch"] else 1
        return self.loader.batches_per_epoch * reuse

    def step(self, phase: str | None = None) -> dict[str, Any]:
        """One minibatch step of `phase` (None: the next phase of the cycle); returns its metrics."""
        phase = self._check_phase(phase)
        start = time.perf_counter()
        snapshot = self._snapshot()
        flags = [(p, p.requires_grad) for p in self.model.parameters()]
        try:
            x, y, epoch, index = self._take_batch()
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            metrics = self._update(phase, x, y, epoch, index, snapshot["buffers"])
        except BaseException:
            self._restore(snapshot)
            raise
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)
        self.global_step += 1
        self.phase_steps[phase] += 1
        self.cycle_pos = (self.cycle_pos + 1) % len(self.cycle)
        epoch_end = self.loader.epoch_done and (self.cycle_pos == 0 or not self.spec["share_batch"])
        elapsed = time.perf_counter() - start
        metrics.update(
            step=self.global_step,
            epoch_end=epoch_end,
            step_time_s=elapsed,
            images_per_s=x.shape[0] / elapsed if elapsed > 0 else None,
        )
        self._accumulate(metrics, x.shape[0])
        self._emit("step", metrics)
        every = self.spec["checkpoint_every_steps"]
        if every and self.global_step % every == 0 and not epoch_end:
            self._auto_checkpoint()
        if epoch_end:
            metrics["epoch_summary"] = self._end_epoch()
        return metrics

    def epoch(self, should_stop: ShouldStop | None = None) -> dict[str, Any]:
        """Steps to the end of the current epoch; `should_stop()` is polled between steps."""
        self._should_stop = should_stop
        try:
            steps = 0
            while True:
                if should_stop is not None and should_stop():
                    return {"stopped": True, "steps_run": steps, "epochs_completed": self.epochs_completed}
                metrics = self.step()
                steps += 1
                if metrics["epoch_end"]:
                    return {"stopped": False, "steps_run": steps, **metrics["epoch_summary"]}
        finally:
            self._should_stop = None

    def run(self, epochs: int | None = None, should_stop: ShouldStop | None = None) -> dict[str, Any]:
        """`epochs` more epochs (default: up to the spec's `epochs`); stops early on `should_stop()`."""
        if epochs is None:
            epochs = max(self.spec["epochs"] - self.epochs_completed, 0)
        else:
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
                raise SpecError(
                    "epochs",
                    "type",
                    f"epochs: expected an integer >= 0, got {epochs!r}",
                    {"received": epochs},
                )
        summaries = []
        for _ in range(epochs):
            summary = self.epoch(should_stop)
            if summary["stopped"]:
                return {"stopped": True, "epochs": summaries, "epochs_completed": self.epochs_completed}
            summaries.append(summary)
        return {"stopped": False, "epochs": summaries, "epochs_completed": self.epochs_completed}

    def set(self, **hparams: Any) -> dict[str, Any]:
        """Changes hyperparameters between steps; all are checked before any is applied."""
        for field in hparams:
            if field not in SETTABLE:
                raise SpecError(
                    field,
                    "settable",
                    f"{field}: not a settable hyperparameter (settable: {sorted(SETTABLE)})",
                )
            section, key = SETTABLE[field]
            if section == "router_optimizer" and self.method.name != "advmoe":
                raise SpecError(
                    field, "requires_advmoe", f"{field}: only method 'advmoe' has a separate router optimizer"
                )
            if (
                key == "momentum"
                and self._optimizer_spec("router" if field.startswith("router_") else "expert")["name"]
                != "sgd"
            ):
                raise SpecError(field, "requires_sgd", f"{field}: momentum applies to SGD only")
        updated = copy.deepcopy(self.spec)
        apply_changes(updated, hparams)
        try:
            updated = resolve_trainer_spec(updated)
        except SpecError as err:
            raise name_settable_field(err, hparams) from err
        # In place: the method and the optimizers read these very dicts.
        apply_changes(self.spec, {field: _get(updated, field) for field in hparams})
        for name, opt in self.optimizers.items():
            s = self._optimizer_spec("router" if name == "router" else "expert")
            for group in opt.param_groups:
                group["weight_decay"] = s["weight_decay"]
                if "momentum" in group:
                    group["momentum"] = s["momentum"]
        if any(SETTABLE[field][0] == "attack" or field == "alpha" for field in hparams):
            self._build_attack()
        return {field: _get(self.spec, field) for field in hparams}

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method.name,
            "phases": list(self.phases),
            "cycle": list(self.cycle),
            "next_phase": self.next_phase,
            "global_step": self.global_step,
            "phase_steps": dict(self.phase_steps),
            "epochs_completed": self.epochs_completed,
            "data_position": self.loader.state_dict(),
            "steps_per_epoch": self.steps_per_epoch,
            "lr": {name: self._lr(name) for name in self.optimizers},
            "attack": self.attack.settings() if self.attack is not None else None,
            "amp": self.amp,
            "channels_last": self.channels_last,
            "spec": copy.deepcopy(self.spec),
        }

    # ---- checkpoints --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs; loadable with `torch.load(weights_only=True)`."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "specs": {
                "trainer": copy.deepcopy(self.spec),
                "model": copy.deepcopy(getattr(self.model, "spec", None)),
                "data": copy.deepcopy(self.data_spec),
            },
            "model": self.model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "lr": {name: self._lr(name) for name in self.optimizers},
            "loader": self.loader.state_dict(),
            "counters": {
                "global_step": self.global_step,
                "cycle_pos": self.cycle_pos,
                "epochs_completed": self.epochs_completed,
                "phase_steps": dict(self.phase_steps),
                "batch_pos": list(self._batch_pos) if self._batch_pos is not None else None,
            },
            "epoch_stats": copy.deepcopy(self._epoch_stats),
            "rng": capture_rng(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if set(state["optimizers"]) != set(self.optimizers):
            raise SpecError(
                "method",
                "matches_checkpoint",
                f"checkpoint optimizers {sorted(state['optimizers'])} do not match this trainer's {sorted(self.optimizers)}",
            )
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.loader.load_state_dict(state["loader"])
        c = state["counters"]
        self.global_step = int(c["global_step"])
        self.cycle_pos = int(c["cycle_pos"]) % len(self.cycle)
        self.epochs_completed = int(c["epochs_completed"])
        self.phase_steps = {p: int(c["phase_steps"].get(p, 0)) for p in self.method.phases}
        self._batch_pos = tuple(c["batch_pos"]) if c["batch_pos"] is not None else None
        self._batch = None  # refetched from _batch_pos if a shared-batch cycle is under way
        self._epoch_stats = copy.deepcopy(state["epoch_stats"])
        restore_rng(state["rng"])

    def save(self, path: str | Path) -> Path:
        """Writes a checkpoint atomically (temp file, fsync, rename)."""
        return save_checkpoint(path, self.state_dict())

    @classmethod
    def resume(
        cls,
        path: str | Path,
        model: nn.Module | None = None,
        train_data: Any = None,
        *,
        val_data: ImageDataset | None = None,
        emit: Emit | None = None,
        device: torch.device | str | None = None,
        tensors: dict[str, torch.Tensor] | None = None,
        resolve_path: Callable[[str, str], Path] | None = None,
    ) -> Trainer:
        """A trainer that continues exactly where the checkpoint at `path` stopped.

        Missing `model`/`train_data` are rebuilt from the specs the checkpoint carries.
        """
        state = load_checkpoint(path)
        specs = state["specs"]
        if model is None:
            from ..models.factory import create_model

            _register_models()
            if specs["model"] is None:
                raise SpecError(
                    "model", "required", "model: the checkpoint carries no model spec; pass the model"
                )
            model = create_model(specs["model"])
            if device is not None:
                model = model.to(device)
        if train_data is None:
            if specs["data"] is None:
                raise SpecError(
                    "train_data", "required", "train_data: the checkpoint carries no data spec; pass the data"
                )
            from ..data.registry import create_dataset

            train_data = create_dataset(specs["data"], tensors=tensors, resolve_path=resolve_path)
        trainer = cls(
            model,
            train_data,
            specs["trainer"],
            val_data=val_data,
            emit=emit,
            data_spec=specs["data"],
            resolve_path=resolve_path,
        )
        trainer.load_state_dict(state)
        return trainer

    # ---- one step -----------------------------------------------------------------------

    def _check_phase(self, phase: str | None) -> str:
        if phase is None:
            return self.next_phase
        if phase not in self.method.phases:
            raise SpecError(
                "phase",
                "enum",
                f"phase: method {self.method.name!r} has phases {list(self.method.phases)}, got {phase!r}",
                {"received": phase, "allowed": list(self.method.phases)},
            )
        return phase

    def _take_batch(self) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        if self.spec["share_batch"] and self.cycle_pos != 0:
            if self._batch is None and self._batch_pos is not None:
                epoch, index = self._batch_pos
                x, y = self.loader.batch(epoch, index)
                self._batch = (x, y, epoch, index)
            if self._batch is not None:
                return self._batch
        self._batch = self.loader.next()
        self._batch_pos = (self._batch[2], self._batch[3])
        return self._batch

    def _update(
        self,
        phase: str,
        x: torch.Tensor,
        y: torch.Tensor,
        epoch: int,
        index: int,
        before: dict[str, torch.Tensor],
    ) -> dict[str, Any]:
        opt_name = self.phase_optimizer[phase]
        optimizer, params = self.optimizers[opt_name], self.params[opt_name]
        trainable = {id(p) for p in params if p.requires_grad}  # parameters frozen by the caller stay frozen
        for p in self.model.parameters():
            p.requires_grad_(id(p) in trainable)
        lr = self._lr(opt_name, epoch, index)
        set_lr(optimizer, lr)

        with self._autocast():
            x_adv = None
            if self.attack is not None:
                x_adv = self.attack(
                    x, y, seed=derive_seed(self.spec["seed"], ATTACK_STREAM, self.global_step)
                )
            self.model.train()
            out: LossOutput = self.method.loss(self.model, x, y, x_adv, phase)
            clean_eval: Forward | None = None
            if out.clean is None and self.spec["track_clean"]:
                # eval mode and no grad: metrics only, BatchNorm statistics untouched
                with torch.no_grad(), eval_mode(self.model):
                    clean_eval = forward(self.model, x)

        self._check_finite(out, phase)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros((), device=self.device)
        if not bool(torch.isfinite(grad_norm)):
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteError(
                f"step refused: the {phase} gradient norm is not finite",
                {"phase": phase, "step": self.global_step, "what": "gradient"},
            )
        if self.spec["grad_clip"] is not None:
            torch.nn.utils.clip_grads_with_norm_(params, self.spec["grad_clip"], grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self._restore_buffers(before, self.frozen_buffers[phase])
        return self._metrics(phase, out, clean_eval, y, epoch, index, grad_norm)

    def _check_finite(self, out: LossOutput, phase: str) -> None:
        checks = [torch.isfinite(out.loss.detach()).all()]
        for f in (out.clean, out.adv):
            if f is not None and f.scores is not None:
                checks.append(torch.isfinite(f.scores.detach()).all())
        ok = torch.stack(checks).tolist()
        if not all(ok):
            what = "loss" if not ok[0] else "router_scores"
            raise NonFiniteError(
                f"step refused: the {phase} {what.replace('_', ' ')} {'is' if what == 'loss' else 'are'} not finite",
                {"phase": phase, "step": self.global_step, "what": what},
            )

    def _metrics(
        self,
        phase: str,
        out: LossOutput,
        clean_eval: Forward | None,
        y: torch.Tensor,
        epoch: int,
        index: int,
        grad_norm: torch.Tensor,
    ) -> dict[str, Any]:
        clean = out.clean if out.clean is not None else clean_eval
        names, values = ["loss", "grad_norm"], [out.loss.detach().float(), grad_norm.detach().float()]
        for k, v in out.terms.items():
            names.append(f"term.{k}")
            values.append(v.float())
        if clean is not None:
            names.append("clean_acc")
            values.append((clean.logits.argmax(1) == y).float().mean())
        if out.adv is not None:
            names.append("adv_acc")
            values.append((out.adv.logits.argmax(1) == y).float().mean())
        routed = clean if clean is not None and clean.scores is not None else out.adv
        if routed is not None and routed.scores is not None and routed.scores.numel():
            p = routed.scores.detach().float()  # (B, L, E)
            names.append("router_entropy")
            values.append(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())
        scalars = dict(zip(names, torch.stack([v.to(self.device) for v in values]).tolist(), strict=True))
        metrics: dict[str, Any] = {
            "phase": phase,
            "epoch": epoch,
            "batch": index,
            "loss": scalars["loss"],
            "terms": {k[5:]: v for k, v in scalars.items() if k.startswith("term.")},
            "clean_acc": scalars.get("clean_acc"),
            "adv_acc": scalars.get("adv_acc"),
            "router_entropy": scalars.get("router_entropy"),
            "expert_load": self._load(clean) if clean is not None else None,
            "expert_load_adv": self._load(out.adv) if out.adv is not None else None,
            "grad_norm": scalars["grad_norm"],
            "lr": {name: self._lr(name, epoch, index) for name in self.optimizers},
        }
        if metrics["expert_load"] is None:
            metrics["expert_load"] = metrics["expert_load_adv"]
        return metrics

    def _load(self, f: Forward) -> list[float] | None:
        """Share of routing decisions per expert, over samples and routing layers."""
        if f.routes is None or not f.routes.numel():
            return None
        counts = torch.bincount(f.routes.flatten(), minlength=self.model.num_experts).float()
        return (counts / counts.sum()).tolist()

    def _lr(self, name: str, epoch: int | None = None, index: int | None = None) -> float:
        """Learning rate of optimizer `name` at batch `index` of `epoch` (default: the next batch)."""
        if epoch is None:
            epoch, index = self.loader.epoch, self.loader.index
            if index >= self.loader.batches_per_epoch:
                epoch, index = epoch + 1, 0
        schedule = self._schedule_spec(name)
        n = self.loader.batches_per_epoch
        per_step = schedule["interval"] == "step"
        progress = epoch + index / n if per_step else float(epoch)
        tick = 1.0 / n if per_step else 1.0
        return lr_at(schedule, self._optimizer_spec(name)["lr"], progress, self.spec["epochs"], tick)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.amp:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                yield
        else:
            yield

    # ---- state around a step ------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        return {
            "buffers": {n: b.detach().clone() for n, b in self.model.named_buffers()},
            "loader": self.loader.state_dict(),
            "counters": (self.global_step, self.cycle_pos, self.epochs_completed, dict(self.phase_steps)),
            "batch": (self._batch, self._batch_pos),
            "rng": (
                torch.get_rng_state(),
                torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            ),
        }

    def _restore(self, snapshot: dict[str, Any]) -> None:
        """Puts back everything a refused step may have touched (weights are untouched then)."""
        self._restore_buffers(snapshot["buffers"], list(snapshot["buffers"]))
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.loader.load_state_dict(snapshot["loader"])
        self.global_step, self.cycle_pos, self.epochs_completed, self.phase_steps = snapshot["counters"]
        self._batch, self._batch_pos = snapshot["batch"]
        torch.set_rng_state(snapshot["rng"][0])
        if snapshot["rng"][1]:
            torch.cuda.set_rng_state_all(snapshot["rng"][1])

    def _restore_buffers(self, saved: dict[str, torch.Tensor], names: list[str]) -> None:
        if not names:
            return
        buffers = dict(self.model.named_buffers())
        with torch.no_grad():
            for n in names:
                buffers[n].copy_(saved[n])

    # ---- epochs -------------------------------------------------------------------------

    def _new_epoch_stats(self) -> dict[str, Any]:
        return {
            "steps": 0,
            "images": 0,
            "time_s": 0.0,
            "loss": 0.0,
            "clean_acc": [0.0, 0],
            "adv_acc": [0.0, 0],
        }

    def _accumulate(self, m: dict[str, Any], batch: int) -> None:
        s = self._epoch_stats
        s["steps"] += 1
        s["images"] += batch
        s["time_s"] += m["step_time_s"]
        s["loss"] += m["loss"]
        for key in ("clean_acc", "adv_acc"):
            if m[key] is not None:
                s[key][0] += m[key] * batch
                s[key][1] += batch

    def _end_epoch(self) -> dict[str, Any]:
        self.epochs_completed += 1
        s = self._epoch_stats
        summary: dict[str, Any] = {
            "epoch": self.epochs_completed - 1,
            "epochs_completed": self.epochs_completed,
            "global_step": self.global_step,
            "steps": s["steps"],
            "loss": s["loss"] / max(s["steps"], 1),
            "clean_acc": s["clean_acc"][0] / s["clean_acc"][1] if s["clean_acc"][1] else None,
            "adv_acc": s["adv_acc"][0] / s["adv_acc"][1] if s["adv_acc"][1] else None,
            "time_s": s["time_s"],
            "images_per_s": s["images"] / s["time_s"] if s["time_s"] > 0 else None,
            "lr": {name: self._lr(name) for name in self.optimizers},
        }
        self._epoch_stats = self._new_epoch_stats()
        if self.spec["eval"] is not None and self.epochs_completed % self.spec["eval_every_epochs"] == 0:
            summary["eval"] = self._evaluate()
        self._emit("epoch", summary)
        every = self.spec["checkpoint_every_epochs"]
        if every and self.epochs_completed % every == 0:
            self._auto_checkpoint()
        return summary

    def _evaluate(self) -> dict[str, Any]:
        from ..metrics.evaluation import evaluate

        batches = eval_batches(self.val_data, self.spec["batch_size"], self.device)
        try:
            report = evaluate(
                self.model, batches, self.spec["eval"], emit=self.emit_fn, should_stop=self._should_stop
            )
        finally:
            self.model.train()
        self._emit("eval", report if isinstance(report, dict) else {"report": report})
        return report

    def _auto_checkpoint(self) -> None:
        folder = self.spec["checkpoint_dir"]
        if folder is None:
            return
        root = self.resolve_path(folder, "checkpoint_dir") if self.resolve_path else Path(folder)
        path = self.save(root / CHECKPOINT_NAME)
        self._emit(
            "checkpoint",
            {"path": str(path), "global_step": self.global_step, "epochs_completed": self.epochs_completed},
        )

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        if self.emit_fn is not None:
            self.emit_fn(event, data)

    def _warn(self, message: str, code: str = "training") -> None:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        self._emit("warning", {"code": code, "message": message})


def _register_models() -> None:
    """Imports the model package so its architectures are registered."""
    import importlib

    with contextlib.suppress(ImportError):
        importlib.import_module("advmoe_worker.models")
