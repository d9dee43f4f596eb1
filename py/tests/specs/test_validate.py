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
        "router_width": None,  # follows the model's width
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


@pytest.mark.parametrize(
    "name, spec, path, rule",
    [
        ("data", {"kind": "digits", "size": 2}, "size", "minimum"),
        ("data", {"kind": "tensors", "augment": {"flip": 1}}, "augment.flip", "type"),
        ("data", {"kind": "mnist"}, "kind", "enum"),
        ("data", {}, "kind", "required"),
        (
            "trainer",
            {"method": "pgd-at", "eval": {"attacks": [{"name": "pgd", "eps": -1}]}},
            "eval.attacks.0.eps",
            "minimum",
        ),
        (
            "trainer",
            {"method": "pgd-at", "eval": {"attacks": [{"name": "pgd", "epss": 1}]}},
            "eval.attacks.0.epss",
            "additionalProperties",
        ),
    ],
)
def test_a_discriminated_union_reports_the_error_of_the_branch_its_tag_picks(name, spec, path, rule):
    with pytest.raises(SpecError) as info:
        validate(name, spec)
    assert info.value.path == path and info.value.rule == rule
    assert info.value.message.startswith(f"{path}: ")


def test_a_union_error_path_carries_the_prefix():
    with pytest.raises(SpecError) as info:
        validate("data", {"kind": "digits", "size": 2}, path_prefix="data")
    assert info.value.path == "data.size"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused_with_their_path(value):
    with pytest.raises(SpecError) as info:
        validate("model", {"arch": "resnet18", "moe": {"noise": value}})
    assert info.value.path == "moe.noise" and info.value.rule == "finite"


def test_whole_floats_become_ints_where_the_schema_says_integer():
    spec = validate("model", {"arch": "resnet18", "num_classes": 10.0, "moe": {"experts": 2.0}})
    assert type(spec["num_classes"]) is int and type(spec["moe"]["experts"]) is int


HOSTILE = [0, -1, 2**63 - 1, 1.5, 32.0, -0.0, "", "x" * 300, None, True, False, b"\x00", [], {}, [1], {"": 1}]


def _instances(schema: dict) -> list:
    """{} and every property of the schema set to each hostile value, one at a time."""
    props = list(schema.get("properties", {}))
    out: list = [{}, [], None, "x"]
    for prop in props:
        out += [{prop: value} for value in HOSTILE]
        out.append({prop: HOSTILE[0], "unknown": 1})
    return out


def test_the_compiled_validator_never_accepts_what_jsonschema_refuses():
    # The compiled schema only short-cuts "valid"; a disagreement in that direction
    # would let through what the generated schema forbids.
    from advmoe_worker.schema_files import schema_dir
    from advmoe_worker.specs.validate import _fast_valid, _validator

    accepted = 0
    for path in sorted(schema_dir().rglob("*.json")):
        relative = str(path.relative_to(schema_dir()))
        validator = _validator(relative)
        for instance in _instances(validator.schema):
            if _fast_valid(relative, instance):
                accepted += 1
                assert validator.is_valid(instance), (relative, instance)
    assert accepted > 50  # the short cut is taken, not merely never wrong


def test_params_the_short_cut_accepts_still_get_defaults_and_integer_fixes():
    assert validate_method_params("echo", {"note": "x"}) == {"note": "x"}
    params = validate_method_params("trainer.step", {"handle": "trainer:1"})
    assert params == {"handle": "trainer:1"}
    with pytest.raises(SpecError) as err:
        validate_method_params("trainer.step", {"handle": "trainer:1", "steps": 2})
    assert err.value.to_wire()["details"]["path"] == "steps"
