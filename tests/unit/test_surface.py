"""``packager.surface``: the user's strings (CLI options, ``--config KEY=VALUE``) to template
options, with the defaults a build fills in: throttling on for API Gateway, the alias from a
``models:/name@alias`` URI, the measured memory unless chosen."""

from __future__ import annotations

import pytest

from mlflow_lambda.packager.endpoint import DEFAULT_THROTTLE
from mlflow_lambda.packager.errors import TemplateError
from mlflow_lambda.packager.rollout import mlflow_alias
from mlflow_lambda.packager.surface import (
    SURFACE_KEYS,
    Surface,
    parse_pairs,
    parse_surface,
    parse_throttle,
)
from mlflow_lambda.packager.template_options import TemplateOptions

BUILT = TemplateOptions(runtime="python3.12", memory_mb=1536)


def test_defaults_throttle_api_gateway_and_keep_what_the_build_measured() -> None:
    opts = Surface().template_options(BUILT, "models:/forest/3")
    assert (opts.api, opts.auth, opts.throttle, opts.memory_mb, opts.alias, opts.rollout) == (
        "http",
        "none",
        DEFAULT_THROTTLE,
        1536,
        None,
        None,
    )
    rest = Surface(endpoint="rest-api").template_options(BUILT, "models:/forest/3")
    assert (rest.api, rest.throttle) == ("rest", DEFAULT_THROTTLE)
    url = Surface(endpoint="function-url").template_options(BUILT, "models:/forest/3")
    assert (url.api, url.throttle) == ("function-url", None)  # nothing to throttle there
    off = Surface(throttle="off").template_options(BUILT, "models:/forest/3")
    assert off.throttle is None


@pytest.mark.parametrize(
    ("uri", "alias"),
    [
        ("models:/forest@champion", "champion"),
        ("models:///forest@champion", "champion"),
        ("models:/forest/3", None),
        ("models:/forest/latest", None),
        ("models:/m-0123456789abcdef", None),
        ("runs:/abc/model@x", None),
        ("/tmp/model@x", None),
        ("models:/forest@", None),
    ],
)
def test_the_alias_comes_from_a_models_alias_uri(uri: str, alias: str | None) -> None:
    assert mlflow_alias(uri) == alias


def test_an_explicit_alias_wins_over_the_uri() -> None:
    opts = Surface(alias="blue").template_options(BUILT, "models:/forest@champion")
    assert opts.alias == "blue"
    assert Surface().template_options(BUILT, "models:/forest@champion").alias == "champion"


def test_config_strings_reach_every_field() -> None:
    surface = parse_surface(
        {
            "endpoint": "rest-api",
            "auth": "iam",
            "throttle": "2.5,10",
            "reserved_concurrency": "4",
            "memory": "2048",
            "timeout": "20",
            "snapstart": "true",
            "env": "A=1,B=x=y",
            "tags": "team=ml",
            "log_retention": "30",
            "vpc_subnets": "subnet-0123456789abcdef0, subnet-0123456789abcdef1",
            "vpc_security_groups": "sg-0123456789abcdef0",
            "alias": "prod",
            "rollout": "linear-10-2m",
            "s3_bucket": "not a surface key: left alone",
        }
    )
    assert surface == Surface(
        endpoint="rest-api",
        auth="iam",
        throttle=(2.5, 10),
        reserved_concurrency=4,
        memory_mb=2048,
        timeout_s=20,
        snapstart=True,
        environment=(("A", "1"), ("B", "x=y")),
        tags=(("team", "ml"),),
        log_retention_days=30,
        vpc_subnets=("subnet-0123456789abcdef0", "subnet-0123456789abcdef1"),
        vpc_security_groups=("sg-0123456789abcdef0",),
        alias="prod",
        rollout="linear-10-2m",
    )
    opts = surface.template_options(BUILT, "models:/forest@champion")
    assert (opts.memory_mb, opts.timeout_s, opts.alias, opts.throttle) == (
        2048,
        20,
        "prod",
        (2.5, 10),
    )
    jwt = parse_surface({"auth": "jwt", "jwt_issuer": "https://i", "jwt_audience": "a,b"})
    assert (jwt.jwt_issuer, jwt.jwt_audience) == ("https://i", ("a", "b"))
    assert set(SURFACE_KEYS) == {
        "endpoint", "auth", "jwt_issuer", "jwt_audience", "throttle", "reserved_concurrency",
        "memory", "timeout", "snapstart", "provisioned_concurrency", "env", "tags",
        "log_retention", "vpc_subnets", "vpc_security_groups", "alias", "rollout",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"throttle": "fast"}, "throttle 'fast' must be RATE,BURST"),
        ({"throttle": "5"}, "throttle '5' must be RATE,BURST"),
        ({"memory": "lots"}, "memory 'lots' must be a whole number"),
        ({"snapstart": "maybe"}, "snapstart 'maybe' must be true or false"),
        ({"auth": "oauth"}, "auth 'oauth' must be one of none, iam, jwt"),
        ({"rollout": "canary"}, "rollout 'canary' must be one of all-at-once"),
        ({"env": "NOVALUE"}, "env 'NOVALUE' must look like KEY=VALUE"),
    ],
)
def test_bad_strings_are_one_line_errors(values: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_surface(values)


@pytest.mark.parametrize(
    ("surface", "kwargs", "message"),
    [
        (Surface(endpoint="grpc"), {}, "endpoint 'grpc' must be one of http-api"),
        (Surface(snapstart=True), {"python": "3.11"}, "SnapStart needs python3.12 or later"),
        (Surface(snapstart=True), {"target": "image"}, "SnapStart does not support container"),
        (Surface(rollout="canary-10-5m"), {}, "give --alias NAME, or package a models:/"),
        (Surface(endpoint="function-url", throttle=(5.0, 5)), {}, "throttling is an API Gateway"),
        (Surface(auth="jwt"), {}, "auth 'jwt' needs an issuer"),
    ],
)
def test_check_refuses_before_a_build(
    surface: Surface, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        surface.check("models:/forest/3", **kwargs)


def test_check_passes_a_rollout_on_an_aliased_uri() -> None:
    Surface(rollout="canary-10-5m").check("models:/forest@champion")  # the alias is there
    with pytest.raises(TemplateError, match="moves traffic between versions"):
        Surface(rollout="canary-10-5m").check("models:/forest/3")


def test_helpers() -> None:
    assert parse_throttle("OFF") == "off"
    assert parse_throttle("10,20") == (10.0, 20)
    assert parse_pairs("--env", ("K=", "L==")) == (("K", ""), ("L", "="))
