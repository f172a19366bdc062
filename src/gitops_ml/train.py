"""Training: validate, split, fit the project's model, log everything to MLflow, register a version."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import skops.io
from mlflow.models import infer_signature
from sklearn.base import clone, is_classifier, is_regressor

from . import tracking
from .config import Spec
from .data import ValidationReport, check_data, fingerprint, load_schema
from .errors import CheckFailed, TrainingError
from .metrics import score

TRAIN_ARTIFACT = "data/train.parquet"
TEST_ARTIFACT = "data/test.parquet"
SCHEMA_ARTIFACT = "schema/schema.yaml"
MIN_ROWS = 10  # below this the held-out split is one or two rows and its metrics mean nothing
MIN_PER_CLASS = 2  # a stratified split puts each class on both sides


@dataclass(frozen=True)
class TrainResult:
    model_name: str
    version: int
    run_id: str
    data_fingerprint: str
    metrics: dict[str, float]
    model_uri: str
    train_rows: int
    test_rows: int
    split: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame
    method: str


def split(frame: pd.DataFrame, spec: Spec) -> Split:
    """Hold out the newest rows when there is a time column, else a seeded (stratified) sample."""
    if spec.time_column:
        ordered = frame.sort_values(spec.time_column, kind="stable")
        cut = int(round(len(ordered) * (1 - spec.test_size)))
        return Split(ordered.iloc[:cut], ordered.iloc[cut:], f"time-ordered on '{spec.time_column}'")
    from sklearn.model_selection import train_test_split

    stratify = frame[spec.target] if spec.task == "classification" else None
    train, test = train_test_split(frame, test_size=spec.test_size, random_state=spec.seed, stratify=stratify)
    return Split(train, test, f"random, seed {spec.seed}")


def features(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """The model's input: every column but the target and the id column (``id_column``: logged, not learnt)."""
    return frame.drop(columns=[c for c in spec.model_excluded if c in frame.columns])


def unfit_reasons(frame: pd.DataFrame, spec: Spec, source: str) -> list[str]:
    """What makes data that meets the contract unusable for fitting, said before a library says it worse."""
    reasons = []
    if len(frame) < MIN_ROWS:
        reasons.append(f"only {len(frame)} rows; at least {MIN_ROWS} are needed to hold out test rows and fit")
    numeric = frame.select_dtypes("number")
    for column in numeric.columns:
        infinite = np.isinf(numeric[column].to_numpy(dtype=float, na_value=np.nan))
        if infinite.any():
            rows = ", ".join(str(i) for i in np.flatnonzero(infinite)[:5])
            reasons.append(
                f"column {column!r} holds {int(infinite.sum())} infinite value(s) (rows {rows}); "
                "the contract allows them but no model can fit them: bound the column in the schema"
            )
    if spec.task == "classification":
        counts = frame[spec.target].value_counts()
        if len(counts) < 2:
            only = ", ".join(map(str, counts.index)) or "none"
            reasons.append(f"target {spec.target!r} has one class only ({only}); a classifier needs two or more")
        elif not spec.time_column and counts.min() < MIN_PER_CLASS:
            rare = ", ".join(f"{value!r} ({count} row)" for value, count in counts.items() if count < MIN_PER_CLASS)
            reasons.append(
                f"target {spec.target!r} class {rare}: each class needs at least {MIN_PER_CLASS} rows "
                "for a stratified split"
            )
    return [f"{source}: {reason}" for reason in reasons]


def check_split(parts: Split, spec: Spec) -> None:
    """A time-ordered split can leave one class in the training rows, or no test rows at all."""
    if parts.test.empty or parts.train.empty:
        raise TrainingError(
            f"the {parts.method} split left {len(parts.train)} training and {len(parts.test)} test "
            f"rows (test_size {spec.test_size}); nothing was trained or registered"
        )
    if spec.task == "classification" and parts.train[spec.target].nunique() < 2:
        raise TrainingError(
            f"the {parts.method} split left one class only in the training rows "
            f"({parts.train[spec.target].iloc[0]!r}); nothing was trained or registered"
        )


def build_estimator(spec: Spec):
    """Call the project's factory and check it returned an unfitted estimator of the right task."""
    factory = spec.load_object("model_factory")
    where = f"{spec.pyproject}: [tool.gitops-ml] field 'model_factory': {spec.model_factory}"
    kind = "classifier" if spec.task == "classification" else "regressor"
    try:
        estimator = factory()
    except Exception as exc:  # the project's own code: whatever it raises is reported, not a traceback
        raise TrainingError(f"{where} raised {type(exc).__name__}: {exc}") from exc
    if not is_estimator_of(estimator, spec.task):
        raise TrainingError(f"{where} returned {type(estimator).__name__}, not an unfitted scikit-learn {kind}")
    return clone(estimator)


def is_estimator_of(candidate, task: str) -> bool:
    """A scikit-learn classifier (or regressor) with ``fit``; anything without sklearn's tags is not."""
    try:
        fits_task = is_classifier(candidate) if task == "classification" else is_regressor(candidate)
    except Exception:  # no __sklearn_tags__: a string, a function, a plain object
        return False
    return fits_task and hasattr(candidate, "fit") and hasattr(candidate, "get_params")


