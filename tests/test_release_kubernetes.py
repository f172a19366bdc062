"""The release as Kubernetes desired state (issue 14 item 1 and its bad input): ``promote --image-digest``
writes ``kustomization.yaml`` beside ``release.yaml``, both or neither; production copies staging's digest;
``verify`` refuses, naming the file and the field, a tag instead of a digest, an overlay whose version or
digest disagrees with release.yaml, and an overlay that does not render. Real git, real MLflow, real kubectl.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from gitops_ml.release import kubernetes

from .support.registry import release_labels, send_images_to
from .test_release import cli, fill_in_card, git, merge, push, repo, snapshot, two_versions  # noqa: F401

DIGEST = "sha256:" + "3f" * 32
OTHER = "sha256:" + "7a" * 32
STAGING = "environments/staging"
BASE = {
    "kustomization.yaml": {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                           "resources": ["deployment.yaml", "hpa.yaml"]},
    "deployment.yaml": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "churn-classifier"},
                        "spec": {"selector": {"matchLabels": {"app": "churn"}}, "template": {
                            "metadata": {"labels": {"app": "churn"}},
                            "spec": {"containers": [{"name": "churn-classifier", "image": "churn-classifier"}]}}}},
    "hpa.yaml": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "churn-classifier"},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn-classifier"},
                          "minReplicas": 1, "maxReplicas": 2}},
}  # fmt: skip


@pytest.fixture
def kube(repo: Path) -> Path:  # noqa: F811
    """The release repository with a Kubernetes base and [tool.gitops-ml.release.kubernetes], on main."""
    if kubernetes.kubectl() is None:
        pytest.fail("kubectl is not on PATH: verify renders each overlay with `kubectl kustomize`")
    base = repo / "deploy" / "base"
    base.mkdir(parents=True)
    for name, document in BASE.items():
        (base / name).write_text(yaml.safe_dump(document))
    with (repo / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.gitops-ml.release.kubernetes]\nbase = "deploy/base"\n\n'
                     "[tool.gitops-ml.release.kubernetes.environments.production]\nmin_replicas = 2\n")  # fmt: skip
    git(repo, "add", "pyproject.toml", "deploy")
    git(repo, "commit", "--quiet", "-m", "Kubernetes base")
    git(repo, "push", "--quiet", "origin", "main")
    return repo


def _overlay(root: Path, env: str = "staging") -> dict:
    return yaml.safe_load((root / "environments" / env / "kustomization.yaml").read_text())


def test_promote_pins_the_digest_and_production_copies_it(kube: Path, image_registry) -> None:
    # A real image in a registry on 127.0.0.1: verify reads the digest and its labels there.
    send_images_to(kube, image_registry, "acme/churn-classifier")
    digest = image_registry.push("acme/churn-classifier", "v1", release_labels(kube, 1))
    code, out, promoted = cli(kube, "promote", "1", "--to", "staging", "--branch", "--image-digest", digest, "--json")
    assert code == 0, out
    committed = set(git(kube, "show", "--name-only", "--format=", "HEAD").splitlines())
    assert {f"{STAGING}/release.yaml", f"{STAGING}/kustomization.yaml"} <= committed
    release = yaml.safe_load((kube / STAGING / "release.yaml").read_text())
    assert release["image_digest"] == digest
    overlay = _overlay(kube)
    [image] = overlay["images"]
    assert image == {"name": "churn-classifier", "newName": release["image"].rsplit(":", 1)[0], "digest": digest}
    assert overlay["labels"][0]["pairs"]["app.kubernetes.io/version"] == "v1"
    assert promoted["overlay_path"].endswith("environments/staging/kustomization.yaml")
    code, out, verified = cli(kube, "verify", "--base", "main", "--json")
    assert code == 0, out
    assert verified["notices"] == []
    merge(kube, "promote/staging/v1")

    # production: another digest is refused and nothing is written; without one, staging's is copied
    fill_in_card(kube, 1)
    git(kube, "commit", "--quiet", "-am", "Complete the card")
    before = snapshot(kube)
    code, out, _ = cli(kube, "promote", "1", "--to", "production", "--image-digest", OTHER)
    assert code == 1 and f"--image-digest {OTHER} is not the image staging runs ({digest})" in out
    assert snapshot(kube) == before
    code, out, _ = cli(kube, "promote", "1", "--to", "production", "--branch")
    assert code == 0, out
    assert yaml.safe_load((kube / "environments/production/release.yaml").read_text())["image_digest"] == digest
    assert _overlay(kube, "production")["images"][0]["digest"] == digest
    assert '"value": 2' in str(_overlay(kube, "production")["patches"]) or "value: 2" in str(
        _overlay(kube, "production")["patches"])  # fmt: skip
    assert cli(kube, "verify", "--base", "main")[0] == 0


def _edit_overlay(root: Path, change) -> None:
    path = root / STAGING / "kustomization.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d["images"][0].update(newTag="v1-abc") or d["images"][0].pop("digest"),
         "kustomization.yaml: field 'images[0].newTag': 'v1-abc' is a tag"),
        (lambda d: d["images"][0].update(digest=OTHER),
         "kustomization.yaml: field 'images[0].digest': " + OTHER + " is not release.yaml's image_digest"),
        (lambda d: d["labels"][0]["pairs"].update({"app.kubernetes.io/version": "v2"}),
         "kustomization.yaml: field 'labels.pairs.app.kubernetes.io/version': 'v2' is not release.yaml's version"),
        (lambda d: d["commonAnnotations"].update({"gitops-ml.ai/model-version": "2"}),
         "field 'commonAnnotations.gitops-ml.ai/model-version': '2' is not '1'"),
        (lambda d: d.update(resources=["../../deploy/nowhere"]), "kustomization.yaml: does not render (kubectl"),
    ],
    ids=["tag", "other-digest", "version-label", "version-annotation", "does-not-render"],
)
def test_verify_refuses_a_hand_edited_overlay_naming_file_and_field(kube: Path, change, said) -> None:
    assert cli(kube, "promote", "1", "--to", "staging", "--branch", "--image-digest", DIGEST)[0] == 0
    _edit_overlay(kube, change)
    code, out, _ = cli(kube, "verify", "--base", "main")
    assert code == 1 and said in " ".join(out.split()), out
    # the overlay alone changed on a branch (release.yaml as main has it after the merge): still checked
    git(kube, "checkout", "--quiet", "--", STAGING)
    merge(kube, "promote/staging/v1")
    git(kube, "switch", "--quiet", "-c", "edit")
    _edit_overlay(kube, change)
    code, out, verified = cli(kube, "verify", "--base", "main", "--json")
    assert code == 1 and said.split("kustomization.yaml: ")[-1] in " ".join(out.split()), out
    assert [c["change"] for c in verified["checks"]] == ["overlay"]


def test_verify_refuses_a_tag_in_release_yaml(kube: Path) -> None:
    assert cli(kube, "promote", "1", "--to", "staging", "--image-digest", DIGEST)[0] == 0
    path = kube / STAGING / "release.yaml"
    path.write_text(path.read_text().replace(DIGEST, "v1-abc"))
    code, out, _ = cli(kube, "verify", "--base", "main")
    assert code == 1
    assert "field 'image_digest': expected an image digest sha256:<64 hex digits>, not a tag" in out


def test_a_bad_digest_option_is_a_usage_error(kube: Path) -> None:
    before = snapshot(kube)
    code, out, _ = cli(kube, "promote", "1", "--to", "staging", "--image-digest", "latest")
    assert code == 2 and "--image-digest 'latest' is not an image digest" in out
    assert snapshot(kube) == before


def test_without_a_digest_there_is_no_overlay_and_verify_says_so(kube: Path) -> None:
    code, out, _ = cli(kube, "promote", "1", "--to", "staging")
    assert code == 0, out
    assert not (kube / STAGING / "kustomization.yaml").exists()
    code, out, verified = cli(kube, "verify", "--base", "main", "--json")
    assert code == 0, out
    [notice] = verified["notices"]
    assert "has no image_digest yet" in notice and "--image-digest" in notice


def test_verify_without_kubectl_fails_closed(kube: Path, monkeypatch) -> None:
    assert cli(kube, "promote", "1", "--to", "staging", "--image-digest", DIGEST)[0] == 0
    monkeypatch.setenv("KUBECTL", "/nonexistent/kubectl")
    code, out, _ = cli(kube, "verify", "--base", "main")
    assert code == 1 and "kubectl is not on PATH" in out


def test_a_failed_write_leaves_neither_file(kube: Path, monkeypatch) -> None:
    before = snapshot(kube)
    real = os.replace

    def failing(source, target):
        if str(target).endswith("kustomization.yaml"):
            raise OSError("disk full")
        return real(source, target)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk full"):
        cli(kube, "promote", "1", "--to", "staging", "--branch", "--image-digest", DIGEST)
    assert snapshot(kube) == before
    assert not (kube / STAGING / "release.yaml").exists() and not (kube / STAGING / "kustomization.yaml").exists()
