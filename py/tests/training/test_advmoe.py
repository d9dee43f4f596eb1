"""AdvMoE alternation: each phase updates its own parameters and nothing else."""

from __future__ import annotations

import pytest
import torch
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.errors import SpecError
from advmoe_worker.training import Trainer


def snapshot(tensors):
    return [t.detach().clone() for t in tensors]


def router_buffers(model):
    return [b for m in model.router_modules() for b in m.buffers()]


def expert_buffers(model):
    ids = {id(b) for b in router_buffers(model)}
    return [b for b in model.buffers() if id(b) not in ids]


def all_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture
def trainer():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    # weight decay 0: a parameter moves only if the phase's loss reaches it
    spec = {"method": "advmoe", "batch_size": 16, "optimizer": {"lr": 0.1, "weight_decay": 0.0}}
    return Trainer(make_model(), data, spec)


def test_a_router_step_leaves_every_expert_parameter_and_statistic_unchanged(trainer):
    model = trainer.model
    experts, eb = snapshot(model.expert_parameters()), snapshot(expert_buffers(model))
    routers, rb = snapshot(model.router_parameters()), snapshot(router_buffers(model))
    assert trainer.step("router")["phase"] == "router"
    assert all_equal(experts, model.expert_parameters())
    assert all_equal(eb, expert_buffers(model))
    assert not all_equal(routers, model.router_parameters()), "the router got no update through the gate"
    assert not all_equal(rb, router_buffers(model)), "the router's BatchNorm statistics did not move"


def test_an_expert_step_leaves_every_router_parameter_and_statistic_unchanged(trainer):
    model = trainer.model
    experts, eb = snapshot(model.expert_parameters()), snapshot(expert_buffers(model))
    routers, rb = snapshot(model.router_parameters()), snapshot(router_buffers(model))
    assert trainer.step("expert")["phase"] == "expert"
    assert all_equal(routers, model.router_parameters())
    assert all_equal(rb, router_buffers(model))
    assert not all_equal(experts, model.expert_parameters())
    assert not all_equal(eb, expert_buffers(model))


def test_router_and_expert_optimizers_are_separate_with_their_own_learning_rates():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    spec = {
        "method": "advmoe",
        "batch_size": 16,
        "optimizer": {"lr": 0.1},
        "router_optimizer": {"name": "adam", "lr": 0.001},
        "schedule": {"name": "constant"},
    }
    trainer = Trainer(make_model(), data, spec)
    assert isinstance(trainer.optimizers["router"], torch.optim.Adam)
    assert isinstance(trainer.optimizers["expert"], torch.optim.SGD)
    router_ids = {id(p) for p in trainer.model.router_parameters()}
    assert {id(p) for g in trainer.optimizers["router"].param_groups for p in g["params"]} == router_ids
    assert not router_ids & {id(p) for g in trainer.optimizers["expert"].param_groups for p in g["params"]}
    m = trainer.step()
    assert m["lr"] == {"router": 0.001, "expert": 0.1}


def test_the_phase_cycle_follows_the_configured_order_and_steps():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    spec = {
        "method": "advmoe",
        "batch_size": 16,
        "phases": [{"phase": "expert", "steps": 2}, {"phase": "router", "steps": 1}],
    }
    trainer = Trainer(make_model(), data, spec)
    assert trainer.cycle == ["expert", "expert", "router"]
    assert [trainer.step()["phase"] for _ in range(4)] == ["expert", "expert", "router", "expert"]
    assert trainer.phase_steps == {"router": 1, "expert": 3}


def test_with_share_batch_one_cycle_sees_one_minibatch():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(make_model(), data, {"method": "advmoe", "batch_size": 16})
    seen = [(m["epoch"], m["batch"]) for m in (trainer.step() for _ in range(4))]
    assert seen == [(0, 0), (0, 0), (0, 1), (0, 1)]
    assert trainer.steps_per_epoch == 4 and trainer.epochs_completed == 1


def test_without_share_batch_every_step_draws_a_new_minibatch():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(make_model(), data, {"method": "advmoe", "batch_size": 16, "share_batch": False})
    seen = [(m["epoch"], m["batch"]) for m in (trainer.step() for _ in range(3))]
    assert seen == [(0, 0), (0, 1), (1, 0)]


def test_naming_a_phase_overrides_the_schedule_for_one_step():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(make_model(), data, {"method": "advmoe", "batch_size": 16})
    assert trainer.step("expert")["phase"] == "expert"
    assert trainer.next_phase == "expert"  # the cycle moved on by one step


@pytest.mark.parametrize(
    ("method", "phase"), [("advmoe", "joint"), ("pgd-at", "router"), ("standard", "expert")]
)
def test_a_phase_the_method_does_not_have_is_refused(method, phase):
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(make_model(moe=True), data, {"method": method, "batch_size": 16})
    with pytest.raises(SpecError) as err:
        trainer.step(phase)
    assert err.value.path == "phase"
    assert trainer.global_step == 0


def test_at_moe_updates_router_and_experts_with_one_optimizer():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(
        make_model(), data, {"method": "at-moe", "batch_size": 16, "optimizer": {"weight_decay": 0.0}}
    )
    assert list(trainer.optimizers) == ["model"]
    routers, experts = (
        snapshot(trainer.model.router_parameters()),
        snapshot(trainer.model.expert_parameters()),
    )
    trainer.step()
    assert not all_equal(routers, trainer.model.router_parameters())
    assert not all_equal(experts, trainer.model.expert_parameters())
