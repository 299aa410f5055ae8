"""The runtime shipped in every bundle: MLflow's scoring protocol over a loaded model.

Installed as ``mlflow_lambda.handler`` and copied into every bundle under the same name, so
neither a user's ``handler.py`` nor a model's ``code_paths`` can shadow it. It imports only
what a Lambda needs at run time, and nothing of the build or deploy code.
"""

__version__ = "0.1.0"  # the distribution's version too (pyproject.toml reads it from here)

# The Lambda handler string: module path of the entry point, then the callable.
ENTRY_POINT = f"{__name__}.lambda_function.handler"
# The top-level directory the runtime sits under inside a bundle ("mlflow_lambda").
BUNDLE_PACKAGE = __name__.partition(".")[0]
