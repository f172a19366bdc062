"""Evaluation: a registered version's metrics on its held-out data, and the gates it must pass."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from . import release, tracking
from .config import Spec
from .errors import CheckFailed, ConfigError
from .metrics import higher_is_better, known, score
from .slices import SliceReport, by_group
from .slices import gates as slice_gates
from .train import TEST_ARTIFACT, features


@dataclass(frozen=True)
class Gate:
    name: str
    metric: str
    threshold: float
    value: float
    passed: bool
    kind: str  # "floor", "ceiling", "no-regression"; for slices "group-floor", "group-ceiling", "group-gap", "parity"


@dataclass
class Evaluation:
    version: int
    metrics: dict[str, float]
    gates: list[Gate] = field(default_factory=list)
    against: str | None = None
    baseline_version: int | None = None
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    """What the gates could not do and why (a baseline missing from this registry, groups too small)."""
    slices: SliceReport | None = None
    """Per-group metrics of the candidate on the held-out rows (``[tool.gitops-ml.slices]``)."""
    baseline_slices: SliceReport | None = None
    """The same groups for the baseline, scored on the same rows."""

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    def as_dict(self) -> dict:
        data = asdict(self)
        for name in ("slices", "baseline_slices"):
            report = getattr(self, name)
            data[name] = report.as_dict() if report is not None else None
        return {**data, "passed": self.passed}


def held_out(client: MlflowClient, version: tracking.Version) -> pd.DataFrame:
    """The rows this version never saw while training, as logged with its run."""
    path = tracking.download_artifact(client, version.run_id, TEST_ARTIFACT)
    if path is None:
        raise CheckFailed(f"{version.model_name} v{version.version}: run {version.run_id} has no {TEST_ARTIFACT} "
                          "(the held-out rows); it was not trained by `gitops-ml train`")
    return pd.read_parquet(path)


def load_model(version: tracking.Version):
    """The version's model, from wherever the registry keeps its files."""
    try:
        return mlflow.sklearn.load_model(version.model_uri)
    except Exception as exc:
        failure = tracking.store_failure(MlflowClient(), version.run_id, f"the model of v{version.version}") \
            if version.run_id else None
        if failure is not None:
            raise failure from exc
        raise


def threshold_gates(spec: Spec, metrics: dict[str, float]) -> list[Gate]:
    """Absolute floors (ceilings for lower-is-better metrics) from the spec."""
    gates = []
    for metric, threshold in spec.gates.thresholds.items():
        if metric not in known(spec.task):
            raise ConfigError(
                f"{spec.pyproject}: [tool.gitops-ml] field 'gates.thresholds.{metric}': unknown metric for "
                f"{spec.task}; choose from {', '.join(known(spec.task))}"
            )
        value = metrics.get(metric, float("nan"))
        higher = higher_is_better(metric)
        passed = value >= threshold if higher else value <= threshold
        gates.append(
            Gate(
                f"{metric} {'>=' if higher else '<='} {threshold}",
                metric,
                threshold,
                value,
                passed,
                "floor" if higher else "ceiling",
            )
        )
    return gates


def regression_gates(spec: Spec, metrics: dict[str, float], baseline: dict[str, float], env: str) -> list[Gate]:
    """No metric may be worse than the environment's current model by more than ``max_regression``."""
    tolerance = spec.gates.max_regression
    watched = set(spec.gates.thresholds) | {spec.metric}
    gates = []
    for metric in sorted(watched & set(metrics) & set(baseline)):
        higher = higher_is_better(metric)
        limit = baseline[metric] - tolerance if higher else baseline[metric] + tolerance
        passed = metrics[metric] >= limit if higher else metrics[metric] <= limit
        gates.append(
            Gate(
                f"{metric} no worse than {env} by {tolerance}", metric, limit, metrics[metric], passed, "no-regression"
            )
        )
    return gates


def default_baseline_env(spec: Spec) -> str | None:
    """The furthest environment that runs a model now: production before staging."""
    for env in reversed(spec.release.environments):
        if release.current_version(spec, env) is not None:
            return env
    return None


def evaluate(
    spec: Spec, version: int | None = None, against: str | None = None, record: bool = True
) -> Evaluation:
    """Score ``version`` (default: the newest) on its held-out rows and apply the gates.

    The baseline is scored on the same rows, so the comparison is like for like.
    """
    env = release.check_environment(spec, against) if against else default_baseline_env(spec)
    client = tracking.connect(spec)
    candidate = tracking.get_version(spec, client, version)
    test = held_out(client, candidate)
    x, y = features(test, spec), test[spec.target]
    model = load_model(candidate)
    metrics = score(model, x, y, spec.task)
    result = Evaluation(version=candidate.version, metrics=metrics, gates=threshold_gates(spec, metrics), against=env)
    result.slices = by_group(spec, model, x, y)
    found, notices = slice_gates(spec.slices, result.slices)
    result.gates += [Gate(**asdict(gate)) for gate in found]
    result.notices += notices

    baseline_version = release.current_version(spec, env) if env else None
    if baseline_version is not None and baseline_version != candidate.version:
        baseline = baseline_or_notice(spec, client, env, baseline_version, result)
        if baseline is None:
            if record:
                _record(client, spec, candidate, result)
            return result
        result.baseline_version = baseline.version
        baseline_model = load_model(baseline)
        result.baseline_metrics = score(baseline_model, x, y, spec.task)
        result.baseline_slices = by_group(spec, baseline_model, x, y)
        result.gates += regression_gates(spec, metrics, result.baseline_metrics, env)
    if record:
        _record(client, spec, candidate, result)
    return result


def baseline_or_notice(spec: Spec, client: MlflowClient, env: str, version: int, result: Evaluation):
    """The version ``env`` runs, or None with a notice when this registry does not hold it.

    A pull request from a fork or from Dependabot gets no registry secret: its run trains into an
    empty embedded store, where production's model cannot be found. The absolute gates still apply;
    the comparison with production is left to runs that can see the shared registry.
    """
    try:
        return tracking.get_version(spec, client, version)
    except ConfigError as missing:
        result.notices.append(f"regression gates skipped: {env} runs v{version}, which this registry does not "
                              f"hold ({missing}); the absolute gates still apply")
        return None


def _record(client: MlflowClient, spec: Spec, version: tracking.Version, result: Evaluation) -> None:
    """Keep the outcome on the version, where promotion and verification read it."""
    summary = json.dumps(
        {
            "passed": result.passed,
            "against": result.against,
            "baseline_version": result.baseline_version,
            "baseline_metrics": result.baseline_metrics,
            "notices": result.notices,
            "metrics": result.metrics,
            "gates": [asdict(g) for g in result.gates],
        },
        sort_keys=True,
    )
    name, number = spec.model_name, str(version.version)
    client.set_model_version_tag(name, number, tracking.TAG_GATES_PASSED, str(result.passed).lower())
    client.set_model_version_tag(name, number, tracking.TAG_GATES, summary)
    client.set_model_version_tag(name, number, tracking.TAG_EVALUATED_AGAINST, result.against or "")
    recorded = {
        "against": result.against,
        "baseline_version": result.baseline_version,
        "candidate": result.slices.as_dict() if result.slices else None,
        "baseline": result.baseline_slices.as_dict() if result.baseline_slices else None,
    }
    # Always written, so a version evaluated again without slices does not keep stale groups.
    client.set_model_version_tag(name, number, tracking.TAG_SLICES, json.dumps(recorded, sort_keys=True))

