"""Decide what goes into a bundle: the Lambda runtime and the exact requirements.

Input is the model config (``model.json``, see :mod:`packager.inspection`); output is a
:class:`BundlePlan` that :mod:`packager.install` turns into installed wheels. The plan
keeps the model's own pins (it must unpickle with the library versions it was trained
with), adds what the handler needs, and leaves out what is never used at run time, saying
why for each dropped line so the CLI can show it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlflow_lambda.handler.flavors import FLAVORS, GENERIC_FLAVOR
from mlflow_lambda.packager.errors import DependencyError
from mlflow_lambda.packager.generic import PANDAS_REASON as GENERIC_PANDAS_REASON
from mlflow_lambda.packager.generic import generic_drop_reason, generic_requirements
from mlflow_lambda.packager.pandas_choice import FORCED_PANDAS_REASON, model_needs_pandas
from mlflow_lambda.packager.pins import Dropped, Merged, parse_requirement, use_cpu_twins
from mlflow_lambda.packager.platforms import (
    SUPPORTED_PYTHONS,
    Target,
    marker_environment,
    nearest_supported_python,
    normalize_arch,
    normalize_python,
)
from mlflow_lambda.packager.prune_unused import FLAVOR_UNUSED_REQUIREMENTS

# Without a recorded training Python: the oldest Amazon Linux 2023 runtime (glibc 2.34, so
# current manylinux wheels fit; python3.10/3.11 run on AL2, deprecated from Oct 2026/Jun 2027:
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html).
DEFAULT_PYTHON = "3.12"

# What the handler imports, with the same floors as pyproject.toml's run-time dependencies.
# msgspec: the handler's JSON decoder and encoder (handler.parsing.load_json), chosen by
# measurement (bench/jsonlibs.py); a 230 KB wheel for x86_64 and arm64. pysimdjson: the rows
# of numbers of a large dataframe_split straight into a float64 buffer (handler.numeric), a
# third of msgspec's time there; one abi3 wheel per architecture, its extension 7.2 MB
# as built and 0.6 MB stripped (its C++ sources are pruned).
RUNTIME_REQUIREMENTS: tuple[str, ...] = (
    "starlette>=0.37",
    "mangum>=0.17",
    "numpy>=1.24",
    "msgspec>=0.18",
    "pysimdjson>=6",
)
PANDAS_REQUIREMENT = "pandas>=2.0"
# Serialization format -> its loader library besides the flavor's own (handler.flavors.FLAVORS);
# a flavor's native formats (xgboost ubj, a lightgbm Booster's text, onnx, ...) need none.
FORMAT_DISTRIBUTIONS: dict[str, str | None] = {
    "skops": "skops",
    "cloudpickle": "cloudpickle",
    "pickle": None,
}


_MLFLOW = "MLflow is only needed at build time; the handler loads the model without it"
_LAMBDA_PROVIDES = "the Lambda Python runtime provides boto3 and botocore"
_PYARROW = (
    "never bundled: scikit-learn imports pyarrow at import time whenever it is installed "
    "(cold start), and the handler does not use it"
)
_DEV_TOOL = "a development tool, not needed to load or call the model"
# why skops is left out once packager.preload pickled the model (plan and installed tree alike)
PRELOADED_REASON = "not needed at run time: the model is preloaded as a pickle at build time"

# MLflow infers requirements by recording every module imported while it loads the model and
# calls predict (mlflow/utils/requirements_utils.py, _capture_imported_modules). Libraries that
# import optional tools when they happen to be installed drag those in: scikit-learn's
# sklearn/utils/_testing.py does `try: import pytest` and skops imports it, so every skops model
# logged from a venv with pytest pins pytest. Test runners, coverage, linters/type checkers and
# notebook kernels are never imported by a model's predict path in production; dropping them
# only removes unused files. Kept deliberately short: anything less obvious stays in.
_DEV_TOOLS = frozenset(
    {
        "pytest",
        "pluggy",
        "iniconfig",
        "hypothesis",
        "coverage",
        "tox",
        "nox",
        "mypy",
        "ruff",
        "black",
        "flake8",
        "pylint",
        "isort",
        "pre-commit",
        "ipykernel",
        "ipython",
        "jupyter",
        "jupyterlab",
        "notebook",
    }
)
_ALWAYS_DROPPED: dict[str, str] = {
    "mlflow": _MLFLOW,
    "mlflow-skinny": _MLFLOW,
    "mlflow-tracing": _MLFLOW,
    "boto3": _LAMBDA_PROVIDES,
    "botocore": _LAMBDA_PROVIDES,
    "pyarrow": _PYARROW,
}


@dataclass(frozen=True)
class BundlePlan:
    """What to install for one Lambda runtime and architecture."""

    python_version: str  # "3.12"
    arch: str  # "x86_64" | "arm64"
    requirements: list[str] = field(default_factory=list)  # PEP 508, sorted, markers resolved
    dropped: list[Dropped] = field(default_factory=list)
    needs_pandas: bool = True
    pandas_reason: str = ""  # why pandas is in or out, for the CLI

    @property
    def target(self) -> Target:
        """The runtime and architecture as a :class:`~packager.platforms.Target`."""
        return Target(self.python_version, self.arch)

    @property
    def runtime(self) -> str:
        """Lambda's runtime identifier, e.g. ``python3.12``."""
        return self.target.runtime


