"""Canary releases: the candidate beside the stable version in production, compared on live traffic.

The settings are checked when the spec is read; the promote / complete / abort pull-request branches run
against a real bare remote; the comparison reads a log that two real `bentoml serve` processes wrote,
one per version, and its recommendation flips to abort when the canary answers worse.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_ml import release
from gitops_ml.config import load_spec
from gitops_ml.errors import ConfigError
from gitops_ml.example import drifted_batch
from gitops_ml.monitor import feedback
from gitops_ml.release import canary

from .conftest import copy_project
from .support.serving import predict_batches, serving
from .test_release import cli, fill_in_card, git, merge, push, repo, snapshot, two_versions  # noqa: F401
from .test_replay import set_release, train_version

SKEWED_MODULE = "canary_skewed_model"
# Plain scikit-learn (the bento unpickles it without this module): churn weighted 50 to 1, so this version
# answers "churn" far more often than the stable one, and is wrong far more often on live traffic.
SKEWED = """\
from gitops_ml.example.model import build_model as example


def build_model():
    model = example()
    model.set_params(classifier__class_weight={0: 1, 1: 50})
    return model
"""


# -- settings -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "named"), [
    ('strategy = "blue-green"', "strategy"),
    ("canary_weight = 1.0", "canary_weight"),
    ("canary_weight = 0", "canary_weight"),
    ('canary_window = "soon"', "canary_window"),
    ("canary_min_rows = 0", "canary_min_rows"),
])  # fmt: skip
def test_bad_canary_settings_are_refused_naming_the_field(
    trained_project: Path, tmp_path: Path, text: str, named: str
) -> None:
    root = copy_project(trained_project, tmp_path / "project")
    set_release(root, text)
    with pytest.raises(ConfigError, match=named):
        load_spec(root)


def test_default_strategy_is_direct(trained_project: Path) -> None:
    settings = load_spec(trained_project).release
    assert (settings.strategy, settings.canary_weight) == ("direct", 0.1)


# -- the pull-request branches --------------------------------------------------------------------------
def canary_on_main(repo: Path) -> None:  # noqa: F811
    """v1 released to staging and production, the strategy switched to canary, v2 in staging: all merged."""
    for env, version in (("staging", 1), ("production", 1)):
        code, out, _ = cli(repo, "promote", str(version), "--to", env, "--branch", "--allow-unfilled", "--json")
        assert code == 0, out
        push(repo, f"promote/{env}/v{version}")
        merge(repo, f"promote/{env}/v{version}")
    set_release(repo, 'strategy = "canary"\ncanary_weight = 0.1')
    git(repo, "commit", "--quiet", "-am", "Release production by canary")
    code, out, _ = cli(repo, "promote", "2", "--to", "staging", "--branch", "--json")
    assert code == 0, out
    merge(repo, "promote/staging/v2")


def test_canary_promotion_then_abort_and_complete_branches(repo: Path) -> None:  # noqa: F811
    canary_on_main(repo)
    stable = (repo / "environments/production/release.yaml").read_text()
    fill_in_card(repo, 2)
    code, out, promoted = cli(repo, "promote", "2", "--to", "production", "--branch", "--json")
    assert code == 0, out
    assert promoted["canary"] and promoted["manifest_path"].endswith("environments/production/canary.yaml")
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert "environments/production/canary.yaml" in committed
    assert "environments/production/release.yaml" not in committed
    assert (repo / "environments/production/release.yaml").read_text() == stable  # v1 keeps serving
    push(repo, "promote/production/v2")
    code, out, verified = cli(repo, "verify", "--base", "origin/main", "--json")  # the required check
    assert code == 0, out
    assert [(c["path"], c["version"], c["base_version"]) for c in verified["checks"]] == [
        ("environments/production/canary.yaml", 2, 1)
    ]
    merge(repo, "promote/production/v2")
    assert load_spec(repo) and canary.canary_at(load_spec(repo), "production", "origin/main").version == 2

    # a second canary while one runs is refused, nothing changed
    before = snapshot(repo)
    code, out, _ = cli(repo, "promote", "2", "--to", "production", "--branch", "--allow-unfilled")
    assert code == 1 and "already runs" in out and snapshot(repo) == before

    code, out, aborted = cli(repo, "canary", "abort", "--branch", "--json")
    assert code == 0, out
    assert aborted["branch"] == git(repo, "branch", "--show-current") == "canary/production/v2-abort"
    changed = git(repo, "show", "--name-status", "--format=", "HEAD").splitlines()
    assert changed == ["D\tenvironments/production/canary.yaml"]
    assert "v1 takes all of production's traffic again" in aborted["body"]
    push(repo, aborted["branch"])
    code, out, verified = cli(repo, "verify", "--base", "origin/main", "--json")
    assert code == 0 and [c["change"] for c in verified["checks"]] == ["removal"], out

    git(repo, "switch", "--quiet", "main")
    code, out, completed = cli(repo, "canary", "complete", "--branch", "--json")
    assert code == 0, out
    changed = sorted(git(repo, "show", "--name-status", "--format=", "HEAD").splitlines())
    assert changed == ["D\tenvironments/production/canary.yaml", "M\tenvironments/production/release.yaml"]
    push(repo, completed["branch"])
    code, out, verified = cli(repo, "verify", "--base", "origin/main", "--json")
    assert code == 0, out
    assert sorted((c["path"], c["change"]) for c in verified["checks"]) == [
        ("environments/production/canary.yaml", "removal"),
        ("environments/production/release.yaml", "promotion"),
    ]
    merge(repo, completed["branch"])
    spec = load_spec(repo)
    assert release.read_manifest(spec, "production").version == 2
    assert release.read_manifest(spec, "production").replaces.version == 1
    assert git(repo, "ls-remote", "origin", "canary/production/v2-abort")  # both PR branches are on the remote

    # nothing runs as a canary now: every canary command says so, exit 1, nothing changed
    before = snapshot(repo)
    for args in (("canary", "status"), ("canary", "complete", "--branch"), ("canary", "abort")):
        code, out, _ = cli(repo, *args)
        assert code == 1 and "no canary runs in production" in out, (args, out)
    assert snapshot(repo) == before
    code, out, _ = cli(repo, "canary", "status", "--env", "qa")
    assert code == 2 and "unknown environment 'qa'" in out


def test_first_release_of_production_goes_directly(repo: Path) -> None:  # noqa: F811
    set_release(repo, 'strategy = "canary"')
    git(repo, "commit", "--quiet", "-am", "canary")
    for env in ("staging", "production"):
        code, out, promoted = cli(repo, "promote", "1", "--to", env, "--allow-unfilled", "--json")
        assert code == 0, out
        assert not promoted["canary"]  # nothing to run beside: the first release is the stable one
    assert not (repo / "environments/production/canary.yaml").exists()


# -- served side by side ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def canary_project(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v1 stable in production; v2 the same model retrained; v3 skewed. Offline gates are cleared so that v3
    passes them: catching it on live traffic is what the canary is for."""
    root = copy_project(trained_project, tmp_path_factory.mktemp("canary") / "project")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("thresholds = { roc_auc = 0.75, f1 = 0.5 }", "thresholds = {}"))
    (root / f"{SKEWED_MODULE}.py").write_text(SKEWED)
    assert train_version(root) == 2
    assert train_version(root, f"{SKEWED_MODULE}:build_model") == 3
    set_release(root, 'strategy = "canary"\ncanary_weight = 0.1\ncanary_min_rows = 50\ncanary_window = "1h"')
    pyproject.write_text(pyproject.read_text() + '\n[tool.gitops-ml.drift]\nfeedback = "data/feedback.csv"\n')
    spec = load_spec(root)
    release.promote(spec, 1, "staging")
    release.promote(spec, 1, "production", allow_unfilled=True)
    return root


