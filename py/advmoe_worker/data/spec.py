"""DataSpec rules JSON Schema cannot state; fields and defaults come from `schemas/specs/data.json`."""

from __future__ import annotations

from typing import Any

from ..errors import SpecError
from ..specs import validate


def resolve_data_spec(spec: Any) -> dict[str, Any]:
    """A copy of `spec` with defaults filled; SpecError naming the field otherwise."""
    resolved = validate("data", spec)
    if resolved["kind"] == "tensors":
        check_test_tensors(resolved)
    return resolved


def check_test_tensors(spec: dict[str, Any]) -> None:
    """A test split needs both its images and its labels, or neither."""
    if (spec["test_images"] is None) != (spec["test_labels"] is None):
        missing = "test_labels" if spec["test_labels"] is None else "test_images"
        raise SpecError(
            missing,
            "required",
            f"{missing}: test_images and test_labels go together",
            {"received": None},
        )