def choose_python(
    config: Mapping[str, Any], python: str | None, warn: Callable[[str], None]
) -> str:
    """The Lambda Python (``"3.12"``) for the model: ``python`` if given, else its training one."""
    trained = config.get("python_version")
    try:
        trained_minor = normalize_python(str(trained)) if trained else None
    except ValueError:
        trained_minor = None
    if python is not None:
        try:
            chosen = normalize_python(python)
        except ValueError as exc:
            raise DependencyError(str(exc)) from None
        if chosen not in SUPPORTED_PYTHONS:
            raise DependencyError(
                f"Lambda has no runtime for Python {python!r}; "
                f"choose one of {', '.join(SUPPORTED_PYTHONS)}"
            )
        if trained_minor and chosen != trained_minor:
            warn(
                f"building for python{chosen} but the model was trained on Python {trained}; "
                "a pickled model may not load on another Python version"
            )
        return chosen
    if trained_minor is None:
        warn(
            f"the model does not record its Python version ({trained!r}); "
            f"using python{DEFAULT_PYTHON}, pass --python to choose"
        )
        return DEFAULT_PYTHON
    if trained_minor in SUPPORTED_PYTHONS:
        return trained_minor
    nearest = nearest_supported_python(trained_minor)
    warn(
        f"the model was trained on Python {trained}, which Lambda does not offer "
        f"(supported: {', '.join(SUPPORTED_PYTHONS)}); using python{nearest}, "
        "pass --python to choose another"
    )
    return nearest


def _drop_reason(name: str, needs_pandas: bool, pandas_reason: str) -> str | None:
    if name in _ALWAYS_DROPPED:
        return _ALWAYS_DROPPED[name]
    if name in _DEV_TOOLS or name.startswith("pytest-"):
        return _DEV_TOOL
    if name == "pandas" and not needs_pandas:
        return f"not needed at run time: {pandas_reason}"
    return None


