"""The deploy surface in the template: every option and a matrix of combinations linted by real
cfn-lint before and after the real SAM transform (offline), then the translated template
checked resource by resource: what API Gateway, Lambda, CodeDeploy and CloudWatch get."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import yaml

from mlflow_lambda.packager.endpoint import DEFAULT_THROTTLE, describe
from mlflow_lambda.packager.template import TemplateError, TemplateOptions, render_template
from mlflow_lambda.packager.template_options import ROLLOUTS
from tests.integration.test_template import (
    IMAGE,
    S3_MODEL,
    ZIP,
    _lint,
    _region,  # noqa: F401  # autouse fixture: the translator reads AWS_DEFAULT_REGION
    _statements,
    _translate,
    _wildcard_resources,
)

pytestmark = pytest.mark.integration

JWT = {"auth": "jwt", "jwt_issuer": "https://issuer.example.com", "jwt_audience": ("app",)}
SUBNETS = ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1")
GROUPS = ("sg-0123456789abcdef0",)
CANARY = {"alias": "champion", "rollout": "canary-10-5m"}

OPTIONS: dict[str, TemplateOptions] = {
    "rest": TemplateOptions(code_uri=ZIP, api="rest"),
    "rest-iam": TemplateOptions(code_uri=ZIP, api="rest", auth="iam"),
    "http-jwt": TemplateOptions(code_uri=ZIP, **JWT),  # type: ignore[arg-type]
    "http-throttle": TemplateOptions(code_uri=ZIP, throttle=(2.5, 5)),
    "rest-throttle": TemplateOptions(code_uri=ZIP, api="rest", throttle=(50.0, 100)),
    "reserved": TemplateOptions(code_uri=ZIP, api="function-url", reserved_concurrency=3),
    "env-tags": TemplateOptions(
        code_uri=ZIP, environment=(("LOG_LEVEL", "debug"),), tags=(("team", "ml"),)
    ),
    "log-retention": TemplateOptions(code_uri=ZIP, log_retention_days=30),
    "vpc": TemplateOptions(code_uri=ZIP, vpc_subnets=SUBNETS, vpc_security_groups=GROUPS),
    "alias": TemplateOptions(code_uri=ZIP, alias="champion"),
    "rollout-http": TemplateOptions(code_uri=ZIP, throttle=DEFAULT_THROTTLE, **CANARY),  # type: ignore[arg-type]
    "rollout-rest": TemplateOptions(code_uri=ZIP, api="rest", alias="prod", rollout="linear-10-1m"),
    "rollout-url": TemplateOptions(code_uri=ZIP, api="function-url", auth="iam", **CANARY),  # type: ignore[arg-type]
    "rollout-none": TemplateOptions(code_uri=ZIP, api="none", alias="b", rollout="all-at-once"),
    "rollout-snapstart": TemplateOptions(code_uri=ZIP, snapstart=True, **CANARY),  # type: ignore[arg-type]
    "rollout-provisioned": TemplateOptions(code_uri=ZIP, provisioned_concurrency=1, **CANARY),  # type: ignore[arg-type]
    "rollout-image-s3": TemplateOptions(
        package_type="image",
        image_uri=IMAGE,
        model_s3_uri=S3_MODEL,
        **CANARY,  # type: ignore[arg-type]
    ),
}

# Every endpoint with every auth it takes, with and without a rollout, throttled where it can be.
_AUTHS = {"http": ("none", "iam", "jwt"), "rest": ("none", "iam"), "function-url": ("none", "iam")}
_AUTHS["none"] = ("none",)
MATRIX: dict[str, TemplateOptions] = {
    f"{api}-{auth}-{rollout or 'direct'}": TemplateOptions(
        code_uri=ZIP,
        api=api,  # type: ignore[arg-type]
        throttle=DEFAULT_THROTTLE if api in ("http", "rest") else None,
        alias="live" if rollout else None,
        rollout=rollout,
        reserved_concurrency=10,
        log_retention_days=14,
        **(JWT if auth == "jwt" else {"auth": auth}),  # type: ignore[arg-type]
    )
    for api, rollout in itertools.product(_AUTHS, (None, "canary-10-10m"))
    for auth in _AUTHS[api]
}


def _linted_translation(opts: TemplateOptions) -> dict[str, Any]:
    """Lint ``opts``'s template, translate it, lint that; return the translated resources."""
    tpl = render_template(opts)
    assert _lint(yaml.safe_dump(tpl)) == []
    translated = _translate(tpl)
    # I3042: the translator writes the partition of the region it runs in into REST API
    # permission ARNs ("arn:aws:execute-api:..."); the same translation runs inside
    # CloudFormation for the stack's own region, so that is not ours to change.
    found = [m for m in _lint(yaml.safe_dump(translated)) if "I3042" not in m]
    assert found == []
    assert _wildcard_resources(tpl) == [] and _wildcard_resources(translated) == []
    resources: dict[str, Any] = translated["Resources"]
    return resources


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_option_lints_before_and_after_the_transform(name: str) -> None:
    resources = _linted_translation(OPTIONS[name])
    assert resources["ModelFunction"]["Type"] == "AWS::Lambda::Function"


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_combination_lints_before_and_after_the_transform(name: str) -> None:
    opts = MATRIX[name]
    resources = _linted_translation(opts)
    function = resources["ModelFunction"]["Properties"]
    assert function["ReservedConcurrentExecutions"] == 10
    assert resources["ModelLogGroup"]["Properties"]["RetentionInDays"] == 14
    assert ("ModelFunctionDeploymentGroup" in resources) == (opts.rollout is not None)
    assert ("ModelServerErrorsAlarm" in resources) == (
        opts.rollout is not None and opts.api != "none"
    )


