"""Request bodies to typed payloads, following MLflow's scoring protocol.

The parser only checks the *shape* of a request (which format key, which structure);
``handler.schema`` then checks the values against the model signature. Errors are
:class:`ScoringError` with MLflow's error code: ``BAD_REQUEST`` for a malformed body,
415 for an unsupported media type. Behaviour mirrors ``mlflow/pyfunc/scoring_server`` and
``mlflow/utils/proto_json_utils.py`` (MLflow 3.17); deliberate differences are marked FIX
(see docs/protocol.md).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from .csvtable import csv_error, read_csv_columns
from .errors import BAD_REQUEST, INVALID_PARAMETER_VALUE, ScoringError
from .payload import (
    DF_RECORDS,
    DF_SPLIT,
    FORMATS,
    INSTANCES,
    PARAMS_KEY,
    Columns,
    Frame,
    Payload,
    Records,
    Rows,
    Tensor,
)

JSON = "json"
CSV = "csv"
# FIX: MLflow's own docs use application/csv but its server rejects it; we accept both.
MEDIA_TYPES = {"application/json": JSON, "text/csv": CSV, "application/csv": CSV}


@dataclass(frozen=True)
class ParsedRequest:
    """What a request asks: its format, its data and its raw ``params`` (None if absent)."""

    fmt: str
    payload: Payload
    params: Any = None
    # the format key's value as sent (the generic path hands it to MLflow); not part of what
    # the request means, so not of equality
    raw: Any = field(default=None, compare=False)


def _unsupported(message: str) -> ScoringError:
    return ScoringError(BAD_REQUEST, message, status=415)


def parse_content_type(header: str | None) -> str:
    """Return ``"json"`` or ``"csv"`` for a ``Content-Type`` header, or raise a 415.

    FIX: a missing header means JSON (MLflow answers 500). Media type and parameter names
    compare case-insensitively (RFC 9110 section 8.3.1) and empty parameters are ignored.
    """
    if header is None or not header.strip():
        return JSON
    mime, *parts = (part.strip() for part in header.split(";"))
    parameters: dict[str, str] = {}
    for part in parts:
        if part:
            key, _, value = part.partition("=")
            parameters[key.strip().lower()] = value.strip().strip('"')
    charset = parameters.pop("charset", "utf-8").lower()
    if charset != "utf-8":
        raise _unsupported(
            f"The scoring server only supports UTF-8; got charset {charset!r}. "
            "Send the body as UTF-8 with 'Content-Type: application/json'."
        )
    if parameters:
        raise _unsupported(
            f"Unrecognized content type parameters: {', '.join(sorted(parameters))}. "
            "Only 'charset=utf-8' is understood; MLflow 2+ reads the input format from the "
            "JSON body (dataframe_split, dataframe_records, instances or inputs)."
        )
    kind = MEDIA_TYPES.get(mime.lower())
    if kind is None:
        raise _unsupported(
            "This predictor only supports the following content types: "
            f"{sorted(MEDIA_TYPES)!r}. Got {header!r}."
        )
    return kind


def parse_json(body: bytes) -> ParsedRequest:
    """Parse a JSON scoring body into a :class:`ParsedRequest`."""
    try:
        obj = load_json(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ScoringError.bad_request(
            f"Invalid input. Ensure that input is a valid JSON formatted string. Error: {exc}"
        ) from None
    expected = (
        f"The input must be a JSON object with exactly one of the input fields {list(FORMATS)!r}"
        f" and optionally {PARAMS_KEY!r}"
    )
    if not isinstance(obj, dict):
        kind = "a list" if isinstance(obj, list) else f"a {type(obj).__name__}"
        raise ScoringError.bad_request(f"Invalid input. {expected}. Received {kind}.")
    keys = [key for key in FORMATS if key in obj]
    if len(keys) != 1:
        raise ScoringError.bad_request(f"{expected}. Received an object with fields {list(obj)!r}.")
    fmt = keys[0]
    value = obj[fmt]
    payload: Payload
    if fmt == DF_SPLIT:
        payload = _parse_split(value)
    elif fmt == DF_RECORDS:
        payload = _parse_records(value)
    elif fmt == INSTANCES:
        payload = _parse_instances(value)
    else:
        payload = _parse_inputs(value)
    return ParsedRequest(fmt, payload, obj.get(PARAMS_KEY), value)


# msgspec's C decoder reads a 10 000-row body 4-5x faster than ``json.loads`` (bench/jsonlibs.py;
# orjson is as fast but silently turns integers past 64 bits into floats). Built once: a
# Decoder reuses its string cache across calls.
_DECODER = msgspec.json.Decoder()


def load_json(body: bytes) -> Any:
    """``json.loads`` of ``body``, as fast as msgspec can make it, with exactly its answers.

    msgspec accepts a subset of what ``json.loads`` accepts and decodes it to the same
    objects (integers of any size stay exact, duplicate keys keep the last value). What it
    refuses goes to ``json.loads``, which MLflow uses: ``NaN``/``Infinity`` literals, numbers
    past the float range (``1e400`` is inf), a BOM or UTF-16/32, lone surrogate escapes, nesting
    deeper than msgspec's limit; or raises the same error as before.
    """
    try:
        return _DECODER.decode(body)
    except (msgspec.MsgspecError, RecursionError):
        pass
    return json.loads(_text(body))


def _text(body: bytes) -> str | bytes:
    """``body`` decoded as UTF-8 for ``json.loads``.

    ``json.loads(bytes)`` decodes with the ``surrogatepass`` error handler, which takes
    CPython's slow decoding path (10.5 vs 6.7 ms for a 10 000-row body). A BOM or UTF-16/32
    (NUL bytes up front) is still left to ``json.loads`` to detect, as MLflow does.
    """
    if body.startswith(b"\xef\xbb\xbf") or b"\x00" in body[:4]:
        return body
    return body.decode("utf-8")


def _parse_split(value: Any) -> Rows:
    if not isinstance(value, dict):
        kind = "list" if isinstance(value, list) else type(value).__name__
        raise ScoringError.bad_request(
            f"Invalid input. Dataframe split format must be a dictionary. Got {kind}."
        )
    keys = set(value)
    if "data" not in keys or keys - {"columns", "data", "index"}:
        raise ScoringError.bad_request(
            "Invalid input. Dataframe split format must have 'data' field and optionally "
            f"'columns' and 'index' fields. Got {sorted(keys)!r}."
        )
    data, columns, index = value["data"], value.get("columns"), value.get("index")
    if not isinstance(data, list):
        raise ScoringError.bad_request(
            f"Invalid input. dataframe_split 'data' must be a list of rows, got {data!r:.100}."
        )
    if columns is not None and (
        not isinstance(columns, list) or any(isinstance(c, (list, dict)) for c in columns)
    ):
        raise ScoringError.bad_request(
            "Invalid input. dataframe_split 'columns' must be a list of column names, "
            f"got {columns!r:.100}."
        )
    # pandas would repeat a single row to fill a longer index; we refuse instead.
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise ScoringError.bad_request(
            "Invalid input. dataframe_split 'index' must be a list as long as 'data' "
            f"({len(data)} rows), got {index!r:.100}."
        )
    return Rows(columns, data)


def _parse_records(value: Any) -> Records | Rows:
    if not isinstance(value, list):
        kind = "dictionary" if isinstance(value, dict) else f"type {type(value).__name__}"
        raise ScoringError.bad_request(
            f"Invalid input. Dataframe records format must be a list of records. Got {kind}."
        )
    return _rows_or_records(value, DF_RECORDS)


def _rows_or_records(value: list[Any], fmt: str) -> Records | Rows:
    dicts = sum(isinstance(item, dict) for item in value)
    if dicts == len(value):
        return Records(value)
    if dicts:
        raise ScoringError.bad_request(
            f"Invalid input. {fmt} must be a list of objects; got a mix of objects and "
            "other values."
        )
    return Rows(None, value)


def _parse_instances(value: Any) -> Columns | Tensor:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        # TF-serving row format: pivot row objects to columns, as MLflow does.
        columns: dict[str, list[Any]] = {}
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ScoringError.bad_request(
                    f"Invalid input. instances[{i}] is {item!r:.60}, expected an object like "
                    "instances[0]."
                )
            for name, cell in item.items():
                columns.setdefault(name, []).append(cell)
        if len({len(cells) for cells in columns.values()}) > 1:
            raise ScoringError.bad_request(
                "Invalid input. The length of values for each input/column name are not the "
                "same: every object in 'instances' needs the same keys."
            )
        return Columns(columns, BAD_REQUEST, pivoted=True)
    if isinstance(value, dict):
        return Columns(value, BAD_REQUEST)
    return Tensor(value)


def _parse_inputs(value: Any) -> Columns | Records | Tensor:
    if isinstance(value, dict):
        return Columns(value, INVALID_PARAMETER_VALUE)
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return Records(value)
    return Tensor(value)


def parse_csv(
    body: bytes, *, tensor: bool, string_columns: Collection[str] = (), typed: bool = False
) -> ParsedRequest:
    """Parse a CSV body with a header row.

    ``tensor``: the stdlib ``csv`` module reads it as text rows (cast to the tensor dtype
    later), so tensor models need no pandas. ``typed``: the stdlib reader of
    :mod:`handler.csvtable` types each column as ``pandas.read_csv`` would (for column
    signatures in a bundle without pandas). Otherwise pandas reads it like MLflow does. Both
    keep the signature's string columns as text (``"007"`` stays a string).
    """

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScoringError.bad_request(
            f"Invalid input. Ensure that input is a valid UTF-8 encoded string. Error: {exc}"
        ) from None
    if tensor:
        import csv

        try:
            rows = list(csv.reader(text.splitlines()))
        except csv.Error as exc:
            raise csv_error(exc) from None
        if not rows:
            raise csv_error("No columns to parse from file")
        return ParsedRequest(CSV, Rows(rows[0], [row for row in rows[1:] if row]))
    if typed:
        return ParsedRequest(CSV, read_csv_columns(text, frozenset(string_columns)))
    import io

    pd = importlib.import_module("pandas")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={name: object for name in string_columns})
    except Exception as exc:  # pandas raises many types (EmptyDataError, ParserError, ...)
        raise csv_error(exc) from None
    return ParsedRequest(CSV, Frame(frame))


class Table:
    """A column view of a tabular payload: ordered labels, ``column(label)``, ``n_rows``.

    Built the way pandas would build the DataFrame MLflow scores: records contribute the
    union of their keys (missing cells are None), scalar column values broadcast.
    """

    def __init__(self, labels: list[Any], n_rows: int, source: Payload) -> None:
        self.labels = labels
        self.n_rows = n_rows
        self.source = source
        self.rows_are_lists = True

    def column(self, label: Any) -> Any:
        """The values of one column (a list or a numpy array)."""
        source = self.source
        if isinstance(source, Rows):
            if not self.rows_are_lists:
                return source.data
            i = self.labels.index(label)
            return [row[i] for row in source.data]
        if isinstance(source, Records):
            return [record.get(label) for record in source.records]
        if isinstance(source, Frame):
            return source.frame[label].to_numpy()
        if isinstance(source, Columns):
            value = source.data[label]
            return value if _is_sequence(value) else [value] * self.n_rows
        raise AssertionError(f"no columns in {type(source).__name__}")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list) or type(value).__name__ == "ndarray"


def table_of(payload: Payload) -> Table:
    """The :class:`Table` of a payload; a bare tensor is read as rows (columns 0..n-1)."""
    if isinstance(payload, Tensor):
        data = payload.data
        payload = Rows(None, data if isinstance(data, list) else [data])
    if isinstance(payload, Rows):
        return _rows_table(payload)
    if isinstance(payload, Records):
        labels = list(dict.fromkeys(key for record in payload.records for key in record))
        return Table(labels, len(payload.records), payload)
    if isinstance(payload, Frame):
        return Table(list(payload.frame.columns), len(payload.frame), payload)
    lengths = {len(v) for v in payload.data.values() if _is_sequence(v)}
    if len(lengths) > 1:
        raise ScoringError(
            payload.length_error,
            "Invalid input. The length of values for each input/column name are not the same: "
            f"got lengths {sorted(lengths)!r}.",
        )
    return Table(list(payload.data), lengths.pop() if lengths else 1, payload)


def _rows_table(rows: Rows) -> Table:
    data = rows.data
    if isinstance(data, np.ndarray):  # handler.numeric's matrix: every row has the width
        return _uniform_rows(rows, data.shape[1])
    if not any(isinstance(row, list) for row in data):
        # a list of scalars is one column, as in pandas.DataFrame([1, 2, 3])
        width = len(rows.columns) if rows.columns is not None else (1 if data else 0)
        if data and width != 1:
            raise ScoringError.bad_request(
                f"Invalid input. 'data' holds single values but {width} columns were named; "
                "send one list per row."
            )
        table = Table(list(rows.columns or range(width)), len(data), rows)
        table.rows_are_lists = False
        return table
    width = len(rows.columns) if rows.columns is not None else len(data[0])
    # C loops over the usual 10 000 rows; the loop per row only to name the one that is wrong
    if set(map(type, data)) != {list} or set(map(len, data)) != {width}:
        for i, row in enumerate(data):
            # pandas pads short rows with NaN; a silently padded row is a wrong answer
            if not isinstance(row, list) or len(row) != width:
                size = len(row) if isinstance(row, list) else "not a list"
                raise ScoringError.bad_request(
                    f"Invalid input. Row {i} of 'data' has {size} values but the table has "
                    f"{width} columns; every row needs one value per column."
                )
    return _uniform_rows(rows, width)


def _uniform_rows(rows: Rows, width: int) -> Table:
    labels = list(rows.columns) if rows.columns is not None else list(range(width))
    return Table(labels, len(rows.data), rows)
