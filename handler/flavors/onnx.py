"""ONNX models saved by ``mlflow.onnx``, run by an onnxruntime ``InferenceSession``.

Follows ``mlflow.onnx._OnnxModelWrapper`` (MLflow 3.17) step by step:

- providers: the MLmodel's ``providers`` (a string or a list; ``[name, options]`` pairs
  become tuples), else ``["CUDAExecutionProvider", "CPUExecutionProvider"]``; only those
  this onnxruntime build has are used, else the CPU one (Lambda has no GPU, so a CUDA entry
  is always dropped, with MLflow's warning);
- session options: ``onnx_session_options`` (inter/intra op threads, execution mode, graph
  optimization level, extra session config entries);
- input: a dict is the feed; an array feeds the single input (several inputs: an error); a
  DataFrame feeds its values to a single input, or one column per input name;
- every ``tensor(float)`` input given float64 is cast to float32 (MLflow issue #1286);
- output: for a DataFrame input, a DataFrame with one column per output (each flattened);
  otherwise a dict output name -> array. Params are ignored.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ModelConfig
from ..errors import ModelLoadError
from .sklearn import model_path

DEFAULT_PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]  # ONNX_EXECUTION_PROVIDERS
_log = logging.getLogger(__name__)


def serialization_format(flavor_conf: Mapping[str, Any]) -> str:
    """Always ``onnx`` (``model.onnx``, a protobuf onnxruntime reads)."""
    return "onnx"


def _entry_name(entry: Any) -> str | None:
    if isinstance(entry, (list, tuple)):
        entry = entry[0] if entry else None
    return entry if isinstance(entry, str) else None


def _providers(conf: Mapping[str, Any]) -> list[Any]:
    providers = conf.get("providers", DEFAULT_PROVIDERS)
    if isinstance(providers, str):
        providers = [providers]
    elif not providers:
        providers = DEFAULT_PROVIDERS
    return [tuple(p) if isinstance(p, list) else p for p in providers]


def _session_options(ort: Any, options: Mapping[str, Any] | None) -> Any:
    sess_options = ort.SessionOptions()
    if not options:
        return sess_options
    if inter := options.get("inter_op_num_threads"):
        sess_options.inter_op_num_threads = inter
    if intra := options.get("intra_op_num_threads"):
        sess_options.intra_op_num_threads = intra
    if mode := options.get("execution_mode"):
        if mode.upper() == "SEQUENTIAL":
            sess_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        elif mode.upper() == "PARALLEL":
            sess_options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    if level := options.get("graph_optimization_level"):
        sess_options.graph_optimization_level = ort.GraphOptimizationLevel(level)
    for key, value in (options.get("extra_session_config") or {}).items():
        sess_options.add_session_config_entry(key, value)
    return sess_options


class OnnxPredictor:
    """An ``InferenceSession`` fed and read back as ``_OnnxModelWrapper.predict`` does."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = [(i.name, i.type) for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        # A DataFrame input is answered with a DataFrame (records), an array with a dict: the
        # input type is the answer's shape, so a column signature always gets its DataFrame
        # (the plan keeps pandas for it: packager.pandas_choice.model_needs_pandas).
        self.accepts_ndarray = False
        self.feature_names: tuple[str, ...] | None = None

    def _feeds(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            return dict(data)
        if isinstance(data, np.ndarray):
            if len(self.inputs) != 1:
                names = [name for name, _ in self.inputs]
                raise ValueError(
                    "Unable to map numpy array input to the expected model input. Numpy arrays "
                    "can only be used as input for MLflow ONNX models that have a single input. "
                    f"This model requires {len(self.inputs)} inputs. Please pass in data as "
                    f"either a dictionary or a DataFrame with the following tensors: {names}."
                )
            return {self.inputs[0][0]: data}
        if hasattr(data, "columns"):
            if len(self.inputs) > 1:
                return {name: data[name].values for name, _ in self.inputs}
            return {self.inputs[0][0]: data.values}
        raise TypeError(
            "Input should be a dictionary or a numpy array or a pandas.DataFrame, "
            f"got '{type(data)}'"
        )

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Run the session; a DataFrame of flattened outputs for a DataFrame, else a dict."""
        feeds = self._feeds(data)
        for name, kind in self.inputs:
            feed = feeds.get(name)
            if kind == "tensor(float)" and feed is not None and feed.dtype == np.float64:
                feeds[name] = feed.astype(np.float32)
        predicted = self.session.run(self.output_names, feeds)
        if hasattr(data, "columns"):
            pd = sys.modules["pandas"]  # the input is a DataFrame, so pandas is imported
            return pd.DataFrame.from_dict(
                {
                    c: np.asarray(p).reshape(-1)
                    for c, p in zip(self.output_names, predicted, strict=False)
                }
            )
        return dict(zip(self.output_names, predicted, strict=False))


def load(config: ModelConfig, model_dir: Path) -> OnnxPredictor:
    """An ``InferenceSession`` with the MLmodel's providers and session options."""
    path = model_path(config, model_dir)
    conf = config.get("flavor_conf") or {}
    import onnxruntime as ort

    providers = _providers(conf)
    available = set(ort.get_available_providers())
    usable = [p for p in providers if _entry_name(p) in available]
    if missing := [p for p in providers if _entry_name(p) not in available]:
        _log.info(
            "ONNX model declares execution providers %s but %s are unavailable in this "
            "onnxruntime build; serving with %s.",
            providers, missing, usable or ["CPUExecutionProvider"],
        )  # fmt: skip
    requested = usable or ["CPUExecutionProvider"]
    options = _session_options(ort, conf.get("onnx_session_options"))
    try:
        try:
            session = ort.InferenceSession(str(path), providers=requested, sess_options=options)
        except Exception:
            if requested == ["CPUExecutionProvider"]:
                raise
            _log.warning("execution providers %s failed to initialize; using CPU", requested)
            session = ort.InferenceSession(
                str(path), providers=["CPUExecutionProvider"], sess_options=options
            )
    except Exception as exc:  # onnxruntime's InvalidGraph, NoSuchFile, ...
        raise ModelLoadError(
            f"cannot load {str(path)!r} with onnxruntime: {type(exc).__name__}: {exc}"
        ) from exc
    return OnnxPredictor(session)
