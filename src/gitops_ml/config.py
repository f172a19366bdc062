"""The project spec: ``[tool.gitops-ml]`` of a project's ``pyproject.toml``, read into typed settings.

Every bad or missing field is reported in one message that names the field and the file.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError
from .metrics import known

SECTION = "tool.gitops-ml"
# A duration such as 30m, 12h, 7d or 2w: the spec checks it, monitoring parses it.
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*")
DEFAULT_STORE = ".mlflow"  # inside the project, ignored by git
ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> float:
    """``90s``, ``5m``, ``2h`` in seconds (the text has been checked against ``DURATION``)."""
    match = DURATION.fullmatch(duration)
    return float(match.group(1)) * _SECONDS[match.group(2)]


# `inference_log = "off"`: serve without logging. The bento's copy of serve/inference_log.py spells it
# again (OFF) because it ships without this module.
LOG_OFF = "off"


class _Section(BaseModel):
    # A misspelt field is an error, not a silent default; a value of the wrong TOML type
    # ("0.2" for a number, true for a seed) is an error, not silently coerced.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Gates(_Section):
    """What a candidate must reach before it may be released."""

    thresholds: dict[str, float] = Field(default_factory=dict)
    """Floors for higher-is-better metrics, ceilings for lower-is-better ones."""
    max_regression: float = Field(default=0.02, ge=0)
    """How much worse than an environment's current model a candidate may be, per metric."""


class Serving(_Section):
    """How the bento serves the model and logs what it is asked."""

    max_batch_size: int = Field(default=1000, ge=1)
    """Most records one /predict_batch request may hold (a 400 above it); also the most rows one model call merges."""
    inference_log: str = "logs/inference"
    """Where the served model logs its predictions: a directory, or an fsspec URI (``s3://``, ``gs://``,
    ``az://``; the driver comes with the extra ``gitops-ml[s3]``, ``[gcs]`` or ``[azure]``); ``"off"``:
    the service logs nothing (drift then needs ``--current``; a directory named off is ``"./off"``)."""
    log_rotate_mb: float = Field(default=16.0, gt=0)
    """A new log file (or object) past this size: small enough to upload and read in pieces."""
    log_rotate_age: str = "60s"
    """A new log file (or object) when its oldest row is this old (30s, 5m, 1h; at most 24h), so a quiet
    service still ships its rows: on object storage nothing is readable before its object is uploaded."""
    log_flush_timeout: str = "20s"
    """On SIGTERM, how long the service may spend storing the rows it still holds before it exits."""
    log_queue_size: int = Field(default=10000, ge=1)
    """Rows waiting for the log writer; beyond it rows are dropped and counted, never blocking a request."""
    extra_fields: Literal["reject", "ignore"] = "reject"
    """A request field the contract does not know: a 400 by default, since it means a client built
    against another contract; "ignore" drops it."""
    workers: int = Field(default=1, ge=1)
    """Serving processes; one keeps a small model's memory low, raise it for CPU-bound models."""
    max_latency_ms: int = Field(default=10000, ge=100)
    """Sets the server's request timeout (this plus 30 s, at least 60 s); the batcher queues, never answers 503."""

    @field_validator("inference_log")
    @classmethod
    def _log_location(cls, value: str) -> str:
        # An empty or blank location would resolve to the project folder itself: a typo, not a choice.
        if not value.strip():
            raise ValueError(f'empty: give a directory, an fsspec URI (s3://...) or "{LOG_OFF}" to log nothing')
        if value.strip().lower() == LOG_OFF and value != LOG_OFF:
            raise ValueError(f'{value!r}: write "{LOG_OFF}" to log nothing, or "./{value.strip()}" for a directory')
        return value

    @property
    def logging_off(self) -> bool:
        """True when ``inference_log = "off"``: the service serves without logging what it is asked."""
        return self.inference_log == LOG_OFF

    @field_validator("log_rotate_age", "log_flush_timeout")
    @classmethod
    def _bounded_duration(cls, value: str, info) -> str:
        # Checked when the spec is read, not when a served model first rotates.
        match = DURATION.fullmatch(value)
        if not match or float(match.group(1)) <= 0:
            raise ValueError("expected a positive duration such as 30s, 5m or 1h")
        if seconds(value) > 24 * 3600:
            raise ValueError("at most 24h (the reader lists one day partition before its window)")
        return value

    @property
    def log_rotate_seconds(self) -> float:
        return seconds(self.log_rotate_age)

    @property
    def log_flush_seconds(self) -> float:
        return seconds(self.log_flush_timeout)