def _roles(resources: dict[str, Any]) -> dict[str, Any]:
    return {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"}


def _body(resources: dict[str, Any], api_id: str) -> dict[str, Any]:
    body: dict[str, Any] = resources[api_id]["Properties"]["Body"]
    return body


def test_http_api_throttle_and_jwt_reach_the_stage_and_every_route() -> None:
    opts = TemplateOptions(code_uri=ZIP, throttle=(2.5, 5), **JWT)  # type: ignore[arg-type]
    resources = _linted_translation(opts)
    stage = resources["ModelHttpApiApiGatewayDefaultStage"]["Properties"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 5, "ThrottlingRateLimit": 2.5}
    body = _body(resources, "ModelHttpApi")
    scheme = body["components"]["securitySchemes"]["JwtAuthorizer"]
    assert scheme["x-amazon-apigateway-authorizer"] == {
        "identitySource": "$request.header.Authorization",
        "jwtConfiguration": {"audience": ["app"], "issuer": "https://issuer.example.com"},
        "type": "jwt",
    }
    methods = [(path, m) for path, ops in body["paths"].items() for m in ops]
    assert sorted(methods) == [
        ("/docs", "get"), ("/health", "get"), ("/invocations", "post"), ("/openapi.json", "get"),
        ("/ping", "get"), ("/version", "get"),
    ]  # fmt: skip
    for path, method in methods:
        assert body["paths"][path][method]["security"] == [{"JwtAuthorizer": []}]


def test_rest_api_with_iam_signs_every_route_and_throttles_the_stage() -> None:
    opts = TemplateOptions(code_uri=ZIP, api="rest", auth="iam", throttle=(50.0, 100))
    resources = _linted_translation(opts)
    assert resources["ModelRestApi"]["Type"] == "AWS::ApiGateway::RestApi"
    body = _body(resources, "ModelRestApi")
    for path, ops in body["paths"].items():
        for method, op in ops.items():
            assert op["security"] == [{"AWS_IAM": []}], (path, method)
            # InvokeRole NONE: no caller credentials passed through to Lambda
            assert "credentials" not in op["x-amazon-apigateway-integration"]
    stage = resources["ModelRestApiprodStage"]["Properties"]
    assert stage["StageName"] == "prod"
    assert stage["MethodSettings"] == [
        {"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingBurstLimit": 100,
         "ThrottlingRateLimit": 50}
    ]  # fmt: skip
    outputs = render_template(opts)["Outputs"]
    assert outputs["InvocationsUrl"]["Value"] == {
        "Fn::Sub": "https://${ModelRestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
        "/prod/invocations"
    }


def test_rollout_shifts_the_alias_with_codedeploy_and_rolls_back_on_alarms() -> None:
    resources = _linted_translation(OPTIONS["rollout-http"])
    alias = resources["ModelFunctionAliaschampion"]
    assert alias["Properties"]["Name"] == "champion"
    assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"] == {
        "Ref": "ModelFunctionDeploymentGroup"
    }
    group = resources["ModelFunctionDeploymentGroup"]["Properties"]
    assert group["DeploymentConfigName"] == {
        "Fn::Sub": [
            "CodeDeployDefault.Lambda${ConfigName}",
            {"ConfigName": "Canary10Percent5Minutes"},
        ]
    }
    assert group["AlarmConfiguration"] == {
        "Enabled": True,
        "Alarms": [
            {"Name": {"Ref": "ModelErrorsAlarm"}},
            {"Name": {"Fn::Sub": "${AWS::StackName}-model-5xx"}},
        ],
    }
    assert set(group["AutoRollbackConfiguration"]["Events"]) >= {
        "DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"
    }  # fmt: skip
    errors = resources["ModelErrorsAlarm"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"], errors["Threshold"]) == (
        "AWS/Lambda", "Errors", 0
    )  # fmt: skip
    assert errors["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "ModelFunction"}},
        {"Name": "Resource", "Value": {"Fn::Sub": "${ModelFunction}:champion"}},
    ]
    server = resources["ModelServerErrorsAlarm"]["Properties"]
    assert (server["Namespace"], server["MetricName"], server["AlarmName"]) == (
        "AWS/ApiGateway", "5xx", {"Fn::Sub": "${AWS::StackName}-model-5xx"}
    )  # fmt: skip
    assert {"Name": "ApiId", "Value": {"Ref": "ModelHttpApi"}} in server["Dimensions"]
    # the endpoint calls the alias, not $LATEST: API Gateway's permission and integration
    permission = resources["ModelFunctionInvocationsPermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "ModelFunctionAliaschampion"}
    integration = _body(resources, "ModelHttpApi")["paths"]["/invocations"]["post"][
        "x-amazon-apigateway-integration"
    ]
    assert "ModelFunctionAliaschampion" in json.dumps(integration["uri"])
    # least privilege: CodeDeploy's role has AWS's Lambda deployment policy and nothing else
    roles = _roles(resources)
    assert roles["CodeDeployServiceRole"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"
    ]
    assert "Policies" not in roles["CodeDeployServiceRole"]


def test_rollout_on_a_function_url_and_a_rest_api_watches_their_5xx() -> None:
    resources = _linted_translation(OPTIONS["rollout-url"])
    url = resources["ModelFunctionUrl"]["Properties"]
    assert (url["AuthType"], url["TargetFunctionArn"]) == (
        "AWS_IAM", {"Ref": "ModelFunctionAliaschampion"}
    )  # fmt: skip
    server = resources["ModelServerErrorsAlarm"]["Properties"]
    assert (server["Namespace"], server["MetricName"]) == ("AWS/Lambda", "Url5xxCount")
    resources = _linted_translation(OPTIONS["rollout-rest"])
    server = resources["ModelServerErrorsAlarm"]["Properties"]
    assert (server["MetricName"], {"Name": "Stage", "Value": "prod"} in server["Dimensions"]) == (
        "5XXError", True
    )  # fmt: skip
    group = resources["ModelFunctionDeploymentGroup"]["Properties"]
    assert group["DeploymentConfigName"]["Fn::Sub"][1] == {
        "ConfigName": "Linear10PercentEvery1Minute"
    }


def test_function_settings_reach_the_lambda_function() -> None:
    resources = _linted_translation(OPTIONS["env-tags"])
    function = resources["ModelFunction"]["Properties"]
    assert function["Environment"] == {"Variables": {"LOG_LEVEL": "debug"}}
    assert {"Key": "team", "Value": "ml"} in function["Tags"]
    # SAM tags an HTTP API through its OpenAPI body and its stage
    body_tags = resources["ModelHttpApi"]["Properties"]["Body"]["tags"]
    assert {"name": "team", "x-amazon-apigateway-tag-value": "ml"} in body_tags
    assert resources["ModelHttpApiApiGatewayDefaultStage"]["Properties"]["Tags"]["team"] == "ml"
    resources = _linted_translation(OPTIONS["vpc"])
    function = resources["ModelFunction"]["Properties"]
    assert function["VpcConfig"] == {"SecurityGroupIds": list(GROUPS), "SubnetIds": list(SUBNETS)}
    assert _roles(resources)["ModelFunctionRole"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    ]
    resources = _linted_translation(OPTIONS["log-retention"])
    group = resources["ModelLogGroup"]
    assert group["Properties"] == {
        "LogGroupName": {"Fn::Sub": "/aws/lambda/${ModelFunction}"},
        "RetentionInDays": 30,
    }
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Delete", "Delete")
    resources = _linted_translation(OPTIONS["reserved"])
    assert resources["ModelFunction"]["Properties"]["ReservedConcurrentExecutions"] == 3


def test_the_function_role_never_gains_a_statement() -> None:
    """Least privilege: no option adds an inline IAM statement; the S3 model read stays the
    only one, on exactly its prefix."""
    for name, opts in {**OPTIONS, **MATRIX}.items():
        tpl = render_template(opts)
        statements = list(_statements(tpl["Resources"]["ModelFunction"]))
        sids = [s.get("Sid") for s in statements]
        assert sids == (["ReadModelFiles"] if opts.model_s3_uri else []), name


def test_a_lone_alias_publishes_without_codedeploy() -> None:
    resources = _linted_translation(OPTIONS["alias"])
    assert resources["ModelFunctionAliaschampion"]["Type"] == "AWS::Lambda::Alias"
    assert "UpdatePolicy" not in resources["ModelFunctionAliaschampion"]
    assert "ModelFunctionDeploymentGroup" not in resources


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (TemplateOptions(auth="jwt"), "auth 'jwt' needs an issuer and at least one audience"),
        (TemplateOptions(api="rest", **JWT), "auth 'jwt' is an HTTP API authorizer"),  # type: ignore[arg-type]
        (TemplateOptions(auth="jwt", jwt_issuer="http://x", jwt_audience=("a",)), "https://"),
        (TemplateOptions(jwt_issuer="https://x"), "JWT issuer or audience was given with"),
        (TemplateOptions(api="function-url", throttle=(1.0, 1)), "throttling is an API Gateway"),
        (TemplateOptions(throttle=(0.0, 5)), r"throttle 0.0,5 needs a rate above 0"),
        (TemplateOptions(reserved_concurrency=0), "reserved concurrency 0 must be at least 1"),
        (
            TemplateOptions(reserved_concurrency=2, provisioned_concurrency=3),
            "provisioned concurrency 3 cannot exceed reserved concurrency 2",
        ),
        (TemplateOptions(rollout="canary-10-5m"), "rollout 'canary-10-5m' moves traffic"),
        (TemplateOptions(alias="x", rollout="blue-green"), "rollout 'blue-green' must be one of"),
        (TemplateOptions(alias="12"), "alias '12' is not a Lambda alias name"),
        (TemplateOptions(alias="a.b"), "alias 'a.b' is not a Lambda alias name"),
        (TemplateOptions(environment=(("AWS_REGION", "x"),)), "set by Lambda itself"),
        (TemplateOptions(environment=(("MODEL_DIR", "x"),)), r"set by the build"),
        (TemplateOptions(environment=(("1X", "x"),)), "must start with a letter"),
        (TemplateOptions(environment=(("BIG", "x" * 5000),)), "Lambda allows 4096"),
        (TemplateOptions(tags=(("aws:x", "y"),)), "not starting with 'aws:'"),
        (TemplateOptions(log_retention_days=31), "log retention 31 days is not one"),
        (TemplateOptions(vpc_subnets=SUBNETS), "a VPC needs both subnets and security groups"),
        (TemplateOptions(vpc_subnets=("subnet-x",), vpc_security_groups=GROUPS), "'subnet-x'"),
        (TemplateOptions(api="rest", timeout_s=30), r"1-29 s \(API Gateway REST APIs"),
        (TemplateOptions(api="grpc"), "api 'grpc' must be one of"),  # type: ignore[arg-type]
    ],
)
def test_impossible_combinations_are_one_line_errors(opts: TemplateOptions, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as info:
        render_template(opts)
    assert "\n" not in str(info.value)


def test_every_rollout_name_is_a_codedeploy_config() -> None:
    for name, kind in ROLLOUTS.items():
        tpl = render_template(TemplateOptions(alias="live", rollout=name))
        preference = tpl["Resources"]["ModelFunction"]["Properties"]["DeploymentPreference"]
        assert preference["Type"] == kind
    translated = _translate(render_template(TemplateOptions(code_uri=ZIP, **CANARY)))  # type: ignore[arg-type]
    assert translated["Resources"]["ModelFunctionDeploymentGroup"]["Type"] == (
        "AWS::CodeDeploy::DeploymentGroup"
    )


def test_describe_says_whether_the_endpoint_is_public() -> None:
    assert describe(TemplateOptions(throttle=DEFAULT_THROTTLE)) == [
        "endpoint: API Gateway HTTP API, PUBLIC: anyone who has the URL can call it "
        "(--auth iam or jwt to require credentials)",
        "throttling: 50 requests/s, burst 100 (--throttle)",
    ]
    assert describe(TemplateOptions(api="function-url", auth="iam", reserved_concurrency=4)) == [
        "endpoint: Lambda Function URL, private: callers sign requests with AWS IAM (SigV4)",
        "concurrency: at most 4 at once (reserved)",
    ]
    assert describe(TemplateOptions(api="rest", **CANARY)) == [  # type: ignore[arg-type]
        "endpoint: API Gateway REST API, PUBLIC: anyone who has the URL can call it "
        "(--auth iam or jwt to require credentials)",
        "throttling: off (only the account's API Gateway quota applies)",
        "rollout: canary-10-5m behind alias 'champion', rolled back on alarm",
    ]
    assert describe(TemplateOptions(api="none")) == [
        "endpoint: none; only IAM principals allowed lambda:InvokeFunction can call it"
    ]
    assert describe(TemplateOptions(**JWT))[0] == (  # type: ignore[arg-type]
        "endpoint: API Gateway HTTP API, private: callers send a JWT from "
        "https://issuer.example.com for audience app"
    )
