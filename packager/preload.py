"""Load a skops model once at build time and ship it as a pickle, so the runtime needs no skops.

Why: ``import skops.io`` builds its table of trusted types by importing every scikit-learn
estimator (scipy.stats and all), which is most of the seed model's cold start; unpickling the
estimator skops produced imports only the modules of the classes it holds (docs/findings.md
has the measured figures).

How, after the dependencies are installed and the runtime is staged:

1. The *target* interpreter (the one the import check runs, ``python -I -S`` seeing only the
   staged app and dependencies) loads the skops file with the runtime's own
   ``read_estimator``, trusting exactly the MLmodel's ``skops_trusted_types``, and pickles the
   estimator (protocol 5). The bundle's own scikit-learn and numpy write it, never the build
   host's, whose versions may differ.
2. The pickle joins a copy of the model directory (``PRELOADED_FILE``; the user's files are
   never written to), ``model.json`` gets ``files[PRELOADED_FILE]`` (so the init's sha256 check
   covers it, in the bundle or after the fetch from S3) and ``preloaded`` (file, sha256, source,
   protocol, the Python and scikit-learn versions that wrote it).
3. ``skops`` leaves the bundle, with whatever only it required (:func:`drop_loader`); the plan
   leaves it out of any later install of this build (``packager.plan``).

When the target cannot run here (an arm64 bundle on an x86_64 host, no Python of the target
version) or the build's import check is off (nothing would prove the pickle loads), or the
preload fails, the bundle keeps skops and loads ``model.skops`` as before; the build says so in
one line.

Reproducible: a tree's node array is a C struct with padding bytes that hold whatever the
allocator left there, so a plain ``pickle.dumps`` of the same forest differs from run to run;
structured arrays are pickled with their padding zeroed (``_PRELOAD``'s ``Canonical``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlflow_lambda.handler import BUNDLE_PACKAGE
from mlflow_lambda.handler.config import ModelConfig, Preloaded, sha256_file
from mlflow_lambda.packager.deps import held_distributions, link_tree
from mlflow_lambda.packager.errors import BundleCheckError
from mlflow_lambda.packager.importcheck import run_in_bundle
from mlflow_lambda.packager.inspection import save_model_config
from mlflow_lambda.packager.install import installed_distributions
from mlflow_lambda.packager.plan import PRELOADED_REASON, BundlePlan
from mlflow_lambda.packager.platforms import host_arch
from mlflow_lambda.packager.prune import PROTECTED, PruneReport
from mlflow_lambda.packager.prune_unused import UnusedDist, remove_unused_dists

PRELOADED_FILE = "model.preloaded.pkl"
PICKLE_PROTOCOL = 5  # PEP 574: out-of-band buffers, numpy arrays without a copy; Python 3.8+
LOADER = "skops"

# Runs in the target interpreter (every Lambda Python, 3.10+), seeing only the bundle.
_PRELOAD = """
import io, json, os, pickle, sys
# -I ignores PYTHONDONTWRITEBYTECODE: without this, importing the staged runtime would leave
# timestamp .pyc files in it, which compile_tree then keeps (not reproducible, stale once zipped)
sys.dont_write_bytecode = True
sys.path[:0] = json.loads(os.environ["MLFLOW_LAMBDA_PATHS"])
from pathlib import Path
import numpy as np
import sklearn
from mlflow_lambda.handler.flavors.sklearn import read_estimator

class Canonical(pickle.Pickler):
    # A structured array (a tree's nodes) is a C struct array with padding bytes left as the
    # allocator found them: zero them, so the same model always pickles to the same bytes.
    def reducer_override(self, obj):
        if type(obj) is np.ndarray and obj.dtype.names and not obj.dtype.hasobject:
            clean = np.zeros(obj.shape, obj.dtype)
            for name in obj.dtype.names:
                clean[name] = obj[name]
            return clean.__reduce_ex__(PROTOCOL)
        return NotImplemented

args = json.loads(os.environ["MLFLOW_LAMBDA_PRELOAD"])
PROTOCOL = args["protocol"]
model = read_estimator(Path(args["source"]), "skops", args["trusted"])
buffer = io.BytesIO()
Canonical(buffer, protocol=PROTOCOL).dump(model)
Path(args["dest"]).write_bytes(buffer.getvalue())
print(json.dumps({"python_version": "%d.%d.%d" % sys.version_info[:3],
                  "library_version": sklearn.__version__}))