# A Kubernetes resource quantity such as 250m, 1, 0.5 or 512Mi.
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"


class KubernetesEnvironment(_Section):
    """What one environment's overlay (``environments/<env>/kustomization.yaml``) sets over the base."""

    min_replicas: int = Field(default=1, ge=1)
    """The autoscaler's floor: the base's HorizontalPodAutoscaler owns the replica count."""
    max_replicas: int = Field(default=3, ge=1)
    cpu_request: str = Field(default="250m", pattern=QUANTITY)
    cpu_limit: str = Field(default="1", pattern=QUANTITY)
    memory_request: str = Field(default="512Mi", pattern=QUANTITY)
    memory_limit: str = Field(default="1Gi", pattern=QUANTITY)

    @field_validator("max_replicas")
    @classmethod
    def _at_least_min(cls, value: int, info) -> int:
        if "min_replicas" in info.data and value < info.data["min_replicas"]:
            raise ValueError(f"must be at least min_replicas ({info.data['min_replicas']})")
        return value


class Kubernetes(_Section):
    """The running service as desired state: a kustomize base, and per environment an overlay that
    ``promote`` writes beside ``release.yaml`` with the image pinned by digest."""

    base: str = "deploy/kubernetes/base"
    """The kustomize base, relative to the project root."""
    canary_base: str = "deploy/kubernetes/canary"
    """With ``strategy = "canary"``: the base's Deployment alone, renamed ``<name>-canary`` on the canary track;
    each canary's overlay (``environments/<env>/canary/kustomization.yaml``) pins it by digest."""
    name: str = ""
    """The Deployment's (and its container's and image placeholder's) name in the base; '' is the model name."""
    environments: dict[str, KubernetesEnvironment] = Field(default_factory=dict)
    """Replicas and resources per environment; an environment not listed gets the defaults."""


class Release(_Section):
    """Environments releases move through, in order, and where their images go."""

    environments: list[str] = Field(default_factory=lambda: ["staging", "production"], min_length=1)
    image_repository: str = ""
    """Container image repository, for example ``ghcr.io/owner/project``."""
    kubernetes: Kubernetes | None = None
    """Set to write and check a Kubernetes overlay per environment; unset, releases are release.yaml alone."""
    replay_window: str = "7d"
    """How much of the last environment's logged traffic ``replay`` sends through a candidate (30m, 12h, 7d)."""
    replay_min_agreement: float | None = Field(default=None, ge=0, le=1)
    """Gate for the last environment: the share of replayed rows where the candidate answers as production
    did must reach this (0.95 = 95 %); None: reported, not gated."""
    replay_no_worse: bool = False
    """Gate for the last environment: on replayed rows whose labels came back, the candidate's primary metric
    must be no worse than production's."""
    strategy: Literal["direct", "canary"] = "direct"
    """How a release reaches the last environment: ``direct`` replaces release.yaml; ``canary`` writes
    canary.yaml beside it, served to ``canary_weight`` of the traffic until ``canary complete``/``abort``."""
    canary_weight: float = Field(default=0.1, gt=0, lt=1)
    """The share of the last environment's traffic the canary gets (0.1 = 10 %); the rollout splits it."""
    canary_window: str = "1d"
    """How much logged traffic ``canary status`` compares."""
    canary_min_rows: int = Field(default=100, ge=1)
    """Fewer logged rows of either version: ``canary status`` recommends ``wait``."""
    canary_max_shift: float = Field(default=0.1, ge=0)
    """Classification: the largest total variation distance of the two versions' answer shares; regression:
    the largest change of the mean answer, relative to the stable version's mean. Above it: ``abort``."""
    canary_max_quality_drop: float = Field(default=0.02, ge=0)
    """On rows whose labels came back: how much worse (accuracy, or relative MAE) the canary may be."""

    @field_validator("replay_window", "canary_window")
    @classmethod
    def _replay_duration(cls, value: str) -> str:
        # Checked when the spec is read, not when the production promotion first replays.
        match = DURATION.fullmatch(value)
        if not match or float(match.group(1)) <= 0:
            raise ValueError("expected a positive duration such as 30m, 12h, 7d or 2w")
        return value

    @field_validator("kubernetes")
    @classmethod
    def _declared_environments(cls, value: Kubernetes | None, info) -> Kubernetes | None:
        unknown = sorted(set(value.environments) - set(info.data.get("environments", []))) if value else []
        if unknown:
            raise ValueError(f"environments.{unknown[0]} is not a declared environment (release.environments)")
        return value

    @field_validator("environments")
    @classmethod
    def _distinct_folder_names(cls, names: list[str]) -> list[str]:
        # Each name is a folder under environments/ and a registry alias: one of each, and no paths.
        bad = [name for name in names if not ENVIRONMENT_NAME.fullmatch(name)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not an environment name (letters, digits, '-' and '_', starting with a letter or digit)"
            )
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once; each environment once")
        return names


