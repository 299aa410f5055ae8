"""``dataframe_split`` bodies of plain numbers, straight to a float64 matrix.

The common large request, ``{"dataframe_split": {"columns": [...], "data": [[1.2, 3.4], ...]}}``,
costs the generic path a Python list per row and a float object per cell, then a pass to
gather them into an array: 6 of the 8 ms the handler spent around a 10 000-row ``predict``
(bench/warm.py). Here msgspec hands over ``data`` as its raw JSON text (still checked as
JSON), the text is checked to be rows of numbers only, each row as wide as the table, and
simdjson writes its numbers straight into one float64 buffer, with no Python object per cell
(``Array.as_buffer``: a third of the time of decoding them as a list and gathering it with
``np.fromiter``; ``python -m bench.jsonlibs``).

The values are the same as the generic path's: simdjson rounds every decimal number
correctly, as Python's ``float()`` does, and converts a 64-bit integer to the nearest double,
as ``float(int)`` does. An integer simdjson cannot hold in 64 bits (past 2**64, below -2**63)
is decoded by msgspec and converted by ``np.fromiter`` (the generic path's float setter)
instead. Anything else (an ``index``, a string or null cell, a ragged row, a number past the
float range, an unknown key) returns None and the generic path answers, with its own errors;
such a body pays one extra pass of msgspec over it first (about a tenth of its generic parse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import msgspec
import numpy as np
import simdjson

_NULL = msgspec.Raw(b"null")


class _Split(msgspec.Struct, forbid_unknown_fields=True):
    data: msgspec.Raw
    columns: msgspec.Raw = _NULL


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    dataframe_split: _Split
    params: msgspec.Raw = _NULL


# Duplicate keys keep the last value, as json.loads and the generic decoder do.
_BODY = msgspec.json.Decoder(_Body)
_ANY = msgspec.json.Decoder()
# One parser, reused: it keeps its buffers between documents (a fresh one for each costs a
# few tenths of a millisecond at 10 000 rows). It keeps them sized for the largest document
# it parsed (about 17 MB of RSS after a 4.5 MB body), so a body over REUSE_BYTES gets a parser
# of its own, freed with it. simdjson refuses to parse again while a proxy (``Object``,
# ``Array``) of the last document lives, so :func:`_simd_floats` drops its own first. Its
# ``parse`` holds the GIL: a second thread scoring meanwhile is refused, not given a buffer
# being rewritten, and decodes with msgspec instead.
_PARSER = simdjson.Parser()
REUSE_BYTES = 1 << 20
_SPACE = b" \t\n\r"
_NOT_STRUCTURE = b"0123456789.eE+-" + _SPACE  # what a table of numbers' skeleton leaves out
_BRACKETS_TO_SPACES = bytes.maketrans(b"[]", b"  ")


@dataclass(frozen=True)
class NumericSplit:
    """A ``dataframe_split`` body whose ``data`` is rows of numbers of one width."""

    columns: list[Any] | None
    matrix: np.ndarray[Any, Any]  # float64, C order, (rows, width)
    params: Any


def numeric_split(body: bytes) -> NumericSplit | None:
    """``body`` as a :class:`NumericSplit`, or None if it is anything else."""
    try:
        parsed = _BODY.decode(body)
        columns = _ANY.decode(parsed.dataframe_split.columns)
        params = _ANY.decode(parsed.params)
    except (msgspec.MsgspecError, RecursionError):
        return None
    if columns is not None and (
        not isinstance(columns, list) or any(isinstance(c, (list, dict)) for c in columns)
    ):
        return None
    matrix = _number_rows(bytes(parsed.dataframe_split.data), columns)
    return None if matrix is None else NumericSplit(columns, matrix, params)


def _number_rows(raw: bytes, columns: list[Any] | None) -> np.ndarray[Any, Any] | None:
    """The rows of ``raw`` (JSON msgspec has checked) as float64, or None."""
    # Without its numbers, a table of n rows of w numbers is exactly "[[,,,],[,,,],...]":
    # one comparison checks that every cell is a number (null, true, a string, an object all
    # leave a character) and that every row has w - 1 commas.
    skeleton = raw.translate(None, _NOT_STRUCTURE)
    width = len(columns) if columns is not None else skeleton.find(b"]") - 1
    n_rows = (len(skeleton) - 1) // (width + 2) if width > 0 else 0
    row = b"[" + b"," * (width - 1) + b"]"
    if n_rows < 1 or skeleton != b"[" + b",".join([row] * n_rows) + b"]":
        return None
    flat = _simd_floats(raw)
    if flat is None:
        flat = _msgspec_floats(raw)
    if flat is None or flat.size != n_rows * width:  # an empty row ([] has no commas either)
        return None
    return flat.reshape(n_rows, width)


def _simd_floats(raw: bytes) -> np.ndarray[Any, Any] | None:
    """Every number of ``raw`` (rows of numbers only) in order, as float64; None if simdjson
    cannot hold one (an integer past 64 bits, a number past the float range)."""
    try:
        parser = _PARSER if len(raw) <= REUSE_BYTES else simdjson.Parser()
        document = cast(simdjson.Array, parser.parse(raw))  # "[[...]]": the skeleton says so
        try:
            buffer = document.as_buffer(of_type="d")
        finally:
            del document  # the parser is reusable only once its proxies are gone
    except (ValueError, TypeError, RuntimeError):  # NUMBER_ERROR, BIGINT_ERROR, ...
        return None
    return np.frombuffer(buffer, np.float64)  # writable: the buffer is the array's own


def _msgspec_floats(raw: bytes) -> np.ndarray[Any, Any] | None:
    """:func:`_simd_floats` for what simdjson refuses: each number a Python object first."""
    try:
        cells = _ANY.decode(b"[" + raw[1:-1].translate(_BRACKETS_TO_SPACES) + b"]")
        return np.fromiter(cells, np.float64, len(cells))
    except (msgspec.MsgspecError, ValueError, TypeError, OverflowError):
        return None  # 1e400 (json.loads reads inf), an int past the float range
