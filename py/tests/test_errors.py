"""The worker's error codes are the generated list, and every error class uses one of them."""

from __future__ import annotations

import pytest

from advmoe_worker import errors
from advmoe_worker.schema_files import load_schema_file


def all_subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *all_subclasses(sub))]


def test_the_codes_are_read_from_the_generated_file():
    assert errors.ERROR_CODES == tuple(load_schema_file("error-codes.json")["codes"])


def test_every_error_class_has_a_known_code():
    classes = [errors.WorkerError, *all_subclasses(errors.WorkerError)]
    assert all(c.code in errors.ERROR_CODES for c in classes), [c.code for c in classes]


def test_an_unknown_code_is_refused():
    with pytest.raises(AssertionError):
        errors.WorkerError("x", code="no_such_code")
