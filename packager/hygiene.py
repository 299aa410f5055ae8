"""Artifact hygiene: what a model directory may not bring into a bundle.

Run on the resolved model directory, right after resolve/inspect and before anything is copied:

* a symlink whose target is outside the model directory, and a path in ``model.json`` or in the
  MLmodel's flavors with a ``..`` part (or an absolute one), are refused (``ModelHygieneError``):
  either would ship a file of the build host that is not the model's;
* credentials stop the build, naming the file and what was found (masked): AWS access key ids
  and secret keys, private keys (PEM/OpenSSH), and files that hold credentials by their name
  (``.env``, ``.aws/credentials``, ``.netrc``, ...), unless that file is allowed explicitly
  (``--allow-secret PATH``, the plugin's ``allow_secret``);
* nothing of the host: MLflow 3 writes the absolute artifact location of the logged model into
  the MLmodel (``artifact_path: /home/<user>/mlruns/...``). The runtime never reads it, so the
  bundle gets an MLmodel without it (a hard-linked copy of the model directory where only the
  MLmodel differs; the user's files are never changed) and ``model.json`` is written again.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Collection, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from mlflow_lambda.handler.config import ModelConfig
from mlflow_lambda.packager.errors import ModelHygieneError
from mlflow_lambda.packager.inspection import write_model_config

# Files that hold credentials by their name alone (matched on the name, lower-cased).
SECRET_NAMES = {
    ".env": "a dotenv file (environment secrets)",
    ".netrc": "a .netrc file (login credentials)",
    "_netrc": "a _netrc file (login credentials)",
    ".git-credentials": "a git credentials file",
    ".pypirc": "a .pypirc file (package index credentials)",
    ".pgpass": "a .pgpass file (database passwords)",
}
# Files that hold credentials by where they are: (parent folder, name).
SECRET_PLACES = {
    (".aws", "credentials"): "an AWS shared credentials file",
    (".aws", "config"): "an AWS config file (may hold keys)",
    (".docker", "config.json"): "a Docker config (registry credentials)",
}
# Content patterns, on bytes so binary artifacts (pickles) are searched too.
# AWS key ids: "Understanding unique ID prefixes" (IAM User Guide): AKIA long-term, ASIA temporary.
SECRET_PATTERNS: list[tuple[re.Pattern[bytes], str]] = [
    # Bounded by what a key id is made of, not by \b: in a binary artifact the next byte is
    # often a letter (pickle protocol 2 puts the opcode "q" right after a string), and a
    # "word" boundary would hide the key there.
    (re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), "an AWS access key id"),
    (
        re.compile(rb"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}", re.IGNORECASE),
        "an AWS secret access key",
    ),
    (
        re.compile(rb"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY"),
        "a private key",
    ),
]
_CHUNK = 8 << 20
_OVERLAP = 256  # longer than any pattern's match, so a match across chunks is still found
# Top-level MLmodel keys MLflow fills with a location on the logging host.
_HOST_KEYS = re.compile(rb"^artifact_path: *(?:/|file:|[A-Za-z]:\\).*\n", re.MULTILINE)


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in sorted(dirs) + sorted(files):
            yield base / name


def check_links(root: Path) -> None:
    """Refuse a symlink in ``root`` whose target lies outside it (or does not exist)."""
    real_root = root.resolve()
    for path in _walk(root):
        if not path.is_symlink():
            continue
        rel = path.relative_to(root).as_posix()
        target = path.resolve()
        if not target.exists() or not target.is_relative_to(real_root):
            raise ModelHygieneError(
                f"model file {rel!r} is a symlink to {os.readlink(path)!r}, outside the model "
                "directory; copy the file into the model (or remove the link) and log it again"
            )


def _unsafe(value: str) -> bool:
    parts = value.replace("\\", "/").split("/")
    return (
        ".." in parts or value.startswith(("/", "\\")) or bool(re.match(r"[A-Za-z]:[\\/]", value))
    )


def check_paths(config: ModelConfig, mlmodel: dict[str, Any]) -> None:
    """Refuse a ``..`` (or absolute) path among the model's files or its flavors' paths."""
    named = [("model.json files", rel) for rel in config["files"]]
    named.append(("model_file", config["model_file"]))
    for flavor, conf in (mlmodel.get("flavors") or {}).items():
        for key, value in (conf or {}).items() if isinstance(conf, dict) else ():
            if isinstance(value, str) and ("/" in value or "\\" in value or value == ".."):
                named.append((f"flavors.{flavor}.{key}", value))
    for where, value in named:
        if _unsafe(value):
            raise ModelHygieneError(
                f"the model's {where} names {value!r}, a path outside the model directory; "
                "only files inside the model are packaged: log the model again with it inside"
            )


def _mask(secret: bytes) -> str:
    text = secret.decode("ascii", "replace")
    return f"{text[:4]}...{text[-4:]}" if len(text) > 12 else "..."


def _findings(path: Path) -> list[str]:
    found = []
    name = path.name.lower()
    if name in SECRET_NAMES or name.startswith(".env."):
        found.append(SECRET_NAMES.get(name, SECRET_NAMES[".env"]))
    place = (path.parent.name.lower(), name)
    if place in SECRET_PLACES:
        found.append(SECRET_PLACES[place])
    offset, tail, seen = 0, b"", set()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            data = tail + chunk
            for pattern, what in SECRET_PATTERNS:
                match = pattern.search(data)
                if match and what not in seen:  # the first of each kind is enough to say
                    seen.add(what)
                    at = offset - len(tail) + match.start()
                    found.append(f"{what} ({_mask(match.group())}, byte {at})")
            offset += len(chunk)
            tail = data[-_OVERLAP:]
    return found


def check_secrets(root: Path, allowed: Collection[str] = ()) -> None:
    """Stop on credentials in any file under ``root`` not in ``allowed`` (paths relative to it)."""
    allow = {PurePosixPath(a.replace("\\", "/")).as_posix() for a in allowed}
    unknown = allow - {p.relative_to(root).as_posix() for p in _walk(root) if p.is_file()}
    if unknown:
        raise ModelHygieneError(
            f"--allow-secret names {sorted(unknown)!r}, not files of the model directory; give "
            "paths relative to it, as listed in model.json"
        )
    problems = []
    for path in _walk(root):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in allow:
            found = _findings(path)
            if found:
                problems.append(f"{rel!r}: {', '.join(found)}")
    if problems:
        raise ModelHygieneError(
            "the model directory holds credentials, which would ship in the bundle: "
            + "; ".join(problems)
            + ". Remove them from the model and log it again, or, if they are meant to ship, "
            "allow each file with --allow-secret PATH"
        )


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def scrub_host(model_dir: Path, work: Path) -> Path | None:
    """A copy of ``model_dir`` whose MLmodel names no location of this host, or None if it
    names none. Files are hard-linked where possible; only the MLmodel is written anew."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        return None
    text = mlmodel.read_bytes()
    clean = _HOST_KEYS.sub(b"", text)
    if clean == text:
        return None
    shutil.copytree(model_dir, work, copy_function=_link_or_copy)
    (work / "MLmodel").unlink()  # a hard link to the user's file: never written through
    (work / "MLmodel").write_bytes(clean)
    return work


def check_model(
    model_dir: Path,
    config: ModelConfig,
    model_json: Path,
    work: Path,
    *,
    allowed: Collection[str] = (),
    progress: Callable[[str], None] = print,
) -> tuple[Path, ModelConfig]:
    """Every check above on ``model_dir``; return the directory to package and its config
    (``model.json`` at ``model_json`` written again when the MLmodel was cleaned)."""
    import yaml

    check_links(model_dir)
    mlmodel: dict[str, Any] = {}
    if (model_dir / "MLmodel").is_file():
        mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8")) or {}
    check_paths(config, mlmodel)
    check_secrets(model_dir, allowed)
    clean = scrub_host(model_dir, work)
    if clean is None:
        return model_dir, config
    progress("left the logging host's artifact_path out of the bundled MLmodel")
    return clean, write_model_config(clean, model_json)