def fit(estimator, train_frame: pd.DataFrame, spec: Spec, source: str):
    """Fit, turning the model's own refusal into a message that names the data and the likely cause."""
    try:
        return estimator.fit(features(train_frame, spec), train_frame[spec.target])
    except Exception as exc:  # scikit-learn's ValueErrors, and whatever a custom estimator raises
        hint = ""
        if spec.target in str(exc):
            hint = f" (the model reads the target {spec.target!r} as an input feature: it must not be one)"
        raise TrainingError(
            f"{source}: {spec.model_factory} cannot be fitted on this data: "
            f"{type(exc).__name__}: {_first_line(exc)}{hint}; nothing was trained or registered"
        ) from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def git_commit(root: Path) -> str:
    """The commit the code was trained from, with ``-dirty`` when the tree has changes; '' outside git."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    return commit


def load_training_data(spec: Spec, data: str | None) -> tuple[pd.DataFrame, ValidationReport]:
    """Read and validate; invalid data stops training before anything reaches MLflow."""
    frame, report = check_data(spec, data)
    if not report.passed:
        raise CheckFailed(f"{report.source}: the data breaks the contract; nothing was trained or registered", report)
    reasons = unfit_reasons(frame, spec, report.source)
    if reasons:
        raise TrainingError("; ".join(reasons) + "; nothing was trained or registered")
    return frame, report


def train(
    spec: Spec, data: str | None = None, extra: pd.DataFrame | None = None, tags: dict | None = None
) -> TrainResult:
    """Fit the project's model and register it as a new version of ``spec.model_name``.

    ``extra`` rows (already validated, for example labelled recent data) join the training split.
    """
    frame, report = load_training_data(spec, data)
    parts = split(frame, spec)
    check_split(parts, spec)
    train_frame = pd.concat([parts.train, extra], ignore_index=True) if extra is not None else parts.train
    data_fp = fingerprint(frame if extra is None else pd.concat([frame, extra], ignore_index=True))
    estimator = fit(build_estimator(spec), train_frame, spec, report.source)
    test_x, test_y = features(parts.test, spec), parts.test[spec.target]
    metrics = held_out_scores(estimator, test_x, test_y, spec, report.source)

    client = tracking.connect(spec)
    experiment = tracking.experiment_id(spec, client)
    commit = git_commit(spec.root)
    lineage = {tracking.TAG_FINGERPRINT: data_fp, tracking.TAG_COMMIT: commit, **(tags or {})}
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.set_tags({**lineage, "data_uri": spec.display(report.source), "split": parts.method, "task": spec.task})
        mlflow.log_params(_loggable_params(estimator))
        mlflow.log_params({"train_rows": len(train_frame), "test_rows": len(parts.test)})
        mlflow.log_metrics(metrics)
        _log_data_and_contract(spec, train_frame, parts.test)
        _log_drift_calibration(spec, train_frame, estimator)
        from . import plots  # matplotlib: only training draws; drift, promote and deploy import this module

        for name, figure in plots.for_task(spec.task, estimator, test_x, test_y).items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=infer_signature(test_x, estimator.predict(test_x.head(50))),
            input_example=test_x.head(3),
            registered_model_name=spec.model_name,
            skops_trusted_types=_own_types(estimator),
        )
    version = int(info.registered_model_version)
    for key, value in {**lineage, tracking.TAG_RUN: run.info.run_id, "task": spec.task}.items():
        client.set_model_version_tag(spec.model_name, str(version), key, value)
    return TrainResult(
        model_name=spec.model_name,
        version=version,
        run_id=run.info.run_id,
        data_fingerprint=data_fp,
        metrics=metrics,
        model_uri=f"models:/{spec.model_name}/{version}",
        train_rows=len(train_frame),
        test_rows=len(parts.test),
        split=parts.method,
    )


def held_out_scores(estimator, test_x: pd.DataFrame, test_y: pd.Series, spec: Spec, source: str) -> dict:
    """The task's metrics; an estimator that cannot give them (no predict_proba, say) is refused before logging."""
    try:
        return score(estimator, test_x, test_y, spec.task)
    except Exception as exc:  # a custom estimator's predict, or a metric undefined on these rows
        raise TrainingError(
            f"{source}: {spec.model_factory} was fitted but cannot be scored on the held-out rows: "
            f"{type(exc).__name__}: {_first_line(exc)}; nothing was trained or registered"
        ) from exc


def _log_data_and_contract(spec: Spec, train_frame: pd.DataFrame, test_frame: pd.DataFrame) -> None:
    """Keep the exact training and held-out rows with the run: evaluation and drift read them back."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "data").mkdir()
        train_frame.to_parquet(folder / TRAIN_ARTIFACT, index=False)
        test_frame.to_parquet(folder / TEST_ARTIFACT, index=False)
        (folder / "schema").mkdir()
        (folder / SCHEMA_ARTIFACT).write_text(load_schema(spec).to_yaml() or "", encoding="utf-8")
        mlflow.log_artifacts(scratch)


def _log_drift_calibration(spec: Spec, train_frame: pd.DataFrame, estimator) -> None:
    """Drift thresholds for this version, from its own training rows (drift reads them back)."""
    from .monitor.calibration import CALIBRATION_ARTIFACT, calibrate_rows  # the monitor imports this module
    from .monitor.sources import sample

    calibration = calibrate_rows(spec, sample(train_frame, spec.drift.max_rows, spec.seed), estimator)
    mlflow.log_dict(calibration.model_dump(mode="json"), CALIBRATION_ARTIFACT)


def _loggable_params(estimator) -> dict[str, str]:
    """The estimator's parameters that read as values (not nested estimators), trimmed for MLflow."""
    params = {}
    for key, value in estimator.get_params(deep=True).items():
        if isinstance(value, int | float | str | bool) or value is None:
            params[key[:250]] = str(value)[:500]
    return dict(sorted(params.items())[:200])


def _own_types(estimator) -> list[str]:
    """Types skops will not load by default; the engine built this model, so it trusts them."""
    return skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
