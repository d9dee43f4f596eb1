"""Data set methods: create, describe and take samples, by handle."""

from __future__ import annotations

from typing import Any

import torch

from ..data import create_dataset
from ..data.dataset import DataSplits
from ..errors import SpecError
from ..server import CallContext, method

KIND = "data"


class DataObject:
    """A data set held by the worker: its splits and the spec that built them."""

    def __init__(self, splits: DataSplits):
        self.splits = splits

    def summary(self) -> dict[str, Any]:
        d = self.splits.describe()
        return {k: d[k] for k in ("kind", "num_classes", "train", "val", "test")}

    def split(self, name: str, field: str = "split"):
        data = getattr(self.splits, name)
        if data is None:
            raise SpecError(field, "available", f"{field}: this data set has no {name!r} split")
        return data


def get_data(ctx: CallContext, handle: str, field: str = "data") -> DataObject:
    return ctx.objects.get(handle, KIND, field)


def describe(handle: str, obj: DataObject) -> dict[str, Any]:
    return {
        "handle": handle,
        **obj.splits.describe(),
        "classes": list(obj.splits.classes),
        "spec": obj.splits.spec,
    }


@method("data.create")
def data_create(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    splits = create_dataset(
        params["spec"],
        tensors=tensors,
        resolve_path=lambda path, field: ctx.resolve_path(path, f"spec.{field}"),
    )
    obj = DataObject(splits)
    return describe(ctx.objects.add(KIND, obj), obj)


@method("data.describe")
def data_describe(ctx: CallContext, params: dict, tensors: dict) -> dict[str, Any]:
    return describe(params["handle"], get_data(ctx, params["handle"], "handle"))


@method("data.take")
def data_take(ctx: CallContext, params: dict, tensors: dict) -> tuple[dict[str, Any], dict]:
    data = get_data(ctx, params["handle"], "handle").split(params["split"])
    start = params["start"]
    stop = min(start + params["count"], len(data))
    if start >= len(data):
        raise SpecError(
            "start", "maximum", f"start: {start} is past the end of the split ({len(data)} samples)"
        )
    x, y = data.get(torch.arange(start, stop))
    return {"count": stop - start}, {"x": x.float().contiguous(), "y": y.to(torch.int64)}
