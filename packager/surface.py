"""The deploy surface a user chooses: endpoint, auth, throttling, capacity, rollout.

One set of keys for both front ends: ``mlflow-lambda package --endpoint ...`` and
``mlflow deployments create|update -t lambda --config endpoint=...`` (``SURFACE_KEYS``
holds each key's help once). Values arrive as strings, :func:`parse_surface` turns them into
a :class:`Surface`, and :meth:`Surface.template_options` lays it over what the build measured
(runtime, memory, ...). Bad values are a one-line :class:`TemplateError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mlflow_lambda.packager.endpoint import DEFAULT_THROTTLE
from mlflow_lambda.packager.errors import TemplateError
from mlflow_lambda.packager.rollout import mlflow_alias
from mlflow_lambda.packager.template_options import (
    AUTH_KINDS,
    DEFAULT_TIMEOUT_S,
    GATEWAY_APIS,
    ROLLOUTS,
    ApiKind,
    AuthKind,
    TemplateOptions,
    check_options,
)

# --endpoint NAME -> TemplateOptions.api
ENDPOINTS: dict[str, ApiKind] = {
    "http-api": "http",
    "rest-api": "rest",
    "function-url": "function-url",
    "none": "none",
}
Throttle = tuple[float, int] | Literal["off"] | None  # None: on for API Gateway, at the default

_rate, _burst = DEFAULT_THROTTLE
SURFACE_KEYS: dict[str, str] = {
    "endpoint": f"{'|'.join(ENDPOINTS)}: what serves /invocations [default: http-api]",
    "auth": f"{'|'.join(AUTH_KINDS)}: who may call it (iam: SigV4-signed requests; jwt: HTTP "
    "API only) [default: none, a public endpoint]",
    "jwt_issuer": "auth jwt: the token issuer, an https:// URL",
    "jwt_audience": "auth jwt: accepted audiences (client ids), comma-separated",
    "throttle": f"RATE,BURST requests per second for API Gateway, or off [default: "
    f"{_rate:g},{_burst}]",
    "reserved_concurrency": "N: at most N instances at once (caps cost, for any endpoint)",
    "memory": "MB of memory (CPU grows with it) [default: from the measured peak]",
    "timeout": f"seconds [default: {DEFAULT_TIMEOUT_S}]",
    "snapstart": "true: SnapStart (python3.12+, zip, not with provisioned concurrency)",
    "provisioned_concurrency": "N instances kept initialised (billed while idle)",
    "env": "KEY=VALUE environment variables for the function, comma-separated",
    "tags": "KEY=VALUE tags for the function and API, comma-separated",
    "log_retention": "DAYS to keep the function's logs [default: forever]",
    "vpc_subnets": "subnet ids, comma-separated (with vpc_security_groups)",
    "vpc_security_groups": "security group ids, comma-separated (with vpc_subnets)",
    "alias": "Lambda alias the endpoint calls [default: the MLflow alias of models:/name@alias]",
    "rollout": f"how a new version replaces the alias's: {'|'.join(ROLLOUTS)} (needs an alias; "
    "rolled back when the function errs or the endpoint answers 5xx)",
}


@dataclass(frozen=True)
class Surface:
    """What the user chose; ``None`` leaves a value to the build (or to the model URI)."""

    endpoint: str = "http-api"
    auth: AuthKind = "none"
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    throttle: Throttle = None
    reserved_concurrency: int | None = None
    memory_mb: int | None = None
    timeout_s: int | None = None
    snapstart: bool = False
    provisioned_concurrency: int | None = None
    environment: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    log_retention_days: int | None = None
    vpc_subnets: tuple[str, ...] = ()
    vpc_security_groups: tuple[str, ...] = ()
    alias: str | None = None
    rollout: str | None = None

    def template_options(self, base: TemplateOptions, model_uri: str) -> TemplateOptions:
        """``base`` (what the build knows) with the user's choices laid over it."""
        if self.endpoint not in ENDPOINTS:
            raise TemplateError(f"endpoint {self.endpoint!r} must be one of {', '.join(ENDPOINTS)}")
        api = ENDPOINTS[self.endpoint]
        throttle = self.throttle
        if throttle is None:  # on by default wherever API Gateway can throttle
            throttle = DEFAULT_THROTTLE if api in GATEWAY_APIS else "off"
        return dataclasses.replace(
            base,
            api=api,
            auth=self.auth,
            jwt_issuer=self.jwt_issuer,
            jwt_audience=self.jwt_audience,
            throttle=None if throttle == "off" else throttle,
            reserved_concurrency=self.reserved_concurrency,
            memory_mb=self.memory_mb or base.memory_mb,
            timeout_s=self.timeout_s or base.timeout_s,
            snapstart=self.snapstart,
            provisioned_concurrency=self.provisioned_concurrency,
            environment=self.environment,
            tags=self.tags,
            log_retention_days=self.log_retention_days,
            vpc_subnets=self.vpc_subnets,
            vpc_security_groups=self.vpc_security_groups,
            alias=self.alias or mlflow_alias(model_uri),
            rollout=self.rollout,
        )

    def check(self, model_uri: str, *, target: str = "zip", python: str | None = None) -> None:
        """Refuse impossible mixes before a build starts (the render checks again, with the
        runtime the build settled on)."""
        runtime = f"python{python}" if python else "python3.12"
        base = TemplateOptions(package_type="image" if target == "image" else "zip")
        check_options(dataclasses.replace(self.template_options(base, model_uri), runtime=runtime))


