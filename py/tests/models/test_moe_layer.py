"""The MoE conv and its straight-through top-1 routing, on hand-made routes."""

from __future__ import annotations

import pytest
import torch

from advmoe_worker.models import MoEConv2d, top1_route


class FixedRouting:
    """A routing context that hands every layer one Route, like the image router."""

    def __init__(self, route, execution):
        self.execution = execution
        self._route = route

    def route(self, layer_index, x):
        return self._route


def test_ties_go_to_the_lower_expert_index():
    logits = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.0, 1.0, 3.0]])

    route = top1_route(logits)

    assert route.index.tolist() == [0, 0, 1, 2]


def test_the_gate_is_exactly_one_and_passes_the_mask_gradient_to_the_chosen_score():
    logits = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)

    route = top1_route(logits)
    weights = torch.arange(1.0, 6.0, dtype=torch.float64)
    (route.gate * weights).sum().backward()

    assert torch.equal(route.gate.detach(), torch.ones(5, dtype=torch.float64))
    # d gate_b / d logits_b = d softmax_chosen / d logits = p_c (onehot_c - p)
    p = torch.softmax(logits.detach(), -1)
    onehot = torch.nn.functional.one_hot(route.index, 4).double()
    chosen = p.gather(1, route.index[:, None])
    torch.testing.assert_close(logits.grad, weights[:, None] * chosen * (onehot - p))


def test_temperature_changes_scores_but_not_the_choice_and_noise_only_acts_in_training():
    logits = torch.tensor([[2.0, 1.0, 0.0]])

    cold = top1_route(logits, temperature=0.5)
    hot = top1_route(logits, temperature=4.0)
    noisy_eval = top1_route(logits, noise=100.0, training=False)
    torch.manual_seed(0)
    noisy_train = [top1_route(logits, noise=100.0, training=True).index.item() for _ in range(50)]

    assert cold.index.item() == hot.index.item() == 0
    assert cold.scores[0, 0] > hot.scores[0, 0]
    assert torch.equal(noisy_eval.scores, torch.softmax(logits, -1))
    assert len(set(noisy_train)) > 1


def test_forced_routes_use_a_constant_gate():
    logits = torch.randn(4, 2, requires_grad=True)

    route = top1_route(logits, forced=torch.tensor([1, 0, 1, 1]))

    assert route.index.tolist() == [1, 0, 1, 1]
    assert not route.gate.requires_grad and torch.equal(route.gate, torch.ones(4))


def make_layer(experts=3, in_channels=4, out_channels=5, stride=1):
    torch.manual_seed(0)
    layer = MoEConv2d(in_channels, out_channels, 3, stride, 1, num_experts=experts, bias=True)
    with torch.no_grad():
        layer.bias.normal_()
    return layer.double()


@pytest.mark.parametrize(
    "expert_of_sample",
    [[2, 0, 2, 1, 0, 2, 1], [1, 1, 1, 1, 1, 1, 1], [0, 0, 2, 2, 2, 2, 2], [2, 2, 0, 0, 0, 2, 2]],
    ids=["unsorted", "one-expert", "sorted-with-a-gap", "unsorted-with-a-gap"],
)
@pytest.mark.parametrize("stride", [1, 2])
def test_sparse_equals_masked_in_outputs_and_gradients(expert_of_sample, stride):
    layer = make_layer(stride=stride)
    x0 = torch.randn(len(expert_of_sample), 4, 9, 9, dtype=torch.float64)
    logits0 = torch.full((len(expert_of_sample), 3), -1.0, dtype=torch.float64)
    logits0[torch.arange(len(expert_of_sample)), torch.tensor(expert_of_sample)] = 1.0
    logits0 += 0.1 * torch.randn_like(logits0)
    side = (9 + stride - 1) // stride
    target = torch.randn(len(expert_of_sample), 5, side, side, dtype=torch.float64)
    results = {}
    for execution in ("masked", "sparse"):
        layer.zero_grad(set_to_none=True)
        x = x0.clone().requires_grad_()
        logits = logits0.clone().requires_grad_()
        route = top1_route(logits)
        y = layer(x, FixedRouting(route, execution))
        (y * target).sum().backward()
        results[execution] = (y, x.grad, logits.grad, layer.weight.grad, layer.bias.grad)

    assert route.index.tolist() == expert_of_sample
    for masked, sparse in zip(results["masked"], results["sparse"], strict=True):
        torch.testing.assert_close(sparse, masked, rtol=1e-10, atol=1e-12)
    unused = set(range(3)) - set(expert_of_sample)
    for e in unused:  # an expert nobody chose learns nothing
        assert results["sparse"][3][e * 5 : (e + 1) * 5].abs().sum() == 0


def test_sparse_output_matches_a_plain_conv_with_each_experts_weights():
    layer = make_layer()
    x = torch.randn(4, 4, 6, 6, dtype=torch.float64)
    route = top1_route(torch.eye(3, dtype=torch.float64)[[1, 0, 2, 1]])

    with torch.no_grad():
        y = layer(x, FixedRouting(route, "sparse"))

    for b, e in enumerate([1, 0, 2, 1]):
        w, bias = layer.weight[e * 5 : (e + 1) * 5], layer.bias[e * 5 : (e + 1) * 5]
        expected = torch.nn.functional.conv2d(x[b : b + 1], w, bias, 1, 1)
        torch.testing.assert_close(y[b : b + 1], expected)


def test_an_empty_batch_gives_an_empty_output():
    layer = make_layer()
    route = top1_route(torch.zeros(0, 3, dtype=torch.float64))

    y = layer(torch.zeros(0, 4, 6, 6, dtype=torch.float64), FixedRouting(route, "sparse"))

    assert y.shape == (0, 5, 6, 6)


def test_the_sparse_path_reports_only_the_macs_it_runs():
    layer = make_layer()
    x = torch.randn(6, 4, 8, 8, dtype=torch.float64)
    route = top1_route(torch.eye(3, dtype=torch.float64)[[0, 1, 1, 2, 0, 0]])
    counted = {}
    for execution in ("masked", "sparse"):
        total = []
        layer.mac_counter = total.append
        with torch.no_grad():
            layer(x, FixedRouting(route, execution))
        counted[execution] = sum(total)
    layer.mac_counter = None

    per_expert_sample = 5 * 8 * 8 * 4 * 9  # C' x H x W x C_in x k x k
    assert counted["sparse"] == 6 * per_expert_sample
    assert counted["masked"] == 3 * 6 * per_expert_sample


def test_each_expert_is_initialized_with_its_own_fan_out():
    torch.manual_seed(0)
    layer = MoEConv2d(64, 64, 3, num_experts=4)

    expected_std = (2.0 / (64 * 9)) ** 0.5
    assert abs(layer.weight.std().item() - expected_std) / expected_std < 0.02
