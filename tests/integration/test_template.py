"""The SAM template: every variant linted by real cfn-lint, transformed offline by the real
aws-sam-translator, and the CloudFormation it becomes linted again."""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint
from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.runner import Runner, run_template_by_data
from samtranslator.translator.transform import transform

from mlflow_lambda.packager.template import (
    TemplateError,
    TemplateOptions,
    dump_template,
    render_template,
    suggest_memory_mb,
    write_template,
)

pytestmark = pytest.mark.integration

ZIP = "s3://mlflow-lambda-artifacts/forest/bundle.zip"  # the translator needs an s3:// CodeUri
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/forest:latest"
S3_MODEL = "s3://my-models/forest/1"

VARIANTS: dict[str, TemplateOptions] = {
    "zip": TemplateOptions(code_uri=ZIP),
    "image": TemplateOptions(package_type="image", image_uri=IMAGE),
    "s3-model": TemplateOptions(code_uri=ZIP, model_s3_uri=S3_MODEL),
    "function-url": TemplateOptions(code_uri=ZIP, api="function-url", timeout_s=120),
    "function-url-iam": TemplateOptions(code_uri=ZIP, api="function-url", auth="iam"),
    "http-iam": TemplateOptions(code_uri=ZIP, auth="iam"),
    "arm64": TemplateOptions(code_uri=ZIP, arch="arm64", function_name="forest-arm"),
    "provisioned": TemplateOptions(code_uri=ZIP, provisioned_concurrency=2),
    "snapstart": TemplateOptions(code_uri=ZIP, snapstart=True, runtime="python3.13"),
    "no-api": TemplateOptions(code_uri=ZIP, api="none"),
    "image-s3-arm64-url": TemplateOptions(
        package_type="image",
        image_uri=IMAGE,
        arch="arm64",
        api="function-url",
        model_s3_uri=S3_MODEL,
    ),
}


class NoNetworkPolicyLoader:
    """The translator asks for AWS managed policy names only when a template uses one."""

    def load(self) -> dict[str, str]:
        raise AssertionError("the template referenced a managed policy by name")


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator reads it
    yield


_LINT_CONFIG = ManualArgs(regions=["us-east-1"], include_checks=["I"])


@functools.cache
def _rules() -> Any:
    """cfn-lint's rules, loaded once: ``lint()`` loads them from their JSON on every call,
    about 1.1 of its 1.3 s a template here (its own CLI, too, runs one collection over many)."""
    return Runner(ConfigMixIn(**_LINT_CONFIG)).rules


def _lint(text: str) -> list[str]:
    """``cfnlint.api.lint(text, config=...)``, with the rules loaded once (the same matches:
    ``test_lint_with_rules_loaded_once_matches_the_api``)."""
    template, errors = decode_str(text)
    if errors:
        return [str(match) for match in errors]
    if template is None:  # an empty document, as lint() answers it
        return []
    config = ConfigMixIn(**_LINT_CONFIG)
    return [str(match) for match in run_template_by_data(template, config, _rules())]


def test_lint_with_rules_loaded_once_matches_the_api() -> None:
    good = dump_template(render_template(TemplateOptions(code_uri=ZIP)))
    bad = good.replace("MemorySize:", "MemorySizeX:").replace("python3.12", "python2.7")
    for text in (good, bad, good, "not: [valid yaml", ""):
        assert _lint(text) == [str(m) for m in lint(text, config=_LINT_CONFIG)]
    assert len(_lint(bad)) >= 2  # both faults found, by the reused rules too


