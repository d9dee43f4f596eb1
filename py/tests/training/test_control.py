"""Step-by-step control: hyperparameter changes between steps, cancellation, epochs, runs."""

from __future__ import annotations

import pytest
import torch
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.errors import SpecError
from advmoe_worker.training import Trainer


def make_trainer(method="pgd-at", moe=False, **spec):
    data = create_dataset(data_spec(train_size=32, test_size=0))
    base = {"method": method, "batch_size": 16, "epochs": 4, "schedule": {"name": "constant"}}
    return Trainer(make_model(moe=moe), data, {**base, **spec})


def test_set_changes_the_learning_rate_of_the_next_step():
    trainer = make_trainer()
    assert trainer.step()["lr"] == {"model": 0.1}
    assert trainer.set(lr=0.01) == {"lr": 0.01}
    assert trainer.step()["lr"] == {"model": 0.01}
    assert trainer.spec["optimizer"]["lr"] == 0.01


def test_set_rebuilds_the_training_attack():
    trainer = make_trainer()
    trainer.set(eps=4 / 255, steps=3, step_size=1 / 255, random_start=False)
    attack = trainer.describe()["attack"]
    assert (attack["eps"], attack["steps"], attack["step_size"], attack["random_start"]) == (
        4 / 255,
        3,
        1 / 255,
        False,
    )
    trainer.step()


def test_set_changes_beta_weight_decay_and_momentum():
    trainer = make_trainer("trades")
    trainer.set(beta=1.0, weight_decay=0.0, momentum=0.5)
    group = trainer.optimizers["model"].param_groups[0]
    assert (group["weight_decay"], group["momentum"]) == (0.0, 0.5)
    m = trainer.step()
    assert m["loss"] == pytest.approx(m["terms"]["ce"] + m["terms"]["kl"], rel=1e-5)


def test_router_learning_rate_is_set_apart_from_the_experts_in_advmoe():
    trainer = make_trainer("advmoe", moe=True)
    trainer.set(router_lr=0.02)
    assert trainer.step()["lr"] == {"router": 0.02, "expert": 0.1}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"lr": -0.1}, "lr"),
        ({"lr": 0}, "lr"),
        ({"steps": 0}, "steps"),
        ({"steps": 1.5}, "steps"),
        ({"eps": "big"}, "eps"),
        ({"beta": -1}, "beta"),
        ({"random_start": 1}, "random_start"),
        ({"batch_size": 8}, "batch_size"),
        ({"router_lr": 0.1}, "router_lr"),
    ],
)
def test_an_invalid_change_is_refused_naming_the_field(change, path):
    trainer = make_trainer()
    with pytest.raises(SpecError) as err:
        trainer.set(**change)
    assert err.value.path == path


def test_a_refused_change_applies_nothing():
    trainer = make_trainer()
    with pytest.raises(SpecError):
        trainer.set(lr=0.01, eps=-1)
    assert trainer.spec["optimizer"]["lr"] == 0.1


def test_momentum_is_refused_for_adam():
    trainer = make_trainer(optimizer={"name": "adam", "lr": 1e-3})
    with pytest.raises(SpecError) as err:
        trainer.set(momentum=0.5)
    assert err.value.path == "momentum"


def test_should_stop_ends_an_epoch_between_steps_and_the_next_call_finishes_it():
    trainer = make_trainer("standard")
    calls = []

    def stop_after_one():
        calls.append(1)
        return len(calls) > 1

    partial = trainer.epoch(stop_after_one)
    assert partial == {"stopped": True, "steps_run": 1, "epochs_completed": 0}
    assert trainer.global_step == 1
    rest = trainer.epoch()
    assert rest["stopped"] is False and rest["steps_run"] == 1 and rest["steps"] == 2
    assert trainer.epochs_completed == 1 and trainer.global_step == 2


def test_a_cancelled_run_leaves_a_consistent_trainer_that_can_go_on():
    trainer = make_trainer("standard")
    steps = []

    def emit(event, data):
        if event == "step":
            steps.append(data["step"])

    trainer.emit_fn = emit
    result = trainer.run(3, should_stop=lambda: len(steps) >= 3)
    assert result["stopped"] is True and trainer.global_step == 3
    state = trainer.optimizers["model"].state
    assert all("momentum_buffer" in s for s in state.values())
    trainer.run(1)  # finishes the interrupted epoch
    assert trainer.global_step == 4 and trainer.epochs_completed == 2


def test_run_defaults_to_the_rest_of_the_configured_epochs():
    trainer = make_trainer("standard", epochs=2)
    result = trainer.run()
    assert [s["epoch"] for s in result["epochs"]] == [0, 1]
    assert trainer.run()["epochs"] == []


def test_emit_receives_step_and_epoch_events():
    events = []
    trainer = make_trainer("standard")
    trainer.emit_fn = lambda event, data: events.append((event, data))
    trainer.epoch()
    assert [e for e, _ in events] == ["step", "step", "epoch"]
    summary = events[-1][1]
    assert summary["epochs_completed"] == 1 and summary["steps"] == 2 and 0 <= summary["clean_acc"] <= 1


def test_epoch_end_evaluation_goes_through_the_metrics_module():
    data = create_dataset(data_spec(train_size=32, test_size=0, val_fraction=0.25))
    spec = {
        "method": "standard",
        "batch_size": 8,
        "eval": {"attacks": [{"name": "pgd", "steps": 1}], "per_class": False},
    }
    events = []
    trainer = Trainer(make_model(moe=True), data, spec, emit=lambda e, d: events.append(e))
    summary = trainer.epoch()
    assert "eval" in summary and "eval" in events
    assert trainer.model.training


def test_evaluation_without_validation_data_is_refused():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    with pytest.raises(SpecError) as err:
        Trainer(make_model(moe=False), data, {"method": "standard", "eval": {}})
    assert err.value.path == "eval"


def test_parameters_frozen_by_the_caller_stay_frozen():
    trainer = make_trainer("standard", optimizer={"weight_decay": 0.0})
    first = next(trainer.model.parameters())
    first.requires_grad_(False)
    before = first.detach().clone()
    trainer.step()
    assert not first.requires_grad and torch.equal(first, before)


def test_a_router_change_refused_by_the_schema_leaves_the_router_optimizer_unset():
    trainer = make_trainer("advmoe", moe=True)
    with pytest.raises(SpecError) as err:
        trainer.set(router_lr=0)
    assert (err.value.path, err.value.rule) == ("router_lr", "exclusiveMinimum")
    assert err.value.message.startswith("router_lr: ")
    assert trainer.spec["router_optimizer"] is None
