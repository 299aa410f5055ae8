"""Every model without a native loader, through MLflow's own pyfunc (the generic path).

Custom ``PythonModel``s (pickled or models-from-code, with their ``artifacts`` and
``code_paths``) and every flavor with no module of its own here (statsmodels, prophet,
pytorch, ...) are loaded with ``mlflow.pyfunc.load_model`` from the bundle's
``mlflow-skinny`` and scored with ``PyFuncModel.predict``, so signature enforcement, params
and type-hint conversions are MLflow's own.

A request reaches ``predict`` as MLflow's scoring server hands it over
(``mlflow/pyfunc/scoring_server/__init__.py``, MLflow 3.17: ``invocations`` and
``_parse_json_data``): the one format key of a JSON body through
``infer_and_parse_data({key: value}, input_schema)``, or the bare ``inputs`` value for a
signature inferred from type hints; CSV through ``parse_csv_input``; ``params`` as sent (MLflow
enforces them in ``predict``). The protocol layer stays ours (``handler.app``): content types,
the body limit, the JSON shape checks, error bodies without tracebacks, NaN as null.

mlflow is imported inside :func:`load` only, and ``flavors.load_model`` imports this module for
the generic flavor only, so a native bundle never imports mlflow.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from ..config import ModelConfig
from ..errors import ModelLoadError, ScoringError
from ..payload import INPUTS

# mlflow/environment_variables.py: ``scoring_server.init`` sets the first for the whole process
# (type-hinted models then parse strings into their hinted types, mlflow/types/type_hints.py);
# the second keeps MLflow 3's usage telemetry from posting from a Lambda init phase.
SERVING_FLAG = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"
TELEMETRY_OFF = "MLFLOW_DISABLE_TELEMETRY"


class PyfuncPredictor:
    """A loaded ``PyFuncModel`` and MLflow's own request parsers for its input schema.

    ``parses_requests`` tells :class:`handler.app.Scorer` to hand the request over to
    :meth:`parse_json` / :meth:`parse_csv` instead of enforcing the signature itself.
    """

    parses_requests = True

    def __init__(self, model: Any, server: ModuleType, mlflow_error: type[Exception]) -> None:
        self.model = model
        self._server = server
        self._mlflow_error = mlflow_error
        metadata = model.metadata
        self._schema = metadata.get_input_schema()
        from_hints = getattr(metadata, "_is_signature_from_type_hint", None)
        self.type_hints = bool(from_hints()) if callable(from_hints) else False

    @contextmanager
    def _mlflow_errors(self) -> Iterator[None]:
        """An ``MlflowException`` becomes its own error code and HTTP status, as MLflow answers.

        MLflow's server prefixes a failed prediction's message with the whole input
        (``Failed to predict data '<data>'``); ours keeps MLflow's message without echoing it.
        """
        try:
            yield
        except self._mlflow_error as exc:
            code = str(getattr(exc, "error_code", "INTERNAL_ERROR"))
            status = exc.get_http_status_code()  # type: ignore[attr-defined]
            message = str(getattr(exc, "message", exc))
            raise ScoringError(code, message, status=int(status)) from None

    def parse_json(self, fmt: str, value: Any) -> Any:
        """The model input MLflow's server makes of ``{fmt: value}``."""
        with self._mlflow_errors():
            if self.type_hints:  # _parse_json_data: no parsing, the bare ``inputs`` value
                if fmt != INPUTS:
                    raise ScoringError.invalid_value(
                        "Request payload must be a dictionary with 'inputs' key when the model "
                        f"contains a valid type hint. Found keys in payload: {[fmt]!r}."
                    )
                return value
            return self._server.infer_and_parse_data({fmt: value}, self._schema)

    def parse_csv(self, text: str) -> Any:
        """The DataFrame MLflow's server reads from a CSV body (typed by the signature)."""
        with self._mlflow_errors():
            return self._server.parse_csv_input(io.StringIO(text), self._schema)

    def predict(self, data: Any, params: Any) -> Any:
        """``PyFuncModel.predict(data, params=params)``: MLflow enforces both."""
        with self._mlflow_errors():
            return self.model.predict(data, params=params)


def _import_mlflow() -> tuple[Any, ModuleType, type[Exception]]:
    try:
        import mlflow.pyfunc
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc import scoring_server
    except ImportError as exc:
        raise ModelLoadError(
            f"this model is served through MLflow's pyfunc, but importing mlflow failed "
            f"({type(exc).__name__}: {exc}); rebuild the bundle with `mlflow-lambda package`"
        ) from exc
    return mlflow.pyfunc, scoring_server, MlflowException


def load(config: ModelConfig, model_dir: Path) -> PyfuncPredictor:
    """``mlflow.pyfunc.load_model(model_dir)``, once, at init; its own error as a one-liner."""
    # Before mlflow is imported: both are read from the environment when used. A value the
    # function's configuration sets wins.
    os.environ.setdefault(SERVING_FLAG, "true")
    os.environ.setdefault(TELEMETRY_OFF, "true")
    pyfunc, server, mlflow_error = _import_mlflow()
    try:
        model = pyfunc.load_model(str(model_dir))
    except Exception as exc:  # the model's own failure (missing module, bad artifact, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(
            f"MLflow could not load the {config['loader_module']} model in {str(model_dir)!r}: "
            f"{type(exc).__name__}: {first}"
        ) from exc
    return PyfuncPredictor(model, server, mlflow_error)
