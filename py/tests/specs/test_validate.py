import pytest

from advmoe_worker.errors import NotFoundError, SpecError
from advmoe_worker.specs import validate, validate_method_params


def test_defaults_come_from_the_generated_schema():
    spec = validate("model", {"arch": "resnet18", "moe": {"experts": 4}})
    assert spec["ratio"] == 1 and spec["num_classes"] == 10
    assert spec["moe"] == {
        "experts": 4,
        "router": "image",
        "execution": "sparse",
        "noise": 0,
        "temperature": 1,
        "router_width": 1,
    }
    assert validate("model", {"arch": "resnet18"})["moe"] is None


def test_validation_does_not_mutate_the_input():
    spec = {"arch": "vgg16_bn"}
    validate("model", spec)
    assert spec == {"arch": "vgg16_bn"}


@pytest.mark.parametrize(
    "spec, path, rule",
    [
        ({"arch": "resnet19"}, "arch", "enum"),
        ({"arch": "resnet18", "ratio": 0}, "ratio", "exclusiveMinimum"),
        ({"arch": "resnet18", "ratio": 1.5}, "ratio", "maximum"),
        ({"arch": "resnet18", "moe": {"experts": 0}}, "moe.experts", "minimum"),
        ({"arch": "resnet18", "epss": 1}, "epss", "additionalProperties"),
        ({}, "arch", "required"),
        ({"arch": "resnet18", "num_classes": 2.5}, "num_classes", "type"),
    ],
)
def test_errors_name_the_field_and_the_rule(spec, path, rule):
    with pytest.raises(SpecError) as info:
        validate("model", spec)
    assert info.value.path == path and info.value.rule == rule
    assert path in info.value.message


def test_unknown_spec_names_list_the_known_ones():
    with pytest.raises(NotFoundError) as info:
        validate("nope", {})
    assert "model" in info.value.details["known"]


def test_method_params_are_validated_with_defaults():
    assert validate_method_params("sleep", {"seconds": 1}) == {"seconds": 1, "tick": 0.05}
    assert validate_method_params("no-such-method", {"x": 1}) is None
    with pytest.raises(SpecError, match="seconds"):
        validate_method_params("sleep", {"seconds": -1})
