"""Validates params and specs against `schemas/*.json` and fills in their defaults.

The JSON Schemas are generated from the TypeScript zod schemas (`npm run schemas`), so
a client in any language gets the same rules and the same defaults as the SDK.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ..errors import NotFoundError, SpecError
from ..schema_files import schema_dir


@functools.cache
def _validator(relative: str) -> Draft202012Validator | None:
    path = schema_dir() / relative
    if not path.is_file():
        return None
    return Draft202012Validator(json.loads(path.read_text()))


@functools.cache
def _compiled(relative: str) -> Callable[[Any], Any] | None:
    """The schema compiled to Python code: it decides "valid" about ten times sooner
    than jsonschema. jsonschema still has the last word whenever it says no, so its
    error messages (and its rules) stay the ones users see."""
    validator = _validator(relative)
    if validator is None:
        return None
    try:
        # No defaults (they are filled along the matched branch below) and no formats
        # (jsonschema does not check them either).
        return fastjsonschema.compile(validator.schema, use_default=False, use_formats=False)
    except Exception:  # a schema it cannot compile is checked by jsonschema alone
        return None


def _fast_valid(relative: str, instance: Any) -> bool:
    compiled = _compiled(relative)
    if compiled is None:
        return False
    try:
        compiled(instance)
    except Exception:  # not proven valid here: jsonschema decides, and explains
        return False
    return True


def validate(name: str, spec: Any, path_prefix: str = "") -> dict[str, Any]:
    """Checks `spec` against `schemas/specs/<name>.json`; returns a copy with defaults filled."""
    validator = _validator(f"specs/{name}.json")
    if validator is None:
        raise NotFoundError(f"no spec schema named {name!r}", {"known": known_specs()})
    return _check(validator, spec, path_prefix, f"specs/{name}.json")


def validate_method_params(method: str, params: Any) -> dict[str, Any] | None:
    """Checks request params; None when the method has no schema."""
    validator = _validator(f"methods/{method}.params.json")
    if validator is None:
        return None
    params = {} if params is None else params
    if params == {}:
        # The most common params of all; its outcome never changes, so check it once.
        filled = _empty_params(method)
        return copy.deepcopy(filled) if filled else {}
    return _check(validator, params, "", f"methods/{method}.params.json")


@functools.cache
def _empty_params(method: str) -> dict[str, Any]:
    validator = _validator(f"methods/{method}.params.json")
    assert validator is not None
    return _check(validator, {}, "")


def known_specs() -> list[str]:
    return sorted(p.stem for p in (schema_dir() / "specs").glob("*.json"))


def _check(
    validator: Draft202012Validator, instance: Any, prefix: str, relative: str | None = None
) -> dict[str, Any]:
    _refuse_non_finite(instance, [prefix] if prefix else [])
    if relative is None or not _fast_valid(relative, instance):
        error = best_match(validator.iter_errors(instance))
        if error is not None:
            raise _spec_error(validator, error, prefix)
    filled = copy.deepcopy(instance)
    _fill_defaults(validator, validator.schema, filled)
    return filled


def _spec_error(validator: Draft202012Validator, error: ValidationError, prefix: str) -> SpecError:
    parts = [str(p) for p in error.absolute_path]
    rule = str(error.validator)
    if rule in ("anyOf", "oneOf") and isinstance(error.instance, dict):
        tagged = _discriminated_error(validator, error, prefix)
        if tagged is not None:
            return tagged
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            parts.append(extra[0])
            message = f"unknown field {extra[0]!r} (known: {sorted(allowed)})"
            return SpecError(_join(prefix, parts), rule, f"{_join(prefix, parts)}: {message}")
    if rule == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:
            parts.append(missing[0])
    path = _join(prefix, parts)
    return SpecError(path, rule, f"{path or '(root)'}: {error.message}", {"received": _short(error.instance)})


def _discriminated_error(
    validator: Draft202012Validator, error: ValidationError, prefix: str
) -> SpecError | None:
    """The error of the union branch whose `const` tag (e.g. `kind`) matches the instance.

    Without this, a failing discriminated union reports only "not valid under any of the
    given schemas" at the union's own path instead of the field inside the chosen branch.
    """
    branches = [_resolve(validator, b) for b in error.validator_value]
    tags = [_const_properties(b) for b in branches]
    shared = [key for key in tags[0] if all(key in t for t in tags[1:])] if tags else []
    if not shared:
        return None
    key = shared[0]
    path = _join(prefix, [*(str(p) for p in error.absolute_path), key])
    allowed = [t[key] for t in tags]
    if key not in error.instance:
        return SpecError(path, "required", f"{path}: required field is missing (one of {allowed})")
    value = error.instance[key]
    matching = [i for i, t in enumerate(tags) if t[key] == value and type(t[key]) is type(value)]
    if not matching:
        return SpecError(
            path, "enum", f"{path}: expected one of {allowed}, got {value!r}", {"received": _short(value)}
        )
    inner = best_match(e for e in error.context if e.relative_schema_path[0] in matching)
    return None if inner is None else _spec_error(validator, inner, prefix)


def _const_properties(schema: Any) -> dict[str, Any]:
    """The properties a branch pins to one value: `{"kind": "digits"}` for a tagged object."""
    if not isinstance(schema, dict):
        return {}
    out = {}
    for key, sub in schema.get("properties", {}).items():
        if isinstance(sub, dict) and "const" in sub:
            out[key] = sub["const"]
        elif isinstance(sub, dict) and isinstance(sub.get("enum"), list) and len(sub["enum"]) == 1:
            out[key] = sub["enum"][0]
    return out


def _resolve(validator: Draft202012Validator, schema: Any) -> Any:
    """`schema` with a local `$ref` (`#/$defs/...`) followed."""
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if not (isinstance(ref, str) and ref.startswith("#/")):
        return schema
    target: Any = validator.schema
    for part in ref[2:].split("/"):
        target = target[part]
    return _resolve(validator, target)


def _join(prefix: str, parts: list[str]) -> str:
    return ".".join(([prefix] if prefix else []) + parts)


def _short(value: Any) -> Any:
    text = json.dumps(value, default=str)
    return value if len(text) <= 200 else text[:200] + "…"


def _refuse_non_finite(value: Any, path: list[str]) -> None:
    """NaN and infinities pass JSON Schema's range checks (msgpack can carry them): refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        where = ".".join(path) or "(root)"
        raise SpecError(
            where, "finite", f"{where}: must be a finite number, got {value}", {"received": str(value)}
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_non_finite(item, [*path, str(key)])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_non_finite(item, [*path, str(i)])


def _as_declared_int(schema: dict[str, Any], value: Any) -> Any:
    """32.0 where the schema says integer becomes 32 (JS sends whole floats as floats)."""
    if schema.get("type") == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fill_defaults(validator: Draft202012Validator, schema: Any, instance: Any) -> None:
    """Fills `default`s along the branch of the schema that the instance matches."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = validator.schema
        for part in ref[2:].split("/"):
            target = target[part]
        _fill_defaults(validator, target, instance)
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, ()):
            if validator.evolve(schema=branch).is_valid(instance):
                _fill_defaults(validator, branch, instance)
                break
    for branch in schema.get("allOf", ()):
        _fill_defaults(validator, branch, instance)
    if isinstance(instance, dict):
        for prop, sub in schema.get("properties", {}).items():
            if prop not in instance and isinstance(sub, dict) and "default" in sub:
                instance[prop] = copy.deepcopy(sub["default"])
            if prop in instance:
                if isinstance(sub, dict):
                    instance[prop] = _as_declared_int(sub, instance[prop])
                _fill_defaults(validator, sub, instance[prop])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for prop, value in instance.items():
                if prop not in schema.get("properties", {}):
                    _fill_defaults(validator, extra, value)
    elif isinstance(instance, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for value in instance:
                _fill_defaults(validator, items, value)
