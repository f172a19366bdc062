"""A seeded generator of the bundled customer-churn example and of drifted batches of it.

The bundled CSV is ``make_churn(8000, seed=0)``. ``drifted_batch`` draws new
customers from the same process with covariate shift (and, when severe, a change
in how churn depends on the features), so monitoring can be tested end to end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CONTRACTS = ["month-to-month", "one-year", "two-year"]
INTERNET = ["dsl", "fiber", "none"]
PAYMENTS = ["card", "bank-transfer", "electronic-check", "mailed-check"]
REGIONS = ["north", "south", "east", "west"]
TARGET = "churned"
TIME_COLUMN = "snapshot_date"


@dataclass(frozen=True)
class Shift:
    """How far a batch departs from the training distribution."""

    charges: float = 0.0  # added to monthly charges, in currency units
    support_rate: float = 1.0  # multiplies the rate of support calls
    month_to_month: float = 0.0  # extra probability mass moved to month-to-month contracts
    fiber: float = 0.0  # extra probability mass moved to fiber internet
    tenure_scale: float = 1.0  # multiplies tenure (newer customers when below 1)
    age: float = 0.0  # added to the mean age, in years
    electronic_check: float = 0.0  # extra probability mass moved to electronic-check payments
    concept: float = 0.0  # 0 keeps the churn mechanism; 1 reverses the effect of tenure and contract


SEVERITIES: dict[str, Shift] = {
    "none": Shift(),
    "moderate": Shift(charges=14.0, support_rate=1.7, month_to_month=0.22, fiber=0.2, tenure_scale=0.7),
    "severe": Shift(
        charges=35.0,
        support_rate=3.0,
        month_to_month=0.45,
        fiber=0.4,
        tenure_scale=0.4,
        age=-12.0,
        electronic_check=0.4,
        concept=1.0,
    ),
}


def _mix(base: list[float], extra: float, index: int) -> np.ndarray:
    """Move ``extra`` probability mass to category ``index``, keeping a distribution."""
    p = np.asarray(base, dtype=float) * (1.0 - extra)
    p[index] += extra
    return p / p.sum()


def make_churn(n: int = 8000, seed: int = 0, shift: Shift | str = "none", start: str = "2025-01-01") -> pd.DataFrame:
    """Draw ``n`` customers of a subscription business, with a churn label.

    Missing values are part of the design: ``total_charges`` is missing for new
    customers' unbilled months, ``age`` and ``region`` for customers who did not say.
    """
    if isinstance(shift, str):
        shift = SEVERITIES[shift]
    rng = np.random.default_rng(seed)
    contract = rng.choice(CONTRACTS, size=n, p=_mix([0.5, 0.28, 0.22], shift.month_to_month, 0))
    internet = rng.choice(INTERNET, size=n, p=_mix([0.38, 0.44, 0.18], shift.fiber, 1))
    payment = rng.choice(PAYMENTS, size=n, p=_mix([0.26, 0.24, 0.34, 0.16], shift.electronic_check, 2))
    region = rng.choice(REGIONS, size=n, p=[0.3, 0.25, 0.25, 0.2]).astype(object)
    paperless = rng.choice(["yes", "no"], size=n, p=[0.6, 0.4])
    tenure_cap = {"month-to-month": 30, "one-year": 50, "two-year": 72}
    tenure = np.array([rng.integers(0, tenure_cap[c] + 1) for c in contract]) * shift.tenure_scale
    tenure = np.clip(np.round(tenure), 0, 72).astype(int)
    base_charge = np.select([internet == "fiber", internet == "dsl"], [80.0, 55.0], 25.0)
    monthly = np.clip(base_charge + rng.normal(shift.charges, 12.0, n), 18.0, 150.0).round(2)
    total = (monthly * tenure * rng.uniform(0.95, 1.05, n)).round(2)
    support = rng.poisson(1.2 * shift.support_rate * np.where(internet == "fiber", 1.5, 1.0))
    support = np.clip(support, 0, 20)
    age = np.clip(rng.normal(45 + shift.age, 14, n), 18, 90).round().astype(float)

    sign = 1.0 - 2.0 * shift.concept  # +1 keeps the mechanism, -1 reverses it
    logit = (
        -1.3
        + sign * 1.3 * (contract == "month-to-month")
        - sign * 0.9 * (contract == "two-year")
        - sign * 0.045 * tenure
        + 0.025 * (monthly - 70.0)
        + 0.3 * support
        + 0.5 * (internet == "fiber")
        + 0.45 * (payment == "electronic-check")
        + 0.9 * ((internet == "fiber") & (support >= 3))
        - 0.012 * (age - 45.0)
    )
    churned = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)

    total[tenure == 0] = np.nan
    age[rng.uniform(size=n) < 0.04] = np.nan
    region[rng.uniform(size=n) < 0.05] = None
    dates = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    frame = pd.DataFrame(
        {
            TIME_COLUMN: dates.strftime("%Y-%m-%d"),
            "age": age,
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support.astype(int),
            "contract": contract,
            "internet_service": internet,
            "payment_method": payment,
            "paperless_billing": paperless,
            "region": region,
            TARGET: churned,
        }
    )
    return frame.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)


def drifted_batch(n: int, severity: str = "moderate", seed: int = 1) -> pd.DataFrame:
    """A batch of ``n`` recent customers at a named severity: ``none``, ``moderate`` or ``severe``.

    Dates follow the bundled data's year, as production traffic would.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}: choose one of {', '.join(SEVERITIES)}")
    return make_churn(n, seed=seed, shift=SEVERITIES[severity], start="2026-01-01")
