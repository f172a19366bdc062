"""``retrain``: act on a ``retrain`` decision. Train with the labelled recent rows, gate, open the promotion.

Nothing is released here: the outcome is a promotion to the first environment (staging by default)
written as a pull request's manifest, title and body, or an ``escalate`` with the reason and an issue body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from .. import cards, github, release, tracking
from ..config import Spec
from ..data import load_schema
from ..errors import CheckFailed
from ..evaluate import Evaluation, evaluate, load_model
from ..metrics import higher_is_better, score
from ..train import train
from . import outputs
from .drift import DriftResult, drift, model_inputs
from .sources import parse_duration

RETRAIN_JSON = "retrain.json"
PROMOTION_TITLE, PROMOTION_EXTRA = "promotion-title.txt", "promotion-extra.md"
# trained: the version passed, and the promotion is left to the caller (the Drift workflow, which
# builds and pushes the image first, then promotes with its digest).
Outcome = Literal["promoted", "trained", "escalate", "skipped"]


@dataclass
class RecentComparison:
    """Old and new model on labelled recent rows that neither trained on."""

    metric: str
    rows: int
    old: float
    new: float
    tolerance: float

    @property
    def passed(self) -> bool:
        if higher_is_better(self.metric):
            return self.new >= self.old - self.tolerance
        return self.new <= self.old + self.tolerance

    def as_dict(self) -> dict:
        return {"metric": self.metric, "rows": self.rows, "old": self.old, "new": self.new,
                "tolerance": self.tolerance, "passed": self.passed}


@dataclass
class RetrainResult:
    outcome: Outcome
    reasons: list[str]
    env: str
    drift: DriftResult
    recent_rows: int = 0
    new_version: int | None = None
    evaluation: Evaluation | None = None
    recent: RecentComparison | None = None
    card: Path | None = None
    promotion: release.Promotion | None = None
    title_file: Path | None = None
    body_file: Path | None = None
    files: dict = field(default_factory=dict)
    promote_env: str | None = None  # outcome trained: the environment the caller promotes to

    def as_dict(self) -> dict:
        return {
            "outcome": self.outcome, "reasons": self.reasons, "env": self.env,
            "decision": self.drift.decision, "drifted_features": len(self.drift.drifted),
            "base_version": self.drift.model_version, "new_version": self.new_version,
            "recent_rows_trained": self.recent_rows,
            "evaluation": self.evaluation.as_dict() if self.evaluation else None,
            "recent": self.recent.as_dict() if self.recent else None,
            "card": str(self.card) if self.card else None,
            "promotion": self.promotion.as_dict() if self.promotion else None,
            "title_file": str(self.title_file) if self.title_file else None,
            "body_file": str(self.body_file) if self.body_file else None,
            "promote_env": self.promote_env,
            "drift": self.drift.as_dict(),
        }


def recent_rows(spec: Spec, found: DriftResult) -> pd.DataFrame:
    """The labelled recent rows to learn from, in the training data's columns, inside ``retrain_window``.

    The window counts back from the newest labelled row, not from now: labels arrive late, and
    business dates in the data are what tells old from new.
    """
    if found.labelled is None:
        return pd.DataFrame()
    columns = list(load_schema(spec).columns)
    frame = found.labelled.frame[columns]
    if spec.drift.retrain_window and spec.time_column:
        stamps = pd.to_datetime(frame[spec.time_column], utc=True, errors="coerce")
        frame = frame[stamps >= stamps.max() - parse_duration(spec.drift.retrain_window, "drift.retrain_window")]
    return frame.reset_index(drop=True)


def holdout(spec: Spec, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded split of the recent rows: most to train on, the rest to compare old and new models."""
    if spec.drift.retrain_holdout == 0:
        return frame, frame.iloc[0:0]
    held = frame.sample(frac=spec.drift.retrain_holdout, random_state=spec.seed)
    return frame.drop(index=held.index), held


