"""Predictions to the JSON body ``{"predictions": P}``; errors to ``{"error_code", "message"}``.

Follows ``_get_jsonable_obj`` and ``NumpyEncoder`` in ``mlflow/utils/proto_json_utils.py``:
arrays become lists, a DataFrame (and, as in MLflow, a Series) becomes a list of records,
numpy scalars become Python numbers, bytes become base64, dates ISO 8601.

FIX: MLflow writes bare ``NaN`` / ``Infinity``, which is not JSON (RFC 8259 section 6); we
write ``null``. The common case (a finite numeric array) costs one ``tolist`` and one
C-encoder ``json.dumps``; only a body with non-finite numbers takes the slow walk.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import sys
from typing import Any

import msgspec
import numpy as np


def to_jsonable(raw: Any) -> Any:
    """The JSON-ready form of a model's output (lists, dicts, Python scalars)."""
    if isinstance(raw, np.ndarray):
        if raw.dtype.kind in "fc" and raw.size and not np.isfinite(raw).all():
            cleaned = raw.astype(object)
            cleaned[~np.isfinite(raw)] = None
            return cleaned.tolist()
        if raw.dtype.kind == "S":
            return [_default(item) for item in raw.tolist()]
        return raw.tolist()
    pd = sys.modules.get("pandas")  # a pandas object can only exist if pandas is imported
    if pd is not None:
        if isinstance(raw, pd.DataFrame):
            return raw.to_dict(orient="records")
        if isinstance(raw, pd.Series):
            # MLflow answers a Series as records of a one-column frame, not as a list
            return pd.DataFrame(raw).to_dict(orient="records")
    return raw


def _default(o: Any) -> Any:
    """``json.dumps`` fallback for the non-JSON types a model may return."""
    if isinstance(o, np.ndarray):
        return to_jsonable(o)
    if isinstance(o, np.datetime64):
        return None if np.isnat(o) else str(np.datetime_as_string(o))
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (bytes, bytearray)):
        return base64.encodebytes(o).decode("ascii")
    if isinstance(o, (dt.date, dt.datetime, dt.time)):  # pandas.Timestamp is a datetime
        return None if o != o else o.isoformat()  # pandas.NaT: null, like NaN (MLflow: "NaT")
    raise TypeError(f"cannot serialize a prediction of type {type(o).__name__!r} as JSON")


def _finite(obj: Any) -> Any:
    """Replace NaN and +-Inf anywhere in ``obj`` by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (list, tuple)):
        return [_finite(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (np.generic, np.ndarray)):
        return _finite(_default(obj))
    return obj


# ndarray kinds whose ``tolist()`` holds only str, int, float and bool: msgspec encodes those
# exactly as ``json.dumps`` would, up to spelling (``1e-7`` for ``1e-07``, UTF-8 for ``\u00e9``),
# the same JSON values, and writes NaN and +-Inf as null itself, so such an array skips
# :func:`to_jsonable`'s finiteness pass (0.08 ms of a 2-row answer when it runs after the
# model's predict, caches cold). Anything else (records, objects, bytes, dates) takes
# ``json.dumps`` with ``_default``, whose conversions msgspec does not share.
_PLAIN_KINDS = frozenset("biufU")
_ENCODER = msgspec.json.Encoder()


def predictions_json(raw: Any) -> bytes:
    """The UTF-8 body ``{"predictions": ...}`` for a model output; TypeError if unencodable."""
    if isinstance(raw, np.ndarray) and raw.dtype.kind in _PLAIN_KINDS:
        return _ENCODER.encode({"predictions": raw.tolist()})
    body = {"predictions": to_jsonable(raw)}
    try:
        text = json.dumps(body, allow_nan=False, default=_default)
    except ValueError:  # a NaN or Infinity somewhere below a list or a record
        text = json.dumps(_finite(body), allow_nan=False, default=_default)
    return text.encode("utf-8")


def error_json(error_code: str, message: str) -> bytes:
    """The UTF-8 error body ``{"error_code", "message"}`` (never a stack trace)."""
    return json.dumps({"error_code": error_code, "message": message}).encode("utf-8")


# How much of a model's exception message a client gets: enough for scikit-learn's longest
# one-liners (feature-name mismatches list the columns), short enough to keep a 400 small.
MAX_REASON_CHARS = 300
# An absolute POSIX path of two or more parts, or a Windows drive path: where the model or
# a library lives on the host (/var/task/..., /home/me/.venv/...), which a client has no
# business seeing. Only its last part is kept.
_HOST_PATH = re.compile(r"(?:[A-Za-z]:\\|/)(?:[^\s'\"/\\:]+[/\\])+([^\s'\"/\\:]*)")


def exception_reason(exc: BaseException, limit: int = MAX_REASON_CHARS) -> str:
    """``Type: first line of the message``, host paths cut to their last part, capped.

    What a client is told about a model that raised (docs/protocol.md, "Model errors"):
    never the traceback, which stays in the log.
    """
    lines = [line.strip() for line in str(exc).splitlines()]
    first = next((line for line in lines if line), "")
    first = _HOST_PATH.sub(lambda m: f".../{m.group(1)}", first)
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return reason if len(reason) <= limit else reason[: limit - 3].rstrip() + "..."
