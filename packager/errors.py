"""Errors raised while building a bundle.

Every error the tool raises on purpose derives from one root, so the CLI can turn
any of them into a one-line message and a non-zero exit (see ``packager.cli``)::

    PackagingError
    ├── ModelResolutionError     the model URI cannot be resolved or downloaded
    ├── ModelInspectionError     the model directory or its MLmodel is unusable
    │   └── UnsupportedFlavorError   no loader for the model's flavor
    ├── DependencyError          requirements conflict or have no wheel for the target
    ├── BundleCheckError         the built bundle fails a check (architecture, import)
    ├── BundleTooLargeError      the bundle exceeds Lambda's size limits
    ├── LocalInvokeError         running the bundle locally failed
    └── DeployError              CloudFormation or S3 refused a deployment

Messages show the bad value with ``!r`` and say what to do next.
"""

from __future__ import annotations


class PackagingError(Exception):
    """Root of every error mlflow-lambda raises on purpose."""


class ModelResolutionError(PackagingError):
    """A model URI could not be resolved to a local model directory."""


class ModelInspectionError(PackagingError):
    """A model directory is missing its MLmodel or the MLmodel is malformed."""


class UnsupportedFlavorError(ModelInspectionError):
    """The model's flavor has no loader in the runtime."""


class DependencyError(PackagingError):
    """Requirements cannot be installed for the target runtime and architecture."""


class BundleCheckError(PackagingError):
    """The assembled bundle failed a check (wrong architecture, failed import)."""


class BundleTooLargeError(PackagingError):
    """The bundle exceeds AWS Lambda's deployment package limits."""


class LocalInvokeError(PackagingError):
    """Running the bundle through the local Lambda runtime failed."""


class DeployError(PackagingError):
    """A deployment to AWS (or its emulation) failed."""
