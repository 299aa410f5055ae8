"""CSV bodies without pandas, typed the way ``pandas.read_csv`` types them.

MLflow's scoring server reads ``text/csv`` with ``pandas.read_csv`` (default options) and then
casts each column to its signature type. A bundle without pandas (a model whose signature
columns are all numeric) must answer the same, so this module reproduces what read_csv's C
parser infers for each column (checked against pandas 3.1):

- the default NA strings (``pandas._libs.parsers.STR_NA_VALUES``) become NaN, compared
  exactly (``" NA"`` stays text);
- whole numbers make an int64 column (float64 once a value is missing), decimal numbers and
  ``inf``/``infinity`` in any case a float64 one (``"1_000"`` and ``"0x10"`` stay text,
  although Python's ``float`` would take them);
- ``true``/``false`` in any case, unpadded, make a bool column (object with NaN if one is
  missing); anything else keeps its text;
- duplicate names get ``.1``, ``.2`` suffixes, empty names become ``Unnamed: <i>``, blank
  lines are skipped, short rows are padded with NaN, and extra leading fields in the first
  data row are an index (dropped).

The result is a :class:`~.payload.Columns` payload, enforced like JSON columns.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import numpy as np

from .errors import BAD_REQUEST, ScoringError
from .payload import Columns

NA_VALUES = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
# ASCII digits and blanks only: pandas' C parser reads neither "١٢" nor "1 000" as numbers
_INT = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")
_FLOAT = re.compile(
    r"[ \t]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)[ \t]*",
    re.IGNORECASE,
)
_BOOLS = {"true": True, "false": False}
_NAN = float("nan")


def read_csv_columns(text: str, string_columns: frozenset[str] | set[str] = frozenset()) -> Columns:
    """Read CSV ``text`` (header row first) into typed columns; 400 ``BAD_REQUEST`` if malformed.

    ``string_columns`` keep their text (NA strings still become NaN), like read_csv's
    ``dtype=object`` for the signature's string columns.
    """
    try:
        rows = [
            row
            for row in csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
            if row and not (len(row) == 1 and not row[0].strip())
        ]
    except csv.Error as exc:
        raise csv_error(exc) from None
    if not rows:
        raise csv_error("No columns to parse from file")
    names = _names(rows[0])
    width = len(names)
    data = rows[1:]
    index = max(len(data[0]) - width, 0) if data else 0
    for line, row in enumerate(data, start=2):
        if len(row) > width + index:
            raise csv_error(
                f"Error tokenizing data. Expected {width + index} fields in line {line}, "
                f"saw {len(row)}"
            )
    cells = [row[index:] + [""] * (width + index - len(row)) for row in data]
    columns = {
        name: _column([row[i] for row in cells], name in string_columns)
        for i, name in enumerate(names)
    }
    return Columns(columns, BAD_REQUEST)


def _names(header: list[str]) -> list[str]:
    used = set(header)
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header):
        name = raw or f"Unnamed: {i}"
        if name in seen:
            k = 1
            while f"{name}.{k}" in used:
                k += 1
            name = f"{name}.{k}"
            used.add(name)
        seen.add(name)
        names.append(name)
    return names


def _column(cells: list[str], keep_text: bool) -> Any:
    missing = [cell in NA_VALUES for cell in cells]
    if keep_text:
        return [_NAN if na else cell for cell, na in zip(cells, missing, strict=True)]
    present = [cell for cell, na in zip(cells, missing, strict=True) if not na]
    if not present:
        return np.full(len(cells), np.nan)
    if all(_INT.fullmatch(cell) for cell in present):
        if not any(missing):
            ints = [int(cell) for cell in cells]
            try:
                return np.array(ints, dtype=np.int64)
            except OverflowError:  # read_csv: uint64, else Python ints (object)
                return np.asarray(ints)
        return np.array(
            [_NAN if na else float(int(c)) for c, na in zip(cells, missing, strict=True)]
        )
    if all(_FLOAT.fullmatch(cell) for cell in present):
        return np.array([_NAN if na else float(c) for c, na in zip(cells, missing, strict=True)])
    if all(cell.lower() in _BOOLS for cell in present):
        if not any(missing):
            return np.array([_BOOLS[cell.lower()] for cell in cells])
        return [_NAN if na else _BOOLS[c.lower()] for c, na in zip(cells, missing, strict=True)]
    return [_NAN if na else cell for cell, na in zip(cells, missing, strict=True)]


def csv_error(exc: object) -> ScoringError:
    """MLflow's 400 for a body read_csv cannot parse, with the parser's reason."""
    return ScoringError.bad_request(
        "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
        "CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` "
        f"method. Error: {exc}"
    )
