"""Where a project keeps things: the git-ignored state folder, its outputs, the release manifests,
and the inference log's own columns. Every module asks here instead of spelling a path itself."""

from __future__ import annotations

from pathlib import Path

# The serving package ships inference_log.py inside the bento without the rest of the engine, so the
# log's columns are defined there, beside the writer, and named here for everyone else.
from .serve.inference_log import META_COLUMNS as INFERENCE_LOG_COLUMNS

STATE_DIR = ".gitops-ml"  # git-ignored: promotion texts, deploy outputs, drift summaries
ENVIRONMENTS_DIR = "environments"
MANIFEST = "release.yaml"
TIMESTAMP = "timestamp"  # the inference log's time column
TELEMETRY_OFF = (  # the Python side of the generated Makefile's exports: telemetry off, no progress bars
    ("MLFLOW_DISABLE_TELEMETRY", "true"),
    ("BENTOML_DO_NOT_TRACK", "True"),
    ("DO_NOT_TRACK", "1"),
    ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
)

__all__ = ["INFERENCE_LOG_COLUMNS"]


def state_dir(root: Path) -> Path:
    return root / STATE_DIR


def promotion_dir(root: Path) -> Path:
    """Pull request titles and bodies written by ``promote``."""
    return state_dir(root) / "promotion"


def drift_dir(root: Path) -> Path:
    """Drift report, summary and issue/pull request texts written by ``drift``."""
    return state_dir(root) / "drift"


def drift_summary_file(root: Path) -> Path:
    return drift_dir(root) / "summary.json"


def deploy_file(root: Path, env: str) -> Path:
    """The image reference ``deploy`` leaves for the containerize-and-push step."""
    return state_dir(root) / "deploy" / f"{env}.json"


def manifest_file(environments_dir: Path, env: str) -> Path:
    return environments_dir / env / MANIFEST
