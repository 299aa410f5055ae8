"""The errors mlflow-lambda raises on purpose, for building, running locally and deploying.

One root, so the CLI (``mlflow_lambda.infra.cli``) turns any of them into a one-line message and
a non-zero exit, once, and the MLflow plugin into one ``MlflowException``::

    MlflowLambdaError                    packager/errors.py
    ├── PackagingError                   a bundle cannot be built (OUTDIR in the way, ...)
    │   ├── ModelResolutionError         the model URI cannot be resolved or downloaded
    │   ├── ModelInspectionError         the model directory or its MLmodel is unusable
    │   │   └── UnsupportedFlavorError   no runtime loader for the model's flavor
    │   ├── ModelHygieneError            packager/hygiene.py: a link or path out of the model,
    │   │                                credentials in it, not allowed with --allow-secret
    │   ├── DependencyError              requirements conflict or have no wheel for the target
    │   │   └── RuntimeTooOldError       the runtime's glibc is too old for the pins
    │   ├── BundleCheckError             the built bundle fails a check (architecture, import)
    │   ├── BundleTooLargeError          the bundle exceeds Lambda's size limits
    │   ├── ModelUploadError             the model cannot be put at --model-location
    │   └── TemplateError                template options Lambda or SAM would refuse
    ├── LocalInvokeError                 infra/errors.py: running the bundle locally failed
    │   ├── RieUnavailableError          the Runtime Interface Emulator cannot be had here
    │   └── InvocationError              infra/results.py: the function ran and failed
    └── DeployError                      infra/errors.py: CloudFormation or S3 refused

Messages show the bad value with ``!r`` and say what to do next. The runtime shipped in the
bundle has a tree of its own (``mlflow_lambda.handler.errors``), which it cannot share: the
bundle carries nothing of the build.
"""

from __future__ import annotations


class MlflowLambdaError(Exception):
    """Root of every error mlflow-lambda raises on purpose, at build, local run or deploy."""


class PackagingError(MlflowLambdaError):
    """A bundle cannot be built."""


class ModelResolutionError(PackagingError):
    """A model URI could not be resolved to a local model directory."""


class ModelInspectionError(PackagingError):
    """A model directory is missing its MLmodel or the MLmodel is malformed."""


class UnsupportedFlavorError(ModelInspectionError):
    """The model's flavor has no loader in the runtime."""


class ModelHygieneError(PackagingError):
    """The model directory links or points outside itself, or holds credentials not allowed."""


class DependencyError(PackagingError):
    """Requirements cannot be installed for the target runtime and architecture."""


class RuntimeTooOldError(DependencyError):
    """The pins need a newer glibc than the chosen runtime's; ``suggested_python`` has it."""

    def __init__(self, message: str, suggested_python: str) -> None:
        super().__init__(message)
        self.suggested_python = suggested_python


class BundleCheckError(PackagingError):
    """The assembled bundle failed a check (wrong architecture, failed import)."""


class BundleTooLargeError(PackagingError):
    """The bundle exceeds AWS Lambda's deployment package limits."""


class ModelUploadError(PackagingError):
    """The model could not be uploaded to (or checked at) its ``--model-location``."""


class TemplateError(PackagingError):
    """Template options that CloudFormation, SAM or Lambda would refuse."""
