"""This repository releases its own reference model: the committed manifests must hold up."""

import pytest

from gitops_ml import release
from gitops_ml.cards import read_front_matter
from gitops_ml.config import load_spec
from gitops_ml.data import check_data, fingerprint

from .conftest import REPO

SPEC = load_spec(REPO)


@pytest.mark.parametrize("env", SPEC.release.environments)
def test_committed_release_passes_the_schema_and_its_checks(env):
    assert release.read_manifest(SPEC, env) is not None, f"environments/{env}/release.yaml is missing"
    assert release.manifest_problems(SPEC, env) == []


@pytest.mark.parametrize("env", SPEC.release.environments)
def test_committed_release_agrees_with_its_card_and_the_data(env):
    manifest = release.read_manifest(SPEC, env)
    front = read_front_matter(REPO / manifest.model_card)
    assert front["data_fingerprint"] == manifest.data_fingerprint
    assert front["run_id"] == manifest.run_id
    for metric, value in manifest.metrics.items():
        assert front["metrics"][metric] == pytest.approx(value, abs=1e-3)
    # The bundled data is still the data the released model was trained on.
    frame, report = check_data(SPEC)
    assert report.passed
    assert fingerprint(frame) == manifest.data_fingerprint


def test_a_card_that_does_not_match_is_caught(tmp_path):
    """The check above can fail: point production at a card of another version."""
    import shutil

    for part in ("pyproject.toml", "environments", "model_cards"):
        source = REPO / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / part)
    manifest = tmp_path / "environments" / "production" / "release.yaml"
    manifest.write_text(manifest.read_text().replace("churn-classifier-v1.md", "churn-classifier-v9.md"))
    problems = release.manifest_problems(load_spec(tmp_path), "production")
    assert problems == ["field 'model_card': model_cards/churn-classifier-v9.md does not exist"]
