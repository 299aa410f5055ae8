"""Turn ``runs:/``, ``models:/`` and ``mlflow-artifacts:/`` URIs into downloadable locations.

Used by ``packager.resolve``. Each ``locate_*`` function asks an ``MlflowClient`` bound to an
explicit tracking URI where the model's files live (a path, ``s3://``, ``mlflow-artifacts:/``)
and what it is (run id, registry name and concrete version, source). Registry URIs are not
handed to ``mlflow.artifacts.download_artifacts`` as they are, because MLflow's ``models:/``
repository looks names up in the process-global registry and ignores its ``tracking_uri``
argument (``ModelsArtifactRepository._get_model_uri_infos``, MLflow 3.17).

Failures the user can act on raise ``Unresolved`` with one line saying what exists; other
``MlflowException``s propagate to ``resolve_model``'s boundary. mlflow is imported lazily.
"""

from __future__ import annotations

import difflib
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from urllib.request import url2pathname

_log = logging.getLogger(__name__)

_STAGES = ("None", "Staging", "Production", "Archived")  # MLflow's model_version_stages
_PROBE_TIMEOUT_S = 10.0
_LISTED = 10  # names shown in an error message before "..."
_TRACKING_HINT = "--tracking-uri / MLFLOW_TRACKING_URI"


class Unresolved(Exception):
    """Why a URI cannot be resolved (one line); ``resolve_model`` prefixes the URI."""


class Located(NamedTuple):
    """Where a model's files are, and what the tracking store knows about it."""

    location: str  # an artifact URI MLflow downloads without the registry
    run_id: str | None = None
    model_name: str | None = None
    version: str | None = None
    source: str | None = None


def list_names(names: Any) -> str:
    """``'a', 'b', ...`` for an error message: sorted, at most ten, or ``nothing``."""
    items = sorted(names, key=str)
    shown = ", ".join(repr(n) for n in items[:_LISTED])
    return (shown + (", ..." if len(items) > _LISTED else "")) if shown else "nothing"