def _runtime_requirements(
    config: Mapping[str, Any], needs_pandas: bool, model_names: Iterable[str]
) -> list[str]:
    flavor = config.get("flavor")
    if flavor == GENERIC_FLAVOR:  # MLflow's own pyfunc (packager/generic.py)
        return [*RUNTIME_REQUIREMENTS, PANDAS_REQUIREMENT, *generic_requirements(config)]
    if flavor not in FLAVORS:
        raise DependencyError(
            f"no run-time library known for flavor {flavor!r}; supported: {', '.join(FLAVORS)}"
        )
    reqs = list(RUNTIME_REQUIREMENTS)
    if needs_pandas:
        reqs.append(PANDAS_REQUIREMENT)
    flavor_dist = FLAVORS[flavor].distribution
    version = config.get("flavor_library_version")
    # The MLmodel records the library version the model was saved with; the requirements
    # usually pin the same, but when they do not list it at all, the MLmodel's is the pin.
    if canonicalize_name(flavor_dist) not in model_names and version:
        reqs.append(f"{flavor_dist}=={version}")
    else:
        reqs.append(flavor_dist)
    # inspection checked the format against the flavor (handler.flavors.<flavor>)
    fmt = config.get("serialization_format", "cloudpickle")
    loader = FORMAT_DISTRIBUTIONS.get(fmt)
    if loader and not config.get("preloaded"):  # a preloaded model needs no loader (preload.py)
        reqs.append(loader)
    return reqs


def plan_bundle(
    config: Mapping[str, Any],
    *,
    python: str | None,
    arch: str,
    warn: Callable[[str], None],
    force_pandas: bool | str = False,
) -> BundlePlan:
    """Plan the bundle for the model described by ``config`` (its ``model.json``).

    ``python`` overrides the runtime (default: the model's training Python minor version if
    Lambda offers it, else the nearest one, with a warning through ``warn``). ``arch`` is
    ``x86_64`` or ``arm64``. ``force_pandas`` keeps pandas even when
    :func:`model_needs_pandas` would leave it out (for a retry after the pandas-free bundle
    failed its import-and-predict check); a string is the reason to give. Raises
    :class:`DependencyError` for conflicting
    pins, URL or option lines, and an unsupported ``python``.
    """
    try:
        arch = normalize_arch(arch)
    except ValueError as exc:
        raise DependencyError(str(exc)) from None
    target = Target(choose_python(config, python, warn), arch)
    environment = marker_environment(target)
    needs_pandas, pandas_reason = model_needs_pandas(config)
    if force_pandas and not needs_pandas:
        needs_pandas = True
        pandas_reason = force_pandas if isinstance(force_pandas, str) else FORCED_PANDAS_REASON
    flavor = str(config.get("flavor"))
    generic = flavor == GENERIC_FLAVOR  # the generic path: packager/generic.py
    if generic:
        needs_pandas, pandas_reason = True, GENERIC_PANDAS_REASON

    merged: dict[str, Merged] = {}
    dropped: list[Dropped] = []
    for line in config.get("requirements") or []:
        req = parse_requirement(line, target)
        name = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate(environment):
            dropped.append(Dropped(line, f"its marker does not hold on {target.describe()}"))
            continue
        reason = _drop_reason(name, needs_pandas, pandas_reason)
        if config.get("preloaded") and name == FORMAT_DISTRIBUTIONS["skops"]:
            reason = PRELOADED_REASON
        if generic:
            reason = generic_drop_reason(name, reason)
        else:
            reason = reason or FLAVOR_UNUSED_REQUIREMENTS.get(flavor, {}).get(name)
        if reason is not None:
            dropped.append(Dropped(line, reason))
            continue
        req.marker = None  # evaluated above, for the target rather than the host
        merged.setdefault(name, Merged(req.name)).add(req, "model")

    for line in _runtime_requirements(config, needs_pandas, merged):
        req = Requirement(line)
        merged.setdefault(canonicalize_name(req.name), Merged(req.name)).add(req, "runtime")

    version = config.get("flavor_library_version") if not generic else None
    if version:
        flavor_dist = canonicalize_name(FLAVORS[str(config.get("flavor"))].distribution)
        if not merged[flavor_dist].specifier.contains(version, prereleases=True):
            warn(
                f"the model was saved with {flavor_dist} {version} but its requirements ask "
                f"for {flavor_dist}{merged[flavor_dist].specifier}; installing the "
                "requirements' version"
            )

    use_cpu_twins(merged, dropped, target)
    requirements = [merged[name].render(target) for name in sorted(merged)]
    return BundlePlan(
        target.python_version, arch, requirements, dropped, needs_pandas, pandas_reason
    )
