"""Promotions and deploys that must not half-happen: two real ``gitops-ml promote`` processes at once,
``--branch`` cut from the base whatever is checked out, deploys only of what is merged and verifiable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gitops_ml import release
from gitops_ml.config import load_spec

from .test_release import alias, cli, fill_in_card, git, merge, repo, snapshot, two_versions  # noqa: F401

GITOPS = str(Path(sys.executable).parent / "gitops-ml")


def _start(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [GITOPS, "--project", str(root), *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GITHUB_ACTIONS": ""},
    )


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    out, _ = process.communicate(timeout=180)
    return process.returncode, out


@pytest.mark.parametrize("branch", [False, True], ids=["tree", "branch"])
def test_two_concurrent_promotions_to_one_environment(repo: Path, branch: bool) -> None:  # noqa: F811
    extra = ("--branch",) if branch else ()
    started = time.monotonic()
    first, second = (_start(repo, "promote", str(v), "--to", "staging", *extra) for v in (1, 2))
    results = {1: _finish(first), 2: _finish(second)}
    elapsed = time.monotonic() - started
    won = [v for v, (code, _) in results.items() if code == 0]
    assert len(won) == 1, (results, elapsed)
    winner, loser = won[0], 3 - won[0]
    code, out = results[loser]
    assert code == 1 and "another promotion to staging is running" in out and "nothing was written" in out, out

    manifest = release.read_manifest(load_spec(repo), "staging")
    assert manifest.version == winner and manifest.replaces is None  # replaces what ran: nothing, not the loser
    promotion = repo / ".gitops-ml" / "promotion"
    assert sorted(p.name for p in promotion.iterdir()) == [f"staging-v{winner}.body.md", f"staging-v{winner}.title.txt"]
    body = (promotion / f"staging-v{winner}.body.md").read_text()
    assert f"v{winner} to staging" in body and f"v{loser}" not in body.split("### Metrics")[0]
    if branch:
        assert git(repo, "branch", "--show-current") == f"promote/staging/v{winner}"
        assert not git(repo, "branch", "--list", f"promote/staging/v{loser}")
        assert git(repo, "rev-parse", "HEAD^") == git(repo, "rev-parse", "main")
    assert cli(repo, "verify")[0] == 0


def test_branch_starts_from_the_base_not_the_current_branch(repo: Path) -> None:  # noqa: F811
    assert cli(repo, "promote", "1", "--to", "staging", "--branch")[0] == 0
    assert git(repo, "branch", "--show-current") == "promote/staging/v1"
    code, out, promoted = cli(repo, "promote", "2", "--to", "staging", "--branch", "--json")
    assert code == 0, out
    assert git(repo, "rev-parse", "HEAD^") == git(repo, "rev-parse", "main")  # not promote/staging/v1
    assert promoted["replaces"] is None  # main runs nothing in staging, whatever v1's branch says
    manifest = yaml.safe_load(git(repo, "show", "HEAD:environments/staging/release.yaml"))
    assert (manifest["version"], manifest["replaces"]) == (2, None)
    code, out, _ = cli(repo, "promote", "2", "--to", "production", "--branch", "--base", "nope")
    assert code == 2 and "--base 'nope'" in out


def test_production_refuses_an_unfilled_card_unless_allowed(repo: Path) -> None:  # noqa: F811
    assert cli(repo, "promote", "1", "--to", "staging", "--branch")[0] == 0
    merge(repo, "promote/staging/v1")
    before = snapshot(repo)
    code, out, _ = cli(repo, "promote", "1", "--to", "production")
    assert code == 1 and "model_cards/churn-classifier-v1.md still has 3 'FILL-IN' section(s)" in out, out
    assert "--allow-unfilled" in out and snapshot(repo) == before
    code, out, _ = cli(repo, "promote", "1", "--to", "production", "--allow-unfilled")
    assert code == 0 and "warning: written with --allow-unfilled" in out and "cannot pass `gitops-ml verify`" in out


def test_deploy_acts_only_on_a_merged_verifiable_manifest(repo: Path) -> None:  # noqa: F811
    # uncommitted, on main
    assert cli(repo, "promote", "1", "--to", "staging")[0] == 0
    before = snapshot(repo)
    code, out, _ = cli(repo, "deploy", "staging")
    assert code == 1 and "environments/staging/release.yaml has uncommitted changes" in out, out
    assert snapshot(repo) == before and alias(repo, "staging") is None
    git(repo, "checkout", "--quiet", "--", ".")
    git(repo, "clean", "--quiet", "-fd", "environments")

    # committed on a branch, not merged
    assert cli(repo, "promote", "1", "--to", "staging", "--branch")[0] == 0
    code, out, _ = cli(repo, "deploy", "staging")
    assert code == 1 and "deploy acts on the default branch 'main'" in out and "promote/staging/v1" in out, out
    assert alias(repo, "staging") is None
    merge(repo, "promote/staging/v1")
    assert cli(repo, "deploy", "staging")[0] == 0 and alias(repo, "staging") == 1

    # merged, but the card of production still has FILL-IN: it fails verification, so no deploy
    assert cli(repo, "promote", "1", "--to", "production", "--branch", "--allow-unfilled")[0] == 0
    merge(repo, "promote/production/v1")
    before = snapshot(repo)
    code, out, _ = cli(repo, "deploy", "production")
    assert code == 1 and "still has 3 'FILL-IN' marker(s)" in out, out
    assert snapshot(repo) == before and alias(repo, "production") is None
    fill_in_card(repo, 1)
    git(repo, "commit", "--quiet", "-am", "Complete the model card of v1")
    assert cli(repo, "deploy", "production")[0] == 0 and alias(repo, "production") == 1
