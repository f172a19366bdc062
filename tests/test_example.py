"""The bundled example: big enough, messy enough, learnable, and its drift generator is seeded."""

import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.metrics import roc_auc_score

from gitops_ml.example import data_path, drifted_batch, make_churn
from gitops_ml.example.model import build_model


def test_shipped_file_is_the_seeded_generator_output():
    shipped = pd.read_csv(data_path())
    regenerated = make_churn(8000, seed=0)
    assert shipped.shape == (8000, 12)
    pd.testing.assert_frame_equal(shipped, regenerated, check_dtype=False)


def test_realistic_shape():
    frame = pd.read_csv(data_path())
    assert len(frame) >= 5000
    assert frame.select_dtypes("number").shape[1] >= 5
    assert frame.select_dtypes("object").shape[1] >= 5
    assert frame.isna().any().sum() >= 3
    assert 0.2 < frame["churned"].mean() < 0.45


def test_a_good_model_finds_the_signal_a_trivial_one_does_not():
    frame = pd.read_csv(data_path())
    train, test = frame.iloc[:6000], frame.iloc[6000:]
    x, y = train.drop(columns=["churned"]), train["churned"]
    good = build_model().fit(x, y).predict_proba(test.drop(columns=["churned"]))[:, 1]
    trivial = DummyClassifier(strategy="prior").fit(x, y).predict_proba(test.drop(columns=["churned"]))[:, 1]
    assert roc_auc_score(test["churned"], good) > 0.8
    assert roc_auc_score(test["churned"], trivial) == 0.5


def test_drifted_batches_are_seeded_and_graded():
    assert drifted_batch(500, "moderate", seed=3).equals(drifted_batch(500, "moderate", seed=3))
    base, moderate, severe = (drifted_batch(4000, s, seed=5) for s in ("none", "moderate", "severe"))
    gap = [abs(b["monthly_charges"].mean() - base["monthly_charges"].mean()) for b in (moderate, severe)]
    assert 5 < gap[0] < gap[1]
    assert list(moderate.columns) == list(base.columns)
