"""Promotion by pull request with real git: a bare remote, a clone, branches, merges and reverts.

The registry is the project's embedded MLflow; ``deploy`` builds real bentos. A "merge" is what
GitHub does on the remote: a merge commit of the pull request's branch into main, pushed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gitops_ml import cards, release, tracking
from gitops_ml.cli import main, report
from gitops_ml.config import load_spec
from gitops_ml.errors import CheckFailed, ConfigError

from .conftest import copy_project

GITIGNORE = ".mlflow/\n.bentoml/\n.gitops-ml/\nlogs/\n__pycache__/\n"


# -- git and CLI helpers ----------------------------------------------------------------------
def git(root: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


def cli(root: Path, *args: str) -> tuple[int, str, dict | None]:
    """Run ``gitops-ml --project ROOT args``; exit code, stdout+stderr, parsed JSON when asked for."""
    result = CliRunner().invoke(main, ["--project", str(root), *args], catch_exceptions=False)
    payload = None
    if "--json" in args and result.stdout.strip().startswith("{"):
        payload = json.loads(result.stdout)
    return result.exit_code, result.output, payload


def merge(root: Path, branch: str) -> str:
    """Merge a pull request the way GitHub does: a merge commit on main, pushed; its sha."""
    git(root, "switch", "--quiet", "main")
    git(root, "merge", "--quiet", "--no-ff", "-m", f"Merge {branch}", branch)
    git(root, "push", "--quiet", "origin", "main")
    return git(root, "rev-parse", "HEAD")


def push(root: Path, branch: str) -> None:
    git(root, "push", "--quiet", "-u", "origin", branch)


def snapshot(root: Path) -> tuple:
    """Everything a refused command must leave as it was: tree, branches, HEAD, state files."""
    state = root / ".gitops-ml"
    return (git(root, "status", "--porcelain", "--untracked-files=all"), git(root, "branch", "--list"),
            git(root, "rev-parse", "HEAD"),
            sorted(p.relative_to(root).as_posix() for p in state.rglob("*")) if state.exists() else [],
            tuple((p.as_posix(), p.read_text()) for p in sorted(root.glob("environments/*/release.yaml"))))


def alias(root: Path, env: str) -> int | None:
    spec = load_spec(root)
    return release.alias_version(spec, tracking.connect(spec), env)


def fill_in_card(root: Path, version: int) -> Path:
    """What a person does before production: replace every FILL-IN marker with real text."""
    card = cards.card_path(load_spec(root), version)
    text = card.read_text()
    while cards.UNFILLED_MARKER in text:
        start = text.index("<!-- " + cards.UNFILLED_MARKER)
        end = text.index("-->", start) + 3
        text = text[:start] + "Reviewed by the model owner for the churn-retention campaign." + text[end:]
    card.write_text(text)
    return card


def init_repository(root: Path, remote: Path) -> Path:
    """Turn a project folder into a clone of a fresh bare remote, everything but local stores committed."""
    git(remote.parent, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(root, "init", "--quiet", "-b", "main")
    git(root, "config", "user.name", "Release Tester")
    git(root, "config", "user.email", "release-tester@example.com")
    (root / ".gitignore").write_text(GITIGNORE)
    # Cards arrive with the promotion that releases them, as in a generated repository.
    git(root, "add", ".gitignore", "pyproject.toml", "data")
    for env in ("staging", "production"):
        (root / "environments" / env / ".gitkeep").touch()
    git(root, "add", "environments")
    git(root, "commit", "--quiet", "-m", "project")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "--quiet", "-u", "origin", "main")
    return root


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_versions(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's project plus a second trained, evaluated and carded version (about 8 s)."""
    from gitops_ml.evaluate import evaluate
    from gitops_ml.train import train

    root = copy_project(trained_project, tmp_path_factory.mktemp("two") / "project")
    spec = load_spec(root)
    result = train(spec)
    evaluate(spec, result.version)
    cards.write_card(spec, result.version)
    return root


