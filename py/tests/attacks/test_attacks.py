"""What each attack is for: the effect it must have on a quickly trained model."""

from __future__ import annotations

import torch
from attack_fixtures import accuracy

from advmoe_worker.attacks import create_attack


def test_pgd_breaks_a_quickly_trained_model_at_8_over_255(trained, held_out):
    model = trained["dense"]
    x, y = held_out
    assert accuracy(model, x, y) > 0.9
    x_adv = create_attack({"name": "pgd"}, model)(x, y)
    assert accuracy(model, x_adv, y) <= 0.05


def test_pgd_beats_fgsm_and_more_steps_beat_fewer(trained, held_out):
    model = trained["moe"]
    x, y = held_out
    fgsm = accuracy(model, create_attack({"name": "fgsm"}, model)(x, y), y)
    pgd10 = accuracy(model, create_attack({"name": "pgd"}, model)(x, y), y)
    pgd30 = accuracy(model, create_attack({"name": "pgd", "steps": 30}, model)(x, y), y)
    # more steps find more examples; two samples of slack, since an ordering of attack
    # outcomes is a tendency that float rounding can flip on a sample or two
    slack = 2 / len(y)
    assert pgd30 <= pgd10 + slack and pgd10 <= fgsm + slack
    assert pgd10 < fgsm or fgsm == 0


def test_router_attack_moves_the_routing_and_leaves_the_pathway_alone(trained, held_out):
    model = trained["moe"]
    x, y = held_out
    with torch.no_grad():
        clean_routes = model.forward_routed(x).routes
    x_adv = create_attack({"name": "router"}, model)(x, y)
    with torch.no_grad():
        adv_routes = model.forward_routed(x_adv).routes
        frozen = model.forward_routed(x_adv, routes=clean_routes).logits.argmax(1)
    moved = (adv_routes != clean_routes).float().mean().item()
    assert moved > 0.5
    # the experts are not attacked: on the clean pathway the examples are still recognized
    assert (frozen == y).float().mean().item() >= accuracy(model, x, y) - 0.1


def test_pathway_attack_breaks_the_frozen_pathway(trained, held_out):
    model = trained["moe"]
    x, y = held_out
    with torch.no_grad():
        routes = model.forward_routed(x).routes
    x_adv = create_attack({"name": "pathway"}, model)(x, y)
    with torch.no_grad():
        frozen = model.forward_routed(x_adv, routes=routes).logits.argmax(1)
    assert (frozen == y).float().mean().item() <= 0.1


def test_trades_attack_raises_the_kl_to_the_clean_prediction(trained, held_out):
    model = trained["dense"]
    x, y = held_out
    x_adv = create_attack({"name": "trades"}, model)(x, y)
    with torch.no_grad():
        p = model(x).log_softmax(1)
        kl = lambda z: (p.exp() * (p - model(z).log_softmax(1))).sum(1).mean().item()  # noqa: E731
        noise = (x + torch.empty_like(x).uniform_(-8 / 255, 8 / 255)).clamp(0, 1)
        assert kl(x_adv) > 10 * kl(noise)


def test_trades_router_term_needs_an_moe_model_and_changes_the_result(trained, held_out):
    x, y = held_out
    plain = create_attack({"name": "trades", "steps": 3}, trained["moe"])(x, y)
    routed = create_attack({"name": "trades", "steps": 3, "router_weight": 1.0}, trained["moe"])(x, y)
    assert not torch.equal(plain, routed)


def test_official_attack_reports_beta_and_uses_the_router_term(trained, held_out):
    model = trained["moe"]
    x, y = held_out
    attack = create_attack({"name": "official", "steps": 3}, model)
    assert attack.settings()["beta"] == 6.0
    with_router = attack(x, y)
    without = create_attack({"name": "official", "steps": 3, "beta": 0}, model)(x, y)
    plain = create_attack({"name": "pgd", "steps": 3}, model)(x, y)
    assert torch.equal(without, plain)  # beta = 0 is plain CE PGD
    assert not torch.equal(with_router, plain)
