"""Bad release manifests, one table: every case is refused with the file and the field named, and
nothing changes (registry versions and aliases, ``git status``, branches, HEAD, files under
``environments/`` and ``model_cards/``)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from gitops_ml import tracking
from gitops_ml.config import load_spec
from gitops_ml.release import dump_manifest

from .conftest import copy_project
from .test_release import alias, cli, git, init_repository, merge, two_versions  # noqa: F401

MANIFEST = "environments/staging/release.yaml"
SHA = "0" * 64


@pytest.fixture(scope="module")
def released(two_versions: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:  # noqa: F811
    """v1 promoted to staging, merged and deployed; the good manifest and main's commit."""
    base = tmp_path_factory.mktemp("bad-manifests")
    root = copy_project(two_versions, base / "work")
    init_repository(root, base / "remote.git")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENTOML_HOME", str(base / "bentoml"))
        assert cli(root, "promote", "1", "--to", "staging", "--branch")[0] == 0
        merge(root, "promote/staging/v1")
        assert cli(root, "deploy", "staging")[0] == 0
    good = yaml.safe_load((root / MANIFEST).read_text())
    return root, good, git(root, "rev-parse", "HEAD")


def _set(path: str, value: object):
    def change(document: dict) -> dict:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        target[last] = value
        return document

    return change


def _drop(path: str):
    def change(document: dict) -> dict:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        del target[last]
        return document

    return change


# (case, how the good manifest is changed (or the raw text), exit code of deploy, what the message names)
CASES = [
    ("not YAML", "version: [1\nmodel_name: x\n", 2, "not valid YAML"),
    ("a list", "- 1\n- 2\n", 2, "expected a mapping of release fields, got list"),
    ("empty file", "", 2, "expected a mapping of release fields, got NoneType"),
    ("a plain string", "staging\n", 2, "expected a mapping of release fields, got str"),
    ("version a word", _set("version", "three"), 2, "field 'version': expected integer"),
    ("version zero", _set("version", 0), 2, "field 'version'"),
    ("version a float", _set("version", 1.5), 2, "field 'version': expected integer"),
    ("version missing", _drop("version"), 2, "field 'version': missing"),
    ("schema version 2", _set("schema_version", 2), 2, "field 'schema_version': must be 1"),
    ("environment with a space", _set("environment", "stag ing"), 2, "field 'environment': does not match"),
    (
        "environment of another folder",
        _set("environment", "production"),
        2,
        "field 'environment': says 'production' but the file is in environments/staging/",
    ),
    ("sha256 too short", _set("artifact_sha256", "abc"), 2, "field 'artifact_sha256': does not match"),
    ("model_uri not models:/", _set("model_uri", "runs:/abc/model"), 2, "field 'model_uri': does not match"),
    ("logged model uri", _set("logged_model_uri", "models:/churn-classifier/1"), 2, "field 'logged_model_uri'"),
    ("bento tag upper case", _set("bento_tag", "Churn:v1"), 2, "field 'bento_tag': does not match"),
    ("promoted_at not a time", _set("promoted_at", "yesterday"), 2, "field 'promoted_at': does not match"),
    ("gates.passed a word", _set("gates.passed", "yes"), 2, "field 'gates.passed': expected boolean"),
    ("gates.results missing", _drop("gates.results"), 2, "field 'gates.results': missing"),
    ("replaces version 0", _set("replaces", {"version": 0}), 2, "field 'replaces': expected null or a mapping"),
    ("unknown field", _set("colour", "blue"), 2, "Additional properties are not allowed ('colour'"),
    ("metric a word", _set("metrics.roc_auc", "high"), 2, "field 'metrics.roc_auc'"),
    ("empty model card", _set("model_card", ""), 2, "field 'model_card'"),
    ("run id a number", _set("run_id", 5), 2, "field 'run_id': expected string"),
    # well-formed, but not what the registry or the project holds: a failed check, exit 1
    ("another model", _set("model_name", "other-model"), 1, "field 'model_name': 'other-model'"),
    (
        "model_uri of another version",
        _set("model_uri", "models:/churn-classifier/7"),
        1,
        "field 'model_uri': 'models:/churn-classifier/7' does not name version 1",
    ),
    ("gates failed", _set("gates.passed", False), 1, "field 'gates': v1 did not pass its gates"),
    (
        "card that does not exist",
        _set("model_card", "model_cards/nope.md"),
        1,
        "field 'model_card': model_cards/nope.md does not exist",
    ),
    ("edited artifact hash", _set("artifact_sha256", SHA), 1, "field 'artifact_sha256': manifest says 0000"),
    ("another run", _set("run_id", "deadbeef"), 1, "field 'run_id': manifest says deadbeef"),
    ("a version the registry lacks", _set("version", 99), 1, "has no version 99 of 'churn-classifier'"),
    ("another bento", _set("bento_tag", "churn-classifier:v1-0000"), 1, "field 'bento_tag': manifest pins"),
]


def _state(root: Path) -> tuple:
    spec = load_spec(root)
    client = tracking.connect(spec)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{spec.model_name}'"))
    aliases = dict(client.get_registered_model(spec.model_name).aliases)
    files = tuple(
        (p.relative_to(root).as_posix(), p.read_bytes())
        for part in ("environments", "model_cards")
        for p in sorted((root / part).rglob("*"))
        if p.is_file()
    )
    return (
        versions,
        aliases,
        git(root, "status", "--porcelain", "--untracked-files=all"),
        git(root, "branch", "--list"),
        git(root, "rev-parse", "HEAD"),
        files,
    )


@pytest.mark.parametrize(("case", "change", "code", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_manifest_is_refused_and_changes_nothing(released, case, change, code, message) -> None:
    root, good, main = released
    git(root, "reset", "--quiet", "--hard", main)
    path = root / MANIFEST
    path.write_text(change if isinstance(change, str) else dump_manifest(change(copy.deepcopy(good))))
    git(root, "commit", "--quiet", "-am", f"hand-edited release: {case}")  # as if merged: deploy reads main
    before = _state(root)
    got, out, _ = cli(root, "deploy", "staging")
    assert got == code, out
    assert MANIFEST in out and message in out, out
    assert MANIFEST + ": " + MANIFEST not in out  # the path is named once
    assert _state(root) == before and alias(root, "staging") == 1


def test_the_table_is_large_enough():
    assert len(CASES) >= 20
