"""Our PGD against torchattacks' PGD on the same model, inputs and seed."""

from __future__ import annotations

import pytest
import torch
from attack_fixtures import accuracy

from advmoe_worker.attacks import create_attack

torchattacks = pytest.importorskip("torchattacks")


def theirs(model, x, y, *, norm, eps, step_size, steps, random_start, seed):
    # torchattacks draws its random start from the global RNG: seed it in a private fork
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if norm == "linf":
            attack = torchattacks.PGD(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)
        else:
            attack = torchattacks.PGDL2(
                model, eps=eps, alpha=step_size, steps=steps, random_start=random_start
            )
        return attack(x, y)


@pytest.mark.parametrize(
    "kind, norm, eps, step_size, random_start",
    [
        ("moe", "linf", 8 / 255, 2 / 255, True),
        ("dense", "linf", 2 / 255, 0.5 / 255, True),
        ("moe_layer", "linf", 2 / 255, 0.5 / 255, False),
        ("dense", "l2", 0.1, 0.025, False),
    ],
)
def test_robust_accuracy_matches_torchattacks_within_one_point(
    trained, held_out, kind, norm, eps, step_size, random_start
):
    model = trained[kind]
    x, y = held_out
    settings = {"norm": norm, "eps": eps, "step_size": step_size, "steps": 10, "random_start": random_start}
    ours = create_attack({"name": "pgd", "seed": 3, **settings}, model)(x, y)
    reference = theirs(model, x, y, seed=3, **settings)
    ra_ours, ra_theirs = accuracy(model, ours, y), accuracy(model, reference, y)
    assert 0.0 < ra_theirs < accuracy(model, x, y), "the comparison needs a model neither broken nor robust"
    assert abs(ra_ours - ra_theirs) <= 0.01
