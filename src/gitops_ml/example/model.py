"""The model factory of the customer-churn example: an unfitted scikit-learn Pipeline."""

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

NUMERIC = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
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
    classifier = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.06, max_depth=4, random_state=0)
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])
