"""Expert-load statistics and routing warnings."""

from __future__ import annotations

import math

import pytest
import torch

from advmoe_worker.models import routing_stats, routing_warnings


def test_stats_give_histogram_shares_entropy_and_max_share_per_column():
    routes = torch.tensor([[0, 1], [0, 1], [1, 1], [1, 1]])

    stats = routing_stats(routes, num_experts=2)

    assert stats["histogram"] == [[2, 2], [0, 4]]
    assert stats["share"] == [[0.5, 0.5], [0.0, 1.0]]
    assert stats["entropy"][0] == pytest.approx(math.log(2))
    assert stats["entropy"][1] == pytest.approx(0.0)
    assert stats["entropy_normalized"] == pytest.approx([1.0, 0.0])
    assert stats["max_share"] == [0.5, 1.0]
    assert (stats["num_samples"], stats["num_experts"]) == (4, 2)


def test_a_collapsed_column_is_flagged_and_a_balanced_one_is_not():
    routes = torch.tensor([[i % 2, 1] for i in range(20)])

    warnings = routing_warnings(routing_stats(routes, 2), max_share=0.9)

    assert [w["code"] for w in warnings] == ["routing_collapse"]
    assert (warnings[0]["layer"], warnings[0]["expert"]) == (1, 1)
    assert warnings[0]["share"] == 1.0
    assert routing_warnings(routing_stats(routes, 2), max_share=1.0) == []


def test_non_finite_router_scores_are_flagged():
    scores = torch.tensor([[[0.5, 0.5]], [[float("nan"), 0.5]], [[float("inf"), 0.0]]])
    stats = routing_stats(torch.zeros(3, 1, dtype=torch.long) + torch.tensor([[0], [1], [0]]), 2)

    warnings = routing_warnings(stats, scores)

    assert [w["code"] for w in warnings] == ["non_finite_scores"]
    assert warnings[0]["count"] == 2


def test_empty_batches_dense_models_and_single_experts_raise_no_warnings():
    empty = routing_stats(torch.zeros(0, 2, dtype=torch.long), 3)
    dense = routing_stats(torch.zeros(5, 0, dtype=torch.long), 1)
    single = routing_stats(torch.zeros(5, 1, dtype=torch.long), 1)

    assert empty["histogram"] == [[0, 0, 0], [0, 0, 0]] and empty["max_share"] == [0.0, 0.0]
    assert dense["histogram"] == [] and single["entropy_normalized"] == [0.0]
    assert routing_warnings(empty) == routing_warnings(dense) == routing_warnings(single) == []