def redact(uri: str) -> str:
    """Hide a password in a store URI before it goes into an error message."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def sqlite_path(uri: str) -> str:
    """The database path of a ``sqlite:`` URI as SQLAlchemy reads it (relative to the working
    directory unless it starts with ``/``); ``""`` or ``:memory:`` for an in-memory one."""
    path = urlsplit(uri).path
    return url2pathname(path[1:] if path.startswith("/") else path)


def check_store(tracking: str, artifacts_uri: str | None) -> None:
    """Fail fast, naming the store, when it cannot be reached.

    MLflow retries an unreachable http server with backoff for about four minutes
    (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7) and silently creates a missing sqlite file.
    """
    parts = urlsplit(tracking)
    scheme = parts.scheme.lower()
    if artifacts_uri is not None and scheme not in ("http", "https"):
        raise Unresolved(
            f"mlflow-artifacts:/ URIs are served by an MLflow tracking server, but the tracking "
            f"URI is {redact(tracking)!r}; set {_TRACKING_HINT} to the server's http(s)://host:port"
        )
    if scheme == "sqlite":
        db = sqlite_path(tracking)
        if db and db != ":memory:" and not Path(db).exists():
            raise Unresolved(
                f"MLflow tracking store {tracking!r} does not exist (no file {db!r}); "
                f"check {_TRACKING_HINT}"
            )
    elif scheme in ("http", "https"):
        # The probe carries no credentials: any HTTP answer, even 401, proves reachability.
        base = f"{scheme}://{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}"
        shown = redact(tracking)
        if artifacts_uri is not None and urlsplit(artifacts_uri).netloc:
            base = shown = f"{scheme}://{urlsplit(artifacts_uri).netloc}"
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=_PROBE_TIMEOUT_S):
                pass
        except urllib.error.HTTPError:
            pass  # it answered: reachable (auth and routing are MLflow's business)
        except OSError as exc:
            reason = getattr(exc, "reason", exc)
            raise Unresolved(
                f"MLflow tracking server {shown!r} is unreachable ({reason}); "
                f"check {_TRACKING_HINT} and that the server is running"
            ) from None


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _join(base: str, rest: str) -> str:
    return f"{base.rstrip('/')}/{rest}" if rest else base


def _basenames(infos: Any) -> list[str]:
    return [str(info.path).rstrip("/").rsplit("/", 1)[-1] for info in infos]


def require_remote_model(location: str, tracking: str) -> None:
    """Check a remote artifact directory holds MLmodel before downloading all of it."""
    import mlflow

    children = _basenames(mlflow.artifacts.list_artifacts(location, tracking_uri=tracking))
    if "MLmodel" in children:
        return
    if children:
        raise Unresolved(f"{location!r} has no MLmodel (it holds: {list_names(children)})")
    parent = location.rstrip("/").rpartition("/")[0]
    siblings = _basenames(mlflow.artifacts.list_artifacts(parent, tracking_uri=tracking))
    raise Unresolved(f"nothing at {location!r}; {parent!r} holds: {list_names(siblings)}")


# --- runs:/ -----------------------------------------------------------------------------


def locate_run(client: Any, tracking: str, uri: str) -> Located:
    """Locate ``runs:/<run_id>/<path>``: the run's logged model of that name, else its artifacts.

    MLflow 3 stores a model logged in a run outside the run's artifacts (``models/m-<id>``),
    and ``runs:/`` falls back to it; a same-named logged model wins, as in MLflow.
    """
    from mlflow.exceptions import MlflowException

    parts = urlsplit(uri)
    run_id, _, artifact_path = parts.path.strip("/").partition("/")
    if parts.netloc or not run_id:
        raise Unresolved("runs URIs look like runs:/<run_id>/<artifact path>")
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        raise Unresolved(
            f"run {run_id!r} not found in tracking store {redact(tracking)!r}; "
            f"check the run id and {_TRACKING_HINT}"
        ) from None
    head, _, rest = artifact_path.partition("/")
    models = _logged_models(client, run)
    if head in models:  # MLflow 3 logs a model outside the run's artifacts
        location = _join(models[head].artifact_location, rest)
        return Located(location, run_id=run_id, source=location)
    children = _basenames(client.list_artifacts(run_id, artifact_path or None))
    if "MLmodel" in children:
        location = _join(run.info.artifact_uri, artifact_path)
        return Located(location, run_id=run_id, source=location)
    if children and artifact_path:
        raise Unresolved(
            f"run {run_id!r} artifact {artifact_path!r} has no MLmodel "
            f"(it holds: {list_names(children)})"
        )
    have = [repr(n) for n in _basenames(client.list_artifacts(run_id))]
    have += [f"{n!r} (logged model)" for n in models]
    what = f"no artifact or logged model {artifact_path!r}" if artifact_path else "no MLmodel"
    raise Unresolved(
        f"run {run_id!r} has {what}; it has: {', '.join(sorted(have)) or 'nothing'}"
        + ("" if artifact_path else f"; write runs:/{run_id}/<one of those>")
    )


def _logged_models(client: Any, run: Any) -> dict[str, Any]:
    """The run's MLflow 3 logged models by name (first match wins, as in MLflow)."""
    from mlflow.exceptions import MlflowException

    found: dict[str, Any] = {}
    token = None
    try:
        for _ in range(100):  # bounded: 100 pages of logged models per run is plenty
            page = client.search_logged_models(
                experiment_ids=[run.info.experiment_id],
                filter_string=f"source_run_id = '{run.info.run_id}'",
                page_token=token,
            )
            for model in page:
                found.setdefault(model.name, model)
            token = page.token
            if not token:
                break
    except MlflowException:  # an MLflow 2 server has no logged models
        _log.debug("searching logged models of run %s failed", run.info.run_id, exc_info=True)
    return found


# --- models:/ ---------------------------------------------------------------------------


