"""Parameters and MACs, against the numbers measured on the paper's code (ResNet-18, 32 px)."""

from __future__ import annotations

import pytest
from model_cases import model_spec, tiny_spec

from advmoe_worker.models import count_parameters, create_model, measure_costs

G = 1e9


@pytest.fixture(scope="module")
def resnet18_costs():
    def costs(**spec):
        return measure_costs(create_model(model_spec(arch="resnet18", **spec)))

    return {
        "dense": costs(),
        "sdense": costs(ratio=0.5),
        "moe": costs(ratio=0.5, moe={"experts": 2}),
    }


def test_dense_resnet18_costs_what_the_papers_code_measures(resnet18_costs):
    dense = resnet18_costs["dense"]

    assert dense["macs_dense"] / G == pytest.approx(0.555, abs=0.001)
    assert dense["macs_active"] == dense["macs_masked"] == dense["macs_dense"]
    assert dense["macs_router"] == 0 and dense["params_router"] == 0
    assert dense["params_total"] / 1e6 == pytest.approx(11.17, abs=0.01)


def test_moe_resnet18_active_pathway_and_router_match_the_papers_code(resnet18_costs):
    moe = resnet18_costs["moe"]

    assert moe["macs_dense"] / G == pytest.approx(0.555, abs=0.001)
    assert moe["macs_active"] / G == pytest.approx(0.152, abs=0.001)
    assert moe["macs_router"] / G == pytest.approx(0.041, abs=0.001)
    assert moe["macs_masked"] / G == pytest.approx(0.298, abs=0.001)
    assert moe["params_backbone"] / 1e6 == pytest.approx(5.57, abs=0.01)
    assert moe["params_router"] / 1e6 == pytest.approx(0.27, abs=0.005)
    assert moe["params_total"] == moe["params_backbone"] + moe["params_router"]
    # the paper's claim: more than 50% fewer MACs than dense at r = 0.5, router included
    assert (moe["macs_active"] + moe["macs_router"]) / moe["macs_dense"] < 0.5


def test_s_dense_resnet18_costs_exactly_one_moe_pathway(resnet18_costs):
    # 0.152 G, where the paper's code gets 0.139 G by also narrowing the CIFAR stem
    assert resnet18_costs["sdense"]["macs_active"] == resnet18_costs["moe"]["macs_active"]


def test_the_image_router_costs_the_same_at_imagenet_resolution():
    spec = model_spec(
        arch="resnet18_imagenet", input_size=224, width=0.125, ratio=0.5, moe={"router_width": 1}
    )
    model = create_model(spec)

    costs = measure_costs(model)

    assert costs["macs_router"] / G == pytest.approx(0.041, abs=0.001)


def test_the_image_router_follows_the_backbone_width():
    narrow = measure_costs(create_model(model_spec(arch="resnet18", width=0.25, ratio=0.5, moe={})))
    full = measure_costs(
        create_model(model_spec(arch="resnet18", width=0.25, ratio=0.5, moe={"router_width": 1}))
    )

    # 16/32/64 channels scaled by 0.25 cost about 0.25^2 of the full router
    assert narrow["macs_router"] / full["macs_router"] == pytest.approx(1 / 16, rel=0.2)
    # so a narrow MoE stays cheaper than its dense model, router included
    dense = measure_costs(create_model(model_spec(arch="resnet18", width=0.25)))
    assert narrow["macs_active"] + narrow["macs_router"] < 0.5 * dense["macs_dense"]
    assert full["macs_router"] > dense["macs_dense"] * 0.5


def test_layer_gates_are_cheap_and_counted_as_router():
    model = create_model(tiny_spec("resnet18", "layer"))

    costs = measure_costs(model)
    params = count_parameters(model)

    assert 0 < costs["macs_router"] < 0.01 * costs["macs_active"]
    assert params["params_router"] == sum(p.numel() for p in model.router.parameters())


def test_measuring_leaves_the_model_as_it_was():
    model = create_model(tiny_spec("vgg16_bn", "image"))
    model.set_execution("masked")

    measure_costs(model)

    assert model.training and model.execution == "masked"
    assert all(layer.mac_counter is None for layer in model._moe_layers)
