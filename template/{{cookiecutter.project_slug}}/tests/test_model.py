{%- set classification = cookiecutter.task == "classification" -%}
"""The model factory builds an unfitted pipeline that learns from the sample data."""

from sklearn.base import clone, is_{{ "classifier" if classification else "regressor" }}
{%- if classification %}
from sklearn.metrics import roc_auc_score
{%- else %}
from sklearn.metrics import r2_score
{%- endif %}

from {{ cookiecutter.package_name }}.model import build_model


def test_build_model_returns_a_fresh_unfitted_{{ cookiecutter.task }}_pipeline():
    model = build_model()
    assert is_{{ "classifier" if classification else "regressor" }}(model)
    assert build_model() is not model
    clone(model)  # a scikit-learn estimator: gitops-ml clones and fits it


def test_model_learns_from_the_sample(spec, sample):
    ordered = sample.sort_values(spec.time_column)
    cut = int(len(ordered) * 0.8)
    train, test = ordered.iloc[:cut], ordered.iloc[cut:]
    model = build_model().fit(train.drop(columns=[spec.target]), train[spec.target])
{%- if classification %}
    score = roc_auc_score(test[spec.target], model.predict_proba(test.drop(columns=[spec.target]))[:, 1])
    assert score > 0.75, f"ROC AUC {score:.3f} on held-out rows"
{%- else %}
    score = r2_score(test[spec.target], model.predict(test.drop(columns=[spec.target])))
    assert score > 0.6, f"r2 {score:.3f} on held-out rows"
{%- endif %}


def test_model_tolerates_missing_values_and_unseen_categories(spec, sample):
    rows = sample.head(400)
    model = build_model().fit(rows.drop(columns=[spec.target]), rows[spec.target])
    odd = rows.head(3).drop(columns=[spec.target]).copy()
    odd["age"] = None
    odd["region"] = None
    odd["payment_method"] = "crypto"
    assert len(model.predict(odd)) == 3
