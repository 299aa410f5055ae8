"""How big a bundle is, per package, and whether it fits AWS Lambda's limits.

``size_report`` groups every file of a staging tree by the distribution that installed it:
``foo/``, ``foo.libs/`` and ``foo-1.0.dist-info/`` (and top-level modules such as ``six.py``)
count as one package, read from each ``*.dist-info/RECORD``; without a RECORD, ``foo.libs`` and
``foo-*.dist-info`` fall back to ``foo``. ``handler/`` and ``model/`` + ``model.json`` are
their own rows. Given the zip, each row also gets its compressed size (with zip headers, so
the rows add up to the file size). ``check_limits`` turns the report into warnings or a
``BundleTooLargeError`` that says which packages are largest and what to do.
"""

from __future__ import annotations

import os
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlflow_lambda.handler import BUNDLE_PACKAGE
from mlflow_lambda.packager.errors import BundleTooLargeError

# AWS Lambda quotas, https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
# ("Deployment package (.zip file archive) size": 50 MB zipped for direct upload, 250 MB
# unzipped including layers; "Container image code package size": 10 GB uncompressed).
# AWS's MB are MiB: CreateFunction rejects "Unzipped size must be smaller than 262144000 bytes".
MB = 1024 * 1024
ZIP_UNZIPPED_LIMIT = 250 * MB
DIRECT_UPLOAD_LIMIT = 50 * MB
IMAGE_LIMIT = 10 * 1024 * MB

MODEL, HANDLER = "model", "handler"
_OWN = {
    "model": MODEL,
    "model.json": MODEL,
    "openapi.json": MODEL,
    BUNDLE_PACKAGE: HANDLER,
    "trimmed.json": HANDLER,
}
# zip overhead per entry: local file header (30) + central directory header (46) + name twice
_LOCAL_HEADER, _CENTRAL_HEADER = 30, 46


@dataclass(frozen=True)
class Row:
    """One package (or the model, or the handler): bytes on disk and, if known, in the zip."""

    name: str
    unzipped: int
    zipped: int | None
    files: int


@dataclass(frozen=True)
class SizeReport:
    """Per-package sizes of a bundle; ``rows`` are largest first, model and handler last."""

    rows: list[Row]
    unzipped: int
    zipped: int | None

    def row(self, name: str) -> Row | None:
        """The row called ``name``, if any."""
        return next((r for r in self.rows if r.name == name), None)

    def largest(self, n: int = 4) -> str:
        """``"scipy 85.0 MB, numpy 43.0 MB"``: the ``n`` largest rows, for messages."""
        top = sorted(self.rows, key=lambda r: -r.unzipped)[:n]
        return ", ".join(f"{r.name} {_mb(r.unzipped)}" for r in top)

    def format(self) -> str:
        """A plain-text table: one row per package, then model, handler and the total.

        A title line comes first, so that whatever a caller prefixes to the first line (the
        build's ``[ 12.3s]`` timestamps) cannot shift the header off its columns.
        """
        width = max([len(r.name) for r in self.rows] + [len("package")])
        lines = ["size by package:", f"{'package':<{width}}  {'unzipped':>10}  {'zipped':>10}"]
        for r in [*self.rows, Row("total", self.unzipped, self.zipped, 0)]:
            zipped = "" if r.zipped is None else _mb(r.zipped)
            lines.append(f"{r.name:<{width}}  {_mb(r.unzipped):>10}  {zipped:>10}")
        return "\n".join(lines)


def size_report(root: Path, zip_path: Path | None = None) -> SizeReport:
    """Group the files under ``root`` by package; add compressed sizes from ``zip_path``.

    ``root`` is a task root (staging tree) or an image build context (``Dockerfile``,
    ``deps/``, ``app/``, see ``packager.assemble``), whose two halves are counted as the one
    task root they become; the ``Dockerfile`` is not counted.
    """
    task_roots = _task_roots(root)
    owners: dict[str, str] = {}
    for task_root in task_roots:
        owners.update(_record_owners(task_root))
    unzipped: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for task_root in task_roots:
        for rel, size in _files(task_root):
            group = _group(rel, owners)
            unzipped[group] += size
            counts[group] += 1
    zipped: dict[str, int] | None = None
    total_zipped: int | None = None
    if zip_path is not None:
        zipped = defaultdict(int)
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                overhead = _LOCAL_HEADER + _CENTRAL_HEADER + 2 * len(info.filename.encode())
                zipped[_group(info.filename, owners)] += info.compress_size + overhead
        total_zipped = zip_path.stat().st_size
    names = set(unzipped) | set(zipped or ())
    own = [n for n in (MODEL, HANDLER) if n in names]
    ordered = sorted(names - set(own), key=lambda n: (-unzipped.get(n, 0), n)) + own
    rows = [
        Row(n, unzipped.get(n, 0), None if zipped is None else zipped.get(n, 0), counts.get(n, 0))
        for n in ordered
    ]
    return SizeReport(rows, sum(unzipped.values()), total_zipped)


