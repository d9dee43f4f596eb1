"""Model checkpoints: exact round trips, typed errors for bad files, atomic writes."""

from __future__ import annotations

import os

import pytest
import torch

from advmoe_worker.checkpoints import (
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    load_model,
    model_checkpoint,
    save_model,
)
from advmoe_worker.errors import NotFoundError, WorkerError
from advmoe_worker.models import create_model
from advmoe_worker.specs import validate


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(router: str | None = "image", **spec):
    partial = {"arch": "resnet18", "width": 0.125, "input_size": 16, "seed": 1, **spec}
    if router is not None:
        partial |= {"ratio": 0.5, "moe": {"experts": 3, "router": router}}
    return create_model(validate("model", partial))


def trained_a_little(model):
    """Moves weights and BatchNorm statistics away from their initial values."""
    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(x).logsumexp(-1).mean().backward()
    optimizer.step()
    return model.eval(), x


@pytest.mark.parametrize("router", [None, "image", "layer"])
def test_a_round_trip_gives_bit_exact_predictions_and_routes(router, tmp_path):
    model, x = trained_a_little(tiny_model(router, normalize={"mean": [0.5] * 3, "std": [0.2] * 3}))
    path = tmp_path / "model.pt"

    save_model(model, path)
    loaded = load_model(path)

    assert not loaded.training
    assert loaded.spec == model.spec
    with torch.no_grad():
        before, after = model.forward_routed(x), loaded.forward_routed(x)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.routes, after.routes)


def test_the_file_is_self_describing_and_loads_with_weights_only(tmp_path):
    model = tiny_model()
    model.set_execution("masked")
    path = tmp_path / "model.pt"

    save_model(model, path)
    payload = torch.load(path, weights_only=True)

    assert payload["format"] == FORMAT and payload["format_version"] == FORMAT_VERSION
    assert payload["spec"]["moe"]["execution"] == "masked"
    assert set(payload["versions"]) == {"torch", "advmoe_worker"}
    assert payload["state_dict"].keys() == model.state_dict().keys()
    assert load_model(path).execution == "masked"


def test_a_truncated_file_is_a_bad_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    save_model(tiny_model(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(CheckpointError) as caught:
        load_model(path)

    assert caught.value.code == "bad_checkpoint"
    assert isinstance(caught.value, WorkerError)


def test_a_corrupted_file_is_a_bad_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    save_model(tiny_model(), path)
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), 97):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(CheckpointError):
        load_model(path)


def test_random_bytes_are_a_bad_checkpoint(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(os.urandom(4096))

    with pytest.raises(CheckpointError):
        load_model(path)


def test_a_pickled_object_is_refused_by_the_weights_only_loader(tmp_path):
    path = tmp_path / "pickle.pt"
    torch.save({"format": FORMAT, "payload": object()}, path)

    with pytest.raises(CheckpointError):
        load_model(path)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda p: {"weights": p["state_dict"]}, "wrong_format"),
        (lambda p: {**p, "format": "something.else"}, "wrong_format"),
        (lambda p: {**p, "format_version": FORMAT_VERSION + 1}, "format_version"),
        (lambda p: {k: v for k, v in p.items() if k != "state_dict"}, "incomplete"),
        (lambda p: {**p, "spec": {**p["spec"], "width": -1}}, "bad_spec"),
        (lambda p: {**p, "spec": {**p["spec"], "arch": "resnet1000"}}, "bad_spec"),
        (lambda p: {**p, "spec": {**p["spec"], "width": 0.25}}, "state_dict_mismatch"),
        (
            lambda p: {**p, "state_dict": {**p["state_dict"], "extra.weight": torch.zeros(1)}},
            "state_dict_mismatch",
        ),
    ],
    ids=[
        "foreign-dict",
        "other-format",
        "newer-version",
        "no-weights",
        "invalid-spec",
        "unknown-arch",
        "spec-does-not-fit-weights",
        "unexpected-key",
    ],
)
def test_a_file_that_does_not_describe_a_model_is_a_bad_checkpoint(edit, reason, tmp_path):
    path = tmp_path / "model.pt"
    save_model(tiny_model(), path)
    torch.save(edit(torch.load(path, weights_only=True)), path)

    with pytest.raises(CheckpointError) as caught:
        load_model(path)

    assert caught.value.details["reason"] == reason


def test_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        load_model(tmp_path / "absent.pt")


def test_a_failed_save_leaves_the_previous_file_and_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    first = tiny_model(seed=1)
    save_model(first, path)
    original = path.read_bytes()

    def torn_save(payload, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(model_checkpoint.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(tiny_model(seed=2), path)

    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_a_failed_first_save_leaves_nothing_behind(tmp_path, monkeypatch):
    def torn_save(payload, f):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(model_checkpoint.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        save_model(tiny_model(), tmp_path / "model.pt")

    assert list(tmp_path.iterdir()) == []


def test_save_creates_missing_folders(tmp_path):
    path = tmp_path / "runs" / "a" / "model.pt"

    save_model(tiny_model(None), path)

    assert load_model(path).spec["moe"] is None
