"""The alias follows the image (issue 14 item 3): ``verify`` and ``deploy`` read the release's pinned
digest from a real registry on 127.0.0.1 with skopeo. A digest the registry does not hold, or an image
whose labels name another bento or version, is refused with the file and field named; ``deploy`` then
moves no alias. Production takes staging's digest unchanged, and verify finds it in the registry.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from gitops_ml.release import oci

from .support.registry import release_labels, send_images_to
from .test_release import alias, cli, fill_in_card, git, merge, push, repo, two_versions  # noqa: F401

NAME = "acme/churn-classifier"


@pytest.fixture
def pinned(repo: Path, image_registry) -> Path:  # noqa: F811
    """The repository with its images going to the local registry."""
    send_images_to(repo, image_registry, NAME)
    return repo


labels_of = release_labels


def test_a_pushed_image_verifies_deploys_and_goes_to_production_unchanged(pinned: Path, image_registry) -> None:
    digest = image_registry.push(NAME, "v1", labels_of(pinned, 1))
    code, out, promoted = cli(pinned, "promote", "1", "--to", "staging", "--branch", "--image-digest", digest,
                              "--json")
    assert code == 0, out
    push(pinned, promoted["branch"])
    code, out, verified = cli(pinned, "verify", "--base", "main", "--json")
    assert code == 0 and verified["passed"], out
    merge(pinned, promoted["branch"])
    store = Path(os.environ["BENTOML_HOME"])
    shutil.rmtree(store, ignore_errors=True)  # whatever verify packaged: deploy must not need a bento
    code, out, deployed = cli(pinned, "deploy", "staging", "--json")
    assert code == 0, out
    assert alias(pinned, "staging") == 1
    assert deployed["bento_tag"] == labels_of(pinned, 1)[oci.BENTO_LABEL]
    assert not list(store.glob("bentos/*/*")), "deploy built a bento: the image was built before the merge"

    fill_in_card(pinned, 1)
    git(pinned, "commit", "--quiet", "-am", "Complete the card of v1")
    code, out, promoted = cli(pinned, "promote", "1", "--to", "production", "--branch", "--json")
    assert code == 0, out
    written = yaml.safe_load((pinned / "environments" / "production" / "release.yaml").read_text())
    assert written["image_digest"] == digest  # staging's image, not another build
    assert cli(pinned, "verify", "--base", "main")[0] == 0


@pytest.mark.parametrize("case", ["absent", "other version", "other bento"])
def test_an_image_the_release_cannot_run_is_refused_and_moves_no_alias(pinned: Path, image_registry,
                                                                          case: str) -> None:
    labels = labels_of(pinned, 1)
    if case == "other version":
        labels[oci.VERSION_LABEL] = "2"
    if case == "other bento":
        labels[oci.BENTO_LABEL] = "churn-classifier:0123456789ab"
    digest = image_registry.push(NAME, "v1", labels)
    if case == "absent":
        digest = "sha256:" + "3f" * 32
    code, out, promoted = cli(pinned, "promote", "1", "--to", "staging", "--branch", "--image-digest", digest,
                              "--json")
    assert code == 0, out
    push(pinned, promoted["branch"])
    code, out, verified = cli(pinned, "verify", "--base", "main", "--json")
    assert code == 1 and not verified["passed"], out
    said = {"absent": "is not in its registry", "other version": f"label {oci.VERSION_LABEL}='2'",
            "other bento": f"label {oci.BENTO_LABEL}='churn-classifier:0123456789ab'"}[case]
    reasons = [r for r in verified["reasons"] if "image_digest" in r]
    assert len(reasons) == 1 and said in reasons[0], verified["reasons"]
    assert reasons[0].startswith("environments/staging/release.yaml: field 'image_digest': "), reasons[0]

    merge(pinned, promoted["branch"])  # merged anyway (say, the check was not required): deploy still refuses
    code, out, _ = cli(pinned, "deploy", "staging")
    assert code == 1 and said in out, out
    assert alias(pinned, "staging") is None


def test_a_registry_that_does_not_answer_fails_verify_with_its_address(pinned: Path, image_registry) -> None:
    digest = image_registry.push(NAME, "v1", labels_of(pinned, 1))
    code, out, promoted = cli(pinned, "promote", "1", "--to", "staging", "--branch", "--image-digest", digest,
                              "--json")
    assert code == 0, out
    pyproject = pinned / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(image_registry.host, "127.0.0.1:9"))
    manifest = pinned / "environments" / "staging" / "release.yaml"
    manifest.write_text(manifest.read_text().replace(image_registry.host, "127.0.0.1:9"))
    git(pinned, "commit", "--quiet", "-am", "Point at a registry that is down")
    code, out, verified = cli(pinned, "verify", "--base", "main", "--json")
    assert code == 1, out
    assert any("cannot read image 127.0.0.1:9/" in r and "connection refused" in r for r in verified["reasons"]), out
