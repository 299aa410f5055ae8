"""The import guard of a bundle built with ``mlflow-lambda package --trim``.

Trimming leaves out the modules a traced run never imported (``packager.trim``) and lists
them in ``trimmed.json``. This finder goes last on ``sys.meta_path``, so it is only asked
about a module nothing else found; for a module that was trimmed, it raises an error that
says so and names the way out, instead of a bare "No module named ...". ``try: import x /
except ImportError`` fallbacks behave as they would with the module absent.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class TrimmedModules:
    """A meta path finder that knows which modules ``--trim`` left out."""

    def __init__(self, record: Path) -> None:
        self._record = record
        self._names: frozenset[str] | None = None  # read on the first miss, not at import

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: Any = None
    ) -> None:
        if self._names is None:
            self._names = frozenset(json.loads(self._record.read_text())["modules"])
        if fullname in self._names:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: `mlflow-lambda package --trim` left it out "
                "because the traced run (importing the model and scoring its input example) "
                "never imported it; package again without --trim",
                name=fullname,
            )

    def invalidate_caches(self) -> None:
        """Nothing cached that can go stale: the bundle is read-only."""


def install(record: Path) -> bool:
    """Append the guard when ``record`` exists (a trimmed bundle); return whether it did."""
    if not record.is_file():
        return False
    sys.meta_path.append(TrimmedModules(record))
    return True
