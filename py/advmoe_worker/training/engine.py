"""The training engine: one loop for every method, driven a step, an epoch or a run at a time.

A step is: pick the phase, take a minibatch, freeze what the phase does not train, make the
training attack's examples, compute the method's loss, refuse non-finite values, backprop,
clip, take one optimizer step, put back the running statistics of the frozen part.

The method (methods.py) owns the policy: its phases and their cycle, which optimizer each
phase steps, the training attack and the loss. Hyperparameter changes live in hparams.py,
the state of a run and its checkpoints in checkpoint.py.

AdvMoE phases (the bi-level view: router = upper level, experts = lower level):
  router  experts frozen (no gradient, BatchNorm statistics restored after the step);
          x_adv made against the whole MoE; the router optimizer minimizes the robust
          loss of the MoE, whose gradient reaches the router through the straight-through
          top-1 gate.
  expert  router frozen the same way; fresh x_adv against the current model; the expert
          optimizer (everything that is not router: experts, stem, shared convs, BN,
          classifier) minimizes the same robust loss.
The router's loss also carries its supervision (default: CE to y mod E) and any balance
term, so routing keeps using every expert; a step whose clean batch sends more than
`max_share` of its samples to one expert raises a `routing_collapse` warning at once.
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

from .. import distributed
from ..attacks.base import eval_mode
from ..data.dataset import DataSplits, ImageDataset, TensorDataset
from ..data.loader import BatchLoader, eval_batches
from ..data.seeding import derive_seed
from ..errors import NonFiniteError, SpecError
from . import ranks
from .checkpoint import (
    StepSnapshot,
    load_checkpoint,
    load_trainer_state,
    restore_buffers,
    save_checkpoint,
    trainer_state,
)
from .hparams import change_hparams
from .methods import Forward, LossOutput, balance_terms, create_method, forward
from .optim import create_optimizer, lr_at, set_lr
from .spec import resolve_trainer_spec

Emit = Callable[[str, dict[str, Any]], None]
ShouldStop = Callable[[], bool]

DATA_STREAM, ATTACK_STREAM = 61, 62
CHECKPOINT_NAME = "last.pt"


class Trainer:
    """Trains `model` on `train_data` with the method a TrainerSpec names.

    `train_data` is an ImageDataset, a DataSplits (its `train`, and its `val` unless
    `val_data` is given; its `workers` > 0 turns on batch prefetching) or an (images,
    labels) pair. Construction seeds the global torch/numpy/python RNGs with `seed`.
    `emit(event, data)` receives 'step' metrics, 'epoch' summaries, 'eval' reports,
    'checkpoint' and 'warning' events.
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
        if self.spec["checkpoint_dir"] is not None and resolve_path is not None:
            resolve_path(self.spec["checkpoint_dir"], "checkpoint_dir")  # refused now, not when first due

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
            sharded=distributed.active(),
        )
        if self.loader.batches_per_epoch == 0:
            raise SpecError(
                "batch_size",
                "fits_data",
                f"batch_size: {self.spec['batch_size']} with drop_last leaves no batch in {len(train_data)} samples",
            )
        smallest = self.loader.global_size(self.loader.batches_per_epoch - 1)
        if smallest < distributed.world_size():
            raise SpecError(
                "batch_size",
                "fits_ranks",
                f"batch_size: the last batch of an epoch has {smallest} samples, fewer than the "
                f"{distributed.world_size()} ranks; set drop_last or a batch size that leaves at least one per rank",
            )

        self.cycle = self.method.cycle()
        self._setup_devices()
        self.params = self.method.optimizer_groups(model)
        self.optimizers = {
            name: create_optimizer(params, self.method.optimizer_spec(name))
            for name, params in self.params.items()
        }
        self.build_attack()
        self._partition_buffers()
        self.ddp = ranks.wrap(model, self.method, self.device)  # None on one process

        self.global_step = 0
        self.cycle_pos = 0
        self.epochs_completed = 0
        self.phase_steps = {p: 0 for p in self.method.phases}
        self.batch: tuple[torch.Tensor, torch.Tensor, int, int] | None = None
        self.batch_pos: tuple[int, int] | None = None
        self.epoch_stats = self._new_epoch_stats()
        self._should_stop: ShouldStop | None = None
        self._collapsed = False  # a routing_collapse warning is out; re-armed when routing recovers

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
                "ignored_setting",
                f"amp {self.spec['amp']!r} is CUDA-only and is ignored on {self.device.type}",
            )
        self.channels_last = self.spec["channels_last"] and cuda
        if self.spec["channels_last"] and not cuda:
            self._warn("ignored_setting", f"channels_last is CUDA-only and is ignored on {self.device.type}")
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def build_attack(self) -> None:
        """(Re)builds the training attack from the method's spec of it."""
        attack_spec = self.method.attack_spec(self.model)
        self.attack = None
        if attack_spec is not None:
            from ..attacks import create_attack

            self.attack = create_attack(attack_spec, self.model, path="attack")
        self.attack_spec = attack_spec

    def _partition_buffers(self) -> None:
        """Per phase, the buffers (BatchNorm statistics) of the part it does not train."""
        router_modules = list(self.model.router_modules()) if hasattr(self.model, "router_modules") else []
        router_ids = {id(b) for m in router_modules for b in m.buffers()}
        named = list(self.model.named_buffers())
        router = [n for n, b in named if id(b) in router_ids]
        rest = [n for n, b in named if id(b) not in router_ids]
        self.frozen_buffers = {}
        for phase in self.method.phases:
            frozen = []
            if phase not in self.method.router_phases:
                frozen += router
            if phase not in self.method.expert_phases:
                frozen += rest
            self.frozen_buffers[phase] = frozen

    # ---- public API ---------------------------------------------------------------------

    @property
    def phases(self) -> tuple[str, ...]:
        return self.method.phases

    @property
    def next_phase(self) -> str:
        return self.cycle[self.cycle_pos]

    @property
    def steps_per_epoch(self) -> int:
        reuse = len(self.cycle) if self.method.shares_batch else 1
        return self.loader.batches_per_epoch * reuse

    def step(self, phase: str | None = None) -> dict[str, Any]:
        """One minibatch step of `phase` (None: the next phase of the cycle); returns its metrics."""
        phase = self._check_phase(phase)
        start = time.perf_counter()
        snapshot = StepSnapshot(self)
        flags = [(p, p.requires_grad) for p in self.model.parameters()]
        try:
            x, y, epoch, index = self._take_batch()
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            metrics = self._update(phase, x, y, epoch, index, snapshot.buffers)
        except BaseException:
            snapshot.restore(self)
            raise
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)
        self.global_step += 1
        self.phase_steps[phase] += 1
        self.cycle_pos = (self.cycle_pos + 1) % len(self.cycle)
        epoch_end = self.loader.epoch_done and (self.cycle_pos == 0 or not self.method.shares_batch)
        elapsed = time.perf_counter() - start
        images = self.loader.global_size(index)  # over all ranks
        metrics.update(
            step=self.global_step,
            epoch_end=epoch_end,
            step_time_s=elapsed,
            images_per_s=images / elapsed if elapsed > 0 else None,
        )
        self._accumulate(metrics, images)
        self._emit("step", metrics)
        self._watch_routing(metrics)
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
        elif isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise SpecError(
                "epochs", "type", f"epochs: expected an integer >= 0, got {epochs!r}", {"received": epochs}
            )
        summaries = []
        for _ in range(epochs):
            summary = self.epoch(should_stop)
            if summary["stopped"]:
                return {"stopped": True, "epochs": summaries, "epochs_completed": self.epochs_completed}
            summaries.append(summary)
        return {"stopped": False, "epochs": summaries, "epochs_completed": self.epochs_completed}

    def set(self, **hparams: Any) -> dict[str, Any]:
        """Changes hyperparameters between steps (hparams.SETTABLE); all are checked before any applies."""
        return change_hparams(self, hparams)

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
            "lr": {name: self.lr(name) for name in self.optimizers},
            # the settings in force, where the spec says null for "same as the experts'"
            "optimizers": {name: copy.deepcopy(self.method.optimizer_spec(name)) for name in self.optimizers},
            "schedules": {name: copy.deepcopy(self.method.schedule_spec(name)) for name in self.optimizers},
            "attack": self.attack.settings() if self.attack is not None else None,
            "amp": self.amp,
            "channels_last": self.channels_last,
            "spec": copy.deepcopy(self.spec),
        }

    # ---- checkpoints --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return trainer_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_trainer_state(self, state)

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
        if self.method.shares_batch and self.cycle_pos != 0:
            if self.batch is None and self.batch_pos is not None:
                epoch, index = self.batch_pos
                x, y = self.loader.batch(epoch, index)
                self.batch = (x, y, epoch, index)
            if self.batch is not None:
                return self.batch
        self.batch = self.loader.next()
        self.batch_pos = (self.batch[2], self.batch[3])
        return self.batch

    def _update(
        self,
        phase: str,
        x: torch.Tensor,
        y: torch.Tensor,
        epoch: int,
        index: int,
        before: dict[str, torch.Tensor],
    ) -> dict[str, Any]:
        opt_name = self.method.phase_optimizer(phase)
        optimizer, params = self.optimizers[opt_name], self.params[opt_name]
        trainable = {id(p) for p in params if p.requires_grad}  # parameters frozen by the caller stay frozen
        for p in self.model.parameters():
            p.requires_grad_(id(p) in trainable)
        set_lr(optimizer, self.lr(opt_name, epoch, index))

        with self._autocast():
            x_adv = None
            if self.attack is not None:
                x_adv = self.attack(
                    x, y, seed=derive_seed(self.spec["seed"], ATTACK_STREAM, self.global_step)
                )
            self.model.train()
            out: LossOutput = self._loss(x, y, x_adv, phase)
            clean_eval: Forward | None = None
            if out.clean is None and self.spec["track_clean"]:
                # eval mode and no grad: metrics only, BatchNorm statistics untouched
                with torch.no_grad(), eval_mode(self.model):
                    clean_eval = forward(self.model, x)

        self._check_finite(out, phase)
        optimizer.zero_grad(set_to_none=True)
        if self.ddp is None:
            out.loss.backward()
        else:
            (out.loss * ranks.loss_scale(x.shape[0], self.loader.global_size(index))).backward()
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
        restore_buffers(self.model, before, self.frozen_buffers[phase])
        return self._metrics(phase, out, clean_eval, y, epoch, index, grad_norm)

    def _loss(self, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor | None, phase: str) -> LossOutput:
        if self.ddp is None:
            return self.method.loss(self.model, x, y, x_adv, phase)
        self.ddp(x, y, x_adv, phase)  # one DDP forward: the backward of its loss averages gradients
        return self.ddp.module.out

    def _check_finite(self, out: LossOutput, phase: str) -> None:
        checks = [torch.isfinite(out.loss.detach()).all()]
        for f in (out.clean, out.adv):
            if f is not None and f.scores is not None:
                checks.append(torch.isfinite(f.scores.detach()).all())
        failed = (~torch.stack(checks)).long()
        if distributed.active():  # every rank refuses the step together, so none waits in a collective
            failed = distributed.all_reduce_sum(failed)
        ok = (failed == 0).tolist()
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
            with torch.no_grad():
                for k, v in balance_terms(routed).items():
                    names.append(f"balance.{k}")
                    values.append(v.float())
        stacked = torch.stack([v.to(self.device).float() for v in values])
        if self.ddp is not None:
            stacked = ranks.mean_over_ranks(stacked, y.shape[0], self.loader.global_size(index))
        scalars = dict(zip(names, stacked.tolist(), strict=True))
        metrics: dict[str, Any] = {
            "phase": phase,
            "epoch": epoch,
            "batch": index,
            "loss": scalars["loss"],
            "terms": {k[5:]: v for k, v in scalars.items() if k.startswith("term.")},
            "clean_acc": scalars.get("clean_acc"),
            "adv_acc": scalars.get("adv_acc"),
            "router_entropy": scalars.get("router_entropy"),
            "balance": {k[8:]: v for k, v in scalars.items() if k.startswith("balance.")} or None,
            "expert_load": self._load(clean) if clean is not None else None,
            "expert_load_adv": self._load(out.adv) if out.adv is not None else None,
            "grad_norm": scalars["grad_norm"],
            "lr": {name: self.lr(name, epoch, index) for name in self.optimizers},
        }
        if metrics["expert_load"] is None:
            metrics["expert_load"] = metrics["expert_load_adv"]
        return metrics

    def _load(self, f: Forward) -> list[float] | None:
        """Share of routing decisions per expert, over samples and routing layers."""
        if f.routes is None or not f.routes.numel():
            return None
        counts = distributed.all_reduce_sum(
            torch.bincount(f.routes.flatten(), minlength=self.model.num_experts).float()
        )
        return (counts / counts.sum()).tolist()

    def _watch_routing(self, metrics: dict[str, Any]) -> None:
        """A `routing_collapse` warning the step one expert takes more than max_share of the batch."""
        load = metrics["expert_load"]
        if not self.is_moe or load is None or len(load) < 2:
            return
        top = max(load)
        threshold = self.spec["max_share"]
        if top > threshold and not self._collapsed:
            expert = load.index(top)
            self._emit(
                "warning",
                {
                    "code": "routing_collapse",
                    "message": f"step {metrics['step']} ({metrics['phase']}): the router sent {top:.0%} of the "
                    f"batch to expert {expert} (threshold {threshold:.0%}); the MoE is turning into one "
                    "narrow dense network (see router_supervision and balance)",
                    "step": metrics["step"],
                    "epoch": metrics["epoch"],
                    "expert": expert,
                    "share": top,
                    "threshold": threshold,
                },
            )
        self._collapsed = top > threshold

    def lr(self, name: str, epoch: int | None = None, index: int | None = None) -> float:
        """Learning rate of optimizer `name` at batch `index` of `epoch` (default: the next batch)."""
        if epoch is None:
            epoch, index = self.loader.epoch, self.loader.index
            if index >= self.loader.batches_per_epoch:
                epoch, index = epoch + 1, 0
        schedule = self.method.schedule_spec(name)
        n = self.loader.batches_per_epoch
        per_step = schedule["interval"] == "step"
        progress = epoch + index / n if per_step else float(epoch)
        tick = 1.0 / n if per_step else 1.0
        return lr_at(schedule, self.method.optimizer_spec(name)["lr"], progress, self.spec["epochs"], tick)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.amp:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                yield
        else:
            yield

    # ---- epochs -------------------------------------------------------------------------

    def _new_epoch_stats(self) -> dict[str, Any]:
        return {
            "steps": 0,
            "images": 0,
            "time_s": 0.0,
            "loss": 0.0,
            "clean_acc": [0.0, 0],
            "adv_acc": [0.0, 0],
            "expert_load": None,  # summed clean expert shares, divided by steps at the end
        }

    def _accumulate(self, m: dict[str, Any], batch: int) -> None:
        s = self.epoch_stats
        s["steps"] += 1
        s["images"] += batch
        s["time_s"] += m["step_time_s"]
        s["loss"] += m["loss"]
        for key in ("clean_acc", "adv_acc"):
            if m[key] is not None:
                s[key][0] += m[key] * batch
                s[key][1] += batch
        if m["expert_load"] is not None:
            prev = s.get("expert_load")
            s["expert_load"] = (
                list(m["expert_load"])
                if prev is None
                else [a + b for a, b in zip(prev, m["expert_load"], strict=True)]
            )

    def _end_epoch(self) -> dict[str, Any]:
        self.epochs_completed += 1
        s = self.epoch_stats
        load = s.get("expert_load")
        summary: dict[str, Any] = {
            "epoch": self.epochs_completed - 1,
            "epochs_completed": self.epochs_completed,
            "global_step": self.global_step,
            "steps": s["steps"],
            "loss": s["loss"] / max(s["steps"], 1),
            "clean_acc": s["clean_acc"][0] / s["clean_acc"][1] if s["clean_acc"][1] else None,
            "adv_acc": s["adv_acc"][0] / s["adv_acc"][1] if s["adv_acc"][1] else None,
            "expert_load": [v / s["steps"] for v in load] if load is not None and s["steps"] else None,
            "time_s": s["time_s"],
            "images_per_s": s["images"] / s["time_s"] if s["time_s"] > 0 else None,
            "lr": {name: self.lr(name) for name in self.optimizers},
        }
        self.epoch_stats = self._new_epoch_stats()
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
        report = evaluate(
            self.model, batches, self.spec["eval"], emit=self.emit_fn, should_stop=self._should_stop
        )
        self._emit("eval", report)
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

    def _warn(self, code: str, message: str) -> None:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        self._emit("warning", {"code": code, "message": message})


def _register_models() -> None:
    """Imports the model package so its architectures are registered."""
    import importlib

    with contextlib.suppress(ImportError):
        importlib.import_module("advmoe_worker.models")
