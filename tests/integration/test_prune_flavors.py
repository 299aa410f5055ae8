"""The claims behind the flavor prune rules, traced in the target Python (python3.12).

- catboost requires matplotlib, plotly and graphviz (and, through them, contourpy, cycler,
  fonttools, kiwisolver, pillow, pyparsing), and ``UNUSED_DISTS`` drops them. Here
  catboost's requirements are installed with all of them, the real handler loads a real
  CatBoostClassifier and answers its example in every request format (``packager.trim``'s
  traced run), and none of their modules may be imported. If catboost starts importing one
  when a model loads or predicts, this fails and the table entry must go.
- The onnx flavor's requirements name ``onnx``, which the plan leaves out
  (``FLAVOR_UNUSED_REQUIREMENTS``): the same traced run, with ``onnx`` installed as MLflow's
  requirements ask, must not import it.

Each test then prunes (or plans) as ``package`` does and traces again: the same answers.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from mlflow_lambda.packager.bytecode import find_interpreter
from mlflow_lambda.packager.events import scoring_body
from mlflow_lambda.packager.inspection import write_model_config
from mlflow_lambda.packager.install import install_requirements
from mlflow_lambda.packager.plan import BundlePlan, plan_bundle
from mlflow_lambda.packager.prune import PROTECTED, PruneReport
from mlflow_lambda.packager.prune_unused import (
    FLAVOR_UNUSED_REQUIREMENTS,
    UNUSED_DISTS,
    remove_unused_dists,
)
from mlflow_lambda.packager.stage import copy_runtime
from mlflow_lambda.packager.trim import Trace, trace_bundle
from tests import mlflow_models as mm

pytestmark = pytest.mark.integration

CATBOOST_EXTRAS = {
    "matplotlib", "plotly", "graphviz", "contourpy", "cycler", "fonttools", "kiwisolver",
    "pillow", "pyparsing",
}  # fmt: skip
MB = 1024 * 1024


class Staged:
    """A model's app directory (runtime, model, model.json) and its installed requirements."""

    def __init__(self, logged: mm.LoggedModel, root: Path, cache_dir: Path) -> None:
        self.root, self.cache_dir = root, cache_dir
        self.app, self.deps = root / "app", root / "deps"
        copy_runtime(self.app)
        shutil.copytree(logged.local_dir, self.app / "model")
        self.config = write_model_config(self.app / "model", self.app / "model.json")
        self.plan = plan_bundle(self.config, python="3.12", arch="x86_64", warn=lambda _m: None)
        python = find_interpreter("3.12")
        assert python is not None, "python3.12 is needed to trace the bundle"
        self.python = python

    def install(self, plan: BundlePlan) -> None:
        shutil.rmtree(self.deps, ignore_errors=True)
        wheels = self.cache_dir / "wheels" / "3.12-x86_64"
        install_requirements(plan, self.deps, cache_dir=wheels)

    def trace(self) -> Trace:
        work = self.root / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        body = scoring_body(self.config)
        return trace_bundle(
            [self.app, self.deps], self.python, body, model_dir=self.app / "model", work=work
        )


def top_level_names(deps: Path, dists: set[str]) -> dict[str, set[str]]:
    """For each distribution in ``dists`` installed in ``deps``: the top-level names its
    ``RECORD`` installs (what ``import`` would find: packages, modules, extensions)."""
    out: dict[str, set[str]] = {}
    for info in deps.glob("*.dist-info"):
        name = info.name[: -len(".dist-info")].rsplit("-", 1)[0].lower().replace("_", "-")
        if name not in dists:
            continue
        with (info / "RECORD").open(newline="") as f:
            paths = [row[0] for row in csv.reader(f) if row]
        tops = set()
        for path in paths:
            first = path.split("/")[0]
            if first.endswith((".dist-info", ".libs")) or first in {"share", "etc", "bin", ".."}:
                continue
            tops.add(first.split(".")[0])  # pylab.py -> pylab, X.cpython-312-...so -> X
        out[name] = tops
    return out


def _size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())


def _imported(trace: Trace) -> set[str]:
    return {m.split(".")[0] for m in trace.modules}


@pytest.fixture
def staged(
    mlflow_store: str, cache_dir: Path, tmp_path: Path
) -> Callable[[Callable[[], mm.LoggedModel]], Staged]:
    return lambda log: Staged(log(), tmp_path, cache_dir)


def test_catboost_never_imports_its_plotting_requirements(
    staged: Callable[[Callable[[], mm.LoggedModel]], Staged], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = staged(mm.log_catboost_classifier)
    assert CATBOOST_EXTRAS <= set(UNUSED_DISTS)
    assert "matplotlib" not in " ".join(bundle.plan.requirements)  # installed only by catboost
    bundle.install(bundle.plan)
    names = top_level_names(bundle.deps, CATBOOST_EXTRAS)
    assert set(names) == CATBOOST_EXTRAS  # installed, so the trace could import them
    assert {"matplotlib", "plotly", "PIL", "fontTools", "graphviz"} <= set().union(*names.values())

    before = bundle.trace()
    assert before.statuses[0] == 200 and "catboost" in before.modules
    imported = {dist: sorted(tops & _imported(before)) for dist, tops in names.items()}
    assert {d: m for d, m in imported.items() if m} == {}

    size = _size(bundle.deps)
    report = PruneReport()
    remove_unused_dists(bundle.deps, set(PROTECTED), report, UNUSED_DISTS)
    gone = {p.split("-")[0].lower() for p in report.removed["unused-dist"] if "dist-info" in p}
    assert gone == CATBOOST_EXTRAS
    assert not (bundle.deps / "matplotlib").exists() and (bundle.deps / "catboost").is_dir()
    assert report.kept == {}
    after = bundle.trace()
    assert after.statuses == before.statuses
    assert _imported(after) == _imported(before)
    with capsys.disabled():
        saved = report.bytes_saved["unused-dist"]
        print(f"\n[prune] catboost: {saved / MB:.1f} MiB of {size / MB:.1f} MiB installed "
              "(sources, no bytecode)")  # fmt: skip


def test_the_onnx_flavor_never_imports_onnx(
    staged: Callable[[Callable[[], mm.LoggedModel]], Staged], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = staged(mm.log_onnx_classifier)
    pinned = next(r for r in bundle.config["requirements"] if r.startswith("onnx=="))
    assert FLAVOR_UNUSED_REQUIREMENTS["onnx"].keys() == {"onnx"}
    assert not [r for r in bundle.plan.requirements if r.split("=")[0] == "onnx"]
    assert [d.requirement for d in bundle.plan.dropped if d.requirement.startswith("onnx=")] == [
        pinned
    ]
    # as MLflow's requirements ask: onnx installed next to onnxruntime
    bundle.install(replace(bundle.plan, requirements=[*bundle.plan.requirements, pinned]))
    assert (bundle.deps / "onnx").is_dir()
    with_onnx = _size(bundle.deps)
    before = bundle.trace()
    assert before.statuses[0] == 200 and "onnxruntime" in _imported(before)
    assert not {"onnx", "ml_dtypes"} & _imported(before)

    bundle.install(bundle.plan)  # the plan as packaged: no onnx, and no ml_dtypes (only onnx's)
    assert not (bundle.deps / "onnx").exists() and not (bundle.deps / "ml_dtypes").exists()
    after = bundle.trace()
    assert after.statuses == before.statuses
    with capsys.disabled():
        print(f"\n[prune] onnx: {(with_onnx - _size(bundle.deps)) / MB:.1f} MiB of "
              f"{with_onnx / MB:.1f} MiB installed (sources, no bytecode)")  # fmt: skip