def compare_on_recent(spec: Spec, base: tracking.Version, new: tracking.Version,
                      held: pd.DataFrame) -> RecentComparison | None:
    if len(held) < 2 or held[spec.target].nunique() < 2:
        return None
    x, y = held[model_inputs(spec, held)], held[spec.target]
    old = score(load_model(base), x, y, spec.task).get(spec.metric, float("nan"))
    fresh = score(load_model(new), x, y, spec.task).get(spec.metric, float("nan"))
    return RecentComparison(spec.metric, len(held), old, fresh, spec.gates.max_regression)


def retrain(spec: Spec, env: str, current: str | None = None, window: str | None = None,
            output_dir: Path | None = None, branch: bool = False, promote: bool = True) -> RetrainResult:
    """Measure drift for ``env``; on ``retrain``, train with the recent labelled rows and promote to the
    first environment. With ``promote`` False a version that passes is left for the caller to promote
    (outcome ``trained``): the pull request's title and the body's retraining part are written to files."""
    found = drift(spec, env, current, window, output_dir)
    result = RetrainResult(outcome="skipped", reasons=[], env=found.env, drift=found)
    folder = found.files.directory if found.files else outputs.default_dir(spec)
    if found.decision in ("none", "insufficient_data"):
        result.reasons = [f"drift decision is {found.decision}: nothing to retrain"]
        return _finish(spec, result, folder)
    if found.decision == "escalate":
        result.outcome = "escalate"
        result.reasons = [r.message for r in found.reasons if r.grade == "escalate"]
        result.title_file, result.body_file = found.files.title_file, found.files.body_file
        return _finish(spec, result, folder)

    recent = recent_rows(spec, found)
    if len(recent) < spec.drift.min_rows:
        source = spec.drift.feedback or "no feedback source configured ([tool.gitops-ml.drift] feedback)"
        return _escalate(spec, result, folder, [
            f"no labelled recent data to learn from: {len(recent)} rows ({source}), "
            f"at least {spec.drift.min_rows} (drift.min_rows) needed"])
    learn, held = holdout(spec, recent)
    result.recent_rows = len(learn)
    trained = train(spec, extra=learn, tags={"retrained_from": f"{found.env} v{found.model_version}",
                                             "trigger": "drift"})
    result.new_version = trained.version
    result.evaluation = evaluate(spec, trained.version, against=found.env)
    client = tracking.connect(spec)
    base, new = (tracking.get_version(spec, client, v) for v in (found.model_version, trained.version))
    result.recent = compare_on_recent(spec, base, new, held)
    result.card = cards.write_card(spec, trained.version).path

    failures = [f"gate failed: {g.name} (value {g.value:.4f}, threshold {g.threshold:.4f})"
                for g in result.evaluation.gates if not g.passed]
    if result.recent and not result.recent.passed:
        r = result.recent
        failures.append(f"on {r.rows} held-back recent rows v{trained.version} scores {r.metric} {r.new:.4f}, "
                        f"worse than v{found.model_version}'s {r.old:.4f} by more than {r.tolerance}")
    if failures:
        return _escalate(spec, result, folder, failures)
    first = spec.release.environments[0]  # retraining always starts at the first environment
    if not promote:
        return _trained(spec, result, folder, first)
    try:
        result.promotion = release.promote(
            spec, trained.version, first, branch=branch,
            title=promotion_title(spec, result),
            extra_body=promotion_extra(spec, result))
    except CheckFailed as refused:
        return _escalate(spec, result, folder, [f"promotion refused: {refused}"])
    result.outcome = "promoted"
    result.reasons = [f"v{trained.version} passes the gates; promotion to {first} written"]
    result.title_file, result.body_file = result.promotion.title_file, result.promotion.body_file
    return _finish(spec, result, folder)


def promotion_title(spec: Spec, result: RetrainResult) -> str:
    return f"Retrain {spec.model_name}: drift in {len(result.drift.drifted)} features"


