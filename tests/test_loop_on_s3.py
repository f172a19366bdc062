"""The whole loop on real infrastructure (issue 13): a level-2 repository baked with object store ``s3``,
its registry an ``mlflow server`` that keeps its artifacts on a real S3 API (moto's server on 127.0.0.1),
its git a bare remote and a clone.

Train, evaluate, card, promote, verify, merge, deploy, status: every download the engine makes (the
logged training rows, the model, the files whose hash a release pins) goes through the S3 artifact store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import pytest

from gitops_ml import release, tracking
from gitops_ml.config import load_spec

from .support.bake import bake, git, repository
from .support.s3 import BUCKET
from .test_release import cli, fill_in_card, merge, push

pytestmark = pytest.mark.slow


def alias(root: Path, env: str) -> int | None:
    spec = load_spec(root)
    return release.alias_version(spec, tracking.connect(spec), env)


@pytest.fixture
def repo(tmp_path: Path, s3, mlflow_on_s3, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A level-2 bake with its inference log on the S3 server, pushed to a bare origin; the working
    directory is inside it and its BentoML store is its own (``.bentoml``), as ``gitops-ml serve`` finds it."""
    root = repository(bake(tmp_path, object_store="s3", object_store_bucket=BUCKET, mlops_level="2"))
    git(root, "config", "user.name", "Loop Tester")
    git(root, "config", "user.email", "loop-tester@example.com")
    monkeypatch.chdir(root)
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    return root


def run(root: Path, *args: str) -> dict:
    """``gitops-ml ARGS --json`` in this process; its JSON, or the test fails with what it said."""
    code, out, payload = cli(root, *args, "--json")
    assert code == 0 and payload is not None, out[-3000:]
    return payload


def train_one_version(root: Path) -> int:
    trained = run(root, "train")
    version = int(trained["version"])
    assert run(root, "evaluate", str(version))["passed"] is True
    run(root, "card", str(version))
    return version


def release_to(root: Path, version: int, env: str) -> dict:
    """Promote on a branch, push, verify against origin/main, merge as GitHub does, deploy."""
    promoted = run(root, "promote", str(version), "--to", env, "--branch")
    assert promoted["branch"] == f"promote/{env}/v{version}"
    push(root, promoted["branch"])
    verified = run(root, "verify", "--base", "origin/main")
    assert [(c["env"], c["version"]) for c in verified["checks"]] == [(env, version)], verified
    merge(root, promoted["branch"])
    assert alias(root, env) is None  # the merge alone moves nothing in the registry
    deployed = run(root, "deploy", env)
    assert (deployed["version"], deployed["alias_changed"]) == (version, True), deployed
    return promoted


def s3_model_sha256(s3, logged_model_uri: str) -> str:
    """The release hash computed from the model's objects on S3 themselves, as the registry's files hash
    (``release.tree_sha256``): what a release pins is what the artifact store holds."""
    model_id = logged_model_uri.removeprefix("models:/")
    keys = [key for key in s3.keys(prefix="mlflow/") if f"/models/{model_id}/artifacts/" in key]
    assert keys, f"no object of {logged_model_uri} under s3://{BUCKET}/mlflow/"
    digest = hashlib.sha256()
    client = s3.client()
    for key in sorted(keys, key=lambda k: PurePosixPath(k.split("/artifacts/", 1)[1])):  # as tree_sha256
        data = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        digest.update(f"{key.split('/artifacts/', 1)[1]}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def release_path(root: Path, s3) -> int:
    """v1 trained through the S3-backed server, released to staging then production by pull requests."""
    version = train_one_version(root)
    assert not (root / ".mlflow").exists()  # nothing fell back to an embedded store
    assert any(key.endswith("MLmodel") for key in s3.keys(prefix="mlflow/"))  # the model lives on S3
    staging = release_to(root, version, "staging")
    manifest = release.read_manifest(load_spec(root), "staging")
    assert manifest.artifact_sha256 == s3_model_sha256(s3, manifest.logged_model_uri), staging["manifest_path"]
    assert alias(root, "staging") == version

    fill_in_card(root, version)
    git(root, "commit", "-qam", f"Complete the model card of v{version}")
    git(root, "push", "-q", "origin", "main")
    release_to(root, version, "production")
    assert alias(root, "production") == alias(root, "staging") == version

    status = run(root, "status")
    rows = {row["env"]: row for row in status["environments"]}
    assert {env: (row["version"], row["alias_version"], row["in_sync"]) for env, row in rows.items()} == {
        "staging": (version, version, True), "production": (version, version, True)}
    # Nothing changed since main: verify has nothing to check, and the registry still agrees with git.
    assert run(root, "verify", "--base", "origin/main")["passed"] is True
    assert run(root, "deploy", "production")["alias_changed"] is False
    return version


def test_the_loop_closes_on_s3(repo: Path, s3) -> None:
    release_path(repo, s3)
