"""MLflow: where it lives, the project's experiment, and reading registered versions."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .config import Spec
from .errors import ConfigError, GitopsMLError

TAG_FINGERPRINT = "data_fingerprint"
TAG_COMMIT = "git_commit"
TAG_RUN = "run_id"
TAG_GATES_PASSED = "gates_passed"
TAG_GATES = "gates"
TAG_EVALUATED_AGAINST = "evaluated_against"
TAG_SLICES = "slices"  # per-group metrics evaluate recorded, as JSON


# MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) keep a command waiting over four minutes
# on a dead server. The engine's calls are short and a person or a CI job is waiting: two retries with
# a 1 s backoff ride over a restart, and a dead registry is reported in seconds. A user's own setting wins.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class RegistryError(GitopsMLError):
    """The registry cannot be reached or does not hold what was asked for: exit 1."""


class ArtifactStoreError(RegistryError):
    """MLflow answers, but the store that keeps its files (its artifact destination) does not: exit 1."""


# What a failed download is blamed on once the registry has answered: the files' store and its settings.
STORE_HINT = ("check the artifact store the tracking server was started with (--artifacts-destination) and "
              "the credentials and endpoint in the server's environment (S3: AWS_ACCESS_KEY_ID, "
              "AWS_SECRET_ACCESS_KEY, MLFLOW_S3_ENDPOINT_URL); with --no-serve-artifacts, in this environment")


def store_failure(client: MlflowClient, run_id: str, what: str) -> ArtifactStoreError | None:
    """Why ``what`` of run ``run_id`` could not be read, when the artifact store is the cause: listing the
    run's artifacts fails too. None when the store lists them (the file itself is missing).

    MLflow turns every failed download into "please ensure that the path is correct" and keeps the
    cause at debug level; a listing asks the same store and says what went wrong.
    """
    try:
        client.list_artifacts(run_id)
    except Exception as exc:  # MlflowException from the server, or the storage client's own error
        return ArtifactStoreError(
            f"MLflow at {mlflow.get_tracking_uri()} answers, but its artifact store does not: {what} of run "
            f"{run_id} cannot be read ({_first_line(exc)}); {STORE_HINT}")
    return None


def download_artifact(client: MlflowClient, run_id: str, path: str) -> str | None:
    """A local copy of run ``run_id``'s artifact ``path``; None when the run has no such artifact.

    ArtifactStoreError when the store that keeps it cannot be read: a missing file and an unreachable
    store are different problems with different fixes.
    """
    try:
        return client.download_artifacts(run_id, path)
    except Exception as exc:  # MlflowException (MLflow's wrapper of any failure) or OSError
        failure = store_failure(client, run_id, path)
        if failure is not None:
            raise failure from exc
        return None


def bound_http_retries() -> dict[str, str]:
    """Set MLflow's HTTP retry settings the user left unset (MLflow reads them on every request)."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in HTTP_DEFAULTS}


def connect(spec: Spec) -> MlflowClient:
    """Point MLflow at the project's store (creating the embedded one) and return a client."""
    uri = spec.tracking
    bound_http_retries()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # MLflow also exports the URI to the environment; undo that, so that a later project in the
    # same process (tests, the demo) is not sent to this one's store.
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(spec: Spec, client: MlflowClient) -> str:
    """The project's experiment, named after the model.

    With the embedded store its artifacts go to ``.mlflow/artifacts`` beside the database,
    set explicitly so that they never land in the working directory's ``mlruns``.
    """
    name = spec.model_name
    found = call(lambda: client.get_experiment_by_name(name), spec)
    if found is not None:
        return found.experiment_id
    location = None
    if spec.tracking.startswith("sqlite:///") and not spec.tracking_uri:
        location = (spec.store_dir / "artifacts").resolve().as_uri()
    return call(lambda: client.create_experiment(name, artifact_location=location), spec)


def call(action, spec: Spec):
    """Run a registry call, turning connection failures into one clear message."""
    try:
        return action()
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code):
            raise
        raise RegistryError(f"MLflow at {spec.tracking} failed: {_first_line(exc)}") from exc
    except Exception as exc:  # requests' connection errors, timeouts
        raise RegistryError(f"MLflow at {spec.tracking} cannot be reached: {_first_line(exc)}") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


@dataclass(frozen=True)
class Version:
    """A registered model version and the lineage the engine tagged it with."""

    model_name: str
    version: int
    run_id: str
    model_uri: str
    source: str
    tags: dict[str, str]

    @property
    def data_fingerprint(self) -> str:
        return self.tags.get(TAG_FINGERPRINT, "")

    @property
    def git_commit(self) -> str:
        return self.tags.get(TAG_COMMIT, "")

    @property
    def model_id(self) -> str:
        """The LoggedModel id, parsed from ``models:/m-<id>`` (``model_id`` is None on sqlite)."""
        match = re.match(r"models:/(m-[0-9a-f]+)", self.source or "")
        return match.group(1) if match else ""


def _version(model: ModelVersion) -> Version:
    return Version(
        model_name=model.name,
        version=int(model.version),
        run_id=model.run_id or "",
        model_uri=f"models:/{model.name}/{model.version}",
        source=model.source or "",
        tags=dict(model.tags or {}),
    )


def registry(spec: Spec) -> str:
    """The registry as an error names it; the embedded store says so, since a miss there usually
    means a shared registry was meant (in CI, the MLFLOW_TRACKING_URI secret is unset)."""
    if spec.embedded_registry:
        return f"{spec.tracking} (MLFLOW_TRACKING_URI is not set: this is the project's own embedded store)"
    return spec.tracking


def get_version(spec: Spec, client: MlflowClient, version: int | None = None) -> Version:
    """A registered version of the project's model; the newest when ``version`` is None."""
    name = spec.model_name
    if version is None:
        versions = call(lambda: client.search_model_versions(f"name='{name}'"), spec)
        if not versions:
            raise ConfigError(
                f"model '{name}' has no registered version at {registry(spec)}; run `gitops-ml train` first"
            )
        return _version(max(versions, key=lambda v: int(v.version)))
    try:
        return _version(call(lambda: client.get_model_version(name, str(version)), spec))
    except MlflowException as exc:
        raise ConfigError(f"model '{name}' has no version {version} at {registry(spec)}") from exc


def version_by_alias(spec: Spec, client: MlflowClient, alias: str) -> Version | None:
    """The version an alias points at, or None when the alias is not set."""
    model = find_registered_model(spec, client)
    if model is None or alias not in (model.aliases or {}):
        return None
    return get_version(spec, client, int(model.aliases[alias]))


def find_registered_model(spec: Spec, client: MlflowClient):
    try:
        return call(lambda: client.get_registered_model(spec.model_name), spec)
    except MlflowException:
        return None
