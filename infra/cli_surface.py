"""The ``package`` options that choose the deploy surface (``packager.surface``).

Kept out of ``infra.cli`` so the command stays a page: :func:`surface_options` adds the
options to a click command, :func:`surface_from_options` turns what click parsed into a
:class:`Surface`. Help texts are ``SURFACE_KEYS``, the ones ``mlflow deployments help -t
lambda`` shows for the same keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlflow_lambda.packager.surface import (
    ENDPOINTS,
    SURFACE_KEYS,
    Surface,
    parse_pairs,
    parse_surface,
)
from mlflow_lambda.packager.template_options import AUTH_KINDS, ROLLOUTS

F = TypeVar("F", bound=Callable[..., Any])
H = SURFACE_KEYS

# (option, config key, click arguments); the config key is the Surface key it fills.
_OPTIONS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--endpoint", "endpoint", {"type": click.Choice(list(ENDPOINTS)), "default": "http-api"}),
    ("--auth", "auth", {"type": click.Choice(list(AUTH_KINDS)), "default": "none"}),
    ("--jwt-issuer", "jwt_issuer", {"metavar": "URL"}),
    ("--jwt-audience", "jwt_audience", {"metavar": "AUD", "multiple": True}),
    ("--throttle", "throttle", {"metavar": "RATE,BURST|off"}),
    ("--reserved-concurrency", "reserved_concurrency", {"type": int, "metavar": "N"}),
    ("--memory", "memory", {"type": int, "metavar": "MB"}),
    ("--timeout", "timeout", {"type": int, "metavar": "S"}),
    ("--snapstart", "snapstart", {"is_flag": True}),
    ("--provisioned-concurrency", "provisioned_concurrency", {"type": int, "metavar": "N"}),
    ("--env", "env", {"metavar": "KEY=VALUE", "multiple": True}),
    ("--tag", "tags", {"metavar": "KEY=VALUE", "multiple": True}),
    ("--log-retention", "log_retention", {"type": int, "metavar": "DAYS"}),
    ("--vpc-subnets", "vpc_subnets", {"metavar": "ID,ID"}),
    ("--vpc-security-groups", "vpc_security_groups", {"metavar": "ID,ID"}),
    ("--alias", "alias", {"metavar": "NAME"}),
    ("--rollout", "rollout", {"type": click.Choice(list(ROLLOUTS)), "metavar": "KIND"}),
)
_REPEATED = {"jwt_audience", "env", "tags"}  # given once per value on the command line


def surface_options(command: F) -> F:
    """Add the deploy-surface options to ``command`` (each arrives as ``surface_<key>``)."""
    for option, key, kwargs in reversed(_OPTIONS):
        help_text = H[key]
        if key in _REPEATED:
            help_text = help_text.replace(", comma-separated", "; repeat for more")
            help_text = help_text.replace("KEY=VALUE tags for", "KEY=VALUE: a tag for")
        command = click.option(option, f"surface_{key}", help=help_text, **kwargs)(command)
    return command


def surface_from_options(values: dict[str, Any]) -> Surface:
    """The :class:`Surface` of the ``surface_*`` values click parsed."""
    given = {k.removeprefix("surface_"): v for k, v in values.items()}
    scalars = {
        k: ("true" if v else "false") if isinstance(v, bool) else str(v)
        for k, v in given.items()
        if k not in _REPEATED and v is not None
    }
    surface = parse_surface(scalars)
    return dataclasses.replace(
        surface,
        jwt_audience=tuple(given.get("jwt_audience") or ()),
        environment=parse_pairs("--env", tuple(given.get("env") or ())),
        tags=parse_pairs("--tag", tuple(given.get("tags") or ())),
    )