class Drift(_Section):
    """Monitoring: what counts as drift and what to do about it (reasoning in docs/monitoring.md)."""

    window: str = "7d"
    """How far back the inference log is read: a week evens out weekday/weekend traffic."""
    min_rows: int = Field(default=500, ge=1)
    """Fewer current rows give ``insufficient_data``: at 200 a random split was called drift 1 time in 5."""
    feedback: str = ""
    """Path or URI of labelled recent data (features plus the target), if any."""
    max_rows: int = Field(default=100_000, ge=1000)
    """Rows above this are sampled (seeded): at 100,000 rows sampling noise is far below the thresholds."""
    num_method: str = ""
    """Evidently stat test for numbers; '' lets Evidently choose by size (normed Wasserstein, or K-S)."""
    cat_method: str = ""
    """Evidently stat test for categories; '' lets Evidently choose (Jensen-Shannon, or chi-square)."""
    threshold: float | None = Field(default=None, gt=0)
    """Per-column drift threshold; None keeps the chosen test's own (0.1 for distances, 0.05 for p-values)."""
    false_alarm_rate: float = Field(default=0.01, gt=0, lt=0.5)
    """Chance of any drift call on same-distribution data the calibrated thresholds allow (docs/monitoring.md)."""
    calibration_sizes: list[int] = Field(default_factory=lambda: [2000])
    """Batch sizes calibrated besides min_rows: a batch uses the largest size not above its row count."""
    calibration_splits: int = Field(default=200, ge=20)
    """Random splits of the training rows per size (at least 1/false_alarm_rate - 1 are always made)."""
    retrain_drift_share: float = Field(default=0.3, gt=0, le=1)
    """Share of drifted features that calls for retraining: 3 in 10 is rare by chance (see false alarms)."""
    escalate_drift_share: float = Field(default=0.75, gt=0, le=1)
    """Share of drifted features that sends the model back to development: most inputs moved at once."""
    retrain_quality_loss: float = Field(default=0.05, ge=0)
    """Relative loss of the primary metric vs training that calls for retraining (the seeds' 5-8 %)."""
    escalate_quality_loss: float = Field(default=0.10, ge=0)
    """Relative loss above which retraining alone will not fix it (the seeds' "over 10 %")."""
    max_invalid_share: float = Field(default=0.05, ge=0, le=1)
    """Share of current rows breaking the data contract above which the decision is ``escalate``."""
    retrain_window: str = ""
    """Keep only labelled rows this recent (by the time column) when retraining; '' keeps them all."""
    retrain_holdout: float = Field(default=0.3, ge=0, lt=1)
    """Share of labelled recent rows held back to compare the old and the new model on recent data."""

    @field_validator("window", "retrain_window")
    @classmethod
    def _duration(cls, value: str, info) -> str:
        # Checked when the spec is read, not when a scheduled drift run first needs it.
        if (value or info.field_name == "window") and not DURATION.fullmatch(value):
            raise ValueError("expected a duration such as 30m, 12h, 7d or 2w")
        return value

    @field_validator("escalate_drift_share", "escalate_quality_loss")
    @classmethod
    def _graded(cls, value: float, info) -> float:
        # The grades must be ordered, or a decision could skip from none to escalate by configuration.
        lower = info.field_name.replace("escalate", "retrain")
        if lower in info.data and info.data[lower] > value:
            raise ValueError(f"must be at least drift.{lower} ({info.data[lower]})")
        return value


