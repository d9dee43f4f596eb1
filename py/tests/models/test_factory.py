"""The factory: what it builds from a spec, and the typed errors for specs it cannot build."""

from __future__ import annotations

import pytest
import torch
from model_cases import ARCHS, model_spec, tiny_spec

from advmoe_worker.errors import BadTensorError, NotFoundError, SpecError
from advmoe_worker.models import MoEConv2d, create_model, list_models

# MoE layers per backbone in the paper's code (E=2); DenseNet-40: its code cannot build it.
PAPER_MOE_LAYERS = {
    "resnet18": 16,
    "resnet18_imagenet": 19,
    "wrn28_10": 27,
    "vgg16_bn": 12,
    "densenet_cifar": 36,
}


def test_the_registry_holds_every_arch_the_wire_schema_names():
    assert set(list_models()) == {
        "resnet18",
        "resnet34",
        "resnet50",
        "wrn28_4",
        "wrn28_10",
        "wrn34_10",
        "vgg16_bn",
        "densenet_cifar",
        "resnet18_imagenet",
        "resnet50_imagenet",
    }


@pytest.mark.parametrize("arch", sorted(PAPER_MOE_LAYERS))
def test_moe_layers_sit_where_the_papers_code_puts_them(arch):
    model = create_model(tiny_spec(arch, "image"))

    assert model.num_moe_layers == PAPER_MOE_LAYERS[arch]


@pytest.mark.parametrize("arch", ARCHS)
def test_s_dense_is_one_pathway_of_the_moe_model(arch):
    sdense = create_model(tiny_spec(arch, "dense", ratio=0.5))
    moe = create_model(tiny_spec(arch, "image", ratio=0.5))
    dense_shapes = {k: v.shape for k, v in sdense.state_dict().items()}
    moe_convs = {n for n, m in moe.named_modules() if isinstance(m, MoEConv2d)}

    assert not any(isinstance(m, MoEConv2d) for m in sdense.modules())
    for name, tensor in moe.state_dict().items():
        if name.startswith("router."):
            continue
        module = name.rsplit(".", 1)[0]
        if module in moe_convs:  # (E*C', C_in, k, k) versus the S-Dense conv (C', C_in, k, k)
            c_out, *rest = dense_shapes[name]
            assert tuple(tensor.shape) == (2 * c_out, *rest), name
        else:
            assert tensor.shape == dense_shapes[name], name


def test_s_dense_resnet18_narrows_the_block_convs_but_not_the_cifar_stem():
    model = create_model(model_spec(arch="resnet18", ratio=0.5, width=0.25))
    backbone = model.backbone

    assert backbone.stem[0].out_channels == 16  # 64 * width, not scaled by r
    assert backbone.layer1[0].conv1.out_channels == 8  # floor(0.5 * 16)
    assert backbone.layer1[0].shortcut is not None  # 16 -> 8 channels at stride 1
    assert backbone.layer4[1].conv2.out_channels == 64  # floor(0.5 * 512 * 0.25)
    assert backbone.fc.in_features == 64


def test_width_scales_the_stem_and_ratio_gives_the_expert_width():
    model = create_model(model_spec(arch="wrn28_4", width=0.5, ratio=0.25, moe={"experts": 3}))
    first = model.backbone.block1[0]

    assert model.backbone.stem.out_channels == 2  # floor(0.25 * 16 * 0.5)
    assert first.conv1.out_channels == 8  # floor(0.25 * 64 * 0.5)
    assert first.conv1.weight.shape == (24, 2, 3, 3)  # E * C' filters


def test_geometry_comes_from_the_spec():
    model = create_model(model_spec(arch="resnet18", in_channels=1, num_classes=7, input_size=8, width=0.125))

    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 7)


def test_normalization_happens_inside_the_model():
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    plain = create_model(model_spec(arch="resnet18", width=0.125, input_size=8, seed=3)).eval()
    normed = create_model(
        model_spec(arch="resnet18", width=0.125, input_size=8, seed=3, normalize={"mean": mean, "std": std})
    ).eval()
    x = torch.rand(2, 3, 8, 8)

    expected = plain((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    torch.testing.assert_close(normed(x), expected)
    assert plain.state_dict().keys() == normed.state_dict().keys()


def test_an_unknown_arch_is_not_found_and_the_error_lists_the_known_ones():
    spec = {**model_spec(arch="resnet18"), "arch": "resnet1000"}

    with pytest.raises(NotFoundError) as caught:
        create_model(spec)

    assert caught.value.code == "not_found"
    assert caught.value.details["known"] == list_models()
    assert "resnet18" in caught.value.message and "resnet1000" in caught.value.message


@pytest.mark.parametrize(("arch", "minimum"), [("vgg16_bn", 16), ("resnet18_imagenet", 32)])
def test_an_input_too_small_for_the_arch_names_the_field_and_the_minimum(arch, minimum):
    with pytest.raises(SpecError) as caught:
        create_model(model_spec(arch=arch, input_size=minimum - 1))

    assert caught.value.code == "invalid_spec"
    assert caught.value.path == "input_size"
    assert caught.value.details["min"] == minimum
    assert str(minimum) in caught.value.message


@pytest.mark.parametrize("field", ["mean", "std"])
def test_normalization_must_have_one_value_per_input_channel(field):
    normalize = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    normalize[field] = [0.5, 0.5]

    with pytest.raises(SpecError) as caught:
        create_model(model_spec(arch="resnet18", normalize=normalize))

    assert caught.value.path == f"normalize.{field}"
    assert caught.value.rule == "length"


def test_a_spec_that_skipped_validation_is_refused_with_the_missing_field():
    with pytest.raises(SpecError) as caught:
        create_model({"arch": "resnet18"})

    assert caught.value.path == "num_classes"


def test_set_execution_refuses_an_unknown_mode_and_keeps_the_spec_in_step():
    model = create_model(tiny_spec("resnet18", "image"))

    model.set_execution("masked")
    with pytest.raises(SpecError) as caught:
        model.set_execution("fast")

    assert model.execution == "masked" and model.spec["moe"]["execution"] == "masked"
    assert caught.value.path == "moe.execution"


def test_inputs_and_routes_of_the_wrong_shape_or_type_are_bad_tensors():
    model = create_model(tiny_spec("resnet18", "layer"))
    x = torch.rand(2, 3, 16, 16)
    L = model.num_routing_layers

    with pytest.raises(BadTensorError):
        model(torch.rand(2, 1, 16, 16))
    with pytest.raises(BadTensorError):
        model(torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8))
    with pytest.raises(BadTensorError):
        model.forward_routed(x, routes=torch.zeros(2, L + 1, dtype=torch.long))
    with pytest.raises(BadTensorError):
        model.forward_routed(x, routes=torch.zeros(2, L))
    with pytest.raises(BadTensorError) as caught:
        model.forward_routed(x, routes=torch.full((2, L), 2, dtype=torch.long))
    assert caught.value.code == "bad_tensor"
