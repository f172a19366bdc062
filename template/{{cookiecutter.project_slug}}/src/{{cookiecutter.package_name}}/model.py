{%- set classification = cookiecutter.task == "classification" -%}
"""The model factory gitops-ml calls: an unfitted scikit-learn Pipeline, preprocessing included.

Preprocessing lives inside the pipeline so the served model takes the same raw rows it was trained on.
"""

from sklearn.compose import ColumnTransformer
{%- if classification %}
from sklearn.ensemble import HistGradientBoostingClassifier
{%- else %}
from sklearn.ensemble import HistGradientBoostingRegressor
{%- endif %}
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

{% if classification -%}
NUMERIC = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
{%- else -%}
NUMERIC = ["age", "tenure_months", "support_calls"]
{%- endif %}
CATEGORICAL = ["contract", "internet_service", "payment_method", "paperless_billing", "region"]


def build_model() -> Pipeline:
    """Impute, one-hot encode, then gradient-boosted trees (they find the interactions)."""
    preprocess = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median", add_indicator=True), NUMERIC),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                CATEGORICAL,
            ),
        ],
        remainder="drop",  # the snapshot date orders the split; it is not a feature
    )
{%- if classification %}
    estimator = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.06, max_depth=4, random_state=0)
    return Pipeline([("preprocess", preprocess), ("classifier", estimator)])
{%- else %}
    estimator = HistGradientBoostingRegressor(max_iter=150, learning_rate=0.06, max_depth=4, random_state=0)
    return Pipeline([("preprocess", preprocess), ("regressor", estimator)])
{%- endif %}