def send_split(stable_url: str, canary_url: str, seed: int) -> tuple[list[str], list[dict]]:
    """1000 requests, 9 in 10 to stable and 1 in 10 to the canary (the rollout's split, played by the test);
    the request ids and the labels of every row."""
    batch = drifted_batch(1000, "none", seed=seed)
    records = batch.drop(columns=["churned"]).astype(object).where(batch.notna(), None).to_dict("records")
    ids: list[str] = []
    for start in range(0, len(records), 50):
        chunk = records[start : start + 50]
        ids += predict_batches(stable_url, chunk[:45], batch=45) + predict_batches(canary_url, chunk[45:], batch=5)
    order = [i for start in range(0, 1000, 50) for i in range(start, start + 50)]
    labels = [{"request_id": ids[k], "churned": int(batch["churned"].iloc[i])} for k, i in enumerate(order)]
    return ids, labels


def join_labels(root: Path, labels: list[dict]) -> None:
    import pandas as pd

    pd.DataFrame(labels).to_csv(root / "labels.csv", index=False)
    assert feedback.join(load_spec(root), str(root / "labels.csv"), window="1h").matched == len(labels)


@pytest.mark.slow
def test_both_versions_served_tagged_compared_and_a_worse_canary_flips_to_abort(
    canary_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = canary_project
    monkeypatch.chdir(root)
    spec = load_spec(root)
    release.promote(spec, 2, "staging")
    assert release.promote(spec, 2, "production", allow_unfilled=True).canary

    with serving(root, "1", log_name="stable.log") as stable, serving(root, "2", log_name="canary.log") as candidate:
        _, labels = send_split(stable.url, candidate.url, seed=51)
    join_labels(root, labels)
    code, out, good = cli(root, "canary", "status", "--json")
    assert code == 0, out
    assert (good["stable"]["version"], good["canary"]["version"]) == (1, 2)
    assert (good["stable"]["rows"], good["canary"]["rows"]) == (900, 100)  # every row tagged with its version
    assert good["canary_share"] == pytest.approx(0.1)
    assert good["shift"] < 0.1 and good["stable"]["labelled_rows"] == 900 and good["canary"]["labelled_rows"] == 100
    assert good["recommendation"] == "complete", good["reasons"]
    written = json.loads((root / ".gitops-ml/canary-status.json").read_text())
    assert written["recommendation"] == "complete"
    print((root / ".gitops-ml/canary-status.md").read_text())  # the docs quote it

    # the same rollout with a canary that answers worse: v2 aborted, v3 promoted as the canary
    canary.finish(spec, "abort")
    release.promote(spec, 3, "staging")
    assert release.promote(spec, 3, "production", allow_unfilled=True).canary
    with serving(root, "1", log_name="stable.log") as stable, serving(root, "3", log_name="canary.log") as candidate:
        _, more = send_split(stable.url, candidate.url, seed=52)
    join_labels(root, labels + more)
    code, out, bad = cli(root, "canary", "status", "--json")
    assert code == 0, out
    assert (bad["stable"]["version"], bad["canary"]["version"], bad["canary"]["rows"]) == (1, 3, 100)
    assert bad["stable"]["rows"] == 1800  # both rounds of the stable version's traffic
    assert bad["recommendation"] == "abort", bad
    assert any("prediction shift" in r for r in bad["reasons"]) and bad["quality_drop"] > 0.02
    print((root / ".gitops-ml/canary-status.md").read_text())
    body = canary.finish(spec, "abort").body
    assert "recommendation **abort**" in body and "| rows | 1800 | 100 |" in body


# -- the recommendation's rules ------------------------------------------------------------------------------
def judged(trained_project: Path, stable_rows: int, canary_rows: int, shift: float, drop: float | None):
    from gitops_ml.release.canary import CanaryStatus, Track, recommend

    result = CanaryStatus(env="production", window="1d", weight=0.1, stable=Track(1, rows=stable_rows),
                          canary=Track(2, rows=canary_rows), shift=shift, quality_drop=drop,
                          quality_metric="accuracy", quality_noise=0.05)  # fmt: skip
    recommend(load_spec(trained_project), result)
    return result.recommendation, result.reasons


def test_the_recommendation_waits_for_rows_then_judges_shift_and_quality_beyond_noise(trained_project: Path) -> None:
    # defaults: canary_min_rows 100, canary_max_shift 0.1, canary_max_quality_drop 0.02
    said, why = judged(trained_project, 900, 99, shift=0.5, drop=0.5)
    assert said == "wait" and why == ["v2 (canary) has 99 logged rows in the last 1d, fewer than canary_min_rows = 100"]
    assert judged(trained_project, 900, 100, shift=0.1, drop=0.07)[0] == "complete"  # 0.07 = 0.02 + noise 0.05
    said, why = judged(trained_project, 900, 100, shift=0.1001, drop=None)
    assert said == "abort" and why == ["prediction shift 0.1001 is above canary_max_shift = 0.1"]
    said, why = judged(trained_project, 900, 100, shift=0.0, drop=0.0701)
    assert said == "abort" and "accuracy is worse by 0.0701" in why[0]
