"""Validation of wire specs against the JSON Schemas generated from the zod schemas."""

from .validate import SCHEMA_DIR_ENV, schema_dir, validate, validate_method_params

__all__ = ["SCHEMA_DIR_ENV", "schema_dir", "validate", "validate_method_params"]
