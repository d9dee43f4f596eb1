"""Trainer methods: create, step, epoch, run, set, pause/continue, save and resume."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .. import distributed
from ..errors import CancelledError, SpecError
from ..server import CallContext, method
from ..training import Trainer
from ..training.tensorboard import TensorBoardLogger
from .data import DataObject, get_data
from .models import KIND as MODEL_KIND
from .models import ModelObject, get_model

KIND = "trainer"


class TrainerObject:
    """A trainer held by the worker, the handles of what it trains, and its pause switch."""

    def __init__(
        self, trainer: Trainer, model: str, data: str | None, logger: TensorBoardLogger | None = None
    ):
        self.trainer = trainer
        self.model = model
        self.data = data
        self.logger = logger
        self.running = threading.Event()
        self.running.set()  # cleared while paused

    @property
    def paused(self) -> bool:
        return not self.running.is_set()

    def summary(self) -> dict[str, Any]:
        t = self.trainer
        return {"method": t.method.name, "global_step": t.global_step, "epochs_completed": t.epochs_completed}


def get_trainer(ctx: CallContext, handle: str) -> TrainerObject:
    return ctx.objects.get(handle, KIND, "handle")


def describe(handle: str, obj: TrainerObject) -> dict[str, Any]:
    return {
        "handle": handle,
        "model": obj.model,
        "data": obj.data,
        "paused": obj.paused,
        **obj.trainer.describe(),
    }


@contextmanager
def attached(ctx: CallContext, obj: TrainerObject) -> Iterator[Callable[[], bool]]:
    """Routes the trainer's events to this request; yields its should_stop for the engine.

    should_stop holds the engine between steps while the trainer is paused, and answers
    True once the request is cancelled: the current step always finishes first.
    """
    announced = False

    def should_stop() -> bool:
        nonlocal announced
        while not obj.running.wait(0.05):
            if ctx.cancelled:
                return True
            if not announced:
                ctx.emit("paused", {"global_step": obj.trainer.global_step})
                announced = True
        if announced:
            ctx.emit("resumed", {"global_step": obj.trainer.global_step})
            announced = False
        return ctx.cancelled

    send = ctx.emitter()
    logger = obj.logger
    if logger is None:
        obj.trainer.emit_fn = send
    else:

        def emit(event: str, data: dict[str, Any]) -> None:
            logger(event, data)
            send(event, data)

        obj.trainer.emit_fn = emit
    try:
        yield distributed.agreed(should_stop)  # under torchrun every rank stops at rank 0's step
    finally:
        obj.trainer.emit_fn = None
        if logger is not None:
            logger.flush()


def finished(ctx: CallContext, obj: TrainerObject, outcome: dict[str, Any]) -> dict[str, Any]:
    if outcome.get("stopped"):
        t = obj.trainer
        raise CancelledError(
            f"{ctx.method} was cancelled after step {t.global_step}; model and optimizers are consistent",
            {"global_step": t.global_step, "epochs_completed": t.epochs_completed},
        )
    return outcome


def tensorboard(ctx: CallContext, trainer: Trainer) -> TensorBoardLogger | None:
    """The TensorBoard writer of a spec's `log_dir`, refused outside the workspace."""
    log_dir = trainer.spec.get("log_dir")
    if log_dir is None:
        return None
    return TensorBoardLogger(ctx.resolve_path(log_dir, "spec.log_dir"))


@method("trainer.create")
def trainer_create(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    model = get_model(ctx, params["model"], "model")
    data: DataObject = get_data(ctx, params["data"])
    trainer = Trainer(
        model.model,
        data.splits,
        params["spec"],
        resolve_path=lambda path, field: ctx.resolve_path(path, f"spec.{field}"),
    )
    model.costs.clear()
    obj = TrainerObject(trainer, params["model"], params["data"], tensorboard(ctx, trainer))
    return describe(ctx.objects.add(KIND, obj), obj)


@method("trainer.describe", inline=True)
def trainer_describe(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    return describe(params["handle"], get_trainer(ctx, params["handle"]))


@method("trainer.step")
def trainer_step(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_trainer(ctx, params["handle"])
    with attached(ctx, obj):
        metrics = obj.trainer.step(params.get("phase"))
    metrics.pop("epoch_summary", None)
    return metrics


@method("trainer.epoch")
def trainer_epoch(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_trainer(ctx, params["handle"])
    with attached(ctx, obj) as should_stop:
        summary = finished(ctx, obj, obj.trainer.epoch(should_stop))
    return {"epochs": [summary], "epochs_completed": obj.trainer.epochs_completed}


@method("trainer.run")
def trainer_run(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_trainer(ctx, params["handle"])
    with attached(ctx, obj) as should_stop:
        return finished(ctx, obj, obj.trainer.run(params.get("epochs"), should_stop))


@method("trainer.set")
def trainer_set(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_trainer(ctx, params["handle"])
    obj.trainer.set(**params["changes"])
    return describe(params["handle"], obj)


@method("trainer.pause", inline=True)
def trainer_pause(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_trainer(ctx, params["handle"])
    obj.running.clear()
    return describe(params["handle"], obj)


@method("trainer.continue", inline=True)
def trainer_continue(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_trainer(ctx, params["handle"])
    obj.running.set()
    return describe(params["handle"], obj)


@method("trainer.save")
def trainer_save(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    obj = get_trainer(ctx, params["handle"])
    path = obj.trainer.save(ctx.resolve_path(params["path"], "path"))
    return {"path": str(path), "bytes": path.stat().st_size}


@method("trainer.resume")
def trainer_resume(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    path = ctx.resolve_path(params["path"], "path")
    if not path.is_file():
        raise SpecError("path", "exists", f"path: {params['path']!r} is not a file on the worker")
    model_handle = params.get("model")
    data_handle = params.get("data")
    model = get_model(ctx, model_handle, "model").model if model_handle else None
    data = get_data(ctx, data_handle).splits if data_handle else None
    trainer = Trainer.resume(
        path,
        model,
        data,
        device=ctx.device,
        resolve_path=lambda p, field: ctx.resolve_path(p, f"data.{field}"),
    )
    if model_handle is None:
        model_handle = ctx.objects.add(MODEL_KIND, ModelObject(trainer.model))
    obj = TrainerObject(trainer, model_handle, data_handle, tensorboard(ctx, trainer))
    return describe(ctx.objects.add(KIND, obj), obj)
