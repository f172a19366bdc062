"""What the registry says about a release: the version, its gates, the hash of its files, the alias,
and the bento and image it deploys as."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from .. import tracking
from ..config import Spec
from ..errors import CheckFailed, ConfigError
from .manifest import ReleaseManifest

# Files MLflow adds when it downloads a *registered* model; not part of what was logged.
UNHASHED = frozenset({"registered_model_meta"})


def registered(spec: Spec, client: MlflowClient, version: int) -> tracking.Version:
    """A registered version; CheckFailed (exit 1) when the registry does not hold it."""
    try:
        return tracking.get_version(spec, client, version)
    except ConfigError as exc:
        raise CheckFailed(f"model '{spec.model_name}' has no version {version} at {spec.tracking}") from exc


def recorded_gates(model: tracking.Version) -> dict | None:
    """The outcome ``gitops-ml evaluate`` recorded on the version, or None when it never ran."""
    if tracking.TAG_GATES_PASSED not in model.tags:
        return None
    try:
        gates = json.loads(model.tags.get(tracking.TAG_GATES) or "{}")
    except json.JSONDecodeError:
        gates = {}
    gates["passed"] = model.tags[tracking.TAG_GATES_PASSED] == "true"
    return gates


def artifact_sha256(spec: Spec, model: tracking.Version) -> str:
    """sha256 over the logged model's files as the registry stores them.

    Hashes sorted relative paths with each file's sha256, so the value is the same on every
    download and changes when any file of the model does.
    """
    if not model.model_id:
        raise CheckFailed(
            f"version {model.version} of '{model.model_name}' has no logged model source "
            f"(source {model.source!r}); it was not registered by `gitops-ml train`"
        )
    with tempfile.TemporaryDirectory(prefix="gitops-ml-hash-") as scratch:
        uri = f"models:/{model.model_id}"
        try:
            local = tracking.call(lambda: mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch),
                                  spec)
        except Exception as exc:  # RegistryError, or MLflow's "ensure that the path is correct" for any failure
            failure = tracking.store_failure(MlflowClient(tracking_uri=spec.tracking), model.run_id,
                                             f"the files of {uri} (v{model.version})") if model.run_id else None
            raise (failure or exc) from exc
        return tree_sha256(Path(local))


def tree_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative in UNHASHED:
            continue
        digest.update(f"{relative}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def alias_version(spec: Spec, client: MlflowClient, env: str) -> int | None:
    """The version the registry alias named after ``env`` points at; None when unset."""
    model = tracking.find_registered_model(spec, client)
    if model is None or env not in (model.aliases or {}):
        return None
    return int(model.aliases[env])


def registry_disagreements(spec: Spec, client: MlflowClient, manifest: ReleaseManifest) -> list[str]:
    """Where the registry does not hold what the manifest pins (empty when it agrees): the version,
    its run and logged model, its gates, the bento it builds and the hash of its files.

    RegistryError (unreachable) propagates: no answer is not agreement.
    """
    try:
        model = tracking.get_version(spec, client, manifest.version)
    except ConfigError:
        return [f"registry {spec.tracking} has no version {manifest.version} of '{spec.model_name}'"]
    reasons = []
    if manifest.run_id != model.run_id:
        reasons.append(f"field 'run_id': manifest says {manifest.run_id}, registry says {model.run_id}")
    if manifest.logged_model_uri != f"models:/{model.model_id}":
        reasons.append(
            f"field 'logged_model_uri': manifest says {manifest.logged_model_uri}, "
            f"registry says models:/{model.model_id}"
        )
    gates = recorded_gates(model)
    if gates is None or not gates["passed"]:
        reasons.append(
            f"registry: version {model.version} has {'no recorded gates' if gates is None else 'failed its gates'}"
        )
    expected = bento_tag(spec, model)
    if manifest.bento_tag != expected:
        reasons.append(
            f"field 'bento_tag': manifest pins {manifest.bento_tag}, but this project and "
            f"engine build {expected} (the data contract, serving settings or gitops-ml changed "
            "since the promotion): promote the version again"
        )
    elif manifest.image != image_ref(spec, expected):
        reasons.append(
            f"field 'image': expected {image_ref(spec, expected)} for release.image_repository "
            f"{spec.release.image_repository!r}, got {manifest.image}"
        )
    actual = artifact_sha256(spec, model)
    if actual != manifest.artifact_sha256:
        reasons.append(
            f"field 'artifact_sha256': manifest says {manifest.artifact_sha256}, the "
            f"registry's model files hash to {actual}: the manifest was edited "
            "or the model changed"
        )
    return reasons


def bento_tag(spec: Spec, model: tracking.Version) -> str:
    """The bento a version deploys as, as the serving package names it.

    Its version label digests the model, the data contract, the serving settings and the service
    code, so the same tag means the same bento on every machine; computed without building.
    """
    from ..serve import package as packaging  # bentoml itself is imported only by a build

    config = packaging.bento_config(spec, model, packaging.model_tag_of(spec, model))
    return f"{config['service_name']}:{packaging.bento_version(config)}"


def image_registry(spec: Spec) -> str:
    """The registry the project's images go to, as ``docker login`` takes it (release.image_repository;
    without one, images are named after the model, on Docker Hub)."""
    from .oci import registry_host

    return registry_host(spec.release.image_repository or spec.model_name)


def image_ref(spec: Spec, tag: str) -> str:
    """``<release.image_repository>:<bento version>``; the bento's own tag when no repository is set."""
    name, _, label = tag.partition(":")
    return f"{spec.release.image_repository or name}:{label}"
