"""TrainerSpec: defaults from the paper code's args.py, and bad specs named by their field."""

from __future__ import annotations

import pytest
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.errors import SpecError
from advmoe_worker.training import Trainer, resolve_trainer_spec


def test_defaults_follow_the_paper_code():
    spec = resolve_trainer_spec({"method": "advmoe"})
    assert spec["attack"] == {"eps": 8 / 255, "steps": 2, "step_size": 5 / 255, "random_start": True}
    assert (spec["beta"], spec["alpha"], spec["seed"]) == (6.0, 6.0, 1234)
    assert spec["optimizer"] == {
        "name": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 5e-4,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
    }
    assert spec["schedule"]["name"] == "cosine" and spec["schedule"]["interval"] == "epoch"
    assert (spec["epochs"], spec["batch_size"]) == (100, 128)
    assert spec["phases"] == [{"phase": "router", "steps": 1}, {"phase": "expert", "steps": 1}]
    # advmoe supervises its router towards y mod E, as the paper code does; others do not
    assert spec["router_supervision"] == "label_mod_e"
    assert resolve_trainer_spec({"method": "at-moe"})["router_supervision"] == "none"
    assert resolve_trainer_spec({"method": "trades"})["router_supervision"] == "none"
    assert (spec["balance"], spec["balance_weight"], spec["max_share"]) == ("none", 0.01, 0.9)
    assert spec["amp"] == "none" and spec["channels_last"] is False


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({}, "method"),
        ({"method": "fgsm-at"}, "method"),
        ({"method": "advmoe", "optimizer": {"lr": -0.1}}, "optimizer.lr"),
        ({"method": "advmoe", "router_optimizer": {"lr": 0}}, "router_optimizer.lr"),
        ({"method": "advmoe", "optimizer": {"name": "lbfgs"}}, "optimizer.name"),
        ({"method": "advmoe", "optimizer": {"momentum": 0, "nesterov": True}}, "optimizer.nesterov"),
        ({"method": "advmoe", "batch_size": 0}, "batch_size"),
        ({"method": "advmoe", "epochs": 0}, "epochs"),
        ({"method": "advmoe", "attack": {"steps": 0}}, "attack.steps"),
        ({"method": "advmoe", "attack": {"epsilon": 0.1}}, "attack.epsilon"),
        ({"method": "advmoe", "phases": []}, "phases"),
        ({"method": "advmoe", "phases": [{"phase": "gate"}]}, "phases.0.phase"),
        ({"method": "advmoe", "phases": [{"phase": "router", "steps": 0}]}, "phases.0.steps"),
        ({"method": "advmoe", "schedule": {"milestones": [1.5]}}, "schedule.milestones.0"),
        ({"method": "advmoe", "beta": -1}, "beta"),
        ({"method": "advmoe", "lr": 0.1}, "lr"),
        ({"method": "advmoe", "grad_clip": 0}, "grad_clip"),
        ({"method": "advmoe", "amp": "fp16"}, "amp"),
        ({"method": "advmoe", "seed": True}, "seed"),
        (
            {"method": "advmoe", "router_optimizer": {"momentum": 0, "nesterov": True}},
            "router_optimizer.nesterov",
        ),
        ({"method": "pgd-at", "router_supervision": "label_mod_e"}, "router_supervision"),
        ({"method": "pgd-at", "router_optimizer": {"name": "adam"}}, "router_optimizer"),
        ({"method": "trades", "router_schedule": {"name": "step"}}, "router_schedule"),
        ({"method": "at-moe", "phases": [{"phase": "router", "steps": 2}]}, "phases"),
        ({"method": "advmoe", "eval": {"attacks": [{"name": "pgd", "eps": -1}]}}, "eval.attacks.0.eps"),
        ({"method": "advmoe", "eval": {"attacks": [{"name": "fab"}]}}, "eval.attacks.0.name"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(spec, path):
    with pytest.raises(SpecError) as err:
        resolve_trainer_spec(spec)
    assert err.value.path == path
    assert err.value.code == "invalid_spec"
    assert path in err.value.message


def test_moe_methods_refuse_a_dense_model():
    data = create_dataset(data_spec(train_size=16, test_size=0))
    for method in ("advmoe", "at-moe"):
        with pytest.raises(SpecError) as err:
            Trainer(make_model(moe=False), data, {"method": method, "batch_size": 8})
        assert err.value.path == "method"


def test_router_supervision_needs_an_moe_method():
    data = create_dataset(data_spec(train_size=16, test_size=0))
    with pytest.raises(SpecError) as err:
        Trainer(make_model(), data, {"method": "pgd-at", "router_supervision": "label_mod_e"})
    assert err.value.path == "router_supervision"


def test_a_batch_size_larger_than_the_data_with_drop_last_is_refused():
    data = create_dataset(data_spec(train_size=16, test_size=0))
    with pytest.raises(SpecError) as err:
        Trainer(make_model(moe=False), data, {"method": "standard", "batch_size": 32, "drop_last": True})
    assert err.value.path == "batch_size"


def test_cuda_only_options_are_ignored_with_a_warning_on_cpu():
    data = create_dataset(data_spec(train_size=16, test_size=0))
    events = []
    with pytest.warns(RuntimeWarning, match="CUDA-only"):
        trainer = Trainer(
            make_model(moe=False),
            data,
            {"method": "standard", "batch_size": 8, "amp": "bf16", "channels_last": True},
            emit=lambda e, d: events.append(e),
        )
    assert trainer.amp is False and trainer.channels_last is False
    assert events == ["warning", "warning"]
    trainer.step()


def test_a_resolved_spec_resolves_to_itself():
    for method in ("standard", "pgd-at", "trades", "at-moe", "advmoe"):
        resolved = resolve_trainer_spec({"method": method})
        assert resolve_trainer_spec(resolved) == resolved


def test_nesterov_without_momentum_is_fine_for_adam():
    spec = resolve_trainer_spec(
        {"method": "standard", "optimizer": {"name": "adam", "momentum": 0, "nesterov": True}}
    )
    assert spec["optimizer"]["name"] == "adam"