@pytest.fixture
def repo(two_versions: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone (the project at its top) of a bare remote; v1 and v2 registered, nothing released."""
    root = copy_project(two_versions, tmp_path / "work")
    init_repository(root, tmp_path / "remote.git")
    monkeypatch.chdir(root)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    return root


# -- the loop ---------------------------------------------------------------------------------
def test_promote_verify_merge_deploy_then_production_then_rollback(repo: Path) -> None:
    # staging, v1: a branch with the manifest and the card, verified against main, merged, deployed
    code, out, promoted = cli(repo, "promote", "1", "--to", "staging", "--branch", "--json")
    assert code == 0, out
    assert promoted["branch"] == git(repo, "branch", "--show-current") == "promote/staging/v1"
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert {"environments/staging/release.yaml", "model_cards/churn-classifier-v1.md"} <= set(committed)
    body = Path(promoted["body_file"]).read_text()
    assert "| roc_auc **(primary)** |" in body and "model_cards/churn-classifier-v1.md" in body
    assert Path(promoted["title_file"]).read_text().strip() == "Promote churn-classifier v1 to staging"
    push(repo, "promote/staging/v1")
    code, out, verified = cli(repo, "verify", "--base", "origin/main", "--json")
    assert code == 0, out
    assert [(c["env"], c["change"], c["version"]) for c in verified["checks"]] == [
        ("staging", "promotion", 1)]
    merge(repo, "promote/staging/v1")
    assert alias(repo, "staging") is None  # the merge alone changes nothing in the registry

    code, out, deployed = cli(repo, "deploy", "staging", "--json")
    assert code == 0, out
    assert deployed["version"] == 1 and deployed["alias_changed"] and deployed["previous_version"] is None
    assert alias(repo, "staging") == 1
    image_file = Path(deployed["image_file"])
    assert deployed["bento_tag"].startswith("churn-classifier:v1-")  # no image repository: the bento's tag
    assert json.loads(image_file.read_text())["image"] == deployed["image"] == deployed["bento_tag"]
    written = image_file.stat().st_mtime_ns
    code, out, again = cli(repo, "deploy", "staging", "--json")  # idempotent
    assert code == 0, out
    assert not again["alias_changed"] and again["bento_tag"] == deployed["bento_tag"]
    assert image_file.stat().st_mtime_ns == written and alias(repo, "staging") == 1

    # production takes v1 only with a completed card
    code, out, _ = cli(repo, "promote", "1", "--to", "production", "--branch")
    assert code == 1 and "still has 3 'FILL-IN' section(s)" in out and "--allow-unfilled" in out
    code, out, promoted = cli(repo, "promote", "1", "--to", "production", "--branch", "--allow-unfilled", "--json")
    assert code == 0, out
    assert "cannot pass `gitops-ml verify`" in promoted["warnings"][0]
    assert promoted["card_unfilled"] == 3 and "FILL-IN" in Path(promoted["body_file"]).read_text()
    code, out, verified = cli(repo, "verify", "--json")
    assert code == 1
    assert any("still has 3 'FILL-IN' marker(s)" in r for r in verified["reasons"]), verified
    card = fill_in_card(repo, 1)
    git(repo, "commit", "--quiet", "-am", "Complete the model card of v1")
    code, out, verified = cli(repo, "verify", "--json")
    assert code == 0, out
    assert verified["checks"][0]["env"] == "production"
    assert card.name in git(repo, "ls-files", "model_cards")
    push(repo, "promote/production/v1")
    merge(repo, "promote/production/v1")
    assert cli(repo, "deploy", "production")[0] == 0
    assert alias(repo, "production") == 1 and alias(repo, "staging") == 1

    # staging, v2, with the metrics compared with what staging runs
    code, out, promoted = cli(repo, "promote", "2", "--to", "staging", "--branch", "--json")
    assert code == 0, out
    assert promoted["replaces"] == 1 and promoted["title"].endswith("to staging (replaces v1)")
    assert "| v2 | v1 (staging now) | delta |" in promoted["body"]
    assert cli(repo, "verify")[0] == 0
    push(repo, "promote/staging/v2")
    release_merge = merge(repo, "promote/staging/v2")
    assert cli(repo, "deploy", "staging")[0] == 0
    assert alias(repo, "staging") == 2 and alias(repo, "production") == 1
    code, out, status = cli(repo, "status", "--json")
    assert code == 0, out
    rows = {s["env"]: s for s in status["environments"]}
    staging = rows["staging"]
    assert (staging["version"], staging["alias_version"], staging["in_sync"]) == (2, 2, True)
    assert rows["production"]["version"] == 1 and rows["production"]["in_sync"]
    assert rows["staging"]["since_commit"] == git(repo, "rev-parse", "promote/staging/v2")

    # rollback: revert the release commit on a branch, verify, merge, deploy puts v1 back
    git(repo, "switch", "--quiet", "-c", "rollback/staging")
    git(repo, "revert", "--no-edit", "-m", "1", release_merge)
    code, out, verified = cli(repo, "verify", "--json")
    assert code == 0, out
    assert [(c["change"], c["version"], c["base_version"]) for c in verified["checks"]] == [
        ("rollback", 1, 2)]
    push(repo, "rollback/staging")
    merge(repo, "rollback/staging")
    code, out, deployed = cli(repo, "deploy", "staging", "--json")
    assert code == 0, out
    assert (deployed["previous_version"], deployed["version"]) == (2, 1)
    assert alias(repo, "staging") == 1 and alias(repo, "production") == 1


def test_two_promotions_to_one_environment_never_overwrite_silently(repo: Path) -> None:
    for version in (1, 2):
        git(repo, "switch", "--quiet", "main")
        assert cli(repo, "promote", str(version), "--to", "staging", "--branch")[0] == 0
        push(repo, f"promote/staging/v{version}")
        assert cli(repo, "verify")[0] == 0  # each alone is fine against main as it is now
    merge(repo, "promote/staging/v1")

    git(repo, "switch", "--quiet", "promote/staging/v2")
    code, out, verified = cli(repo, "verify", "--json")
    assert code == 1
    assert any("field 'replaces': says staging runs nothing, but on origin/main it runs v1" in r
               for r in verified["reasons"]), verified
    git(repo, "switch", "--quiet", "main")
    conflict = subprocess.run(["git", "merge", "--no-ff", "promote/staging/v2"], cwd=repo,
                              capture_output=True, text=True, check=False)
    assert conflict.returncode != 0 and "CONFLICT" in conflict.stdout
    git(repo, "merge", "--abort")
    assert release.current_version(load_spec(repo), "staging") == 1


def test_promote_refusals_change_nothing(repo: Path) -> None:
    before = snapshot(repo)
    refusals = [
        (("promote", "99", "--to", "staging"), 1, "has no version 99"),
        (("promote", "1", "--to", "production"), 1, "production takes only what staging runs now"),
        (("promote", "1", "--to", "qa"), 2, "unknown environment 'qa'"),
        (("promote", "1", "--to", "qa", "--branch"), 2, "unknown environment 'qa'"),
        (("deploy", "qa"), 2, "unknown environment 'qa'"),
        (("promote", "2", "--to", "production", "--branch"), 1, "promote v2 to staging first"),
    ]
    for args, code, message in refusals:
        got, out, _ = cli(repo, *args)
        assert (got, message in out) == (code, True), (args, out)
        assert snapshot(repo) == before, args

    card = cards.card_path(load_spec(repo), 2)
    hidden = card.rename(card.with_suffix(".bak"))
    before = snapshot(repo)
    got, out, _ = cli(repo, "promote", "2", "--to", "staging", "--branch")
    assert got == 1 and "v2 has no model card at model_cards/churn-classifier-v2.md" in out
    assert snapshot(repo) == before
    hidden.rename(card)

    assert cli(repo, "promote", "1", "--to", "staging")[0] == 0
    before = snapshot(repo)
    got, out, _ = cli(repo, "promote", "1", "--to", "staging")
    assert got == 1 and "staging already runs v1" in out
    assert snapshot(repo) == before
    git(repo, "branch", "promote/staging/v2")
    before = snapshot(repo)
    got, out, _ = cli(repo, "promote", "2", "--to", "staging", "--branch")
    assert got == 1 and "branch promote/staging/v2 already exists" in out
    assert snapshot(repo) == before


def test_failed_and_unrecorded_gates_are_refused(repo: Path) -> None:
    from gitops_ml.evaluate import evaluate

    pyproject = repo / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace("roc_auc = 0.75", "roc_auc = 0.99"))
    assert not evaluate(load_spec(repo), 2).passed  # records gates_passed=false on v2
    pyproject.write_text(text)
    before = snapshot(repo)
    got, out, _ = cli(repo, "promote", "2", "--to", "staging")
    assert got == 1 and "v2 failed its gates (roc_auc >= 0.99)" in out
    assert snapshot(repo) == before

    spec = load_spec(repo)
    client = tracking.connect(spec)
    client.delete_model_version_tag(spec.model_name, "2", tracking.TAG_GATES_PASSED)  # as before any evaluate
    got, out, _ = cli(repo, "promote", "2", "--to", "staging")
    assert got == 1 and "v2 has no recorded gates: run `gitops-ml evaluate 2` first" in out
    assert snapshot(repo) == before


def test_tampered_manifest_fails_verify_and_deploy(repo: Path) -> None:
    assert cli(repo, "promote", "1", "--to", "staging", "--branch")[0] == 0
    path = repo / "environments" / "staging" / "release.yaml"
    manifest = yaml.safe_load(path.read_text())
    manifest["artifact_sha256"] = "0" * 64
    path.write_text(release.dump_manifest(manifest))
    git(repo, "commit", "--quiet", "-am", "Point staging at another artifact")
    code, out, verified = cli(repo, "verify", "--json")
    assert code == 1
    assert any("field 'artifact_sha256': manifest says 0000" in r and "the manifest was edited" in r
               for r in verified["reasons"]), verified
    before = snapshot(repo)
    code, out, _ = cli(repo, "deploy", "staging")  # as if it had been merged anyway
    assert code == 1 and "not deploying environments/staging/release.yaml" in out
    assert alias(repo, "staging") is None and snapshot(repo) == before


def test_malformed_and_invalid_manifests(repo: Path) -> None:
    git(repo, "switch", "--quiet", "-c", "broken")
    staging = repo / "environments" / "staging" / "release.yaml"
    staging.write_text("version: [1\nmodel_name: churn-classifier\n")
    qa = repo / "environments" / "qa" / "release.yaml"
    qa.parent.mkdir()
    qa.write_text("version: 1\n")
    git(repo, "add", "environments")
    git(repo, "commit", "--quiet", "-m", "hand-edited releases")
    code, out, verified = cli(repo, "verify", "--json")
    assert code == 1
    reasons = verified["reasons"]
    assert any(r.startswith("environments/staging/release.yaml: ") and "not valid YAML" in r for r in reasons)
    assert any(r.startswith("environments/qa/release.yaml: unknown environment 'qa'") for r in reasons)
    before = snapshot(repo)
    for args in (("deploy", "staging"), ("status",), ("promote", "1", "--to", "staging")):
        code, out, _ = cli(repo, *args)
        assert code == 2 and "environments/staging/release.yaml: not valid YAML" in out, (args, out)
    assert snapshot(repo) == before and alias(repo, "staging") is None


def test_schema_names_the_bad_field(repo: Path) -> None:
    spec = load_spec(repo)
    assert release.promote(spec, 1, "staging").version == 1
    good = yaml.safe_load(release.manifest_path(spec, "staging").read_text())
    assert release.schema_problems(good) == []
    cases = [
        ({**good, "version": "three"}, "field 'version': expected integer (got \"three\")"),
        ({k: v for k, v in good.items() if k != "artifact_sha256"}, "field 'artifact_sha256': missing"),
        ({**good, "artifact_sha256": "abc"}, "field 'artifact_sha256': does not match"),
        ({**good, "gates": {**good["gates"], "passed": "yes"}}, "field 'gates.passed': expected boolean"),
        ({**good, "replaces": {"version": 0}}, "field 'replaces': expected null or a mapping"),
        ({**good, "colour": "blue"}, "field '(top level)': Additional properties are not allowed ('colour'"),
    ]
    for document, message in cases:
        problems = release.schema_problems(document)
        assert any(message in p for p in problems), (message, problems)
        with pytest.raises(ConfigError, match="release.yaml"):
            release.parse_manifest(yaml.safe_dump(document), "environments/staging/release.yaml")
    # evaluate reads environments through current_version: a bad manifest is an error, not "nothing"
    release.manifest_path(spec, "staging").write_text(yaml.safe_dump({**good, "environment": "production"}))
    with pytest.raises(ConfigError, match="field 'environment': says 'production'"):
        release.current_version(spec, "staging")


def test_verify_without_changes_and_with_unknown_base(repo: Path) -> None:
    code, out, verified = cli(repo, "verify", "--json")
    assert (code, verified["checks"], verified["passed"]) == (0, [], True)
    code, out, _ = cli(repo, "verify", "--base", "origin/nope")
    assert code == 2 and "unknown git ref 'origin/nope'" in out


def test_verify_refuses_production_before_staging_is_merged(repo: Path) -> None:
    """Both environments in one pull request skip the staging period: production must wait for main."""
    spec = load_spec(repo)
    release.promote(spec, 1, "staging")
    fill_in_card(repo, 1)
    release.promote(spec, 1, "production")
    result = release.verify(spec, "origin/main")
    by_env = {c.env: c for c in result.checks}
    assert by_env["staging"].passed, by_env["staging"].reasons
    assert "production takes only what staging runs now, and on origin/main staging runs nothing" \
        in by_env["production"].reasons


def test_github_outputs(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text()
                         + '\n[tool.gitops-ml.release]\nimage_repository = "ghcr.io/acme/churn"\n')
    result = release.promote(load_spec(repo), 1, "staging",
                             title="Retrain churn-classifier: drift in 3 features",
                             extra_body="### Drift\n\n3 of 10 features drifted.")
    assert not outputs.exists()  # the stage returns its result; only the CLI's reporter talks to GitHub
    report.promotion(result, load_spec(repo), print)
    text = outputs.read_text()
    for name, value in (("title", result.title), ("body_file", str(result.body_file)),
                        ("branch", "promote/staging/v1")):
        assert f"{name}<<" in text and f"\n{value}\n" in text
    assert result.body.index("3 of 10 features drifted") < result.body.index("### Metrics")
    assert ("[`model_cards/churn-classifier-v1.md`](https://github.com/acme/churn/blob/promote/staging/v1/"
            "model_cards/churn-classifier-v1.md)") in result.body
    code, out, _ = cli(repo, "verify")
    assert code == 0, out
    assert "Release verification against `origin/main`: pass" in (tmp_path / "summary.md").read_text()
    git(repo, "add", "-A")  # as if the pull request were merged: deploy acts only on a committed manifest
    git(repo, "commit", "--quiet", "-m", "Merge the promotion")
    manifest = release.read_manifest(load_spec(repo), "staging")
    assert manifest.image == "ghcr.io/acme/churn:" + manifest.bento_tag.split(":")[1]

    code, out, deployed = cli(repo, "deploy", "staging", "--json")
    assert code == 0, out
    assert "image<<" in outputs.read_text() and f"\n{manifest.image}\n" in outputs.read_text()
    assert deployed["image"] == manifest.image and deployed["bento_tag"] == manifest.bento_tag


def test_verify_and_deploy_refuse_a_bento_the_manifest_does_not_pin(repo: Path) -> None:
    """Serving settings changed after the promotion: the reviewed bento is no longer what would ship."""
    assert cli(repo, "promote", "1", "--to", "staging")[0] == 0
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.gitops-ml.serving]\nmax_batch_size = 7\n")
    code, out, verified = cli(repo, "verify", "--json")
    assert code == 1
    assert any("field 'bento_tag': manifest pins churn-classifier:v1-" in r
               and "promote the version again" in r for r in verified["reasons"]), verified
    code, out, _ = cli(repo, "deploy", "staging")
    assert code == 1 and "field 'bento_tag'" in out and alias(repo, "staging") is None


def test_drift_summary_appears_in_the_body(repo: Path) -> None:
    state = repo / ".gitops-ml" / "drift"
    state.mkdir(parents=True)
    (state / "summary.json").write_text(json.dumps({"decision": "retrain", "env": "production",
                                                    "reasons": ["4 of 10 features drifted (share 0.40)"]}))
    body = release.promote(load_spec(repo), 1, "staging").body
    assert "### Latest drift check" in body and "decision **retrain**" in body and "4 of 10 features" in body


def test_refusal_is_a_check_failure_in_python(repo: Path) -> None:
    with pytest.raises(CheckFailed, match="production takes only what staging runs now"):
        release.promote(load_spec(repo), 1, "production")


def test_a_commit_that_fails_leaves_nothing_behind(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git cannot commit (no identity): no branch, no manifest, nothing staged, HEAD where it was."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.delenv("EMAIL", raising=False)
    git(repo, "config", "--unset", "user.email")
    git(repo, "config", "user.useConfigOnly", "true")
    before = snapshot(repo)
    code, out, _ = cli(repo, "promote", "1", "--to", "staging", "--branch")
    assert code == 1 and "git commit" in out
    assert snapshot(repo) == before and git(repo, "branch", "--show-current") == "main"


def test_reverting_the_first_release_removes_the_alias(repo: Path) -> None:
    assert cli(repo, "promote", "1", "--to", "staging", "--branch")[0] == 0
    released = merge(repo, "promote/staging/v1")
    assert cli(repo, "deploy", "staging")[0] == 0 and alias(repo, "staging") == 1
    git(repo, "switch", "--quiet", "-c", "rollback/staging")
    git(repo, "revert", "--no-edit", "-m", "1", released)
    code, out, verified = cli(repo, "verify", "--base", "main", "--json")
    assert code == 0, out
    assert [(c["change"], c["version"], c["base_version"]) for c in verified["checks"]] == [
        ("removal", None, 1)]
    merge(repo, "rollback/staging")
    code, out, deployed = cli(repo, "deploy", "staging", "--json")
    assert code == 0, out
    assert (deployed["version"], deployed["previous_version"], deployed["alias_changed"]) == (None, 1, True)
    assert alias(repo, "staging") is None
    assert cli(repo, "deploy", "staging", "--json")[2]["alias_changed"] is False


def test_manifest_problems_from_the_files_alone(repo: Path) -> None:
    spec = load_spec(repo)
    assert release.manifest_problems(spec, "staging") == []  # nothing released is nothing wrong
    release.promote(spec, 1, "staging")
    fill_in_card(repo, 1)
    release.promote(spec, 1, "production")
    assert release.manifest_problems(spec, "staging") == release.manifest_problems(spec, "production") == []
    cards.card_path(spec, 1).unlink()
    assert release.manifest_problems(spec, "production") == [
        "field 'model_card': model_cards/churn-classifier-v1.md does not exist"]


# -- only merged code is released -------------------------------------------------------------
def train_on_a_branch(root: Path) -> tuple[int, str]:
    git(root, "switch", "--quiet", "-c", "unreviewed")
    (root / "NOTES.md").write_text("a change nobody reviewed\n")
    git(root, "add", "NOTES.md")
    git(root, "commit", "--quiet", "-m", "Unreviewed change")
    commit = git(root, "rev-parse", "HEAD")
    from gitops_ml.evaluate import evaluate
    from gitops_ml.train import train

    spec = load_spec(root)
    version = train(spec).version
    evaluate(spec, version)
    cards.write_card(spec, version)
    git(root, "switch", "--quiet", "main")
    return version, commit


def test_a_version_trained_from_an_unmerged_branch_is_refused_until_the_branch_merges(repo: Path) -> None:
    version, commit = train_on_a_branch(repo)
    before = git(repo, "status", "--porcelain")
    code, out, _ = cli(repo, "promote", str(version), "--to", "staging", "--branch")
    assert code == 1, out
    assert f"v{version} was trained from commit {commit[:12]}, which is not on main" in out
    assert git(repo, "status", "--porcelain") == before
    assert not (repo / "environments" / "staging" / "release.yaml").exists()
    assert f"promote/staging/v{version}" not in git(repo, "branch", "--list")

    git(repo, "merge", "--quiet", "--no-ff", "-m", "Merge unreviewed", "unreviewed")
    git(repo, "push", "--quiet", "origin", "main")
    code, out, _ = cli(repo, "promote", str(version), "--to", "staging", "--branch")
    assert code == 0, out


def test_verify_refuses_a_manifest_whose_version_was_trained_from_unmerged_code(repo: Path) -> None:
    version, commit = train_on_a_branch(repo)
    git(repo, "merge", "--quiet", "--no-ff", "-m", "Merge unreviewed", "unreviewed")
    code, out, _ = cli(repo, "promote", str(version), "--to", "staging", "--branch")
    assert code == 0, out
    # The same release, verified against a main that never received the training commit.
    git(repo, "branch", "--quiet", "-f", "old-main", "origin/main")
    code, out, _ = cli(repo, "verify", "--base", "old-main")
    assert code == 1, out
    assert "which is not on old-main" in out
