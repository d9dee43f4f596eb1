"""Optimizers from the registry and learning-rate schedules as functions of progress."""

from __future__ import annotations

import math

import pytest
import torch

from advmoe_worker.training import create_optimizer, lr_at, resolve_trainer_spec


def schedule(**kw):
    return resolve_trainer_spec({"method": "standard", "schedule": kw})["schedule"]


def test_per_epoch_cosine_is_the_paper_codes_formula():
    s = schedule()
    for epoch in range(10):
        assert lr_at(s, 0.1, epoch, 10) == pytest.approx(0.1 * 0.5 * (1 + math.cos(epoch / 10 * math.pi)))


def test_cosine_respects_its_floor_and_stays_there_past_the_end():
    s = schedule(min_lr=0.01)
    assert lr_at(s, 0.1, 0, 10) == pytest.approx(0.1)
    assert lr_at(s, 0.1, 10, 10) == pytest.approx(0.01)
    assert lr_at(s, 0.1, 50, 10) == pytest.approx(0.01)


def test_step_schedule_multiplies_by_gamma_at_each_milestone():
    s = schedule(name="step", milestones=[0.75, 0.9], gamma=0.1)
    assert [round(lr_at(s, 0.1, e, 100), 6) for e in (0, 74, 75, 89, 90)] == [0.1, 0.1, 0.01, 0.01, 0.001]


def test_warmup_ramps_linearly_then_the_schedule_takes_over():
    s = schedule(name="constant", warmup_epochs=4)
    assert [lr_at(s, 0.1, e, 10) for e in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    per_step = schedule(interval="step", warmup_epochs=1)
    assert lr_at(per_step, 0.1, 0.0, 10, tick=0.25) == pytest.approx(0.025)
    assert lr_at(per_step, 0.1, 1.0, 10, tick=0.25) == pytest.approx(0.1)  # cosine starts after warmup


@pytest.mark.parametrize(
    ("name", "cls"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_every_registered_optimizer_builds_with_its_settings(name, cls):
    spec = resolve_trainer_spec(
        {"method": "standard", "optimizer": {"name": name, "lr": 0.01, "weight_decay": 0.1}}
    )
    opt = create_optimizer([torch.nn.Parameter(torch.zeros(2))], spec["optimizer"])
    assert isinstance(opt, cls)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["weight_decay"] == 0.1