class Slices(_Section):
    """Metrics by group: the columns to slice the held-out rows by, and the gates on the groups.

    A gate left unset (``None``) is not applied; the per-group metrics are still reported.
    """

    columns: list[str] = Field(default_factory=list)
    """Columns to group by: categories as they are (missing values form a group), numbers by ``bins``."""
    bins: dict[str, list[float]] = Field(default_factory=dict)
    """Cut points per numeric column: ``[12, 24]`` gives the groups < 12, 12 to < 24 and >= 24."""
    min_rows: int = Field(default=100, ge=1)
    """Held-out rows a group needs to be judged; smaller groups are listed as too small, never dropped."""
    min_metric: float | None = None
    """Floor on the primary metric in every judged group (a ceiling when lower is better, as rmse)."""
    max_gap: float | None = Field(default=None, ge=0)
    """Ceiling on the primary metric's gap between the best and the worst judged group of a column."""
    max_parity_difference: float | None = Field(default=None, ge=0, le=1)
    """Binary classification: ceiling on the gap in positive-prediction rate between judged groups
    (demographic parity difference)."""
    parity_columns: list[str] = Field(default_factory=list)
    """The slice columns the parity gate applies to; empty: all. A column that rightly drives the
    prediction (a churn model predicts more churn on monthly contracts) is sliced, not held to parity."""
    share_shift: float = Field(default=0.1, gt=0, le=1)
    """Drift: a group whose share of traffic moved by this much (absolute, 0.1 = 10 points) is reported."""

    @field_validator("columns")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once; each column once")
        return names

    @field_validator("bins")
    @classmethod
    def _increasing(cls, bins: dict[str, list[float]]) -> dict[str, list[float]]:
        for column, edges in bins.items():
            if not edges:
                raise ValueError(f"{column!r} has no cut points; give at least one, as [12, 24]")
            if any(later <= earlier for earlier, later in zip(edges, edges[1:], strict=False)):
                raise ValueError(f"{column!r} cut points {edges} must strictly increase")
        return bins


