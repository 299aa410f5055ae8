"""Errors raised by the runtime handler.

One root, so the entry module can tell our failures from a library's::

    HandlerError
    ├── ModelConfigError         model.json is missing or malformed
    ├── ModelIntegrityError      a model file is missing or its sha256 differs from model.json
    ├── ModelFetchError          the model could not be downloaded from S3 (MODEL_S3_URI)
    ├── ModelLoadError           the flavor library could not load the model
    │   └── UnknownFlavorError   model.json names a flavor this runtime has no module for
    └── ScoringError             a request cannot be scored; carries the MLflow error code
                                 and is turned into the JSON error body by the app

``ScoringError`` maps MLflow's error codes to HTTP statuses the way MLflow's scoring server
does (``mlflow.protos.databricks_pb2`` names; ``ERROR_CODE_TO_HTTP_STATUS`` in
``mlflow/exceptions.py``).
"""

from __future__ import annotations

BAD_REQUEST = "BAD_REQUEST"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
INTERNAL_ERROR = "INTERNAL_ERROR"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"

HTTP_STATUS: dict[str, int] = {
    BAD_REQUEST: 400,
    INVALID_PARAMETER_VALUE: 400,
    INTERNAL_ERROR: 500,
    DEADLINE_EXCEEDED: 504,
    REQUEST_LIMIT_EXCEEDED: 413,
}


class HandlerError(Exception):
    """Root of every error the runtime raises on purpose."""


class ModelConfigError(HandlerError):
    """model.json is missing, not JSON, or lacks a required key."""


class ModelIntegrityError(HandlerError):
    """A model file listed in model.json is missing or its sha256 does not match."""


class ModelLoadError(HandlerError):
    """The model file exists but its flavor library could not load it."""


class ModelFetchError(HandlerError):
    """The model could not be downloaded from S3."""


class UnknownFlavorError(ModelLoadError):
    """model.json names a flavor with no module in ``flavors/`` (a bundle from another build)."""


class ScoringError(HandlerError):
    """A request that cannot be scored; becomes ``{"error_code", "message"}``.

    ``status`` defaults to the HTTP status MLflow uses for ``error_code``; 415 answers
    pass it explicitly because MLflow has no error code for them.
    """

    def __init__(self, error_code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status if status is not None else HTTP_STATUS.get(error_code, 500)

    @classmethod
    def bad_request(cls, message: str) -> ScoringError:
        """A malformed request (MLflow: ``BAD_REQUEST``, 400)."""
        return cls(BAD_REQUEST, message)

    @classmethod
    def invalid_value(cls, message: str) -> ScoringError:
        """A well-formed request the signature rejects (``INVALID_PARAMETER_VALUE``, 400)."""
        return cls(INVALID_PARAMETER_VALUE, message)
