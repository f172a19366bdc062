{%- if cookiecutter.task == "classification" -%}
"""The data contract: what a row of training data, a serving request and monitored traffic look like.

gitops-ml checks the training data, every request to the served model and the inference log
against this pandera model. Change it in a pull request: a contract change is a reviewed change.
"""

import pandera.pandas as pa
from pandera.typing import Series


class ChurnSchema(pa.DataFrameModel):
    """One row per customer at a monthly snapshot; ``churned`` is what the model predicts."""

    snapshot_date: Series[str] = pa.Field(str_matches=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")
    age: Series[float] = pa.Field(ge=18, le=100, nullable=True, description="years; may be withheld")
    tenure_months: Series[int] = pa.Field(ge=0, le=120)
    monthly_charges: Series[float] = pa.Field(ge=0, le=500)
    total_charges: Series[float] = pa.Field(ge=0, nullable=True, description="missing before first bill")
    support_calls: Series[int] = pa.Field(ge=0, le=100)
    contract: Series[str] = pa.Field(isin=["month-to-month", "one-year", "two-year"])
    internet_service: Series[str] = pa.Field(isin=["dsl", "fiber", "none"])
    payment_method: Series[str] = pa.Field(isin=["card", "bank-transfer", "electronic-check", "mailed-check"])
    paperless_billing: Series[str] = pa.Field(isin=["yes", "no"])
    region: Series[str] = pa.Field(isin=["north", "south", "east", "west"], nullable=True)
    churned: Series[int] = pa.Field(isin=[0, 1])

    class Config:
        strict = True  # an unexpected column is a contract change: say so
        coerce = True  # CSV integers may arrive as floats when a column has gaps
{%- else -%}
"""The data contract: what a row of training data, a serving request and monitored traffic look like.

gitops-ml checks the training data, every request to the served model and the inference log
against this pandera model. Change it in a pull request: a contract change is a reviewed change.
"""

import pandera.pandas as pa
from pandera.typing import Series


class ChargesSchema(pa.DataFrameModel):
    """One row per customer at a monthly snapshot; ``monthly_charges`` is what the model predicts.

    Total charges are not part of the contract: they are monthly charges times tenure, so they
    would hand the model the answer.
    """

    snapshot_date: Series[str] = pa.Field(str_matches=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")
    age: Series[float] = pa.Field(ge=18, le=100, nullable=True, description="years; may be withheld")
    tenure_months: Series[int] = pa.Field(ge=0, le=120)
    support_calls: Series[int] = pa.Field(ge=0, le=100)
    contract: Series[str] = pa.Field(isin=["month-to-month", "one-year", "two-year"])
    internet_service: Series[str] = pa.Field(isin=["dsl", "fiber", "none"])
    payment_method: Series[str] = pa.Field(isin=["card", "bank-transfer", "electronic-check", "mailed-check"])
    paperless_billing: Series[str] = pa.Field(isin=["yes", "no"])
    region: Series[str] = pa.Field(isin=["north", "south", "east", "west"], nullable=True)
    monthly_charges: Series[float] = pa.Field(ge=0, le=500, description="the target, in currency units")

    class Config:
        strict = True  # an unexpected column is a contract change: say so
        coerce = True  # CSV integers may arrive as floats when a column has gaps
{%- endif %}
