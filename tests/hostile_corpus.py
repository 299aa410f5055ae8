"""Hostile requests for the README forest: at least 200 Lambda events that must each get a 2xx
or a 4xx JSON error, never a 5xx, a function error or a traceback.

Bodies (malformed JSON and CSV, every wrong shape, huge numbers, NaN/Infinity literals, deep
nesting, invalid UTF-8, duplicate keys, BOM and UTF-16), content types (wrong, absent, odd
parameters and charsets), broken events of every shape (API Gateway v1, HTTP API v2, Function
URL, ALB, direct) and bodies over the 6 MB limit. Each :class:`Hostile` names what it is.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from mlflow_lambda.handler.payload import MAX_PAYLOAD_BYTES
from mlflow_lambda.packager.events import make_event
from tests.parity_corpus import IRIS

COLUMNS = IRIS
ROW = [5.1, 3.5, 1.4, 0.2]
VALID = {"dataframe_split": {"columns": COLUMNS, "data": [ROW]}}
HTTP_SHAPES = ("v1", "v2", "url", "alb")
HEADER = ",".join(COLUMNS).encode()


@dataclass(frozen=True)
class Hostile:
    """One hostile event; ``oversized``: bigger than Lambda's 6 MB invocation payload;
    ``not_json``: holds NaN or Infinity, which Lambda's runtime refuses to unmarshal
    (``Runtime.UnmarshalError``) before any handler runs."""

    id: str
    event: Any
    oversized: bool = False
    not_json: bool = False


def _split(data: Any, columns: Any = COLUMNS) -> bytes:
    return json.dumps({"dataframe_split": {"columns": columns, "data": data}}).encode()


def _raw_split(data: str) -> bytes:
    return (
        b'{"dataframe_split": {"columns": '
        + json.dumps(COLUMNS).encode()
        + b', "data": '
        + (data.encode("utf-8", "surrogatepass"))
        + b"}}"
    )


JSON_BODIES: dict[str, bytes] = {
    # malformed JSON
    "empty": b"",
    "whitespace": b" \n\t ",
    "open-brace": b"{",
    "close-brace": b"}",
    "truncated": _split([ROW])[:-5],
    "single-quotes": b"{'dataframe_split': {'data': [[1, 2, 3, 4]]}}",
    "trailing-comma": b'{"dataframe_split": {"data": [[1, 2, 3, 4],]}}',
    "comment": b'{"dataframe_split": {"data": [[1, 2, 3, 4]]}} // hi',
    "extra-data": _split([ROW]) + b" {}",
    "nul-byte": b"\x00",
    "nul-after": _split([ROW]) + b"\x00",
    "leading-zero": _raw_split("[[01, 2, 3, 4]]"),
    "bare-dot": _raw_split("[[.5, 2, 3, 4]]"),
    "control-char": b'{"dataframe_split": {"columns": ["a\x01"], "data": [[1]]}}',
    "binary": bytes(range(256)),
    # wrong shapes
    "top-list": json.dumps([ROW]).encode(),
    "top-string": b'"dataframe_split"',
    "top-number": b"42",
    "top-null": b"null",
    "top-true": b"true",
    "empty-object": b"{}",
    "unknown-key": b'{"rows": [[1, 2, 3, 4]]}',
    "two-formats": json.dumps({**VALID, "instances": [ROW]}).encode(),
    "split-list": json.dumps({"dataframe_split": [ROW]}).encode(),
    "split-no-data": json.dumps({"dataframe_split": {"columns": COLUMNS}}).encode(),
    "split-extra-key": json.dumps({"dataframe_split": {"data": [ROW], "x": 1}}).encode(),
    "split-data-dict": _split({"a": 1}),
    "split-data-string": _split("rows"),
    "split-columns-nested": _split([ROW], [[c] for c in COLUMNS]),
    "split-columns-string": _split([ROW], "abc"),
    "split-index-short": json.dumps(
        {"dataframe_split": {"columns": COLUMNS, "data": [ROW, ROW], "index": [0]}}
    ).encode(),
    "split-short-row": _split([ROW[:2]]),
    "split-long-row": _split([[*ROW, 9.9]]),
    "split-ragged": _split([ROW, ROW[:3]]),
    "split-strings": _split([["a", "b", "c", "d"]]),
    "split-numeric-strings": _split([["5.1", "3.5", "1.4", "0.2"]]),
    "split-nulls": _split([[None, None, None, None]]),
    "split-bools": _split([[True, False, True, False]]),
    "split-nested-cell": _split([[[1], [2], [3], [4]]]),
    "split-dict-cell": _split([[{"a": 1}, 2, 3, 4]]),
    "split-empty-data": _split([]),
    "split-missing-column": _split([ROW[:3]], COLUMNS[:3]),
    "split-wrong-columns": _split([ROW], ["a", "b", "c", "d"]),
    "split-duplicate-columns": _split([ROW], [COLUMNS[0]] * 4),
    "records-dict": json.dumps({"dataframe_records": {"a": 1}}).encode(),
    "records-mixed": json.dumps(
        {"dataframe_records": [dict(zip(COLUMNS, ROW, strict=True)), ROW]}
    ).encode(),
    "records-missing-key": json.dumps({"dataframe_records": [{COLUMNS[0]: 1.0}]}).encode(),
    "records-empty": json.dumps({"dataframe_records": []}).encode(),
    "instances-mixed": json.dumps(
        {"instances": [dict(zip(COLUMNS, ROW, strict=True)), 5]}
    ).encode(),
    "instances-ragged": json.dumps({"instances": [{"a": 1}, {"b": 2}]}).encode(),
    "inputs-string": json.dumps({"inputs": "hello"}).encode(),
    "inputs-null": json.dumps({"inputs": None}).encode(),
    "inputs-scalar": json.dumps({"inputs": 3}).encode(),
    "inputs-3d": json.dumps({"inputs": [[ROW]]}).encode(),
    "inputs-columns-lengths": json.dumps(
        {"inputs": {c: [1.0] * (i + 1) for i, c in enumerate(COLUMNS)}}
    ).encode(),
    "params-list": json.dumps({**VALID, "params": [1, 2]}).encode(),
    "params-string": json.dumps({**VALID, "params": "x"}).encode(),
    "params-dict": json.dumps({**VALID, "params": {"a": {"b": [1]}}}).encode(),
    # numbers
    "huge-int": _raw_split("[[1" + "0" * 400 + ", 2, 3, 4]]"),
    "huge-negative-int": _raw_split("[[-1" + "0" * 30 + ", 2, 3, 4]]"),
    "int-past-64-bits": _raw_split("[[18446744073709551616, 2, 3, 4]]"),
    "float-overflow": _raw_split("[[1e400, 2, 3, 4]]"),
    "float-underflow": _raw_split("[[1e-400, 2, 3, 4]]"),
    "nan-literal": _raw_split("[[NaN, 2, 3, 4]]"),
    "infinity-literal": _raw_split("[[Infinity, -Infinity, 3, 4]]"),
    "nan-everywhere": _raw_split("[[NaN, NaN, NaN, NaN]]"),
    "long-mantissa": _raw_split("[[0." + "1234567890" * 40 + ", 2, 3, 4]]"),
    "huge-exponent": _raw_split("[[1e999999999999, 2, 3, 4]]"),
    # nesting
    "deep-list": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "deep-in-data": _raw_split("[" * 5000 + "]" * 5000),
    "deep-unclosed": b"[" * 200_000,
    # text encodings
    "invalid-utf8": b'{"dataframe_split": {"columns": ["\xff\xfe"], "data": [[1]]}}',
    "overlong-utf8": b'{"dataframe_split": {"columns": ["\xc0\xaf"], "data": [[1]]}}',
    "encoded-surrogate": b'{"dataframe_split": {"columns": ["\xed\xa0\x80"], "data": [[1]]}}',
    "lone-surrogate-escape": b'{"dataframe_split": {"columns": ["\\ud800"], "data": [[1]]}}',
    "bom": b"\xef\xbb\xbf" + _split([ROW]),
    "utf16": json.dumps(VALID).encode("utf-16"),
    "utf32": json.dumps(VALID).encode("utf-32"),
    "latin1-text": '{"dataframe_split": {"columns": ["é"], "data": [[1]]}}'.encode("latin-1"),
    # duplicate keys (the last one wins, as in json.loads)
    "duplicate-format-key": b'{"dataframe_split": {"data": 1}, "dataframe_split": '
    + json.dumps(VALID["dataframe_split"]).encode()
    + b"}",
    "duplicate-data-key": _raw_split('[[1, 2, 3, 4]], "data": "x"'),
    "duplicate-columns-key": b'{"dataframe_split": {"columns": 1, "columns": '
    + json.dumps(COLUMNS).encode()
    + b', "data": [[1, 2, 3, 4]]}}',
}

CSV_BODIES: dict[str, bytes] = {
    "csv-empty": b"",
    "csv-header-only": HEADER + b"\n",
    "csv-short-row": HEADER + b"\n5.1,3.5\n",
    "csv-long-row": HEADER + b"\n5.1,3.5,1.4,0.2,9,9\n",
    "csv-text": HEADER + b"\na,b,c,d\n",
    "csv-unbalanced-quote": HEADER + b'\n"5.1,3.5,1.4,0.2\n',
    "csv-invalid-utf8": HEADER + b"\n\xff,\xfe,1,2\n",
    "csv-nul": HEADER + b"\n5.1,\x00,1.4,0.2\n",
    "csv-binary": bytes(range(256)),
    "csv-json": json.dumps(VALID).encode(),
    "csv-wrong-header": b"a,b,c,d\n1,2,3,4\n",
    "csv-crlf": HEADER + b"\r\n5.1,3.5,1.4,0.2\r\n",
    "csv-huge-number": HEADER + b"\n1" + b"0" * 400 + b",3.5,1.4,0.2\n",
    "csv-nan": HEADER + b"\nNaN,inf,-inf,0.2\n",
    "csv-many-columns": b",".join(b"c%d" % i for i in range(5000)) + b"\n" + b"1," * 4999 + b"1\n",
}

CONTENT_TYPES: tuple[str | None, ...] = (
    None,
    "",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
    "application/json; charset=UTF-8",
    'application/json; charset="utf-8"',
    "application/json; foo=bar",
    "APPLICATION/JSON",
    "application/json;",
    ";;;",
    "application/json; charset",
    "text/csv; charset=ascii",
    "application/octet-stream",
    "json",
    "a" * 2000,
)

DIRECT_EVENTS: dict[str, Any] = {
    "direct-split-string": {"dataframe_split": "x"},
    "direct-split-null": {"dataframe_split": None},
    "direct-nan-cell": {"dataframe_split": {"columns": COLUMNS, "data": [[float("nan")] * 4]}},
    "direct-inf-cell": {"dataframe_split": {"columns": COLUMNS, "data": [[float("inf")] * 4]}},
    "direct-huge-int": {"dataframe_split": {"columns": COLUMNS, "data": [[10**40, 1, 2, 3]]}},
    "direct-two-formats": {"dataframe_split": VALID["dataframe_split"], "inputs": [ROW]},
    "direct-params-list": {**VALID, "params": [1]},
    "direct-records-dict": {"dataframe_records": {"a": 1}},
    "direct-instances-nested": {"instances": [[[[1]]]]},
    "direct-inputs-empty": {"inputs": []},
    "direct-deep": {"inputs": json.loads("[" * 200 + "]" * 200)},
    "direct-list": [VALID],
    "direct-string": "dataframe_split",
    "direct-number": 7,
    "direct-null": None,
    "direct-empty": {},
    "direct-sqs": {"Records": [{"eventSource": "aws:sqs", "body": json.dumps(VALID)}]},
}


NOT_JSON = frozenset({"direct-nan-cell", "direct-inf-cell"})


def _broken_events() -> dict[str, Any]:
    """Every HTTP shape with each top-level field removed or of the wrong type."""
    out: dict[str, Any] = {}
    for shape in HTTP_SHAPES:
        base = make_event(shape, VALID)
        for key in base:
            missing = copy.deepcopy(base)
            del missing[key]
            out[f"{shape}-no-{key}"] = missing
            for name, bad in (("null", None), ("number", 1), ("list", [])):
                event = copy.deepcopy(base)
                event[key] = bad
                out[f"{shape}-{key}-{name}"] = event
        for name, bad in (("header-number", {"content-type": 1}), ("header-key", {"1": ["x"]})):
            event = copy.deepcopy(base)
            event["multiValueHeaders" if shape == "v1" else "headers"] = bad
            out[f"{shape}-{name}"] = event
        event = copy.deepcopy(base)
        event["body"], event["isBase64Encoded"] = "not base64!!!", True
        out[f"{shape}-bad-base64"] = event
        if shape in ("v2", "url"):
            for key, bad in (("method", ["POST"]), ("path", None), ("sourceIp", {})):
                event = copy.deepcopy(base)
                event["requestContext"]["http"][key] = bad
                out[f"{shape}-http-{key}-broken"] = event
        else:
            event = copy.deepcopy(base)
            event["httpMethod"] = {"POST": True}
            out[f"{shape}-method-object"] = event
    return out


def corpus() -> list[Hostile]:
    """Every hostile event: bodies rotate through the four HTTP shapes; content types and
    oversized bodies go through every shape."""
    cases: list[Hostile] = []
    for i, (name, body) in enumerate(JSON_BODIES.items()):
        shape = HTTP_SHAPES[i % len(HTTP_SHAPES)]
        cases.append(Hostile(f"{name}@{shape}", make_event(shape, body)))
    for i, (name, body) in enumerate(CSV_BODIES.items()):
        shape = HTTP_SHAPES[i % len(HTTP_SHAPES)]
        cases.append(Hostile(f"{name}@{shape}", make_event(shape, body, content_type="text/csv")))
    for shape in HTTP_SHAPES:
        for j, ctype in enumerate(CONTENT_TYPES):
            event = make_event(shape, VALID, content_type=ctype)
            cases.append(Hostile(f"content-type-{j}@{shape}", event))
        over = b'{"inputs": [' + b"1.0," * (MAX_PAYLOAD_BYTES // 4) + b"1.0]}"
        cases.append(Hostile(f"over-6mb@{shape}", make_event(shape, over), oversized=True))
        cases.append(Hostile(f"over-6mb-base64@{shape}", make_event(shape, over, base64=True),
                             oversized=True))  # fmt: skip
    over_direct = {"inputs": [1.0] * (MAX_PAYLOAD_BYTES // 4)}
    cases.append(Hostile("over-6mb@direct", over_direct, oversized=True))
    cases += [
        Hostile(name, event, not_json=name in NOT_JSON) for name, event in DIRECT_EVENTS.items()
    ]
    cases += [Hostile(name, event) for name, event in _broken_events().items()]
    return cases