def _translate(tpl: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = transform(copy.deepcopy(tpl), {}, NoNetworkPolicyLoader())
    return out


def _statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement anywhere in a template."""
    if isinstance(node, dict):
        statements = node.get("Statement")
        if isinstance(statements, list):
            yield from (s for s in statements if isinstance(s, dict))
        elif isinstance(statements, dict):
            yield statements
        for value in node.values():
            yield from _statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from _statements(value)


def _wildcard_resources(tpl: dict[str, Any]) -> list[Any]:
    found = []
    for statement in _statements(tpl):
        resources = statement.get("Resource", [])
        for resource in resources if isinstance(resources, list) else [resources]:
            text = resource if isinstance(resource, str) else str(resource.get("Fn::Sub", ""))
            if text == "*" or text.endswith(":::*") or text.endswith(":*"):
                found.append(resource)
    return found


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_lints_translates_and_grants_nothing_wide(name: str) -> None:
    tpl = render_template(VARIANTS[name])
    text = dump_template(tpl)
    assert yaml.safe_load(text) == tpl
    assert _lint(text) == []
    translated = _translate(tpl)
    assert _lint(yaml.safe_dump(translated)) == []
    assert _wildcard_resources(tpl) == []
    assert _wildcard_resources(translated) == []
    function = translated["Resources"]["ModelFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["MemorySize"] == {"Ref": "MemorySize"}


def test_wildcard_check_catches_a_star() -> None:
    tpl = {"Statement": [{"Resource": "*"}, {"Resource": [{"Fn::Sub": "arn:aws:s3:::b/p/*"}]}]}
    assert _wildcard_resources(tpl) == ["*"]


def test_default_template_in_full() -> None:
    routes = [
        ("Docs", "GET", "/docs"),
        ("Health", "GET", "/health"),
        ("Invocations", "POST", "/invocations"),
        ("OpenApi", "GET", "/openapi.json"),
        ("Ping", "GET", "/ping"),
        ("Version", "GET", "/version"),
    ]
    base = "https://${ModelHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    assert render_template(TemplateOptions()) == {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "MLflow model served by mlflow-lambda",
        "Parameters": {
            "MemorySize": {
                "Type": "Number",
                "Default": 1024,
                "MinValue": 128,
                "MaxValue": 10240,
                "Description": "Function memory in MB (CPU grows with it)",
            },
            "Timeout": {
                "Type": "Number",
                "Default": 28,
                "MinValue": 1,
                "MaxValue": 29,
                "Description": "Function timeout in seconds",
            },
        },
        "Resources": {
            "ModelFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Architectures": ["x86_64"],
                    "CodeUri": "bundle.zip",
                    "Description": "MLflow model served by mlflow-lambda",
                    "Handler": "mlflow_lambda.handler.lambda_function.handler",
                    "MemorySize": {"Ref": "MemorySize"},
                    "Runtime": "python3.12",
                    "Timeout": {"Ref": "Timeout"},
                    "Events": {
                        name: {
                            "Type": "HttpApi",
                            "Properties": {
                                "ApiId": {"Ref": "ModelHttpApi"},
                                "Method": method,
                                "Path": path,
                            },
                        }
                        for name, method, path in routes
                    },
                },
            },
            "ModelHttpApi": {
                "Type": "AWS::Serverless::HttpApi",
                "Properties": {
                    "Description": "MLflow model served by mlflow-lambda (MLflow scoring protocol)"
                },
            },
        },
        "Outputs": {
            "ApiUrl": {"Description": "HTTP API base URL", "Value": {"Fn::Sub": base}},
            "FunctionArn": {
                "Description": "Lambda function ARN",
                "Value": {"Fn::GetAtt": ["ModelFunction", "Arn"]},
            },
            "FunctionName": {
                "Description": "Lambda function name",
                "Value": {"Ref": "ModelFunction"},
            },
            "InvocationsUrl": {
                "Description": "POST MLflow scoring requests here",
                "Value": {"Fn::Sub": base + "/invocations"},
            },
        },
    }


def test_http_api_routes_after_translation() -> None:
    translated = _translate(render_template(VARIANTS["zip"]))
    paths = translated["Resources"]["ModelHttpApi"]["Properties"]["Body"]["paths"]
    assert {path: sorted(methods) for path, methods in paths.items()} == {
        "/docs": ["get"],
        "/health": ["get"],
        "/invocations": ["post"],
        "/openapi.json": ["get"],
        "/ping": ["get"],
        "/version": ["get"],
    }
    assert "security" not in paths["/invocations"]["post"]
    assert translated["Outputs"]["InvocationsUrl"]["Value"] == {
        "Fn::Sub": "https://${ModelHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/invocations"
    }


def test_iam_auth_signs_every_route() -> None:
    translated = _translate(render_template(VARIANTS["http-iam"]))
    paths = translated["Resources"]["ModelHttpApi"]["Properties"]["Body"]["paths"]
    securities = [op["security"] for methods in paths.values() for op in methods.values()]
    # /docs too: a browser cannot sign requests, so behind IAM auth it needs a signing proxy
    assert securities == [[{"AWS_IAM": []}]] * 6
    url = _translate(render_template(VARIANTS["function-url-iam"]))["Resources"]
    assert url["ModelFunctionUrl"]["Properties"]["AuthType"] == "AWS_IAM"
    assert "ModelFunctionUrlPublicPermissions" not in url


def test_image_package_carries_its_build_context() -> None:
    tpl = render_template(TemplateOptions(package_type="image", docker_tag="py312-v1"))
    function = tpl["Resources"]["ModelFunction"]
    assert function["Metadata"] == {
        "DockerContext": ".",
        "DockerTag": "py312-v1",
        "Dockerfile": "Dockerfile",
    }
    props = function["Properties"]
    assert props["PackageType"] == "Image"
    assert {"CodeUri", "Handler", "Runtime", "ImageUri"} & set(props) == set()
    assert _lint(dump_template(tpl)) == []


def test_model_on_s3_reads_exactly_its_prefix() -> None:
    tpl = render_template(VARIANTS["s3-model"])
    props = tpl["Resources"]["ModelFunction"]["Properties"]
    assert props["Environment"] == {"Variables": {"MODEL_S3_URI": S3_MODEL}}
    statement = {
        "Sid": "ReadModelFiles",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::my-models/forest/1/*"},
    }
    assert props["Policies"] == [{"Version": "2012-10-17", "Statement": [statement]}]
    role = _translate(tpl)["Resources"]["ModelFunctionRole"]["Properties"]
    assert [p["PolicyDocument"]["Statement"] for p in role["Policies"]] == [[statement]]
    trailing = render_template(TemplateOptions(model_s3_uri="s3://my-models/forest/1/"))
    assert list(_statements(trailing)) == [statement]
    assert "Environment" not in render_template(VARIANTS["zip"])["Resources"]["ModelFunction"]
    both = render_template(TemplateOptions(model_s3_uri=S3_MODEL, model_dir="/tmp/forest"))
    assert both["Resources"]["ModelFunction"]["Properties"]["Environment"] == {
        "Variables": {"MODEL_DIR": "/tmp/forest", "MODEL_S3_URI": S3_MODEL}
    }


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://my-models", "must be s3://bucket/prefix with a non-empty prefix"),
        ("s3://my-models/", "must be s3://bucket/prefix with a non-empty prefix"),
        ("https://my-models/forest", "must be s3://bucket/prefix"),
        ("s3://my-models/forest*", "contains a wildcard"),
        ("s3://my-models/${AWS::AccountId}/m", "contains a wildcard, '\\$'"),
    ],
)
def test_model_location_that_would_widen_the_grant_is_refused(uri: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render_template(TemplateOptions(model_s3_uri=uri))


def test_function_url_outputs_its_invocations_url() -> None:
    tpl = render_template(VARIANTS["function-url"])
    assert "ModelHttpApi" not in tpl["Resources"]
    props = tpl["Resources"]["ModelFunction"]["Properties"]
    assert (props["FunctionUrlConfig"], "Events" in props) == ({"AuthType": "NONE"}, False)
    assert tpl["Outputs"]["InvocationsUrl"]["Value"] == {
        "Fn::Sub": "${ModelFunctionUrl.FunctionUrl}invocations"
    }
    assert tpl["Parameters"]["Timeout"]["MaxValue"] == 900
    resources = _translate(tpl)["Resources"]
    assert resources["ModelFunctionUrl"]["Type"] == "AWS::Lambda::Url"
    public = resources["ModelFunctionUrlPublicPermissions"]["Properties"]
    assert (public["Action"], public["Principal"]) == ("lambda:InvokeFunctionUrl", "*")


def test_arm64_and_function_name() -> None:
    props = render_template(VARIANTS["arm64"])["Resources"]["ModelFunction"]["Properties"]
    assert (props["Architectures"], props["FunctionName"]) == (["arm64"], "forest-arm")


def test_provisioned_concurrency_goes_on_the_published_alias() -> None:
    tpl = render_template(VARIANTS["provisioned"])
    props = tpl["Resources"]["ModelFunction"]["Properties"]
    assert props["AutoPublishAlias"] == "live"
    alias = _translate(tpl)["Resources"]["ModelFunctionAliaslive"]["Properties"]
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}


def test_snapstart_publishes_a_version() -> None:
    tpl = render_template(VARIANTS["snapstart"])
    props = tpl["Resources"]["ModelFunction"]["Properties"]
    assert (props["SnapStart"], props["AutoPublishAlias"]) == (
        {"ApplyOn": "PublishedVersions"},
        "live",
    )
    resources = _translate(tpl)["Resources"]
    assert resources["ModelFunction"]["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert [k for k in resources if k.startswith("ModelFunctionVersion") and "Permission" not in k]
    assert "SnapStart" not in render_template(VARIANTS["zip"])["Resources"]["ModelFunction"]


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (TemplateOptions(snapstart=True, runtime="python3.11"), "SnapStart needs python3.12"),
        (TemplateOptions(snapstart=True, package_type="image"), "does not support container"),
        (
            TemplateOptions(snapstart=True, provisioned_concurrency=1),
            "SnapStart and provisioned concurrency cannot be combined",
        ),
        (TemplateOptions(timeout_s=30), r"timeout 30 s must be 1-29 s \(API Gateway HTTP APIs"),
        (TemplateOptions(api="function-url", timeout_s=901), "timeout 901 s must be 1-900 s"),
        (TemplateOptions(memory_mb=64), "memory 64 MB is outside Lambda's 128-10240 MB"),
        (TemplateOptions(api="none", auth="iam"), "auth 'iam' needs an endpoint"),
        (TemplateOptions(provisioned_concurrency=0), "provisioned concurrency 0 must be at least"),
        (TemplateOptions(runtime="nodejs20.x"), "'nodejs20.x' is not a Lambda Python runtime"),
    ],
)
def test_impossible_combinations_are_refused(opts: TemplateOptions, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render_template(opts)


def test_memory_suggestions() -> None:
    assert suggest_memory_mb(peak_rss_mb=172) == 512  # 279 MB needed; CPU floor wins
    assert suggest_memory_mb(peak_rss_mb=700) == 1024  # 939 -> next 128
    assert suggest_memory_mb(bundle_mb=400) == 640
    assert suggest_memory_mb() == 1024
    assert suggest_memory_mb(peak_rss_mb=20_000) == 10240


def test_written_template_passes_the_cfn_lint_cli(tmp_path: Path) -> None:
    path = write_template(tmp_path / "build", TemplateOptions(model_s3_uri=S3_MODEL))
    assert path == tmp_path / "build" / "template.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Generated by mlflow-lambda")
    assert "!Ref" not in text and "!Sub" not in text
    assert yaml.safe_load(text) == render_template(TemplateOptions(model_s3_uri=S3_MODEL))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    done = subprocess.run(
        [str(cfn_lint), "--regions", "us-east-1", "--", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "")
    write_template(tmp_path / "build", TemplateOptions(model_s3_uri=S3_MODEL))
    assert path.read_text(encoding="utf-8") == text
