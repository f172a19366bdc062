"""Replay: production's logged traffic sent through a candidate before it is promoted to production.

A copy of the trained project: v1 runs in staging and production, v2 is retrained with the same factory
(the same model: it must agree 100 %), v3 with class weights balanced (it predicts churn more often:
the shift must show). The log is written by the service's own ``LogWriter`` with request ids and
traffic marks; labels come back through ``feedback join``, as in a generated repository.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gitops_ml import cards, release
from gitops_ml.config import load_spec
from gitops_ml.example import drifted_batch
from gitops_ml.monitor import feedback

from .conftest import copy_project
from .test_feedback import log_traffic
from .test_release import cli, snapshot

ROWS = 400
LABELLED = 300
CANDIDATE_MODULE = "replay_balanced_model"
BALANCED = '''\
from gitops_ml.example.model import build_model as example


def build_model():
    """The example's pipeline with balanced class weights: churn predicted more often, on purpose."""
    model = example()
    model.set_params(classifier__class_weight="balanced")
    return model
'''


def set_release(root: Path, text: str) -> None:
    """Add fields to [tool.gitops-ml.release] (the scratch project has no such section yet)."""
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f"\n[tool.gitops-ml.release]\n{text}\n")


def train_version(root: Path, factory: str | None = None) -> int:
    from gitops_ml.evaluate import evaluate
    from gitops_ml.train import train

    pyproject = root / "pyproject.toml"
    original = pyproject.read_text()
    if factory:
        pyproject.write_text(original.replace("gitops_ml.example.model:build_model", factory))
    try:
        spec = load_spec(root)
        version = train(spec).version
        evaluate(spec, version)
        cards.write_card(spec, version)
    finally:
        pyproject.write_text(original)
    return version


@pytest.fixture(scope="module")
def released(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 in staging and production with 400 logged production requests, 300 of them labelled; v2 the same
    model retrained, v3 a deliberately different one (about 15 s)."""
    root = copy_project(trained_project, tmp_path_factory.mktemp("replay") / "project")
    (root / f"{CANDIDATE_MODULE}.py").write_text(BALANCED)
    assert train_version(root) == 2
    assert train_version(root, f"{CANDIDATE_MODULE}:build_model") == 3
    spec = load_spec(root)
    release.promote(spec, 1, "staging")
    release.promote(spec, 1, "production", allow_unfilled=True)
    batch = drifted_batch(ROWS, "none", seed=41)
    ids = log_traffic(root, batch, "prod")
    log_traffic(root, batch.head(30), "smoke", traffic="smoke")  # a smoke test's rows: never replayed
    log_traffic(root, batch.head(20), "old", version=7)  # another version's answers: never replayed
    labels = batch[["churned"]].assign(request_id=ids).head(LABELLED)
    labels.to_csv(root / "labels.csv", index=False)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.gitops-ml.drift]\nfeedback = "data/feedback.csv"\n')
    assert feedback.join(load_spec(root), str(root / "labels.csv")).matched == LABELLED
    return root


@pytest.fixture
def work(released: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(released, tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def test_a_candidate_identical_to_production_agrees_on_every_request(work: Path) -> None:
    code, out, result = cli(work, "replay", "2", "--env", "production", "--json")
    assert code == 0, out
    assert (result["production_version"], result["candidate_version"]) == (1, 2)
    assert result["rows_logged"] == result["rows_replayed"] == ROWS
    assert (result["other_traffic"], result["other_versions"]) == (30, 20)
    assert result["agreement"] == 1.0 and result["disagreements"] == 0 and result["shift"] == 0.0
    assert result["production"]["shares"] == result["candidate"]["shares"]
    assert sum(result["production"]["shares"].values()) == pytest.approx(1.0)
    assert result["labelled_rows"] == LABELLED and result["metric"] == "roc_auc"
    assert result["candidate_metric"] == result["production_metric"] > 0.5
    assert result["gates"] == [] and result["passed"]


def test_a_deliberately_different_candidate_shows_the_shift(work: Path) -> None:
    code, out, result = cli(work, "replay", "3", "--json")  # --env defaults to the last environment
    assert code == 0, out
    assert result["env"] == "production" and result["rows_replayed"] == ROWS
    assert 0.5 < result["agreement"] < 1.0
    assert result["disagreements"] == round((1 - result["agreement"]) * ROWS)
    served, replayed = result["production"]["shares"], result["candidate"]["shares"]
    assert replayed["1"] > served["1"]  # balanced class weights: churn predicted more often
    assert result["shift"] == pytest.approx(replayed["1"] - served["1"]) and result["shift"] > 0.02
    assert result["candidate_metric"] != result["production_metric"]
    code, out, _ = cli(work, "replay", "3")
    assert code == 0, out
    assert "### Replay of production traffic" in out and f"{ROWS} production requests" in out
    assert f"{result['agreement']:.2%} agreement" in out and "| class 1 |" in out


def test_a_failed_replay_gate_refuses_the_production_promotion_and_writes_nothing(work: Path) -> None:
    set_release(work, "replay_min_agreement = 0.99")
    assert cli(work, "promote", "3", "--to", "staging")[0] == 0  # staging takes it: the gate is production's
    manifest = work / "environments" / "production" / "release.yaml"
    before = manifest.read_text()
    state = sorted(p.name for p in (work / ".gitops-ml" / "promotion").iterdir())
    code, out, _ = cli(work, "promote", "3", "--to", "production", "--allow-unfilled")
    assert code == 1
    assert "cannot promote v3 to production" in out and "agreement >= 99.00%" in out
    assert manifest.read_text() == before and "version: 1" in before
    assert sorted(p.name for p in (work / ".gitops-ml" / "promotion").iterdir()) == state
    code, out, result = cli(work, "replay", "3", "--json")
    assert code == 1 and not result["passed"] and result["gates"][0]["kind"] == "min-agreement"

    # the identical retrain passes the same gate, and its pull request shows the comparison
    assert cli(work, "promote", "2", "--to", "staging")[0] == 0
    code, out, promoted = cli(work, "promote", "2", "--to", "production", "--allow-unfilled", "--json")
    assert code == 0, out
    body = Path(promoted["body_file"]).read_text()
    assert "### Replay of production traffic" in body and "**100.00% agreement**" in body
    assert "| agreement >= 99.00% | 1.0000 | 0.9900 | pass |" in body
    assert promoted["replay"]["agreement"] == 1.0 and "version: 2" in manifest.read_text()


def test_a_refused_production_branch_leaves_git_as_it_was(work: Path, tmp_path: Path) -> None:
    from .test_release import init_repository

    set_release(work, "replay_min_agreement = 0.99")
    init_repository(work, tmp_path / "remote.git")
    before = snapshot(work)
    code, out, _ = cli(work, "promote", "3", "--to", "production", "--branch", "--allow-unfilled")
    assert code == 1 and "agreement >= 99.00%" in out
    assert snapshot(work) == before


def test_no_traffic_is_said_and_fails_a_gate_that_needs_it(work: Path) -> None:
    import shutil

    shutil.rmtree(work / "logs" / "inference")
    code, out, result = cli(work, "replay", "2", "--json")
    assert code == 0, out  # no gate configured: reported, not refused
    assert result["rows_replayed"] == 0 and result["agreement"] is None
    assert any("no production traffic of v1 was logged" in n for n in result["notes"])
    set_release(work, "replay_min_agreement = 0.5\nreplay_no_worse = true")
    code, out, result = cli(work, "replay", "2", "--json")
    assert code == 1
    assert [(g["kind"], g["passed"]) for g in result["gates"]] == [("min-agreement", False), ("no-worse", False)]
    assert "no logged traffic of v1 to replay" in out and "no labelled replayed rows" in out


def test_no_worse_passes_on_equal_quality_and_fails_without_labels(work: Path) -> None:
    set_release(work, "replay_no_worse = true")
    code, out, result = cli(work, "replay", "2", "--json")
    assert code == 0, out
    assert result["gates"][0]["passed"] and result["gates"][0]["value"] == result["gates"][0]["threshold"]
    (work / "data" / "feedback.csv").unlink()
    code, out, result = cli(work, "replay", "2", "--json")
    assert code == 1 and result["labelled_rows"] == 0
    assert any("no labels have come back yet" in n for n in result["notes"])


def test_labelled_rows_a_model_was_trained_on_are_left_out_of_the_quality_comparison(work: Path) -> None:
    from gitops_ml import tracking
    from gitops_ml.train import TRAIN_ARTIFACT

    spec = load_spec(work)
    client = tracking.connect(spec)
    trained = pd.read_parquet(client.download_artifacts(tracking.get_version(spec, client, 2).run_id,
                                                        TRAIN_ARTIFACT)).head(50)
    ids = log_traffic(work, trained, "seen")  # production was asked about rows the models learnt from
    trained[["churned"]].assign(request_id=ids).to_csv(work / "seen-labels.csv", index=False)
    assert feedback.join(spec, str(work / "seen-labels.csv")).matched == 50  # the feedback file: only these
    code, out, result = cli(work, "replay", "2", "--json")
    assert code == 0, out
    assert result["rows_replayed"] == ROWS + 50 and (result["labelled_seen"], result["labelled_rows"]) == (50, 0)
    assert result["candidate_metric"] is None
    assert any("50 labelled replayed rows were left out" in n for n in result["notes"])


def test_an_environment_that_runs_nothing_has_nothing_to_replay(trained_project: Path, tmp_path: Path) -> None:
    root = copy_project(trained_project, tmp_path / "project")
    set_release(root, "replay_min_agreement = 0.99")
    code, out, result = cli(root, "replay", "1", "--json")
    assert code == 0, out
    assert result["production_version"] is None and result["gates"] == []
    assert "production runs nothing yet" in result["notes"][0]


@pytest.mark.parametrize(
    ("args", "setting", "named"),
    [
        (("--window", "7x"), "", "--window '7x'"),
        (("--window", "0d"), "", "--window '0d'"),
        ((), 'replay_window = "soon"', "field 'release.replay_window'"),
        ((), "replay_min_agreement = 1.5", "field 'release.replay_min_agreement'"),
        ((), 'replay_no_worse = "yes"', "field 'release.replay_no_worse'"),
        (("--env", "qa"), "", "unknown environment 'qa'"),
    ],
)
def test_bad_input_exits_2_naming_it(work: Path, args: tuple, setting: str, named: str) -> None:
    if setting:
        set_release(work, setting)
    code, out, _ = cli(work, "replay", "2", *args)
    assert code == 2 and named in out, out


def test_an_unknown_version_exits_2(work: Path) -> None:
    code, out, _ = cli(work, "replay", "9")
    assert code == 2 and "no version 9" in out


def test_regression_answers_agree_within_the_tolerance() -> None:
    from gitops_ml.release.replay import agreeing, answers, distribution, shift

    served = answers(pd.Series([10.0, 20.0, 30.0, 40.0]), "regression")
    nudged = answers(pd.Series([10.01, 20.0, 36.0, 40.0]), "regression")
    assert agreeing(served, nudged, "regression").tolist() == [True, True, False, True]
    before, after = distribution(served, "regression"), distribution(nudged, "regression")
    assert set(before.summary) == {"mean", "p10", "p50", "p90"}
    assert shift(before, after, "regression") == pytest.approx(1.5025)
    # one class spelt three ways by a JSON log and a model
    assert answers(pd.Series([1, 0.0, "1"]), "classification").tolist() == ["1", "0", "1"]
