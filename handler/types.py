"""Types at the AWS boundary: the Lambda context and the events the handler understands.

Only the fields the handler reads are typed; AWS sends many more. Payload formats:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/lambda-functions.html
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, TypedDict

EventShape = Literal["v1", "v2", "url", "alb", "direct"]
LambdaEvent = dict[str, Any]


class LambdaContext(Protocol):
    """What awslambdaric passes as ``context`` (a subset)."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: str

    def get_remaining_time_in_millis(self) -> int: ...


class ScoringAnswer(TypedDict, total=False):
    """A direct invoke's answer: the /invocations JSON body itself."""

    predictions: Any
    error_code: str
    message: str


class AsgiAdapter(Protocol):
    """A Mangum instance: turns an HTTP-shaped event into a proxy response."""

    def __call__(self, event: LambdaEvent, context: Any) -> dict[str, Any]: ...
