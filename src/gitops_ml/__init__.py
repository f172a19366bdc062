"""gitops-ml: the engine that GitOps ML repositories run, locally and in GitHub Actions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gitops-ml")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
