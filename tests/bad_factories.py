"""Model factories a careless project might name in ``model_factory``: each must be refused, exit 1."""

from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC

from gitops_ml.example.model import build_model

NOT_A_FUNCTION = ["age", "tenure_months"]


def returns_text():
    return "HistGradientBoostingClassifier"


def returns_a_regressor():
    return LinearRegression()


def raises():
    raise RuntimeError("the feature store is down")


def without_probabilities():
    """A classifier with no predict_proba: fitted fine, but the task's metrics cannot be computed."""
    return make_pipeline(OneHotEncoder(handle_unknown="ignore"), LinearSVC())


def uses_every_column():
    """The bundled model, whose preprocessing names its feature columns, reused whatever the target."""
    return build_model()
