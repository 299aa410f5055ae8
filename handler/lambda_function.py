"""The Lambda entry point (``mlflow_lambda.handler.lambda_function.handler``).

This is the one module that does work at import, during Lambda's init phase: read
``model.json``, fetch the model from S3 when it lives there, check every model file's
sha256, load the model once, build the app and wrap it with Mangum. ``lifespan="off"``
because Mangum would otherwise run ASGI startup and shutdown on every invocation.

Environment:
    MODEL_CONFIG   path of model.json (default: <bundle>/model.json)
    MODEL_DIR      the MLflow model directory (default: <bundle>/model)
    MODEL_S3_URI   s3://bucket/prefix holding the model; downloaded to MODEL_DIR
                   (default then: $TMPDIR/model, /tmp/model on Lambda)
    LOG_LEVEL      level of the handler's request log (default: INFO)
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Any

from mangum import Mangum

from .app import create_app
from .config import load_config, verify_model_files
from .events import dispatch
from .flavors import load_model
from .trimmed import install as install_trim_guard
from .types import LambdaContext

# <bundle>/mlflow_lambda/handler/lambda_function.py: the bundle root is three levels up
_BUNDLE = Path(__file__).resolve().parents[2]

install_trim_guard(_BUNDLE / "trimmed.json")  # only in a bundle built with --trim
logging.getLogger("mlflow_lambda").setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())

config = load_config(Path(os.environ.get("MODEL_CONFIG", _BUNDLE / "model.json")))
_s3_uri = os.environ.get("MODEL_S3_URI")
if _s3_uri:
    from .s3model import fetch_model

    # /tmp on Lambda; TMPDIR when run locally (`mlflow-lambda invoke` sets a private one)
    _tmp = os.environ.get("TMPDIR", "/tmp")
    model_dir = fetch_model(
        _s3_uri, config["files"], Path(os.environ.get("MODEL_DIR", f"{_tmp}/model"))
    )
else:
    model_dir = Path(os.environ.get("MODEL_DIR", _BUNDLE / "model"))
verify_model_files(model_dir, config["files"])
predictor = load_model(config, model_dir)  # also read by the build's import check
app = create_app(predictor, config, openapi_path=_BUNDLE / "openapi.json")
asgi = Mangum(app, lifespan="off")
# What init made (the libraries, the model: ~150 000 objects for a forest) lives as long as
# the process. gc.freeze() moves it out of the collector's reach, so a request that allocates
# many containers (a 10 000-row body decodes into 10 000 lists, which triggers collections)
# no longer pays for full collections that walk all of it: msgspec's decode of such a body
# took 22 ms before, 4.3 ms after (the README forest in-process, profiled on a loaded host).
# Garbage cycles made during init, if any, are kept (https://docs.python.org/3/library/gc.html).
gc.freeze()


def handler(event: Any, context: LambdaContext | None) -> dict[str, Any]:
    """Answer one invocation: any HTTP-shaped event, or a direct scoring body."""
    return dispatch(event, context, asgi)
