"""The graded decision: minor deviation, no action; moderate, retrain; severe, back to development.

Every signal gives a reason with its own grade; the decision is the gravest reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..config import Drift
from ..metrics import higher_is_better
from .measure import Measurement

GRADES = ("none", "retrain", "escalate")
INSUFFICIENT = "insufficient_data"


@dataclass(frozen=True)
class Reason:
    grade: str  # one of GRADES
    signal: str  # "data_drift", "prediction_drift", "quality", "contract", "rows"
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Quality:
    """The primary metric on labelled recent rows against its value at training time."""

    metric: str
    training: float
    current: float
    rows: int
    source: str

    @property
    def loss(self) -> float:
        """Relative loss, positive when worse, whichever way the metric points."""
        if not self.training:
            return 0.0
        change = (self.training - self.current) / abs(self.training)
        return change if higher_is_better(self.metric) else -change

    def as_dict(self) -> dict:
        return {**asdict(self), "loss": self.loss}


def gravest(reasons: list[Reason]) -> str:
    return max((r.grade for r in reasons), key=GRADES.index, default="none")


def data_drift_reason(measured: Measurement, config: Drift) -> Reason:
    count, total, share = len(measured.drifted), len(measured.features), measured.share
    names = ", ".join(f.column for f in measured.drifted) or "none"
    said = f"{count} of {total} features drifted (share {share:.2f}: {names})"
    if share >= config.escalate_drift_share:
        return Reason("escalate", "data_drift", f"{said}, at or above {config.escalate_drift_share}: "
                      "most inputs moved at once; the model's design needs a look")
    if share >= config.retrain_drift_share:
        return Reason("retrain", "data_drift", f"{said}, at or above {config.retrain_drift_share}")
    return Reason("none", "data_drift", f"{said}, below {config.retrain_drift_share}")


def prediction_reason(measured: Measurement) -> Reason | None:
    found = measured.prediction
    if found is None:
        return None
    which = "calibrated threshold" if found.calibrated else "threshold"
    said = f"prediction drift score {found.score:.3f} ({found.method}, {which} {found.threshold:.4g})"
    if found.drifted:
        return Reason("retrain", "prediction_drift", f"{said}: what the model answers has shifted")
    return Reason("none", "prediction_drift", said)


def quality_reason(quality: Quality | None, config: Drift, note: str = "") -> Reason:
    if quality is None:
        return Reason("none", "quality", note or "no labelled recent data: model quality not measured")
    said = (f"{quality.metric} {quality.current:.4f} on {quality.rows} labelled recent rows vs "
            f"{quality.training:.4f} at training ({quality.loss:+.1%} loss)")
    if quality.loss > config.escalate_quality_loss:
        return Reason("escalate", "quality", f"{said}, over {config.escalate_quality_loss:.0%}: "
                      "retraining alone will not fix it")
    if quality.loss >= config.retrain_quality_loss:
        return Reason("retrain", "quality", f"{said}, at or above {config.retrain_quality_loss:.0%}")
    return Reason("none", "quality", f"{said}, below {config.retrain_quality_loss:.0%}")


def contract_reason(invalid_rows: int, invalid_share: float, config: Drift, checks: list[str]) -> Reason | None:
    if not invalid_rows:
        return None
    said = f"{invalid_rows} rows ({invalid_share:.1%}) break the data contract and were left out: " + "; ".join(
        checks[:5])
    if invalid_share > config.max_invalid_share:
        return Reason("escalate", "contract", f"{said}. Over {config.max_invalid_share:.0%}: the contract or "
                      "the data pipeline must change, which retraining cannot do")
    return Reason("none", "contract", said)
