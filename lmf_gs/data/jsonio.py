"""JSON files with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmf_gs.errors import DataError


def read_json(path: Path, what: str) -> Any:
    """Parse ``path``; a missing or malformed file raises `DataError` naming it."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} col {e.colno}"
        raise DataError(f"{path}: malformed JSON ({e.msg} at {where})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text JSON file") from None
