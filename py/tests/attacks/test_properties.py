"""Properties every registered attack keeps, on every kind of model it applies to."""

from __future__ import annotations

import pytest
import torch
from attack_fixtures import MODEL_KINDS

from advmoe_worker.attacks import create_attack, get_attack_class, list_attacks

CASES = [
    (name, kind, norm)
    for name in list_attacks()
    for kind in MODEL_KINDS
    for norm in get_attack_class(name).norms
    if kind != "dense" or not get_attack_class(name).requires_moe
]


def norm_of(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)


@pytest.mark.parametrize("name, kind, norm", CASES, ids=["-".join(c) for c in CASES])
def test_attack_keeps_its_promises(trained, held_out, name, kind, norm):
    model = trained[kind]
    x, y = held_out
    spec = {"name": name, "norm": norm, "seed": 7}
    if name != "fgsm":
        spec["steps"] = 5
    model.train()  # the attack must switch to eval and come back
    modes = [m.training for m in model.modules()]
    buffers = [b.clone() for b in model.buffers()]
    try:
        attack = create_attack(spec, model)
        x_adv = attack(x, y)
        again = create_attack(spec, model)(x, y)
        after = [m.training for m in model.modules()]
    finally:
        model.eval()
    eps = attack.eps
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert norm_of(x_adv - x, norm).max().item() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.equal(x_adv, again), "same seed, same result"
    assert after == modes
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
    assert all(p.grad is None for p in model.parameters())
    assert attack.stats.sample_steps == attack.steps * x.shape[0]


@pytest.mark.parametrize("name", [n for n in list_attacks() if get_attack_class(n).requires_moe])
def test_routing_attacks_refuse_dense_models(trained, name):
    from advmoe_worker.errors import SpecError

    with pytest.raises(SpecError) as info:
        create_attack({"name": name}, trained["dense"])
    assert info.value.path == "name" and info.value.rule == "requires_moe"
