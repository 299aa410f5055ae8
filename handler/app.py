"""The ASGI app speaking MLflow's scoring protocol (see docs/protocol.md).

A plain Starlette app, the core FastAPI is built on: the routes need none of FastAPI's
request models, dependency injection or OpenAPI, and importing FastAPI (with pydantic) cost
0.14 s of a 1.1 s cold start and 8 MB of bundle (measured with ``-X importtime`` in the
README bundle, bench/). What FastAPI would generate, ``/openapi.json``, is written at build
time from the model's signature (``packager/openapi.py``) and served here as a file read on
first request; ``/docs`` is Swagger UI's page around it, as FastAPI's ``get_swagger_ui_html``.
Unknown paths and wrong methods answer ``{"detail": ...}`` as FastAPI and MLflow's server do.
The body is read once as bytes and parsed by ``handler.parsing``, which keeps the warm overhead
per request well under a millisecond.
Scoring runs inline on the event loop: a Lambda environment serves one request at a time,
so a thread hop would only add latency. Nothing happens in startup events (Mangum runs the
lifespan on every invocation); the model is loaded before :func:`create_app` is called.

Without pandas installed (a bundle planned without it), a model whose signature columns are
all numeric is scored from a 2-D array in signature order, and a model without a signature
that was fitted on arrays from a 2-D array in request order, every input format included
(CSV through :mod:`handler.csvtable`): scikit-learn turns the DataFrame MLflow would pass
into the same array (``check_array``), so the predictions are the same.

On the generic path (a predictor with ``parses_requests``, ``flavors/pyfunc.py``) the
protocol layer is the same, but the signature is MLflow's to enforce: after our content-type
and JSON shape checks, the body goes to MLflow's own parsers and ``PyFuncModel.predict``
exactly as MLflow's scoring server passes it (:meth:`Scorer.parse_for_mlflow`).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from . import __version__
from .config import ModelConfig
from .docs import docs_html
from .errors import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    REQUEST_LIMIT_EXCEEDED,
    ScoringError,
)
from .flavors import Predictor
from .logs import SCOPE_KEY, AccessLogMiddleware, model_log
from .numeric import numeric_split
from .params import ParamSchema
from .parsing import (
    CSV,
    JSON,
    ParsedRequest,
    parse_content_type,
    parse_csv,
    parse_json,
    table_of,
)
from .payload import DF_SPLIT, MAX_PAYLOAD_BYTES, Rows
from .schema import InputSchema
from .serialize import error_json, exception_reason, predictions_json

JSON_MEDIA_TYPE = "application/json"
MODEL_ERROR_MESSAGE = (
    "Encountered an unexpected error while evaluating the model. Verify that the serialized "
    "input Dataframe is compatible with the model for inference."
)


@dataclass(frozen=True)
class Answer:
    """One scoring answer: status, JSON body, and what the access log reports."""

    status: int
    body: bytes
    rows: int | None = None
    error_code: str | None = None


def _error(exc: ScoringError, rows: int | None = None) -> Answer:
    return Answer(exc.status, error_json(exc.error_code, exc.message), rows, exc.error_code)


class Scorer:
    """``/invocations`` without the web framework: bytes and a content type in, an answer out."""

    def __init__(
        self, predictor: Predictor, config: ModelConfig, *, pandas: bool | None = None
    ) -> None:
        """``pandas``: whether pandas may be imported (None: whether it is installed)."""
        signature = config["signature"]
        self.predictor = predictor
        self.inputs = InputSchema(signature["inputs"])
        self.params = ParamSchema(signature["params"])
        self.pandas = pandas_installed() if pandas is None else pandas
        self.array_error: str | None = None  # why the array path cannot score this model
        self.mlflow_parses = bool(getattr(predictor, "parses_requests", False))
        if self.mlflow_parses:  # the generic path: MLflow builds the model input
            self.want_frame = True
        elif not self.pandas and self.inputs.kind == "none":
            self.want_frame = False
            self.array_error = _unsigned_array_error(predictor)
        elif self.pandas or self.inputs.array_dtype is None:
            # pandas there (or needed): a DataFrame unless the model was fitted on arrays
            accepts = getattr(predictor, "accepts_ndarray", False)
            self.want_frame = not (accepts and self.inputs.matrix_dtype is not None)
        else:
            self.want_frame = False
            fitted = getattr(predictor, "feature_names", None)
            if fitted is not None and list(fitted) != self.inputs.names:
                # scikit-learn refuses a DataFrame whose columns differ from the fitted ones
                # (MLflow answers 400 to every request); a bare array would be scored
                # positionally, so refuse it too instead of answering wrongly.
                self.array_error = (
                    f"the model was fitted on columns {list(fitted)!r} but its signature has "
                    f"{self.inputs.names!r}; MLflow's DataFrame would be refused the same way"
                )
                model_log.warning("every request will fail: %s", self.array_error)
        # Whether a dataframe_split of numbers may skip the generic parse (handler.numeric):
        # only where enforcing it would make the same float64 matrix of its rows (with no
        # signature for the array path; with named float64 columns, sent in their order).
        self.numeric_split = not self.mlflow_parses and (
            (self.inputs.kind == "none" and not self.want_frame)
            or (self.inputs.named and self.inputs.matrix_dtype == np.float64)
        )

    def parse(self, body: bytes, content_type: str | None) -> ParsedRequest:
        """Parse ``body`` as ``content_type`` says (415 / 400 as :class:`ScoringError`)."""
        kind = parse_content_type(content_type)
        if kind == JSON and self.numeric_split:
            fast = numeric_split(body)
            if fast is not None and (
                self.inputs.kind == "none" or fast.columns == self.inputs.names
            ):
                return ParsedRequest(DF_SPLIT, Rows(fast.columns, fast.matrix), fast.params)
        if kind == CSV:
            kind = self.inputs.kind
            tensor = kind == "tensor"
            typed = kind in ("columns", "none") and not self.pandas
            return parse_csv(
                body, tensor=tensor, typed=typed, string_columns=self.inputs.string_columns
            )
        return parse_json(body)

    def parse_for_mlflow(self, body: bytes, content_type: str | None) -> tuple[Any, Any]:
        """The generic path: ``(model_input, params)`` as MLflow's scoring server builds them.

        Our checks first (415s, the JSON shape, rows of uneven length: the README's
        differences hold on both paths), then MLflow's own parser for the model's schema.
        """
        predictor: Any = self.predictor
        if parse_content_type(content_type) == CSV:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ScoringError.bad_request(
                    "Invalid input. Ensure that input is a valid UTF-8 encoded string. "
                    f"Error: {exc}"
                ) from None
            return predictor.parse_csv(text), None  # MLflow ignores params with CSV
        request = parse_json(body)
        if isinstance(request.payload, Rows):
            table_of(request.payload)  # FIX: a short row is a 400, not a row padded with NaN
        return predictor.parse_json(request.fmt, request.raw), request.params

    def score(self, body: bytes, content_type: str | None) -> Answer:
        """Parse, enforce the signature, predict and serialize; never raises."""
        rows: int | None = None
        try:
            if self.mlflow_parses:
                data, params = self.parse_for_mlflow(body, content_type)
                rows = _rows(data)
            else:
                request = self.parse(body, content_type)
                data, rows = self.inputs.enforce(
                    request.payload, want_frame=self.want_frame, table=request.fmt == CSV
                )
                params = self.params.enforce(request.params)
                if params is None and request.params is not None:
                    model_log.info(
                        "the model has no params schema; ignoring params %r", request.params
                    )
            try:
                if self.array_error is not None:
                    raise ValueError(self.array_error)
                raw = self.predictor.predict(data, params)
            except ScoringError:  # the generic path: MLflow's own error code for its checks
                raise
            except ImportError as exc:  # the bundle lacks a module: ours to fix, not the client's
                model_log.exception("the model needs a module this bundle does not have")
                raise ScoringError(
                    INTERNAL_ERROR,
                    f"The model needs module {exc.name!r}, which this bundle does not contain; "
                    "see the function's logs.",
                ) from None
            except Exception as exc:  # the model's own failure on well-formed input: 400
                model_log.exception(
                    "the model raised while predicting %d rows%s", rows, self._array_note()
                )
                # MLflow's wording, then why: the type and first line of the exception
                # (docs/protocol.md, "Model errors"); the traceback stays in the log.
                message = f"{MODEL_ERROR_MESSAGE} {exception_reason(exc)}"
                raise ScoringError(BAD_REQUEST, message) from None
            return Answer(200, predictions_json(raw), rows)
        except ScoringError as exc:
            return _error(exc, rows)
        except Exception:  # a bug here or an unencodable prediction: log it, answer 500
            model_log.exception("internal error while scoring")
            return _error(ScoringError(INTERNAL_ERROR, "Internal error while scoring; see logs."))

    def _array_note(self) -> str:
        if self.want_frame or self.pandas or self.inputs.kind == "tensor":
            return ""
        if self.inputs.kind == "none":
            return (
                " (pandas is not installed, so the model got a 2-D numpy array in request "
                "column order instead of a DataFrame)"
            )
        return (
            " (pandas is not installed, so the model got a 2-D numpy array in signature "
            "order instead of a DataFrame; if it selects columns by name, package it with "
            "pandas)"
        )


def _unsigned_array_error(predictor: Predictor) -> str | None:
    """Why a model without a signature cannot be scored from a bare array, or None.

    A model fitted on a DataFrame checks the request's column names against its own
    (scikit-learn refuses other names); a bare array would be scored positionally whatever
    the client named its columns. The build bundles pandas for such a model, so this only
    guards a hand-made bundle.
    """
    fitted = getattr(predictor, "feature_names", None)
    if fitted is None:
        return None
    message = (
        f"the model was fitted on named columns {list(fitted)!r} and has no signature, and "
        "this bundle has no pandas to check request columns against them; package it with "
        "--with-pandas"
    )
    model_log.warning("every request will fail: %s", message)
    return message


def _rows(data: Any) -> int | None:
    """Rows of a model input MLflow built (a DataFrame, an array or a list), for the log."""
    if isinstance(data, dict) or not hasattr(data, "__len__"):
        return None
    return len(data)


def pandas_installed() -> bool:
    """Whether ``import pandas`` would succeed, without importing it (cold start)."""
    if "pandas" in sys.modules:  # None there means "blocked": import raises ImportError
        return sys.modules["pandas"] is not None
    return importlib.util.find_spec("pandas") is not None


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = ScoringError(
        REQUEST_LIMIT_EXCEEDED,
        f"Request body exceeds the {limit} byte limit (Lambda's 6 MB synchronous payload "
        "limit); send fewer rows per request.",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    predictor: Predictor,
    config: ModelConfig,
    *,
    max_request_bytes: int = MAX_PAYLOAD_BYTES,
    openapi_path: Path | None = None,
    pandas: bool | None = None,
) -> Starlette:
    """The scoring app: ``/ping``, ``/health``, ``/version``, ``/invocations``, and
    ``/openapi.json`` + ``/docs`` when ``openapi_path`` (the bundle's openapi.json) is given.
    ``pandas``: as :class:`Scorer` takes it (the bench runs a bundle's app in its own venv)."""
    scorer = Scorer(predictor, config, pandas=pandas)
    document: list[bytes] = []  # read on first request, so init pays nothing

    async def openapi(request: Request) -> Response:
        if not document:
            if openapi_path is None or not openapi_path.is_file():
                raise HTTPException(
                    404, "This bundle has no openapi.json; rebuild it with `mlflow-lambda package`."
                )
            document.append(openapi_path.read_bytes())
        return Response(content=document[0], media_type=JSON_MEDIA_TYPE)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_html(f"{config['flavor']} model - Swagger UI"))

    async def ping(request: Request) -> Response:
        return Response(content="\n", media_type=JSON_MEDIA_TYPE)

    async def version(request: Request) -> Response:
        return Response(content=__version__, media_type=JSON_MEDIA_TYPE)

    async def invocations(request: Request) -> Response:
        try:
            body = await _read_body(request, max_request_bytes)
        except ScoringError as exc:
            answer = _error(exc)
        else:
            answer = scorer.score(body, request.headers.get("content-type"))
        info: dict[str, Any] | None = request.scope.get(SCOPE_KEY)
        if info is not None:
            info["rows"] = answer.rows
            info["error_code"] = answer.error_code
        return Response(content=answer.body, status_code=answer.status, media_type=JSON_MEDIA_TYPE)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)

    app = Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.add_middleware(AccessLogMiddleware)
    return app


__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Answer",
    "Scorer",
    "create_app",
    "docs_html",
    "pandas_installed",
]
