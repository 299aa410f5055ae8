"""The scoring protocol's request vocabulary: its body keys, its size limit, its payload types.

One module both the runtime and the build read (sample events, the input-example probes, the
deployments plugin), so each key and limit is written once. MLflow's names:
``mlflow/pyfunc/scoring_server/__init__.py`` (MLflow 3.17).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from .errors import INVALID_PARAMETER_VALUE

DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
# The four keys a JSON scoring body carries its data under.
FORMATS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
PARAMS_KEY = "params"

# Lambda's synchronous invocation payload limit, request and response alike
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). API Gateway
# allows 10 MB, so 6 MB is the effective limit, and `serve` applies the same.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class Rows:
    """A row-major table: ``dataframe_split``, non-object records, or CSV for tensors."""

    columns: list[Any] | None
    # JSON rows, or a float64 matrix of them (handler.numeric: a dataframe_split of numbers)
    data: list[Any] | np.ndarray[Any, Any]


@dataclass(frozen=True)
class Records:
    """``dataframe_records`` (or ``inputs``) as a list of row objects."""

    records: list[dict[str, Any]]


@dataclass(frozen=True)
class Columns:
    """Column name -> values (list or scalar). ``length_error`` is the error code for
    columns of different lengths (MLflow checks ``instances`` while parsing but ``inputs``
    only when it builds the DataFrame). ``pivoted``: built from ``instances`` row objects."""

    data: dict[str, Any]
    length_error: str = INVALID_PARAMETER_VALUE
    pivoted: bool = False


@dataclass(frozen=True)
class Tensor:
    """``inputs`` / ``instances`` given as a (nested) list or a scalar."""

    data: Any


@dataclass(frozen=True)
class Frame:
    """A pandas DataFrame read from CSV."""

    frame: Any


Payload = Rows | Records | Columns | Tensor | Frame
