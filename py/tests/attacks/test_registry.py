"""The attack registry and factory: names, defaults, and typed errors that name the field."""

from __future__ import annotations

import inspect
import json

import pytest
import torch

from advmoe_worker.attacks import (
    DEFAULT_EPS,
    DEFAULT_STEP_SIZE,
    FGSM,
    PGD,
    OfficialAttack,
    PathwayAttack,
    RouterAttack,
    TradesKL,
    attack_batch,
    create_attack,
    get_attack_class,
    list_attacks,
)
from advmoe_worker.attacks.registry import attack_fields
from advmoe_worker.errors import NotFoundError, SpecError


def test_registry_lists_every_attack():
    assert list_attacks() == ["fgsm", "official", "pathway", "pgd", "router", "trades"]


@pytest.mark.parametrize(
    "name, cls",
    [
        ("fgsm", FGSM),
        ("pgd", PGD),
        ("trades", TradesKL),
        ("router", RouterAttack),
        ("pathway", PathwayAttack),
        ("official", OfficialAttack),
    ],
)
def test_factory_builds_the_registered_class(trained, name, cls):
    assert type(create_attack({"name": name}, trained["moe"])) is cls


def test_pgd_defaults_are_the_papers_evaluation_attack(trained):
    settings = create_attack({"name": "pgd"}, trained["dense"]).settings()
    assert settings == {
        "name": "pgd",
        "norm": "linf",
        "eps": 8 / 255,
        "steps": 10,
        "step_size": 2 / 255,
        "restarts": 1,
        "random_start": True,
        "seed": 0,
    }


def test_l2_defaults_and_nulls_mean_the_norms_default(trained):
    settings = create_attack(
        {"name": "pgd", "norm": "l2", "eps": None, "step_size": None}, trained["dense"]
    ).settings()
    assert (
        (settings["eps"], settings["step_size"]) == (DEFAULT_EPS["l2"], DEFAULT_STEP_SIZE["l2"]) == (0.5, 0.1)
    )


def test_fgsm_is_one_step_of_eps(trained):
    settings = create_attack({"name": "fgsm", "eps": 4 / 255}, trained["dense"]).settings()
    assert settings["steps"] == 1 and settings["step_size"] == 4 / 255 and settings["random_start"] is False


def test_default_seed_fills_a_missing_or_null_seed(trained):
    assert create_attack({"name": "pgd"}, trained["dense"], default_seed=9).seed == 9
    assert create_attack({"name": "pgd", "seed": None}, trained["dense"], default_seed=9).seed == 9
    assert create_attack({"name": "pgd", "seed": 4}, trained["dense"], default_seed=9).seed == 4


def test_unknown_attack_is_not_found_and_lists_the_known_ones(trained):
    with pytest.raises(NotFoundError) as info:
        create_attack({"name": "cw"}, trained["dense"], path="attacks.3")
    error = info.value
    assert error.code == "not_found"
    assert error.details["path"] == "attacks.3.name"
    assert error.details["known"] == list_attacks()
    assert "pgd" in error.message and "'cw'" in error.message


@pytest.mark.parametrize(
    "spec, path, rule",
    [
        ({"name": "pgd", "eps": -0.1}, "eps", "minimum"),
        ({"name": "pgd", "steps": 0}, "steps", "minimum"),
        ({"name": "pgd", "steps": 2.5}, "steps", "type"),
        ({"name": "pgd", "step_size": 0}, "step_size", "exclusiveMinimum"),
        ({"name": "pgd", "restarts": 0}, "restarts", "minimum"),
        ({"name": "pgd", "norm": "l1"}, "norm", "enum"),
        ({"name": "trades", "norm": "l2"}, "norm", "enum"),
        ({"name": "trades", "init_std": -1}, "init_std", "minimum"),
        ({"name": "official", "beta": -1}, "beta", "minimum"),
        ({"name": "pgd", "random_start": "yes"}, "random_start", "type"),
        ({"name": "pgd", "epsilon": 0.1}, "epsilon", "additionalProperties"),
        ({"name": "fgsm", "steps": 3}, "steps", "additionalProperties"),
    ],
)
def test_bad_settings_raise_spec_errors_that_name_the_field(trained, spec, path, rule):
    with pytest.raises(SpecError) as info:
        create_attack(spec, trained["moe"], path="attacks.1")
    assert info.value.code == "invalid_spec"
    assert info.value.path == f"attacks.1.{path}"
    assert info.value.rule == rule
    assert f"attacks.1.{path}" in info.value.message


def test_unsupported_norm_message_lists_the_supported_ones(trained):
    with pytest.raises(SpecError, match=r"supports norms \['linf'\], got 'l2'"):
        create_attack({"name": "trades", "norm": "l2"}, trained["dense"])


def test_router_kl_term_on_a_dense_model_names_router_weight(trained):
    with pytest.raises(SpecError) as info:
        create_attack({"name": "trades", "router_weight": 1.0}, trained["dense"])
    assert info.value.path == "router_weight"


def test_constructors_check_what_the_factory_checks(trained):
    with pytest.raises(SpecError) as info:
        PGD(trained["dense"], eps=-1)
    assert info.value.path == "eps"


def test_attack_batch_returns_adversarial_tensors(trained, held_out):
    x, y = held_out
    x_adv = attack_batch(trained["dense"], x[:8], y[:8], {"name": "pgd", "steps": 2})
    assert x_adv.shape == (8, 3, 12, 12)
    assert (x_adv - x[:8]).abs().max() <= 8 / 255 + 1e-6
    assert not torch.equal(x_adv, x[:8])


def test_python_defaults_match_the_generated_schema(repo_root):
    path = repo_root / "schemas" / "specs" / "attack.json"
    if not path.is_file():
        pytest.skip("schemas/specs/attack.json is not generated yet (npm run schemas)")
    schema = json.loads(path.read_text())
    branches = schema.get("oneOf") or schema.get("anyOf") or []
    assert branches, "the attack schema is a union over attack names"
    seen = set()
    for branch in branches:
        props = branch["properties"]
        name = props["name"]["const"]
        seen.add(name)
        defaults = {k: v["default"] for k, v in props.items() if "default" in v}

        cls = get_attack_class(name)
        signature = inspect.signature(cls.__init__).parameters
        assert set(props) - {"name"} == set(attack_fields(cls)), name
        for field, default in defaults.items():
            assert signature[field].default == default, f"{name}.{field}"
    assert seen == set(list_attacks())