def check_limits(report: SizeReport, *, target: str = "zip") -> list[str]:
    """Warnings for a bundle that fits; ``BundleTooLargeError`` for one that cannot deploy."""
    model = report.row(MODEL)
    model_mb = _mb(model.unzipped) if model else "0.0 MB"
    if target == "image":
        if report.unzipped > IMAGE_LIMIT:
            raise BundleTooLargeError(
                f"image content is {_mb(report.unzipped)}, over Lambda's 10 GB image limit; "
                f"largest: {report.largest()}. Try --model-location s3://<bucket>/<prefix> "
                f"(the model is {model_mb})."
            )
        return []
    if target != "zip":
        raise ValueError(f"target must be 'zip' or 'image', got {target!r}")
    if report.unzipped > ZIP_UNZIPPED_LIMIT:
        over = report.unzipped - ZIP_UNZIPPED_LIMIT
        raise BundleTooLargeError(
            f"bundle is {_mb(report.unzipped)} unzipped, over Lambda's 250 MB limit for zip "
            f"packages by {_mb(over)}; largest: {report.largest()}. Ways out: --target image "
            f"(container images may be 10 GB), or --model-location s3://<bucket>/<prefix> "
            f"(the model, {model_mb}, is then fetched to /tmp at cold start).\n{report.format()}"
        )
    warnings = []
    if report.zipped is not None and report.zipped > DIRECT_UPLOAD_LIMIT:
        warnings.append(
            f"bundle.zip is {_mb(report.zipped)}, over the 50 MB limit for uploading a zip "
            f"directly to Lambda: upload it through S3 (`sam deploy` does this anyway, with "
            f"--s3-bucket or --resolve-s3); `aws lambda update-function-code --zip-file` will "
            f"be refused."
        )
    return warnings


def _task_roots(root: Path) -> list[Path]:
    halves = [root / "deps", root / "app"]
    if (root / "Dockerfile").is_file() and all(h.is_dir() for h in halves):
        return halves
    return [root]


def _record_owners(root: Path) -> dict[str, str]:
    """Top-level entry (``numpy``, ``numpy.libs``, ``six``) -> distribution name, from RECORDs."""
    owners: dict[str, str] = {}
    for record in sorted(root.glob("*.dist-info/RECORD")):
        dist = _dist_name(record.parent)
        owners[record.parent.name] = dist
        for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
            top = line.split(",", 1)[0].split("/", 1)
            if top[0] in ("", "..", "__pycache__"):
                continue
            owners.setdefault(top[0] if len(top) > 1 else _module(top[0]), dist)
    return owners


def _dist_name(dist_info: Path) -> str:
    metadata = dist_info / "METADATA"
    if metadata.is_file():
        with metadata.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Name:"):
                    return line[5:].strip()
                if not line.strip():
                    break
    return dist_info.name.split("-", 1)[0]


def _group(rel: str, owners: dict[str, str]) -> str:
    parts = rel.split("/")
    top = parts[0]
    if top in _OWN:
        return _OWN[top]
    if len(parts) == 1 or top == "__pycache__":  # a top-level module or its bytecode
        key = _module(parts[-1])
        return owners.get(key, key)
    if top in owners:
        return owners[top]
    if top.endswith(".dist-info"):
        return top.split("-", 1)[0]
    return top.removesuffix(".libs")


def _module(filename: str) -> str:
    return filename.split(".", 1)[0]


def _files(root: Path) -> Iterator[tuple[str, int]]:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            yield path.relative_to(root).as_posix(), path.stat().st_size


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"