class Spec(_Section):
    """One project: its data, its contract, its model and its gates."""

    model_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    task: Literal["classification", "regression"]
    data: str
    target: str
    time_column: str | None = None
    id_column: str | None = None
    """A contract column that identifies a row (``customer_id``): logged with each prediction and used to
    join labels back (``gitops-ml feedback join --on``), never fed to the model."""
    schema_: str = Field(alias="schema", pattern=r"^[\w.]+:\w+$")
    model_factory: str = Field(pattern=r"^[\w.]+:\w+$")
    tracking_uri: str = ""
    test_size: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 42
    primary_metric: str | None = None
    gates: Gates = Field(default_factory=Gates)
    serving: Serving = Field(default_factory=Serving)
    release: Release = Field(default_factory=Release)
    drift: Drift = Field(default_factory=Drift)
    slices: Slices = Field(default_factory=Slices)

    # Not read from the file: where the file is.
    root: Path = Field(default=Path("."), exclude=True)

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @field_validator("time_column", "id_column", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # Only the empty string means "no time column"; any other non-text value stays an error.
        return None if value == "" else value

    # -- resolved settings -------------------------------------------------------------
    @property
    def model_excluded(self) -> set[str]:
        """Contract columns the model never sees: the target and the id column."""
        return {self.target} | ({self.id_column} if self.id_column else set())

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    @property
    def metric(self) -> str:
        """The metric that ranks models: the spec's choice or the task's usual one."""
        return self.primary_metric or ("roc_auc" if self.task == "classification" else "rmse")

    def resolve(self, location: str) -> str:
        """A path relative to the project root, or a URI left as it is."""
        if "://" in location:
            return location
        path = Path(location)
        return str(path if path.is_absolute() else self.root / path)

    def display(self, location: str) -> str:
        """A location as a person reads it: relative to the project root when it is inside it."""
        try:
            return str(Path(location).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return location

    @property
    def data_uri(self) -> str:
        return self.resolve(self.data)

    @property
    def store_dir(self) -> Path:
        """The embedded MLflow store: a sqlite file and the artifacts beside it."""
        return self.root / DEFAULT_STORE

    @property
    def tracking(self) -> str:
        """Where MLflow lives: ``MLFLOW_TRACKING_URI``, then the spec, then the embedded store."""
        uri = os.environ.get("MLFLOW_TRACKING_URI") or self.tracking_uri
        if uri:
            return uri
        return f"sqlite:///{(self.store_dir / 'mlflow.db').resolve()}"

    @property
    def embedded_registry(self) -> bool:
        """True when MLflow is the project's own sqlite store: nobody else sees its versions."""
        return not (os.environ.get("MLFLOW_TRACKING_URI") or self.tracking_uri)

    @property
    def environments_dir(self) -> Path:
        return self.root / "environments"

    @property
    def cards_dir(self) -> Path:
        return self.root / "model_cards"

    def load_object(self, field: str) -> Any:
        """Import ``module:attribute`` named by ``schema`` or ``model_factory``."""
        target = self.schema_ if field == "schema" else getattr(self, field)
        module_name, _, attribute = target.partition(":")
        _with_project_on_path(self.root)
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attribute)
        except Exception as exc:  # not found, or the module fails while importing (a syntax error, a crash)
            raise ConfigError(
                f"{self.pyproject}: [{SECTION}] field '{field}': cannot import {target!r}: {exc}"
            ) from exc


def _with_project_on_path(root: Path) -> None:
    """Let a project's own ``src/`` package import without being installed first."""
    for candidate in (root / "src", root):
        text = str(candidate.resolve())
        if candidate.is_dir() and text not in sys.path:
            sys.path.insert(0, text)


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` whose pyproject declares ``[tool.gitops-ml]``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.gitops-ml" in pyproject.read_text(encoding="utf-8"):
            return folder
    raise ConfigError(
        f"no pyproject.toml with a [{SECTION}] section at or above {here}; "
        "run inside a generated project or pass --project DIR"
    )


def load_spec(root: Path | str | None = None) -> Spec:
    """Read and check the whole spec of the project at ``root`` (default: found from the working directory).

    Beyond the fields' types: metric names the task can compute, and the ``schema`` and
    ``model_factory`` it names importable, with the target and time column in the schema, so
    that every command refuses a broken spec, not only the ones that train.
    """
    root = Path(root).resolve() if root else find_root()
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise ConfigError(f"{pyproject}: file not found")
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: not valid TOML: {exc}") from exc
    section = document.get("tool", {}).get("gitops-ml")
    if section is None:
        raise ConfigError(f"{pyproject}: no [{SECTION}] section")
    if not isinstance(section, dict):
        raise ConfigError(f"{pyproject}: [{SECTION}] must be a table, got {type(section).__name__}")
    try:
        spec = Spec.model_validate({**section, "root": root})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, pyproject)) from None
    problems = metric_problems(spec) + reference_problems(spec)
    if not problems:  # the schema imports: the slice columns can be checked against it
        problems = slice_problems(spec)
    if problems:
        raise ConfigError(f"{pyproject}: " + "; ".join(f"[{SECTION}] field {problem}" for problem in problems))
    return spec


def metric_problems(spec: Spec) -> list[str]:
    """Metric names the task cannot compute: a typo would silently turn a gate or monitoring off."""
    choices = ", ".join(known(spec.task))
    problems = []
    if spec.primary_metric and spec.primary_metric not in known(spec.task):  # '' means the task's usual one
        problems.append(f"'primary_metric': {spec.primary_metric!r} is not a {spec.task} metric; choose from {choices}")
    for metric in spec.gates.thresholds:
        if metric not in known(spec.task):
            problems.append(f"'gates.thresholds.{metric}': unknown metric for {spec.task}; choose from {choices}")
    return problems


def reference_problems(spec: Spec) -> list[str]:
    """What the spec names in code: the schema (a pandera model holding the target) and the factory."""
    problems = []
    try:
        factory = spec.load_object("model_factory")
    except ConfigError as exc:
        problems.append(_field_part(exc))
    else:
        if not callable(factory):
            problems.append(
                f"'model_factory': {spec.model_factory!r} is a {type(factory).__name__}, not a function "
                "that returns an unfitted estimator"
            )
    try:
        columns = schema_columns(spec)
    except ConfigError as exc:
        problems.append(_field_part(exc))
        return problems
    for name in ("target", "time_column", "id_column"):
        column = getattr(spec, name)
        if column is not None and column not in columns:
            problems.append(
                f"'{name}': no column {column!r} in the schema {spec.schema_!r}; its columns are {', '.join(columns)}"
            )
    if spec.id_column is not None and spec.id_column in (spec.target, spec.time_column):
        role = "target" if spec.id_column == spec.target else "time_column"
        problems.append(f"'id_column': {spec.id_column!r} is the {role}; the id column must be another column of "
                        "the contract (it is logged and joined on, never fed to the model)")
    return problems


def slice_problems(spec: Spec) -> list[str]:
    """Slice columns the contract lacks, numbers without cut points, cut points for text, a parity gate
    for a regression: each would silently slice nothing or everything."""
    slices = spec.slices
    if not (slices.columns or slices.bins or slices.parity_columns):
        return []
    numeric = numeric_columns(spec)
    columns = schema_columns(spec)
    problems = []
    for column in slices.columns:
        if column not in columns:
            problems.append(
                f"'slices.columns': no column {column!r} in the schema {spec.schema_!r}; its columns are "
                f"{', '.join(columns)}"
            )
        elif column in (spec.target, spec.time_column):
            what = "the target" if column == spec.target else "the time column"
            problems.append(f"'slices.columns': {column!r} is {what}; slice by the columns the model reads")
        elif column in numeric and column not in slices.bins:
            problems.append(
                f"'slices.bins.{column}': {column!r} is numeric; give its cut points, as {column} = [12, 24]"
            )
    for column in slices.bins:
        if column not in slices.columns:
            problems.append(f"'slices.bins.{column}': {column!r} is not in slices.columns")
        elif column in columns and column not in numeric:
            problems.append(f"'slices.bins.{column}': {column!r} is not numeric; its values are its groups")
    for column in slices.parity_columns:
        if column not in slices.columns:
            problems.append(f"'slices.parity_columns': {column!r} is not in slices.columns")
    if slices.max_parity_difference is not None and spec.task != "classification":
        problems.append("'slices.max_parity_difference': positive-prediction rates exist for classification only")
    return problems


def numeric_columns(spec: Spec) -> set[str]:
    """The schema's columns of a numeric dtype (booleans are categories)."""
    import numpy as np

    numeric = set()
    for name, column in spec.load_object("schema").to_schema().columns.items():
        kind = getattr(column.dtype, "type", None)
        try:
            dtype = np.dtype(kind)
        except TypeError:
            continue
        if np.issubdtype(dtype, np.number):
            numeric.add(str(name))
    return numeric


def schema_columns(spec: Spec) -> list[str]:
    """The columns of the pandera DataFrameModel that ``schema`` names."""
    model = spec.load_object("schema")
    try:
        return [str(name) for name in model.to_schema().columns]
    except Exception as exc:  # not a DataFrameModel, or one pandera cannot build
        raise ConfigError(
            f"{spec.pyproject}: [{SECTION}] field 'schema': {spec.schema_!r} is not a pandera DataFrameModel "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _field_part(exc: ConfigError) -> str:
    """``'field': what`` out of a load_object message, to join with the others."""
    return str(exc).split(f"[{SECTION}] field ", 1)[-1]


def _describe(exc: ValidationError, pyproject: Path) -> str:
    """One message listing every bad field as ``[tool.gitops-ml] field 'a.b': what is wrong``."""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(section)"
        got = "" if error["type"] == "missing" else f" (got {error.get('input')!r})"
        lines.append(f"[{SECTION}] field '{field}': {error['msg']}{got}")
    return f"{pyproject}: " + "; ".join(lines)
