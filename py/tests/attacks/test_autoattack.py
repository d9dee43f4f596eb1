"""AutoAttack from torchattacks under our bookkeeping: runs, reports, and is the strongest."""

from __future__ import annotations

import sys

import pytest
import torch
from attack_fixtures import accuracy

from advmoe_worker.attacks import (
    AUTOATTACK_VERSIONS,
    AutoAttack,
    attack_batch,
    create_attack,
    create_autoattack,
)
from advmoe_worker.errors import SpecError, WorkerError

pytest.importorskip("torchattacks")


def test_cheap_version_is_at_least_as_strong_as_pgd(trained, held_out):
    model = trained["moe"]
    x, y = held_out
    ra_pgd = accuracy(model, create_attack({"name": "pgd"}, model)(x, y), y)
    attack = create_autoattack({"version": "fast", "steps": 20}, model)
    x_adv = attack(x, y)
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert accuracy(model, x_adv, y) <= ra_pgd + 0.03


def test_standard_version_runs_on_a_handful_of_samples(trained, held_out):
    model = trained["dense"]
    x, y = held_out[0][:16], held_out[1][:16]
    ra_pgd = accuracy(model, create_attack({"name": "pgd"}, model)(x, y), y)
    attack = create_autoattack({"version": "standard", "steps": 20, "n_queries": 200}, model)
    x_adv = attack(x, y)
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6
    assert accuracy(model, x_adv, y) <= ra_pgd + 1 / 16


def test_l2_autoattack_stays_in_the_l2_ball(trained, held_out):
    model = trained["dense"]
    x, y = held_out[0][:16], held_out[1][:16]
    x_adv = create_autoattack({"version": "apgd-ce", "norm": "l2", "eps": 0.3, "steps": 10}, model)(x, y)
    assert (x_adv - x).flatten(1).norm(dim=1).max() <= 0.3 + 1e-5
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_settings_state_version_norm_eps_seed_and_the_real_class_count(trained, held_out):
    model = trained["dense"]
    x, y = held_out
    attack = create_autoattack({"version": "apgd-t", "steps": 5, "seed": 4}, model)
    attack(x[:8], y[:8])
    settings = attack.settings()
    assert settings["n_classes"] == 4  # read from the model, never the default 10
    assert settings["target_classes"] == 3  # at most the wrong classes there are
    assert {k: settings[k] for k in ("name", "version", "norm", "eps", "seed", "steps")} == {
        "name": "autoattack",
        "version": "apgd-t",
        "norm": "linf",
        "eps": 8 / 255,
        "seed": 4,
        "steps": 5,
    }
    assert settings["attacks"] == ["apgd-t"]
    assert settings["library"].startswith("torchattacks ")


def test_same_seed_same_result_and_the_global_rng_untouched(trained, held_out):
    model = trained["dense"]
    x, y = held_out[0][:8], held_out[1][:8]
    spec = {"version": "apgd-ce", "steps": 5, "seed": 1}
    state = torch.get_rng_state()
    first = create_autoattack(spec, model)(x, y)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(first, create_autoattack(spec, model)(x, y))


def test_modes_and_parameter_grads_are_left_as_they_were(trained, held_out):
    model = trained["moe"]
    x, y = held_out[0][:8], held_out[1][:8]
    model.train()
    model.router.eval()
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    try:
        # FAB computes its gradients with .backward(): no .grad may stay on the parameters
        create_autoattack({"version": "fab-t", "steps": 3}, model)(x, y)
        after = [m.training for m in model.modules()]
    finally:
        model.eval()
    assert after == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_targeted_versions_need_four_classes(trained):
    attack = AutoAttack(trained["dense"], version="standard", n_classes=3)
    with pytest.raises(SpecError) as info:
        attack(torch.rand(2, 3, 12, 12), torch.zeros(2, dtype=torch.long))
    assert info.value.path == "autoattack.version" and info.value.rule == "min_classes"


@pytest.mark.parametrize(
    "spec, path",
    [
        ({"version": "plus-plus"}, "autoattack.version"),
        ({"norm": "l1"}, "autoattack.norm"),
        ({"eps": -1}, "autoattack.eps"),
        ({"n_classes": 1}, "autoattack.n_classes"),
        ({"steps": 0}, "autoattack.steps"),
        ({"n_query": 10}, "autoattack.n_query"),
    ],
)
def test_bad_autoattack_specs_name_the_field(trained, spec, path):
    with pytest.raises(SpecError) as info:
        create_autoattack(spec, trained["dense"])
    assert info.value.path == path


def test_every_version_is_known():
    assert set(AUTOATTACK_VERSIONS) == {
        "standard",
        "fast",
        "rand",
        "apgd-ce",
        "apgd-dlr",
        "apgd-t",
        "fab-t",
        "square",
    }


def test_attack_batch_runs_autoattack_by_name(trained, held_out):
    x, y = held_out[0][:4], held_out[1][:4]
    x_adv = attack_batch(trained["dense"], x, y, {"name": "autoattack", "version": "apgd-ce", "steps": 3})
    assert x_adv.shape == x.shape


def test_missing_torchattacks_is_a_clear_error(trained, held_out, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # import now raises ImportError
    attack = create_autoattack({"version": "apgd-ce"}, trained["dense"])
    with pytest.raises(WorkerError, match="pip install --no-deps torchattacks"):
        attack(held_out[0][:2], held_out[1][:2])
