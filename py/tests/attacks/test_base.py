"""The Attack base class: modes, RNG, gradients, projection, restarts, masking counts."""

from __future__ import annotations

import pytest
import torch
from attack_fixtures import accuracy
from torch import nn

from advmoe_worker.attacks import PGD, Attack, create_attack, eval_mode
from advmoe_worker.errors import BadTensorError


class ConstantModel(nn.Module):
    """Logits that ignore the input: every input gradient is exactly zero."""

    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.bias = nn.Parameter(torch.arange(num_classes, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1)


class NaNModel(nn.Module):
    """A linear model whose logits (and so input gradients) are NaN."""

    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.fc = nn.Linear(3 * 12 * 12, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * float("nan")


def test_eval_mode_restores_each_submodule_flag(trained):
    model = trained["moe"]
    model.train()
    model.router.eval()  # a mixed state that a plain model.train() afterwards would lose
    before = [m.training for m in model.modules()]
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before
    model.eval()


def test_attack_runs_in_eval_mode_and_restores_mixed_modes(trained, held_out):
    model = trained["moe"]
    x, y = held_out
    model.train()
    model.router.eval()
    before = [m.training for m in model.modules()]
    seen = []
    handle = model.register_forward_pre_hook(lambda m, args: seen.append(m.training))
    try:
        create_attack({"name": "pgd", "steps": 2}, model)(x[:8], y[:8])
    finally:
        handle.remove()
        after = [m.training for m in model.modules()]
        model.eval()
    assert seen and not any(seen)
    assert after == before


def test_attack_leaves_the_global_rng_alone(trained, held_out):
    x, y = held_out
    state = torch.get_rng_state()
    create_attack({"name": "pgd", "steps": 2}, trained["dense"])(x[:8], y[:8])
    assert torch.equal(state, torch.get_rng_state())


def test_attack_writes_no_parameter_grad_and_keeps_existing_ones(trained, held_out):
    model = trained["dense"]
    x, y = held_out
    first = next(model.parameters())
    first.grad = torch.full_like(first, 0.5)
    try:
        create_attack({"name": "pgd", "steps": 2}, model)(x[:8], y[:8])
        assert torch.equal(first.grad, torch.full_like(first, 0.5))
        assert all(p.grad is None for p in model.parameters() if p is not first)
    finally:
        first.grad = None


def test_attack_works_when_called_under_no_grad(trained, held_out):
    x, y = held_out
    with torch.no_grad():
        x_adv = create_attack({"name": "pgd"}, trained["dense"])(x, y)
    assert accuracy(trained["dense"], x_adv, y) < accuracy(trained["dense"], x, y)


def test_output_keeps_the_callers_dtype_and_device(trained, held_out):
    x, y = held_out
    x64 = x[:4].double()
    x_adv = create_attack({"name": "fgsm"}, trained["dense"])(x64, y[:4])
    assert x_adv.dtype == torch.float64 and x_adv.device == x64.device
    assert (x_adv - x64).abs().max() <= 8 / 255 + 1e-6


def test_pixels_outside_the_unit_box_are_refused(trained, held_out):
    x, y = held_out
    with pytest.raises(BadTensorError, match=r"\[0, 1\]"):
        create_attack({"name": "pgd"}, trained["dense"])(x[:4] * 255, y[:4])


@pytest.mark.parametrize(
    "x, y",
    [
        (torch.rand(4, 3, 12, 12), torch.zeros(5, dtype=torch.long)),
        (torch.rand(4, 3, 12, 12), torch.zeros(4)),
        (torch.rand(3, 12, 12), torch.zeros(3, dtype=torch.long)),
        (torch.randint(0, 2, (4, 3, 12, 12)), torch.zeros(4, dtype=torch.long)),
    ],
    ids=["batch-mismatch", "float-labels", "3d-input", "integer-pixels"],
)
def test_badly_shaped_inputs_are_refused(trained, x, y):
    with pytest.raises(BadTensorError):
        create_attack({"name": "pgd"}, trained["dense"])(x, y)


def test_l2_steps_stay_in_the_ball_and_move_as_far_as_allowed(trained, held_out):
    x, y = held_out
    attack = create_attack(
        {"name": "pgd", "norm": "l2", "eps": 0.25, "steps": 20, "step_size": 0.05}, trained["dense"]
    )
    delta = (attack(x, y) - x).flatten(1).norm(dim=1)
    assert delta.max() <= 0.25 + 1e-6
    assert delta.median() > 0.2  # the attack uses the budget it has


def test_restarts_keep_per_sample_the_strongest_example(trained, held_out):
    model = trained["moe"]
    x, y = held_out
    single = create_attack({"name": "pgd", "steps": 3, "seed": 5}, model)(x, y)
    many = create_attack({"name": "pgd", "steps": 3, "restarts": 4, "seed": 5}, model)(x, y)
    with torch.no_grad():
        fooled_single = model(single).argmax(1) != y
        fooled_many = model(many).argmax(1) != y
    # the first restart draws the same start as the single run, so nothing can be lost
    assert bool((fooled_many | ~fooled_single).all())
    assert fooled_many.sum() >= fooled_single.sum()


def test_a_per_call_seed_overrides_the_attack_seed(trained, held_out):
    x, y = held_out
    attack = create_attack({"name": "pgd", "steps": 1, "seed": 3}, trained["dense"])
    assert torch.equal(attack(x, y, seed=11), attack(x, y, seed=11))
    assert not torch.equal(attack(x, y, seed=11), attack(x, y, seed=12))
    assert torch.equal(
        attack(x, y), create_attack({"name": "pgd", "steps": 1}, trained["dense"])(x, y, seed=3)
    )


def test_zero_input_gradients_are_counted():
    attack = PGD(ConstantModel(), steps=3)
    x, y = torch.rand(5, 3, 12, 12), torch.zeros(5, dtype=torch.long)
    attack(x, y)
    assert attack.stats.to_dict() == {"sample_steps": 15, "zero": 15, "non_finite": 0}


def test_non_finite_input_gradients_are_counted_and_never_reach_the_pixels():
    attack = PGD(NaNModel(), steps=3)
    x, y = torch.rand(5, 3, 12, 12), torch.zeros(5, dtype=torch.long)
    x_adv = attack(x, y)
    assert attack.stats.non_finite == 15 and attack.stats.sample_steps == 15
    assert torch.isfinite(x_adv).all()
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6


def test_stats_accumulate_until_reset(trained, held_out):
    x, y = held_out
    attack = create_attack({"name": "pgd", "steps": 2}, trained["dense"])
    attack(x[:4], y[:4])
    attack(x[:4], y[:4])
    assert attack.stats.sample_steps == 16
    attack.reset_stats()
    assert attack.stats.sample_steps == 0


def test_a_subclass_writes_only_its_loss(trained, held_out):
    class NegativeMargin(Attack):
        name = "margin"

        def loss(self, x_adv, y, ctx):
            logits = self.model(x_adv)
            true = logits.gather(1, y[:, None])[:, 0]
            other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
            return other - true

    model = trained["dense"]
    x, y = held_out
    x_adv = NegativeMargin(model)(x, y)
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6
    assert accuracy(model, x_adv, y) < 0.2


def test_nan_pixels_are_refused(trained, held_out):
    x, y = held_out
    x = x[:4].clone()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(BadTensorError):
        create_attack({"name": "pgd"}, trained["dense"])(x, y[:4])
