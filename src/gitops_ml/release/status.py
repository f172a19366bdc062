"""``status``: what each environment runs per git, beside what the registry alias says."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .. import gitutil, tracking
from ..config import Spec
from .environments import read_manifest, relative_manifest
from .registry import alias_version


@dataclass
class EnvironmentStatus:
    env: str
    version: int | None
    metrics: dict[str, float | None]
    since_commit: str | None
    since: str | None
    alias_version: int | None
    in_sync: bool | None  # None when the registry could not be asked
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def status(spec: Spec) -> list[EnvironmentStatus]:
    """What each environment runs per git, beside what the registry alias says."""
    client: MlflowClient | None = None
    registry_error = ""
    result = []
    for env in spec.release.environments:
        manifest = read_manifest(spec, env)
        version = manifest.version if manifest else None
        commit = (
            gitutil.last_commit(spec.root, relative_manifest(spec, env))
            if manifest and gitutil.is_repository(spec.root)
            else None
        )
        alias, in_sync, note = None, None, ""
        if not registry_error:
            try:
                client = client or tracking.connect(spec)
                alias = alias_version(spec, client, env)
                in_sync = alias == version
            except (tracking.RegistryError, MlflowException) as exc:
                registry_error = str(exc)
        if registry_error:
            note = f"registry unreachable: {registry_error}"
        elif not in_sync:
            note = f"DIVERGED: run `gitops-ml deploy {env}`"
        if manifest is not None and commit is None:
            note = (note + "; " if note else "") + "manifest not committed"
        result.append(
            EnvironmentStatus(
                env,
                version,
                dict(manifest.metrics) if manifest else {},
                commit.sha if commit else None,
                commit.date if commit else None,
                alias,
                in_sync,
                note,
            )
        )
    return result
