"""A step whose loss or router scores are not finite is refused and leaves no trace."""

from __future__ import annotations

import pytest
import torch
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.errors import NonFiniteError
from advmoe_worker.training import Trainer


class Poisoned:
    """Wraps a data set; while `poison` is set, every batch holds a NaN pixel."""

    def __init__(self, base):
        self.base = base
        self.num_classes, self.sample_shape, self.augment = base.num_classes, base.sample_shape, None
        self.poison = False

    def __len__(self):
        return len(self.base)

    def get(self, indices):
        x, y = self.base.get(indices)
        if self.poison:
            x = x.clone()
            x[0, 0, 0, 0] = float("nan")
        return x, y


def state_of(trainer):
    return {
        "model": {k: v.clone() for k, v in trainer.model.state_dict().items()},
        "optimizers": {
            name: {
                i: {k: torch.as_tensor(v).clone() for k, v in s.items()}
                for i, s in opt.state_dict()["state"].items()
            }
            for name, opt in trainer.optimizers.items()
        },
        "loader": trainer.loader.state_dict(),
        "counters": (trainer.global_step, trainer.cycle_pos, dict(trainer.phase_steps)),
        "rng": torch.get_rng_state().clone(),
    }


def assert_unchanged(before, after):
    for key in before["model"]:
        assert torch.equal(before["model"][key], after["model"][key]), key
    for name in before["optimizers"]:
        for idx, s in before["optimizers"][name].items():
            for key, value in s.items():
                assert torch.equal(value, after["optimizers"][name][idx][key])
    assert before["loader"] == after["loader"]
    assert before["counters"] == after["counters"]
    assert torch.equal(before["rng"], after["rng"])


@pytest.mark.parametrize("moe", [False, True])
def test_a_nan_loss_is_refused_and_the_state_is_as_before(moe):
    data = Poisoned(create_dataset(data_spec(train_size=32, test_size=0)).train)
    trainer = Trainer(
        make_model(moe=moe, noise=0.3) if moe else make_model(moe=False),
        data,
        {"method": "standard", "batch_size": 16},
    )
    trainer.step()  # momentum buffers exist now
    before = state_of(trainer)
    data.poison = True
    with pytest.raises(NonFiniteError) as err:
        trainer.step()
    assert err.value.code == "non_finite"
    assert err.value.details["what"] == "loss"
    assert all(p.grad is None for p in trainer.model.parameters())
    assert all(p.requires_grad for p in trainer.model.parameters())
    assert_unchanged(before, state_of(trainer))
    data.poison = False
    assert trainer.step()["step"] == 2  # training goes on from the same batch


def test_non_finite_router_scores_are_refused_even_when_the_loss_is_finite(monkeypatch):
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(make_model(), data, {"method": "advmoe", "batch_size": 16})
    trainer.step()
    before = state_of(trainer)
    model = trainer.model
    real = model.forward_routed

    def nan_scores(x, routes=None):
        out = real(x, routes)
        return out._replace(scores=out.scores + float("nan"))

    monkeypatch.setattr(model, "forward_routed", nan_scores)
    with pytest.raises(NonFiniteError) as err:
        trainer.step()
    assert err.value.details["what"] == "router_scores"
    assert_unchanged(before, state_of(trainer))


def test_a_non_finite_gradient_is_refused(monkeypatch):
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(make_model(moe=False), data, {"method": "standard", "batch_size": 16})
    before = state_of(trainer)
    first = next(trainer.model.parameters())
    first.register_hook(lambda g: g * float("inf"))
    with pytest.raises(NonFiniteError) as err:
        trainer.step()
    assert err.value.details["what"] == "gradient"
    assert_unchanged(before, state_of(trainer))
