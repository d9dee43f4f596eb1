"""Where the JSON files generated from the zod schemas live (`npm run schemas`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SCHEMA_DIR_ENV = "ADVMOE_SCHEMA_DIR"


def schema_dir() -> Path:
    """`$ADVMOE_SCHEMA_DIR`, else the repository's `schemas/` next to the `py/` folder."""
    env = os.environ.get(SCHEMA_DIR_ENV)
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    candidates += [here.parents[2] / "schemas", here.parent / "schemas"]
    for path in candidates:
        if (path / "specs").is_dir():
            return path
    raise FileNotFoundError(
        f"no generated JSON schemas found (looked in {[str(p) for p in candidates]}); "
        f"set {SCHEMA_DIR_ENV} to the folder that holds specs/ and methods/"
    )


def load_schema_file(relative: str) -> Any:
    """The parsed JSON file `relative` under the schema folder."""
    return json.loads((schema_dir() / relative).read_text())
