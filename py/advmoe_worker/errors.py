"""Errors as data: every failure the worker reports carries a stable code.

The codes form a closed set shared with the TypeScript SDK: ts/protocol/errors.ts is the
source, schemas/error-codes.json the generated list read here, and each code maps to one
typed error class on both sides.
"""

from __future__ import annotations

from typing import Any

from .schema_files import load_schema_file

# Generated from the TypeScript enum (ts/protocol/errors.ts) into schemas/error-codes.json,
# so the two languages cannot drift apart.
ERROR_CODES: tuple[str, ...] = tuple(load_schema_file("error-codes.json")["codes"])


class WorkerError(Exception):
    """A failure reported to the client as `{code, message, details}`."""

    code = "internal"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        assert self.code in ERROR_CODES, self.code
        self.message = message
        self.details = details or {}

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class SpecError(WorkerError):
    """A spec or parameter breaks a rule; `path` names the field (e.g. `moe.experts`)."""

    code = "invalid_spec"

    def __init__(self, path: str, rule: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message, {"path": path, "rule": rule, **(details or {})})
        self.path = path
        self.rule = rule

    def under(self, prefix: str) -> SpecError:
        """The same error with its path nested under `prefix` (e.g. `spec`)."""
        path = f"{prefix}.{self.path}" if self.path else prefix
        details = {**self.details, "path": path}
        message = self.message if self.message.startswith(path) else f"{prefix}.{self.message}"
        return SpecError(
            path, self.rule, message, {k: v for k, v in details.items() if k not in ("path", "rule")}
        )


class NotFoundError(WorkerError):
    """An unknown name or handle; `details.known` lists what exists."""

    code = "not_found"


class BadTensorError(WorkerError):
    """A tensor has the wrong dtype, shape or size for what the method needs."""

    code = "bad_tensor"


class BadMessageError(WorkerError):
    """A message that cannot be decoded or breaks the framing rules."""

    code = "bad_message"


class TooLargeError(WorkerError):
    code = "too_large"


class UnsupportedVersionError(WorkerError):
    code = "unsupported_version"


class ForbiddenPathError(WorkerError):
    """A path that resolves outside the worker's workspace root."""

    code = "forbidden_path"


class BadDataError(WorkerError):
    """A data file that is missing, corrupted or in the wrong format."""

    code = "bad_data"


class NonFiniteError(WorkerError):
    """A loss or router score that is NaN or infinite; the step was refused."""

    code = "non_finite"


class CancelledError(WorkerError):
    code = "cancelled"


class ShuttingDownError(WorkerError):
    code = "shutting_down"
