"""Errors of local runs and deploys: branches of the one tree drawn in ``packager/errors.py``."""

from __future__ import annotations

from mlflow_lambda.packager.errors import MlflowLambdaError


class LocalInvokeError(MlflowLambdaError):
    """Running the bundle through the local Lambda runtime failed."""


class RieUnavailableError(LocalInvokeError):
    """The emulator cannot be fetched or cannot run on this host (callers may fall back)."""


class DeployError(MlflowLambdaError):
    """A deployment to AWS (or its emulation) failed."""
