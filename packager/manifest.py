"""``manifest.json``: what a bundle holds and where it came from.

Written next to the artifact so a deployed function can be traced back to its model
(URI, run, registry version) and checked (sha256 of the zip and of every model file).
No wall-clock time or user name goes in, so equal inputs give an equal manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_lambda import handler

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    model_uri: str
    run_id: str | None
    registered_model: str | None
    model_version: str | None
    model_source: str | None
    flavor: str
    serialization_format: str
    target: str  # "zip" | "image"
    python_version: str  # "3.12"
    arch: str  # "x86_64" | "arm64"
    distributions: dict[str, str]
    model_files: dict[str, str]
    artifact_sha256: str | None
    sizes: dict[str, Any] = field(default_factory=dict)
    model_location: str | None = None

    @property
    def runtime(self) -> str:
        return f"python{self.python_version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "tool_version": handler.__version__,
            "model": {
                "uri": self.model_uri,
                "run_id": self.run_id,
                "registered_model": self.registered_model,
                "version": self.model_version,
                "source": self.model_source,
                "flavor": self.flavor,
                "serialization_format": self.serialization_format,
                "location": self.model_location or "bundle",
                "files": self.model_files,
            },
            "target": self.target,
            "runtime": self.runtime,
            "python_version": self.python_version,
            "arch": self.arch,
            "distributions": dict(sorted(self.distributions.items())),
            "artifact_sha256": self.artifact_sha256,
            "sizes": self.sizes,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def read_manifest(outdir: Path) -> dict[str, Any] | None:
    """The manifest of a build output directory, or ``None`` when there is none."""
    path = outdir / "manifest.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data