"""


@dataclass(frozen=True)
class Preload:
    """What :func:`preload_model` settled on: the config and model directory to ship."""

    config: ModelConfig
    model_dir: Path
    message: str  # one line for the build output
    preloaded: bool  # False: skops stays, and so does the skops path


def stage_preloaded(
    config: ModelConfig,
    model_dir: Path,
    plan: BundlePlan,
    installed: dict[str, str],
    *,
    interpreter: Path | None,
    app: Path,
    deps: Path,
    work: Path,
    checked: bool,
    enabled: bool,
    cache: Path | None,
    progress: Callable[[str], None],
    warn: Callable[[str], None],
) -> tuple[ModelConfig, Path]:
    """The build's step: preload a skops model, drop skops; the config and model dir to ship.

    ``app`` holds the staged runtime and ``model.json`` (rewritten when preloaded), ``deps`` the
    installed dependencies; ``installed`` (name -> version, the manifest's) is updated in place.
    ``cache``: where pickles of earlier builds are kept (``<cache root>/preloaded``).
    """
    if not wanted(config):
        return config, model_dir
    done = preload_model(
        config, model_dir, roots=(app, deps), dest=work / "model-preloaded",
        interpreter=interpreter, python=plan.python_version, arch=plan.arch, checked=checked,
        enabled=enabled, cache=cache, installed=installed,
    )  # fmt: skip
    (progress if done.preloaded else warn)(done.message)
    if done.preloaded:
        progress(f"left out skops: {PRELOADED_REASON}")
        drop_loader(deps)
        installed.clear()
        installed.update(held_distributions(deps))
    return done.config, done.model_dir


def wanted(config: ModelConfig) -> bool:
    """Whether ``config`` is a model this module preloads: scikit-learn saved with skops."""
    return config["flavor"] == "sklearn" and config["serialization_format"] == LOADER


def preload_model(
    config: ModelConfig,
    model_dir: Path,
    *,
    roots: tuple[Path, Path],
    dest: Path,
    interpreter: Path | None,
    python: str,
    arch: str,
    checked: bool,
    enabled: bool = True,
    cache: Path | None = None,
    installed: dict[str, str] | None = None,
) -> Preload:
    """Pickle the skops model of ``config`` in the bundle's Python (see the module docstring).

    ``roots`` are the staged app (with ``model.json``) and dependencies; ``dest`` is a new
    directory for the model copy with the pickle. ``checked``: the build's import check runs;
    ``enabled``: False keeps skops (``BuildOptions.preload``, for comparisons). ``cache``: a
    directory keeping each pickle under what made it (:func:`_cache_key`, with ``installed``,
    the dependencies' name -> version), so a rebuild copies it instead of loading the model.
    """
    why_not = (
        _why_not(config, interpreter, python, arch, checked)
        if enabled
        else "preloading the model as a pickle was turned off"
    )
    if why_not is not None or interpreter is None:  # (None has a why_not; mypy needs the test)
        return Preload(config, model_dir, f"kept skops: {why_not}", False)
    link_tree(model_dir, dest)  # hard links: the user's files are read, never written
    entry = None
    if cache is not None and installed is not None:
        entry = cache / _cache_key(config, roots[0], interpreter, installed)
        facts = _cached(entry, dest / PRELOADED_FILE)
        if facts is not None:
            return _preloaded(config, roots[0], dest, facts, " (the pickle of an earlier build)")
    env = {
        "MLFLOW_LAMBDA_PRELOAD": json.dumps(
            {
                "source": str(dest / config["model_file"]),
                "trusted": list(config["skops_trusted_types"]),
                "dest": str(dest / PRELOADED_FILE),
                "protocol": PICKLE_PROTOCOL,
            }
        ),
        "MLFLOW_LAMBDA_PATHS": json.dumps([str(r) for r in roots]),
    }
    try:
        facts = run_in_bundle(interpreter, _PRELOAD, list(roots), env, failure="the preload failed")
    except BundleCheckError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        last = str(exc).strip().splitlines()[-1]
        return Preload(config, model_dir, f"kept skops: the preload failed ({last})", False)
    if entry is not None:
        _keep(entry, dest / PRELOADED_FILE, facts)
    return _preloaded(config, roots[0], dest, facts)


def _preloaded(
    config: ModelConfig, app: Path, dest: Path, facts: dict[str, object], note: str = ""
) -> Preload:
    """The config (also written to ``app``'s ``model.json``) of the pickle in ``dest``."""
    sha = sha256_file(dest / PRELOADED_FILE)
    preloaded: Preloaded = {
        "file": PRELOADED_FILE,
        "sha256": sha,
        "source": config["model_file"],
        "pickle_protocol": PICKLE_PROTOCOL,
        "python_version": str(facts["python_version"]),
        "library_version": str(facts["library_version"]),
    }
    files = dict(sorted({**config["files"], PRELOADED_FILE: sha}.items()))
    new: ModelConfig = {**config, "files": files, "preloaded": preloaded}
    save_model_config(new, app / "model.json")
    size = (dest / PRELOADED_FILE).stat().st_size
    message = (
        f"preloaded {config['model_file']} as {PRELOADED_FILE} ({size / 2**20:.2f} MB) with "
        f"the bundle's scikit-learn {preloaded['library_version']} on Python "
        f"{preloaded['python_version']}{note}: the runtime unpickles it, without skops"
    )
    return Preload(new, dest, message, True)


def _cache_key(config: ModelConfig, app: Path, interpreter: Path, installed: dict[str, str]) -> str:
    """What the pickle's bytes depend on: the model file, the types trusted, how it is loaded
    and pickled (this script, the runtime's loader), the bundle's packages and Python."""
    binary = interpreter.resolve()
    stat = binary.stat()
    facts = [
        config["files"][config["model_file"]],
        sorted(config["skops_trusted_types"]),
        PICKLE_PROTOCOL,
        hashlib.sha256(_PRELOAD.encode()).hexdigest(),
        sha256_file(app / BUNDLE_PACKAGE / "handler" / "flavors" / "sklearn.py"),
        sorted(installed.items()),
        [str(binary), stat.st_size, stat.st_mtime_ns],
    ]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:24]


def _cached(entry: Path, dest: Path) -> dict[str, object] | None:
    """Copy ``entry``'s pickle to ``dest`` and return its facts, or None if it has none."""
    try:
        facts: dict[str, object] = json.loads((entry / "facts.json").read_text())
        shutil.copyfile(entry / PRELOADED_FILE, dest)
    except (OSError, ValueError):
        return None
    return facts


def _keep(entry: Path, pickled: Path, facts: dict[str, object]) -> None:
    """Publish ``pickled`` and its facts as ``entry``, whole or not at all.

    Best effort: a cache that cannot be written (read-only, full) costs the next build its
    preload again, never this build.
    """
    partial = entry.with_name(f".{entry.name}.partial-{os.getpid()}")
    try:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        shutil.copyfile(pickled, partial / PRELOADED_FILE)
        (partial / "facts.json").write_text(json.dumps(facts))  # last: marks it complete
        partial.rename(entry)
    except OSError:  # unwritable, or another build published it first (same bytes)
        shutil.rmtree(partial, ignore_errors=True)


def _why_not(
    config: ModelConfig, interpreter: Path | None, python: str, arch: str, checked: bool
) -> str | None:
    if host_arch() != arch:
        return (
            f"the model is not preloaded as a pickle because this {host_arch()} host cannot "
            f"run the {arch} bundle's Python; build on an {arch} host for a faster cold start"
        )
    if interpreter is None:
        return (
            f"the model is not preloaded as a pickle because there is no Python {python} on "
            "this host to run the bundle's scikit-learn; install it for a faster cold start"
        )
    if not checked:
        return "the model is not preloaded as a pickle because the import check is off"
    if PRELOADED_FILE in config["files"]:
        return f"the model is not preloaded: the model directory already has a {PRELOADED_FILE}"
    return None


def drop_loader(root: Path, name: str = LOADER) -> PruneReport:
    """Remove ``name`` from the dependencies in ``root``, and what only it required.

    The ``unused-dist`` rule (``packager.prune_unused``) decides: a distribution that ``name``
    requires, directly or not, goes unless pip marked it ``REQUESTED`` or a distribution that
    stays names it in ``Requires-Dist``. ``name`` was requested only as the model file's loader.
    Files of ``root`` are hard links into the prepared-dependencies cache: unlinking them here
    leaves the cache whole.
    """
    report = PruneReport()
    dists = installed_distributions(root)
    if name not in dists:
        return report
    closure, stack = {name}, [name]
    while stack:
        for line in dists[stack.pop()].requires or []:
            dep = canonicalize_name(Requirement(line).name)
            if dep in dists and dep not in closure:
                closure.add(dep)
                stack.append(dep)
    for info in root.glob("*.dist-info"):
        # "{name}-{version}.dist-info", the name escaped with "_" (the wheel spec): canonical
        if canonicalize_name(info.name.split("-")[0]) == canonicalize_name(name):
            (info / "REQUESTED").unlink(missing_ok=True)
    table = {dist: UnusedDist((), PRELOADED_REASON) for dist in sorted(closure)}
    remove_unused_dists(root, set(PROTECTED), report, table)
    return report