def locate_registered(client: Any, tracking: str, uri: str) -> Located:
    """Locate ``models:/`` URIs: a registry version (number, latest, stage, alias) or model id.

    ``latest`` and stages are chosen from ``search_model_versions`` rather than the deprecated
    ``get_latest_versions`` (a FutureWarning since MLflow 2.9), with the same result: the
    highest version number overall or in that stage.
    """
    parts = urlsplit(uri)
    segments = parts.path.strip("/").split("/")
    if parts.netloc or len(segments) > 2 or not all(segments):
        raise Unresolved(
            "models URIs look like models:/<name>/<version|latest|stage>, "
            "models:/<name>@<alias> or models:/<logged model id>"
        )
    if len(segments) == 1 and "@" not in segments[0]:
        return _locate_logged_model(client, tracking, segments[0])
    if len(segments) == 1:
        name, _, alias = segments[0].rpartition("@")
        registered = _registered_model(client, tracking, name)
        aliases = {str(k): str(v) for k, v in dict(registered.aliases or {}).items()}
        if alias not in aliases:
            have = ", ".join(f"{a!r} -> {v}" for a, v in sorted(aliases.items()))
            raise Unresolved(
                f"registered model {name!r} has no alias {alias!r}; "
                + (f"its aliases: {have}" if have else "it has no aliases")
            )
        return _version(client, tracking, name, aliases[alias])
    name, selector = segments
    _registered_model(client, tracking, name)
    if selector.isdigit():
        return _version(client, tracking, name, selector)
    versions = _versions(client, name)
    if selector.lower() == "latest":
        chosen = versions
        if not chosen:
            raise Unresolved(f"registered model {name!r} has no versions")
    else:
        stage = next((s for s in _STAGES if s.lower() == selector.lower()), None)
        if stage is None:
            raise Unresolved(
                f"{selector!r} is not a version, 'latest' or a stage ({', '.join(_STAGES)}); "
                f"for an alias write 'models:/{name}@{selector}'"
            )
        chosen = [v for v in versions if v.current_stage == stage]
        if not chosen:
            have = ", ".join(f"{v.version} ({v.current_stage})" for v in versions)
            raise Unresolved(
                f"no version of registered model {name!r} is in stage {stage!r}; "
                f"versions: {have or 'none'}"
            )
    latest = max(chosen, key=lambda v: int(v.version))
    return _version(client, tracking, name, str(latest.version))


def _registered_model(client: Any, tracking: str, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
    names = [m.name for m in client.search_registered_models(max_results=1000)]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    close += [n for n in names if n.lower() == name.lower() and n not in close]
    registry = redact(str(getattr(client, "_registry_uri", None) or tracking))
    raise Unresolved(
        f"registered model {name!r} not found in registry {registry!r}; "
        + (f"did you mean {list_names(close)}?" if close else "")
        + (f"registered models: {list_names(names)}" if names and not close else "")
        + ("it has no registered models" if not names else "")
    )


def _versions(client: Any, name: str) -> list[Any]:
    quoted = f'"{name}"' if "'" in name else f"'{name}'"
    versions: list[Any] = []
    token = None
    for _ in range(100):  # bounded pagination
        page = client.search_model_versions(f"name = {quoted}", page_token=token)
        versions.extend(page)
        token = page.token
        if not token:
            break
    return sorted(versions, key=lambda v: int(v.version))


def _version(client: Any, tracking: str, name: str, version: str) -> Located:
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_model_version(name, version)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        have = ", ".join(str(v.version) for v in _versions(client, name))
        raise Unresolved(
            f"registered model {name!r} has no version {version}; "
            + (f"versions: {have}" if have else "it has no versions")
        ) from None
    location = client.get_model_version_download_uri(name, version)
    if location.startswith("models:/"):  # an MLflow 3 source: the logged model
        location = _locate_logged_model(client, tracking, location[len("models:/") :]).location
    elif location.startswith("runs:/"):
        location = locate_run(client, tracking, location).location
    return Located(location, found.run_id or None, name, str(found.version), found.source)


def _locate_logged_model(client: Any, tracking: str, model_id: str) -> Located:
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_logged_model(model_id.strip("/"))
    except MlflowException as exc:
        if not _missing(exc):
            raise
        hint = ""
        try:
            client.get_registered_model(model_id)
            hint = f"; for the registered model write 'models:/{model_id}/latest' or a version"
        except MlflowException:
            pass
        raise Unresolved(
            f"logged model {model_id!r} not found in tracking store {redact(tracking)!r}{hint}"
        ) from None
    location = model.artifact_location
    return Located(location, model.source_run_id or None, source=location)
