"""``reconcile``, the schedule's re-assertion of every registry alias from git (real git, real MLflow).

An alias moved by hand, or never moved because a deploy failed, is put back where the merged manifest
says; what cannot be put back fails the run, names the environment and why, and moves nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_ml import tracking
from gitops_ml.config import load_spec

from .test_release import alias, cli, git, merge, repo, two_versions  # noqa: F401


def set_alias(root: Path, env: str, version: int) -> None:
    """What someone does in the MLflow UI, outside git."""
    spec = load_spec(root)
    tracking.connect(spec).set_registered_model_alias(spec.model_name, env, str(version))


def release_staging_v1(root: Path) -> None:
    assert cli(root, "promote", "1", "--to", "staging", "--branch")[0] == 0
    merge(root, "promote/staging/v1")


def test_aliases_drifted_from_git_are_put_back_then_left_alone(repo: Path) -> None:  # noqa: F811
    release_staging_v1(repo)  # merged, but its deploy never ran: the alias is not there yet
    set_alias(repo, "production", 2)  # production has no release in git at all
    code, out, result = cli(repo, "reconcile", "--json")
    assert code == 0, out
    assert [(c["env"], c["git_version"], c["alias_before"], c["alias_after"], c["action"])
            for c in result["environments"]] == [("staging", 1, None, 1, "moved"),
                                                 ("production", None, 2, None, "removed")]
    assert alias(repo, "staging") == 1 and alias(repo, "production") is None

    set_alias(repo, "staging", 2)  # moved by hand again
    code, out, _ = cli(repo, "reconcile")
    assert code == 0, out
    assert "v2" in out and "moved" in out and alias(repo, "staging") == 1

    code, out, result = cli(repo, "reconcile", "--json")  # nothing left to do
    assert code == 0 and [c["action"] for c in result["environments"]] == ["in sync", "in sync"]
    assert result["refused"] == 0


def test_an_alias_that_cannot_follow_git_fails_loudly_and_moves_nothing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    release_staging_v1(repo)
    set_alias(repo, "staging", 2)
    set_alias(repo, "production", 2)
    spec = load_spec(repo)
    # The registry no longer holds v1 as passed: git names a version that may not serve.
    tracking.connect(spec).set_model_version_tag(spec.model_name, "1", tracking.TAG_GATES_PASSED, "false")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, result = cli(repo, "reconcile", "--json")
    assert code == 1, out
    staging, production = result["environments"]
    assert staging["action"] == "refused" and "version 1 has failed its gates" in " ".join(staging["reasons"])
    assert alias(repo, "staging") == 2  # refused: left where it was, for a person to look at
    assert production["action"] == "removed" and alias(repo, "production") is None  # the others still follow
    assert "error: aliases not re-asserted from git: staging: registry: version 1 has failed its gates" in out
    assert "::error title=alias staging::" in out
    text = summary.read_text()
    assert "Aliases re-asserted from git: 1 refused" in text and "| staging | v1 | v2 | v2 | refused |" in text


def test_reconcile_acts_only_on_the_default_branch(repo: Path) -> None:  # noqa: F811
    release_staging_v1(repo)
    git(repo, "switch", "--quiet", "-c", "elsewhere")
    set_alias(repo, "staging", 2)
    code, out, result = cli(repo, "reconcile", "--json")
    assert code == 1, out
    assert all(c["action"] == "refused" for c in result["environments"])
    assert "acts on the default branch 'main'" in " ".join(result["environments"][0]["reasons"])
    assert alias(repo, "staging") == 2