def _int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TemplateError(f"{key} {text!r} must be a whole number") from None


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_pairs(key: str, items: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``("A=1", "B=x=y")`` -> ``(("A", "1"), ("B", "x=y"))``."""
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise TemplateError(f"{key} {item!r} must look like KEY=VALUE")
        pairs.append((name.strip(), value))
    return tuple(pairs)


def parse_throttle(text: str) -> Throttle:
    """``"50,100"`` -> ``(50.0, 100)``; ``"off"`` -> ``"off"``."""
    if text.strip().lower() == "off":
        return "off"
    rate, sep, burst = text.partition(",")
    try:
        if sep:
            return float(rate), int(burst)
    except ValueError:
        pass
    raise TemplateError(f"throttle {text!r} must be RATE,BURST (e.g. 50,100) or off")


def _bool(key: str, text: str) -> bool:
    if text.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if text.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    raise TemplateError(f"{key} {text!r} must be true or false")


def parse_surface(values: Mapping[str, str]) -> Surface:
    """A :class:`Surface` from ``SURFACE_KEYS`` strings (other keys are left alone)."""
    v = {k: str(x) for k, x in values.items() if k in SURFACE_KEYS and x is not None}
    auth = v.get("auth", "none")
    if auth not in AUTH_KINDS:
        raise TemplateError(f"auth {auth!r} must be one of {', '.join(AUTH_KINDS)}")
    rollout = v.get("rollout")
    if rollout is not None and rollout not in ROLLOUTS:
        raise TemplateError(f"rollout {rollout!r} must be one of {', '.join(ROLLOUTS)}")

    def number(key: str) -> int | None:
        return _int(key, v[key]) if key in v else None

    return Surface(
        endpoint=v.get("endpoint", "http-api"),
        auth=auth,  # checked against AUTH_KINDS above
        jwt_issuer=v.get("jwt_issuer"),
        jwt_audience=_list(v.get("jwt_audience", "")),
        throttle=parse_throttle(v["throttle"]) if "throttle" in v else None,
        reserved_concurrency=number("reserved_concurrency"),
        memory_mb=number("memory"),
        timeout_s=number("timeout"),
        snapstart=_bool("snapstart", v.get("snapstart", "false")),
        provisioned_concurrency=number("provisioned_concurrency"),
        environment=parse_pairs("env", _list(v.get("env", ""))),
        tags=parse_pairs("tag", _list(v.get("tags", ""))),
        log_retention_days=number("log_retention"),
        vpc_subnets=_list(v.get("vpc_subnets", "")),
        vpc_security_groups=_list(v.get("vpc_security_groups", "")),
        alias=v.get("alias"),
        rollout=rollout,
    )
