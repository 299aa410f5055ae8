"""Train the README example and register it as ``MyRandomForest`` in a local MLflow store.

The store lives under ``.demo/`` at the repo root (ignored by git): a sqlite tracking
database and registry, and an artifact directory next to it.

    python examples/train.py            # prints the registered model URI

MLflow >= 3.14 saves scikit-learn models with skops by default and refuses a tree
ensemble unless its tree type is trusted explicitly (``UntrustedTypesFoundException:
['sklearn.tree._tree.Tree']``), hence ``skops_trusted_types`` below. The MLmodel records
those types, and the Lambda handler loads the model trusting exactly them.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / ".demo"
TRACKING_URI = f"sqlite:///{STORE / 'mlflow.db'}"


def main() -> None:
    STORE.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", TRACKING_URI))
    if mlflow.get_experiment_by_name("mlflow-lambda-demo") is None:
        mlflow.create_experiment(
            "mlflow-lambda-demo", artifact_location=(STORE / "artifacts").as_uri()
        )
    mlflow.set_experiment("mlflow-lambda-demo")

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=100, max_depth=6, random_state=0).fit(X, y)
    with mlflow.start_run(run_name="iris-forest"):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            input_example=X.head(2),
            registered_model_name="MyRandomForest",
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    print(f"registered MyRandomForest version {info.registered_model_version} ({info.model_uri})")


if __name__ == "__main__":
    main()
