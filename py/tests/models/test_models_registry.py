"""Properties every registered model holds, dense and MoE (image router, per-layer gates)."""

from __future__ import annotations

import pytest
import torch
from model_cases import CASES, tiny_spec

from advmoe_worker.models import create_model

BATCH = 6


def build(arch: str, variant: str, **overrides):
    return create_model(tiny_spec(arch, variant, **overrides))


def mixed_routes(model, batch: int) -> torch.Tensor:
    """A routing that is neither sorted nor constant: (B, L) cycling through the experts."""
    L, E = model.num_routing_layers, model.num_experts
    pattern = (torch.arange(batch)[:, None] * 7 + torch.arange(L)[None, :] * 3) % E
    return pattern.long()


@pytest.mark.parametrize(("arch", "variant"), CASES)
def test_forward_gives_finite_logits_and_routes_of_the_right_shape(arch, variant, images):
    model = build(arch, variant)
    x = images(BATCH, model.spec["input_size"])

    out = model.forward_routed(x)

    L, E = model.num_routing_layers, model.num_experts
    assert out.logits.shape == (BATCH, 10)
    assert torch.isfinite(out.logits).all()
    assert out.routes.shape == (BATCH, L) and out.routes.dtype == torch.long
    assert out.scores.shape == (BATCH, L, E) and out.router_logits.shape == (BATCH, L, E)
    assert torch.equal(model(x), out.logits)
    if variant == "dense":
        assert (model.is_moe, E, L) == (False, 1, 0)
    else:
        assert model.is_moe and E == 2
        assert L == (1 if variant == "image" else model.num_moe_layers)
        assert model.num_moe_layers > 0
        torch.testing.assert_close(out.scores.sum(-1), torch.ones(BATCH, L))
        assert torch.equal(out.routes, out.scores.argmax(-1))


@pytest.mark.parametrize(("arch", "variant"), CASES)
def test_every_parameter_receives_a_gradient_and_the_router_learns_through_the_ste(arch, variant, images):
    model = build(arch, variant)
    x = images(BATCH, model.spec["input_size"])

    model(x).logsumexp(-1).sum().backward()

    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    if variant != "dense":
        router_grad = sum(p.grad.abs().sum() for p in model.router_parameters())
        assert router_grad > 0, "the straight-through path gave the router no gradient"


@pytest.mark.parametrize(("arch", "variant"), [c for c in CASES if c[1] != "dense"])
def test_router_and_expert_parameters_partition_the_model(arch, variant):
    model = build(arch, variant)
    router = {id(p) for p in model.router_parameters()}
    experts = {id(p) for p in model.expert_parameters()}

    assert router and experts and not router & experts
    assert router | experts == {id(p) for p in model.parameters()}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize(("arch", "variant"), [c for c in CASES if c[1] != "dense"])
def test_sparse_and_masked_execution_give_the_same_outputs_and_gradients(arch, variant, mode, images):
    model = build(arch, variant).double().train(mode == "train")
    x0 = images(BATCH, model.spec["input_size"], dtype=torch.float64)
    forced = mixed_routes(model, BATCH)
    runs = {}
    for execution in ("masked", "sparse"):
        model.set_execution(execution)
        model.zero_grad(set_to_none=True)
        x = x0.clone().requires_grad_()  # eval mode with input gradients: what attacks do
        free = model.forward_routed(x)  # the router decides; its gradient goes through the STE
        pinned = model.forward_routed(x, routes=forced)  # unsorted, mixed groups
        (free.logits.logsumexp(-1).sum() + pinned.logits.pow(2).mean()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        grads["input"] = x.grad
        runs[execution] = (free, pinned, grads)

    (free_m, pinned_m, grads_m), (free_s, pinned_s, grads_s) = runs["masked"], runs["sparse"]
    assert torch.equal(free_m.routes, free_s.routes)
    torch.testing.assert_close(free_s.logits, free_m.logits, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(pinned_s.logits, pinned_m.logits, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(free_s.scores, free_m.scores, rtol=1e-9, atol=1e-10)
    for name in grads_m:
        torch.testing.assert_close(grads_s[name], grads_m[name], rtol=1e-7, atol=1e-9, msg=name)


@pytest.mark.parametrize(("arch", "variant"), [c for c in CASES if c[1] != "dense"])
def test_forced_routes_pin_the_pathway_and_cut_the_router_off(arch, variant, images):
    model = build(arch, variant)
    x = images(BATCH, model.spec["input_size"])
    forced = mixed_routes(model, BATCH)

    out = model.forward_routed(x, routes=forced)
    out.logits.sum().backward()

    assert torch.equal(out.routes, forced)
    assert all(p.grad is None for p in model.router_parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.expert_parameters())
    other = model.forward_routed(x, routes=1 - forced).logits
    assert not torch.allclose(other, out.logits), "a different pathway should compute something else"


@pytest.mark.parametrize(("arch", "variant"), CASES)
def test_seeded_init_is_reproducible_and_leaves_the_global_rng_alone(arch, variant):
    state = torch.get_rng_state()
    a, b = build(arch, variant, seed=7), build(arch, variant, seed=7)
    c = build(arch, variant, seed=8)

    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize(("arch", "variant"), CASES)
def test_eval_mode_forward_is_deterministic_and_batch_independent(arch, variant, images):
    model = build(arch, variant).eval()
    x = images(BATCH, model.spec["input_size"])

    with torch.no_grad():
        full = model(x)
        halves = torch.cat([model(x[:3]), model(x[3:])])

    torch.testing.assert_close(halves, full, rtol=1e-4, atol=1e-5)
