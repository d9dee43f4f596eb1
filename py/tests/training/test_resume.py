"""Checkpoint and resume: an interrupted CPU run ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.errors import WorkerError
from advmoe_worker.training import Trainer, load_checkpoint

CASES = {
    "advmoe shared batch, router noise": (
        {"method": "advmoe", "optimizer": {"nesterov": True}},
        {"noise": 0.5},
    ),
    "advmoe fresh batches, adam router": (
        {
            "method": "advmoe",
            "share_batch": False,
            "router_optimizer": {"name": "adam", "lr": 1e-3},
            "phases": [{"phase": "expert", "steps": 2}, {"phase": "router", "steps": 1}],
        },
        {},
    ),
    "trades, adamw, per-step cosine with warmup": (
        {
            "method": "trades",
            "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01},
            "schedule": {"interval": "step", "warmup_epochs": 1},
            "grad_clip": 1.0,
        },
        {},
    ),
    "pgd-at on a dense model": ({"method": "pgd-at"}, {}),
}


def build(trainer_spec, model_overrides):
    moe = trainer_spec["method"] in ("advmoe", "at-moe")
    data = create_dataset(
        data_spec(train_size=40, augment={"crop_padding": 2, "flip": True}, val_fraction=0.2)
    )
    spec = {"batch_size": 12, "epochs": 3, **trainer_spec}
    return Trainer(make_model(moe=moe, **model_overrides), data, spec)


def assert_same_state(a: Trainer, b: Trainer):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    for name in a.optimizers:
        oa, ob = a.optimizers[name].state_dict(), b.optimizers[name].state_dict()
        assert oa["param_groups"] == ob["param_groups"]
        assert oa["state"].keys() == ob["state"].keys()
        for idx in oa["state"]:
            for key, value in oa["state"][idx].items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(ob["state"][idx][key])), (
                    name,
                    idx,
                    key,
                )
    assert a.loader.state_dict() == b.loader.state_dict()
    assert (a.global_step, a.cycle_pos, a.epochs_completed, a.phase_steps) == (
        b.global_step,
        b.cycle_pos,
        b.epochs_completed,
        b.phase_steps,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(case, tmp_path):
    trainer_spec, model_overrides = CASES[case]
    total, cut = 9, 5  # 5 is mid-epoch, and mid-cycle for a two-step cycle

    straight = build(trainer_spec, model_overrides)
    straight_metrics = [straight.step() for _ in range(total)]
    straight_rng = torch.get_rng_state()

    first = build(trainer_spec, model_overrides)
    for _ in range(cut):
        first.step()
    path = first.save(tmp_path / "ckpt.pt")
    del first
    torch.manual_seed(999)  # whatever the process did meanwhile must not matter

    resumed = Trainer.resume(path)  # model and data rebuilt from the specs it carries
    resumed_metrics = [resumed.step() for _ in range(total - cut)]

    assert_same_state(straight, resumed)
    assert torch.equal(straight_rng, torch.get_rng_state())
    for a, b in zip(straight_metrics[cut:], resumed_metrics, strict=True):
        assert (a["phase"], a["epoch"], a["batch"], a["loss"], a["lr"]) == (
            b["phase"],
            b["epoch"],
            b["batch"],
            b["loss"],
            b["lr"],
        )


def test_resume_keeps_hyperparameters_changed_between_steps(tmp_path):
    trainer = build({"method": "pgd-at"}, {})
    trainer.step()
    trainer.set(lr=0.03, eps=2 / 255)
    path = trainer.save(tmp_path / "ckpt.pt")
    resumed = Trainer.resume(path, trainer.model)
    assert resumed.spec["optimizer"]["lr"] == 0.03
    assert resumed.describe()["attack"]["eps"] == pytest.approx(2 / 255)


def test_checkpoints_carry_the_specs_and_load_with_weights_only(tmp_path):
    trainer = build({"method": "advmoe"}, {})
    trainer.step()
    path = trainer.save(tmp_path / "ckpt.pt")
    state = torch.load(path, weights_only=True)
    assert state["specs"]["trainer"]["method"] == "advmoe"
    assert state["specs"]["model"]["moe"]["experts"] == 2
    assert state["specs"]["data"]["kind"] == "synthetic"
    assert set(state["optimizers"]) == {"router", "expert"}
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert any(k.startswith("router.") for k in state["model"])
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temp file left behind


def test_automatic_checkpoints_land_in_checkpoint_dir(tmp_path):
    events = []
    data = create_dataset(data_spec(train_size=24, test_size=0))
    spec = {
        "method": "standard",
        "batch_size": 12,
        "checkpoint_dir": str(tmp_path / "run"),
        "checkpoint_every_steps": 1,
    }
    trainer = Trainer(make_model(moe=False), data, spec, emit=lambda e, d: events.append((e, d)))
    trainer.epoch()
    saved = [d for e, d in events if e == "checkpoint"]
    assert [d["global_step"] for d in saved] == [1, 2]
    assert load_checkpoint(tmp_path / "run" / "last.pt")["counters"]["epochs_completed"] == 1


@pytest.mark.parametrize(
    "damage", ["truncate", "garbage", "foreign pickle", "not a trainer checkpoint", "missing"]
)
def test_a_damaged_checkpoint_is_refused_with_bad_checkpoint(damage, tmp_path):
    trainer = build({"method": "standard"}, {})
    path = trainer.save(tmp_path / "ckpt.pt")
    if damage == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(256))
    elif damage == "foreign pickle":

        class Evil:
            def __reduce__(self):
                return (os.system, ("echo pwned",))

        path.write_bytes(pickle.dumps(Evil(), protocol=2))
    elif damage == "not a trainer checkpoint":
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.unlink()
    with pytest.raises(WorkerError) as err:
        Trainer.resume(path)
    assert err.value.code == "bad_checkpoint"
    assert str(path) in err.value.message
