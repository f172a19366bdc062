"""``drift``: what the environment's model is asked now against what it was trained on, and a decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from .. import tracking
from ..config import Spec
from ..data import load_schema
from ..errors import CheckFailed, GitopsMLError
from ..evaluate import load_model
from ..layout import INFERENCE_LOG_COLUMNS
from ..metrics import score
from ..slices import ShareShift, share_shifts
from . import outputs
from .calibration import Calibration, SizeCalibration, read_logged
from .decide import (
    INSUFFICIENT,
    Quality,
    Reason,
    contract_reason,
    data_drift_reason,
    gravest,
    prediction_reason,
    quality_reason,
)
from .measure import PREDICTION, ColumnDrift, measure
from .reference import Deployed, FoundBy, Reference, deployed, training_quality, training_rows
from .sources import Rows, check_rows, read_file, read_inference_log

Decision = Literal["none", "retrain", "escalate", "insufficient_data"]


@dataclass
class DriftResult:
    decision: Decision
    reasons: list[Reason]
    model_name: str
    env: str
    model_version: int
    found_by: FoundBy
    current: Rows
    reference: Reference | None = None
    labelled: Rows | None = None
    features: list[ColumnDrift] = field(default_factory=list)
    prediction: ColumnDrift | None = None
    quality: Quality | None = None
    thresholds: dict = field(default_factory=dict)
    calibration: SizeCalibration | None = None
    calibration_note: str = ""
    shares: list[ShareShift] = field(default_factory=list)
    """Per slice column, each group's share of training rows and of current traffic."""
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    files: outputs.Files | None = None
    snapshot: object = field(default=None, repr=False)
    saw_nothing: str = ""
    """Why monitoring saw no row at all (the log absent, empty, or nothing production in the window): a
    warning, never a quiet ``insufficient_data``."""

    @property
    def monitored(self) -> bool:
        return not self.saw_nothing

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [f for f in self.features if f.drifted]

    @property
    def drift_share(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0

    def as_dict(self) -> dict:
        return {
            "decision": self.decision,
            "reasons": [r.as_dict() for r in self.reasons],
            "model_name": self.model_name, "env": self.env, "model_version": self.model_version,
            "found_by": self.found_by,
            "drifted_features": len(self.drifted), "features_checked": len(self.features),
            "drift_share": self.drift_share,
            "features": [f.as_dict() for f in self.features],
            "prediction": self.prediction.as_dict() if self.prediction else None,
            "quality": self.quality.as_dict() if self.quality else None,
            "current": self.current.as_dict(),
            "labelled": self.labelled.as_dict() if self.labelled else None,
            "reference": self.reference.as_dict() if self.reference else None,
            "window": self.current.window,
            "thresholds": self.thresholds,
            "calibration": self.calibration_summary(),
            "group_shares": [s.as_dict() for s in self.shares],
            "groups_moved": [s.as_dict() for s in self.shares if s.moved],
            "generated_at": self.generated_at,
            "monitored": self.monitored,
            "saw_nothing": self.saw_nothing,
            "outputs": self.files.as_dict() if self.files else {},
        }


    def calibration_summary(self) -> dict:
        """Which calibrated size judged this batch, or why the fixed thresholds did."""
        found = self.calibration
        if found is None:
            return {"used": False, "note": self.calibration_note}
        return {"used": True, "current_rows": found.current_rows, "reference_rows": found.reference_rows,
                "splits": found.splits, "critical": found.critical, "conservative": found.conservative,
                "note": self.calibration_note or found.note}


def calibrated_thresholds(found: SizeCalibration | None) -> dict[str, tuple[str, float]]:
    """Per column (and the prediction): the stat test and threshold to hand to Evidently."""
    if found is None:
        return {}
    return {name: (c.method, c.threshold) for name, c in found.by_column().items()}


def choose_calibration(spec: Spec, logged: Calibration | None, rows: int) -> tuple[SizeCalibration | None, str]:
    """The calibrated size for a batch of ``rows``, or why Evidently's fixed thresholds apply."""
    if logged is None:
        return None, ("this version has no drift calibration (trained before it existed): Evidently's fixed "
                      "thresholds apply; run `gitops-ml drift calibrate` to calibrate it")
    if spec.drift.threshold is not None:
        return None, "drift.threshold is set: that fixed threshold applies, not the calibration"
    found = logged.for_rows(rows)
    if found is None:
        return None, "; ".join(logged.notes) or "calibration holds no size"
    return found, "; ".join(logged.notes)


def _location(spec: Spec, source: str) -> str:
    """A URI as it is; a path as given when it exists from here, else relative to the project."""
    if "://" in source or Path(source).exists():
        return source if "://" in source else str(Path(source).resolve())
    return spec.resolve(source)


def feature_columns(spec: Spec, schema) -> list[str]:
    """The contract's columns but the target, the time column (time always 'drifts') and the id column."""
    return [c for c in schema.columns if c not in {spec.time_column, *spec.model_excluded}]


def _thresholds(spec: Spec) -> dict:
    return spec.drift.model_dump(exclude={"feedback"})


def read_current(spec: Spec, found: Deployed, current: str | None, window: str | None) -> Rows:
    if current:
        return read_file(spec, _location(spec, current), window)
    location = spec.resolve(spec.serving.inference_log)
    try:
        return read_inference_log(spec, found.version.version, window)
    except GitopsMLError:
        raise
    except ImportError as exc:  # fsspec's "Install s3fs to access S3"
        raise CheckFailed(f"inference log {location}: no driver for this location ({exc})") from exc
    except Exception as exc:  # credentials refused, access denied, a bucket that is not there: fail loudly
        raise CheckFailed(f"inference log {location}: cannot be read: {type(exc).__name__}: {exc}") from exc


def log_absent(location: str) -> bool:
    """True when nothing is at the log's location (no directory, no object under the prefix)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(location)
    return not fs.exists(root)


def saw_nothing(spec: Spec, rows: Rows, version: int) -> str:
    """Why the inference log gave no row at all, for a person to act on; '' when it gave some."""
    if rows.kind != "log" or rows.rows_read:
        return ""
    setting = f"[tool.gitops-ml.serving] inference_log in {spec.pyproject.name}"
    if log_absent(rows.source):
        return (f"the inference log location {rows.source} does not exist here: the served model writes its log "
                f"somewhere this job cannot see (a container's own disk?). Point {setting} at storage both "
                "the service and this job reach (an object store URI)")
    if not rows.files:
        return f"the inference log location {rows.source} holds no log files: the service has logged nothing there yet"
    left_out = [f"{n} {what}" for n, what in ((rows.other_traffic, "rows of smoke or check traffic"),
                                              (rows.other_versions, "rows other model versions answered"),
                                              (rows.corrupt_lines, "corrupt lines")) if n]
    return (f"the inference log at {rows.source} ({rows.files} files) holds no production rows of v{version} "
            f"in the last {rows.window}" + (f" ({', '.join(left_out)} left out)" if left_out else ""))


def read_labelled(spec: Spec, schema, current: Rows) -> tuple[Rows | None, str]:
    """Labelled recent rows: the feedback source, else the current data's own target column."""
    if spec.drift.feedback:
        rows = read_file(spec, _location(spec, spec.drift.feedback), None)
        return check_rows(rows, schema, spec.target, labelled=True), ""
    if spec.target in current.frame.columns:
        copy = Rows(frame=current.frame.copy(), source=current.source, kind=current.kind,
                    rows_read=current.rows_read, sampled=current.sampled, window=current.window, since=current.since)
        return check_rows(copy, schema, spec.target, labelled=True), ""
    return None, "no labelled recent data (set [tool.gitops-ml.drift] feedback): model quality not measured"


def predict(spec: Spec, model, frame: pd.DataFrame) -> pd.Series:
    """The model's answers as compared: labels as categories, numbers as numbers."""
    predicted = pd.Series(model.predict(frame[model_inputs(spec, frame)]), index=frame.index)
    return predicted.astype(str) if spec.task == "classification" else predicted.astype(float)


def model_inputs(spec: Spec, frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in {*spec.model_excluded, *INFERENCE_LOG_COLUMNS}]


def measure_quality(spec: Spec, model, labelled: Rows, trained: dict[str, float]) -> tuple[Quality | None, str]:
    if labelled.rows_used < spec.drift.min_rows:
        return None, (f"only {labelled.rows_used} labelled recent rows in {labelled.source} "
                      f"(minimum {spec.drift.min_rows}): model quality not measured")
    frame = labelled.frame
    now = score(model, frame[model_inputs(spec, frame)], frame[spec.target], spec.task)
    if spec.metric not in now or spec.metric not in trained:
        return None, f"{spec.metric} cannot be computed on the labelled rows (one class only?)"
    return Quality(spec.metric, trained[spec.metric], now[spec.metric], labelled.rows_used, labelled.source), ""


def drift(spec: Spec, env: str | None = None, current: str | None = None, window: str | None = None,
          output_dir: Path | None = None) -> DriftResult:
    """Compare current data with the training data of the version ``env`` runs, decide, write the reports."""
    client = tracking.connect(spec)
    found = deployed(spec, client, env)
    schema = load_schema(spec)
    rows = read_current(spec, found, current, window)
    labelled, note = read_labelled(spec, schema, rows) if not rows.frame.empty else (None, "")
    rows = check_rows(rows, schema, spec.target, labelled=False)
    result = DriftResult(decision="none", reasons=[], model_name=spec.model_name, env=found.env,
                         model_version=found.version.version, found_by=found.found_by, current=rows,
                         labelled=labelled, thresholds=_thresholds(spec),
                         saw_nothing=saw_nothing(spec, rows, found.version.version))
    invalid = contract_reason(rows.invalid_rows, rows.invalid_share, spec.drift, rows.invalid_checks)
    if result.saw_nothing:
        result.reasons = [Reason(INSUFFICIENT, "rows", f"monitoring saw nothing: {result.saw_nothing}")]
        result.decision = INSUFFICIENT
        result.files = outputs.write(spec, result, output_dir)
        return result
    if rows.rows_used < spec.drift.min_rows:
        result.reasons = [Reason(INSUFFICIENT, "rows", _too_few(spec, rows)), *([invalid] if invalid else [])]
        # Too few valid rows to measure drift, but a contract broken by more than max_invalid_share
        # is escalate whatever remains: that is a finding, not a lack of data.
        result.decision = gravest([invalid]) if invalid and invalid.grade == "escalate" else INSUFFICIENT
        result.files = outputs.write(spec, result, output_dir)
        return result

    result.reference = training_rows(spec, client, found.version)
    model = load_model(found.version)
    reference = result.reference.frame.assign(**{PREDICTION: predict(spec, model, result.reference.frame)})
    frame = rows.frame
    if PREDICTION in frame.columns:  # the log carries what was answered; compare it as answered
        served = frame[PREDICTION]
        frame = frame.assign(**{PREDICTION: served.astype(str) if spec.task == "classification" else served})
    else:
        frame = frame.assign(**{PREDICTION: predict(spec, model, frame)})
    features = feature_columns(spec, schema)
    result.calibration, result.calibration_note = choose_calibration(
        spec, read_logged(client, found.version.run_id), rows.rows_used)
    measured = measure(reference, frame, features, spec.drift,
                       "categorical" if spec.task == "classification" else "numerical",
                       calibrated_thresholds(result.calibration))
    result.features, result.prediction, result.snapshot = measured.features, measured.prediction, measured.snapshot
    if labelled is not None:
        result.quality, note = measure_quality(spec, model, labelled, training_quality(client, found.version))

    result.shares = share_shifts(spec.slices, result.reference.frame, rows.frame)
    reasons = [data_drift_reason(measured, spec.drift), prediction_reason(measured),
               quality_reason(result.quality, spec.drift, note), invalid, share_reason(result.shares)]
    result.reasons = [r for r in reasons if r is not None]
    result.decision = gravest(result.reasons)
    result.files = outputs.write(spec, result, output_dir)
    return result


def share_reason(shares: list[ShareShift]) -> Reason | None:
    """Groups whose share of traffic moved: recorded with the decision, not a grade of its own.

    A new mix of groups is a reason to read the per-group metrics again; whether it calls for
    retraining is for the feature drift and the quality on labelled rows to say.
    """
    moved = [s for s in shares if s.moved]
    if not moved:
        return None
    said = ", ".join(f"{s.column}={s.group} {s.reference:.1%} -> {s.current:.1%}" for s in moved)
    return Reason("none", "group_share", f"{len(moved)} group(s) changed their share of traffic by "
                  f"{moved[0].threshold} or more (slices.share_shift): {said}")


def _too_few(spec: Spec, rows: Rows) -> str:
    where = f"in the last {rows.window}" if rows.window else "in total"
    extra = f" ({rows.invalid_rows} more broke the contract)" if rows.invalid_rows else ""
    corrupt = f" ({rows.corrupt_lines} corrupt log lines skipped)" if rows.corrupt_lines else ""
    return (f"{rows.rows_used} usable rows {where} from {rows.source}{extra}{corrupt}; at least "
            f"{spec.drift.min_rows} (drift.min_rows) are needed for a sound statement: no decision")


@dataclass
class Unreleased:
    """A drift run for an environment that runs no model yet: nothing is served, nothing to monitor."""

    model_name: str
    env: str | None
    message: str
    decision: str = "no_release"
    files: outputs.Files | None = None
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def as_dict(self) -> dict:
        return {"decision": self.decision, "model_name": self.model_name, "env": self.env, "monitored": False,
                "message": self.message, "generated_at": self.generated_at,
                "outputs": self.files.as_dict() if self.files else {}}


def unreleased(spec: Spec, env: str | None, message: str, output_dir: Path | None = None) -> Unreleased:
    """The notice of a drift run with no release to monitor, its summary files written like a drift run's."""
    result = Unreleased(spec.model_name, env, message)
    result.files = outputs.write_unreleased(spec, result, output_dir)
    return result
