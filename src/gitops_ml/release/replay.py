"""``replay``: a candidate answers the questions production was asked lately, before it is promoted there.

The environment's logged traffic (the inference log: production-traffic rows the version its
``release.yaml`` names answered, inside the window) is sent through the candidate offline. What
production answered is the log's ``prediction`` column, as it was served; the candidate is loaded
from the registry and predicts on the logged features. The comparison: the share of rows where both
answer alike, the prediction distribution of each (class shares for classification; mean and
quantiles for regression) and the shift between them, and, on the replayed rows whose labels came
back (``[tool.gitops-ml.drift] feedback``, joined on ``request_id``), both models' primary metric.

Gates (``[tool.gitops-ml.release]``): ``replay_min_agreement`` and ``replay_no_worse``. A gate needs
data to pass: with no logged row (or no labelled row, for ``replay_no_worse``) a configured gate
fails, since "nothing was compared" is not evidence that the candidate answers like production; the
window or the gate is the person's to change. An environment that runs nothing yet has no traffic
by construction: the gates do not apply (as evaluate's no-regression gates without a baseline).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import tracking
from ..config import Spec
from ..data import load_schema
from ..errors import ConfigError
from ..metrics import higher_is_better, score
from .environments import check_environment, current_version

REQUEST_ID = "request_id"
QUANTILES = (0.1, 0.5, 0.9)
# Regression answers agree when within 1 % of production's answer or of the spread of its answers:
# a retrained model never repeats a float exactly, and 1 % is below what a caller acts on.
REGRESSION_TOLERANCE = 0.01


@dataclass
class Distribution:
    """What one model answered over the replayed rows."""

    rows: int
    shares: dict[str, float] = field(default_factory=dict)  # classification: class -> share of answers
    summary: dict[str, float] = field(default_factory=dict)  # regression: mean, p10, p50, p90


@dataclass
class ReplayGate:
    name: str
    kind: str  # "min-agreement" or "no-worse"
    threshold: float | None
    value: float | None
    passed: bool
    reason: str = ""


@dataclass
class Replay:
    env: str
    candidate_version: int
    production_version: int | None
    window: str
    source: str = ""
    rows_logged: int = 0  # production rows of the production version inside the window
    rows_replayed: int = 0  # of them, meeting the contract (after sampling to drift.max_rows)
    sampled: bool = False
    invalid_rows: int = 0
    other_traffic: int = 0
    other_versions: int = 0
    agreement: float | None = None
    disagreements: int = 0
    production: Distribution | None = None
    candidate: Distribution | None = None
    shift: float | None = None
    """Classification: total variation distance of the class shares (0 same, 1 disjoint); regression:
    the candidate's mean answer minus production's."""
    labelled_source: str = ""
    labelled_rows: int = 0
    labelled_seen: int = 0
    """Labelled replayed rows either model was trained on: left out, since a model scores its own training
    rows too well (a version retrained on production's labels has seen most of them)."""
    metric: str = ""
    production_metric: float | None = None
    candidate_metric: float | None = None
    gates: list[ReplayGate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    task: str = "classification"

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failed_gates(self) -> list[ReplayGate]:
        return [gate for gate in self.gates if not gate.passed]

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def replay(
    spec: Spec, version: int | None, env: str | None = None, window: str | None = None, production: int | None = None,
    released: bool = True,
) -> Replay:
    """Send ``env``'s logged traffic of the last ``window`` through ``version`` (None: the newest) and
    compare the answers.

    ``production`` is the version ``env`` runs (default: what its ``release.yaml`` says); ``released``
    False means the caller knows it runs nothing. ``env`` defaults to the last environment.
    """
    from ..monitor.sources import parse_duration

    env = check_environment(spec, env or spec.release.environments[-1])
    label = "--window" if window else "[tool.gitops-ml.release] replay_window"
    window = window or spec.release.replay_window
    parse_duration(window, label)  # a bad window is bad input (exit 2) before anything is read
    client = tracking.connect(spec)
    candidate = tracking.get_version(spec, client, version)
    if production is None and released:
        production = current_version(spec, env)
    result = Replay(env=env, candidate_version=candidate.version, production_version=production, window=window,
                    metric=spec.metric, task=spec.task)
    if production is None:
        result.notes.append(f"{env} runs nothing yet: there is no production traffic to replay, "
                            "so the replay gates do not apply")
        return result
    frame, ids = _logged_rows(spec, result)
    if frame.empty:
        result.notes.append(f"no production traffic of v{production} was logged in {result.source or 'the log'} "
                            f"in the last {window}: nothing was replayed")
    else:
        model = _load(candidate)
        _compare(spec, result, frame, _predict(spec, model, frame))
        _labelled(spec, client, result, model, ids)
    result.gates = gates(spec, result)
    return result


def _load(version: tracking.Version):
    from ..evaluate import load_model  # MLflow's model loading is heavy; imported when a row needs it

    return load_model(version)


def _logged_rows(spec: Spec, result: Replay) -> tuple[pd.DataFrame, set[str]]:
    """The production version's logged production rows inside the window, checked against the contract,
    and the request ids of the rows read (what labels join on)."""
    from ..monitor.sources import check_rows, read_inference_log

    rows = read_inference_log(spec, result.production_version, result.window)
    ids = set(rows.frame[REQUEST_ID].dropna().astype(str)) if REQUEST_ID in rows.frame.columns else set()
    result.source, result.rows_logged, result.sampled = rows.source, rows.rows_read, rows.sampled
    result.other_traffic, result.other_versions = rows.other_traffic, rows.other_versions
    if rows.frame.empty:
        return rows.frame, ids
    rows = check_rows(rows, load_schema(spec), spec.target, labelled=False)
    result.invalid_rows = rows.invalid_rows
    if rows.invalid_rows:
        result.notes.append(f"{rows.invalid_rows} logged rows break the data contract and were not replayed "
                            f"({'; '.join(rows.invalid_checks[:3])})")
    return rows.frame, ids


def _inputs(spec: Spec, frame: pd.DataFrame) -> pd.DataFrame:
    """What the model reads, chosen as drift chooses it (the contract's columns less the target, the id
    column and the log's own)."""
    from ..monitor.drift import model_inputs

    return frame[model_inputs(spec, frame)]


def _predict(spec: Spec, model, frame: pd.DataFrame) -> pd.Series:
    return pd.Series(model.predict(_inputs(spec, frame)), index=frame.index)


def answers(values: pd.Series, task: str) -> pd.Series:
    """Answers in one form for comparing: numbers for regression; for classification, labels as text, with
    1, 1.0 and "1" one label (the log's JSON and a model's numpy ints spell a class differently)."""
    if task == "regression":
        return pd.to_numeric(values, errors="coerce").astype(float)
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all() and np.all(np.mod(numbers.to_numpy(dtype=float), 1) == 0):
        return numbers.astype("int64").astype(str)
    return values.astype(str)


def agreeing(production: pd.Series, candidate: pd.Series, task: str) -> np.ndarray:
    """Per row: does the candidate answer as production did?"""
    if task == "classification":
        return (production == candidate).to_numpy()
    spread = float(np.nanstd(production.to_numpy())) if len(production) > 1 else 0.0
    return np.isclose(candidate.to_numpy(), production.to_numpy(), rtol=REGRESSION_TOLERANCE,
                      atol=REGRESSION_TOLERANCE * spread)


def distribution(values: pd.Series, task: str) -> Distribution:
    if task == "classification":
        shares = values.value_counts(normalize=True).sort_index()
        return Distribution(rows=len(values), shares={str(k): float(v) for k, v in shares.items()})
    numbers = values.to_numpy(dtype=float)
    summary = {"mean": float(np.nanmean(numbers))}
    summary |= {f"p{round(q * 100)}": float(np.nanquantile(numbers, q)) for q in QUANTILES}
    return Distribution(rows=len(values), summary=summary)


def shift(production: Distribution, candidate: Distribution, task: str) -> float:
    """How far the candidate's answers moved: total variation distance of the class shares (half the sum
    of the absolute share changes), or the change of the mean answer."""
    if task == "classification":
        classes = set(production.shares) | set(candidate.shares)
        return 0.5 * sum(abs(candidate.shares.get(c, 0.0) - production.shares.get(c, 0.0)) for c in classes)
    return candidate.summary["mean"] - production.summary["mean"]


def _compare(spec: Spec, result: Replay, frame: pd.DataFrame, predicted: pd.Series) -> None:
    served = answers(frame["prediction"], spec.task)
    mine = answers(predicted, spec.task)
    same = agreeing(served, mine, spec.task)
    result.rows_replayed = len(frame)
    result.agreement = float(same.mean())
    result.disagreements = int((~same).sum())
    result.production = distribution(served, spec.task)
    result.candidate = distribution(mine, spec.task)
    result.shift = shift(result.production, result.candidate, spec.task)


def _labelled(spec: Spec, client, result: Replay, model, ids: set[str]) -> None:
    """Both models' primary metric on the replayed rows whose labels came back."""
    frame = _labelled_rows(spec, result, ids)
    if frame is None:
        return
    found = _production_version(spec, client, result)
    if found is None:
        return
    candidate = tracking.get_version(spec, client, result.candidate_version)
    frame = _unseen(spec, client, result, frame, [candidate, found])
    if frame.empty:
        return
    production = _load(found)
    x, y = _inputs(spec, frame), frame[spec.target]
    theirs, mine = score(production, x, y, spec.task), score(model, x, y, spec.task)
    if spec.metric not in theirs or spec.metric not in mine:
        result.notes.append(f"{spec.metric} cannot be computed on the {len(frame)} labelled rows (one class only?)")
        return
    result.production_metric, result.candidate_metric = theirs[spec.metric], mine[spec.metric]


def returned_labels(spec: Spec, notes: list[str]):
    """The labels that came back (``[tool.gitops-ml.drift] feedback``, as ``gitops-ml feedback join`` writes
    them), read, when they can be matched with logged rows by request id; else None, with the reason added
    to ``notes``. Replay and the canary status both judge quality on them."""
    from ..monitor.sources import read_file

    if not spec.drift.feedback:
        notes.append("no labels configured ([tool.gitops-ml.drift] feedback): quality not compared")
        return None
    location = spec.resolve(spec.drift.feedback)
    if "://" not in location and not Path(location).is_file():
        notes.append(f"no labels have come back yet ({spec.display(location)} does not exist): quality not compared")
        return None
    rows = read_file(spec, location, None)
    if REQUEST_ID not in rows.frame.columns:
        notes.append(f"{spec.display(location)} has no {REQUEST_ID} column: its labels cannot be matched "
                     "with logged rows (write it with `gitops-ml feedback join`)")
        return None
    return rows


def _labelled_rows(spec: Spec, result: Replay, ids: set[str]) -> pd.DataFrame | None:
    from ..monitor.sources import check_rows

    if spec.drift.feedback:
        result.labelled_source = spec.resolve(spec.drift.feedback)
    rows = returned_labels(spec, result.notes)
    if rows is None:
        return None
    rows.frame = rows.frame[rows.frame[REQUEST_ID].astype(str).isin(ids)].reset_index(drop=True)
    rows = check_rows(rows, load_schema(spec), spec.target, labelled=True)
    result.labelled_rows = rows.rows_used
    if rows.frame.empty:
        result.notes.append(f"no replayed row has a label in {spec.display(result.labelled_source)} yet: "
                            "quality not compared")
        return None
    return rows.frame


def _row_keys(spec: Spec, frame: pd.DataFrame) -> pd.Series:
    """One text key per row over the contract's columns, numbers as floats and every missing value alike
    (None in a Parquet file, NaN once a CSV is read back), so that a row read from the training artifact
    and the same row read from the feedback file give the same key."""
    columns = [c for c in load_schema(spec).columns if c in frame.columns]
    parts = frame[columns].copy()
    for column in columns:
        values = parts[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            values = values.astype(float)
        parts[column] = values.astype(object).where(values.notna(), "\x00").astype(str)
    return parts.agg("\x1f".join, axis=1)


def _unseen(spec: Spec, client, result: Replay, frame: pd.DataFrame, versions: list) -> pd.DataFrame:
    """The labelled rows neither model was trained on (per the training rows logged with each run)."""
    from ..train import TRAIN_ARTIFACT

    seen: set[str] = set()
    for version in versions:
        # An unreadable artifact store fails the replay (ArtifactStoreError, named); a run that never
        # logged its training rows only loses the filter, said in the notes.
        found = tracking.download_artifact(client, version.run_id, TRAIN_ARTIFACT)
        if found is None:
            result.notes.append(f"v{version.version} logged no training rows: labelled rows it may have been "
                                "trained on are kept")
            continue
        seen |= set(_row_keys(spec, pd.read_parquet(found)))
    keep = ~_row_keys(spec, frame).isin(seen)
    result.labelled_seen = int((~keep).sum())
    result.labelled_rows = int(keep.sum())
    if result.labelled_seen:
        result.notes.append(f"{result.labelled_seen} labelled replayed rows were left out of the quality "
                            "comparison: one of the two models was trained on them")
    if not result.labelled_rows:
        result.notes.append("every labelled replayed row was a training row of one of the models: quality "
                            "not compared")
    return frame[keep.to_numpy()].reset_index(drop=True)


def _production_version(spec: Spec, client, result: Replay):
    try:
        return tracking.get_version(spec, client, result.production_version)
    except ConfigError as missing:  # a registry that lacks it (a fork's embedded store): say so, compare nothing
        result.notes.append(f"v{result.production_version} cannot be loaded from this registry ({missing}): "
                            "quality not compared")
        return None


def gates(spec: Spec, result: Replay) -> list[ReplayGate]:
    """The configured replay gates; each fails when the data it needs is missing (see the module)."""
    found = []
    minimum = spec.release.replay_min_agreement
    if minimum is not None:
        value = result.agreement
        reason = "" if value is not None else f"no logged traffic of v{result.production_version} to replay"
        found.append(ReplayGate(f"agreement >= {minimum:.2%}", "min-agreement", minimum, value,
                                value is not None and value >= minimum, reason))
    if spec.release.replay_no_worse:
        found.append(_no_worse(spec, result))
    return found


def _no_worse(spec: Spec, result: Replay) -> ReplayGate:
    name = f"{spec.metric} on labelled replayed rows no worse than v{result.production_version}"
    theirs, mine = result.production_metric, result.candidate_metric
    if theirs is None or mine is None:
        reason = "no labelled replayed rows to compare on" if not result.labelled_rows else \
            f"{spec.metric} not computed on the labelled rows"
        return ReplayGate(name, "no-worse", theirs, mine, False, reason)
    passed = mine >= theirs if higher_is_better(spec.metric) else mine <= theirs
    return ReplayGate(name, "no-worse", theirs, mine, passed)


def refusal(result: Replay) -> str:
    """Why the failed replay gates refuse the promotion, in one sentence."""
    parts = [f"{gate.name}: {outcome(gate)}" for gate in result.failed_gates]
    return f"the replay of {result.env}'s traffic (last {result.window}) failed: " + "; ".join(parts)


def outcome(gate: ReplayGate) -> str:
    """A failed gate's numbers, or why it had none."""
    if gate.reason:
        return gate.reason
    return f"{gate.value:.4f} against {gate.threshold:.4f}"