def _trained(spec: Spec, result: RetrainResult, folder: Path, first: str) -> RetrainResult:
    """The version passed; the caller promotes it to ``first`` once its image is pushed."""
    folder.mkdir(parents=True, exist_ok=True)
    result.outcome, result.promote_env = "trained", first
    result.reasons = [f"v{result.new_version} passes the gates; to be promoted to {first} once its image is pushed"]
    result.title_file, result.body_file = folder / PROMOTION_TITLE, folder / PROMOTION_EXTRA
    result.title_file.write_text(promotion_title(spec, result) + "\n", encoding="utf-8")
    result.body_file.write_text(promotion_extra(spec, result), encoding="utf-8")
    return _finish(spec, result, folder)


def _escalate(spec: Spec, result: RetrainResult, folder: Path, reasons: list[str]) -> RetrainResult:
    """Retraining cannot fix it: say why in an issue's title and body, release nothing."""
    result.outcome, result.reasons = "escalate", reasons
    folder.mkdir(parents=True, exist_ok=True)
    result.title_file, result.body_file = folder / outputs.TITLE, folder / outputs.BODY
    found = result.drift
    result.title_file.write_text(f"{spec.model_name} v{found.model_version} in {found.env}: retraining after "
                                 "drift did not help, back to development\n", encoding="utf-8")
    result.body_file.write_text(escalation_body(spec, result), encoding="utf-8")
    return _finish(spec, result, folder)


def _finish(spec: Spec, result: RetrainResult, folder: Path) -> RetrainResult:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RETRAIN_JSON
    path.write_text(json.dumps(outputs.clean(result.as_dict()), indent=2, default=str) + "\n", encoding="utf-8")
    result.files = {"retrain_json": str(path)}
    return result


def metrics_table(spec: Spec, result: RetrainResult) -> str:
    """Old against new: on the original held-out rows (the gates) and on held-back recent rows."""
    ev, found = result.evaluation, result.drift
    rows = []
    if ev is not None:
        for metric in sorted(ev.metrics):
            rows.append((metric, _fmt(ev.baseline_metrics.get(metric)), _fmt(ev.metrics[metric])))
    parts = [f"### Metrics: {found.env} v{found.model_version} against retrained v{result.new_version}\n",
             "On the held-out rows of the original training data (what the gates judge):\n",
             github.markdown_table(["metric", f"v{found.model_version} ({found.env})",
                                    f"v{result.new_version} (retrained)"], rows)]
    if result.recent:
        r = result.recent
        parts += [f"\nOn {r.rows} labelled recent rows held back from training:\n",
                  github.markdown_table(["metric", f"v{found.model_version}", f"v{result.new_version}"],
                                        [(r.metric, _fmt(r.old), _fmt(r.new))])]
    if ev is not None:
        parts += ["\nGates:\n", github.markdown_table(
            ["gate", "value", "threshold", "outcome"],
            [(g.name, _fmt(g.value), _fmt(g.threshold), "pass" if g.passed else "FAIL") for g in ev.gates])]
    return "\n".join(parts)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def promotion_extra(spec: Spec, result: RetrainResult) -> str:
    found = result.drift
    return (f"Retrained because of drift: v{result.new_version} learnt from the training data of "
            f"v{found.model_version} plus {result.recent_rows} labelled recent rows "
            f"({spec.drift.feedback or found.current.source}).\n\n"
            + outputs.summary_markdown(found, heading="###") + "\n" + metrics_table(spec, result))


def escalation_body(spec: Spec, result: RetrainResult) -> str:
    found = result.drift
    reasons = "".join(f"- {r}\n" for r in result.reasons)
    table = metrics_table(spec, result) if result.evaluation else ""
    return (f"Drift asked for a retrained **{spec.model_name}** (now v{found.model_version} in {found.env}), "
            f"but retraining cannot release one:\n\n{reasons}\nNothing was promoted. The model goes back to "
            "development: look at the drift report and the labelled recent data, then train, evaluate and "
            "promote a new version by pull request.\n\n" + outputs.summary_markdown(found, heading="##")
            + ("\n" + table if table else ""))
