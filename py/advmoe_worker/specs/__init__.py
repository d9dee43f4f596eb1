"""Validation of wire specs against the JSON Schemas generated from the zod schemas."""

from ..schema_files import SCHEMA_DIR_ENV, schema_dir
from .validate import validate, validate_method_params

__all__ = ["SCHEMA_DIR_ENV", "schema_dir", "validate", "validate_method_params"]
