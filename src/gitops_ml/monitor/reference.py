"""The reference side: which version an environment runs, and the rows that version was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
from mlflow.tracking import MlflowClient

from .. import release, tracking
from ..config import Spec
from ..errors import CheckFailed, ConfigError
from ..train import TRAIN_ARTIFACT
from .sources import sample

FoundBy = Literal["manifest", "alias"]  # found by the git manifest, or by the MLflow alias


class NoRelease(ConfigError):
    """No version is released to the environment yet: nothing is served, so there is nothing to monitor."""


@dataclass(frozen=True)
class Deployed:
    """The model an environment runs, and how that was found."""

    env: str
    version: tracking.Version
    found_by: FoundBy


@dataclass
class Reference:
    frame: pd.DataFrame
    source: str
    rows: int
    sampled: bool
    fingerprint: str
    run_id: str

    def as_dict(self) -> dict:
        return {"source": self.source, "rows": self.rows, "rows_used": len(self.frame), "sampled": self.sampled,
                "data_fingerprint": self.fingerprint, "run_id": self.run_id}


def deployed(spec: Spec, client: MlflowClient, env: str | None) -> Deployed:
    """The version ``env`` runs (git manifest first, then the MLflow alias of that name).

    Without ``env``: the furthest environment that runs anything, production before staging.
    """
    candidates = [release.check_environment(spec, env)] if env else list(reversed(spec.release.environments))
    for name in candidates:
        number = release.current_version(spec, name)
        if number is not None:
            return Deployed(name, tracking.get_version(spec, client, number), "manifest")
        by_alias = tracking.version_by_alias(spec, client, name)
        if by_alias is not None:
            return Deployed(name, by_alias, "alias")
    where = f"environment {env!r}" if env else f"any of {', '.join(spec.release.environments)}"
    manifests = ", ".join(release.relative_manifest(spec, name) for name in candidates)
    raise NoRelease(f"no model is released to {where}: neither {manifests} "
                      "nor an MLflow alias of that name names a version; promote one first")


def training_rows(spec: Spec, client: MlflowClient, version: tracking.Version) -> Reference:
    """The exact rows ``version`` was trained on, as logged with its run (not today's data file).

    The run must be the one that trained on the version's fingerprinted data, and the rows
    must be as many as the run says it trained on.
    """
    if not version.run_id:
        raise CheckFailed(f"{spec.model_name} v{version.version} has no training run; no reference data")
    run = client.get_run(version.run_id)
    run_fingerprint = run.data.tags.get(tracking.TAG_FINGERPRINT, "")
    if version.data_fingerprint and run_fingerprint != version.data_fingerprint:
        raise CheckFailed(
            f"{spec.model_name} v{version.version}: data fingerprint {version.data_fingerprint[:12]} differs from "
            f"its run {version.run_id}'s {run_fingerprint[:12] or '(none)'}; the reference cannot be trusted")
    path = tracking.download_artifact(client, version.run_id, TRAIN_ARTIFACT)  # ArtifactStoreError: unreadable
    if path is None:
        raise CheckFailed(f"{spec.model_name} v{version.version}: run {version.run_id} has no {TRAIN_ARTIFACT} "
                          "to compare with; retrain to record it")
    frame = pd.read_parquet(path)
    logged = run.data.params.get("train_rows")
    if logged and logged.isdigit() and int(logged) != len(frame):
        raise CheckFailed(f"{TRAIN_ARTIFACT} of run {version.run_id} holds {len(frame)} rows, "
                          f"the run trained on {logged}")
    used = sample(frame, spec.drift.max_rows, spec.seed)
    return Reference(frame=used, source=f"runs:/{version.run_id}/{TRAIN_ARTIFACT}", rows=len(frame),
                     sampled=len(used) < len(frame), fingerprint=version.data_fingerprint, run_id=version.run_id)


def training_quality(client: MlflowClient, version: tracking.Version) -> dict[str, float]:
    """The held-out metrics recorded when the version was trained."""
    return dict(client.get_run(version.run_id).data.metrics)
