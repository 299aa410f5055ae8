"""Model-error records are one JSON line each, whatever handler formats them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mlflow_lambda.handler.logs import model_log, request_line

# awslambdaric's text format (bootstrap.py): the message, then a newline of its own.
LAMBDA_TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s\t%(aws_request_id)s\t%(message)s\n"


def test_a_traceback_stays_inside_its_line() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.terminator = ""  # awslambdaric's StandardLogSink writes the record as it is
    handler.setFormatter(logging.Formatter(LAMBDA_TEXT_FORMAT))
    handler.addFilter(lambda r: setattr(r, "aws_request_id", "req-1") or True)
    model_log.addHandler(handler)
    try:
        try:
            raise ValueError("X has 3 features, but RandomForestClassifier is expecting 4")
        except ValueError:
            model_log.exception("model %s failed", "forest")
        model_log.warning("next record")
    finally:
        model_log.removeHandler(handler)
    lines = out.getvalue().split("\n")
    assert lines[-1] == "" and len(lines) == 3, out.getvalue()  # two records, two lines
    record = json.loads(lines[0].split("\t", 3)[3])
    assert record["message"] == "model forest failed"
    assert (
        record["error"] == "ValueError: X has 3 features, but RandomForestClassifier is expecting 4"
    )
    assert record["traceback"].startswith("Traceback (most recent call last):")
    assert record["traceback"].endswith(record["error"])
    assert lines[1].endswith("\tnext record")


@pytest.mark.parametrize(
    "path", ["/invocations", '/a"b\\c\n', "/caf\u00e9/\u2603", "/lone/\udc80", "/x\ud83d"]
)
def test_an_access_line_is_one_json_object_whatever_the_path(path: str) -> None:
    line = request_line("POST", path, 200, 1.23456, 2, None)
    assert "\n" not in line
    assert json.loads(line) == {
        "method": "POST", "path": path, "status": 200, "duration_ms": 1.235, "rows": 2,
        "error_code": None,
    }  # fmt: skip
