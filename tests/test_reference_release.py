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
    front = read_front_matter(REPO / manifest["model_card"])
    assert front["data_fingerprint"] == manifest["data_fingerprint"]
    assert front["run_id"] == manifest["run_id"]
    for metric, value in manifest["metrics"].items():
        assert front["metrics"][metric] == pytest.approx(value, abs=1e-3)
    # The bundled data is still the data the released model was trained on.
    frame, report = check_data(SPEC)
    assert report.passed
    assert fingerprint(frame) == manifest["data_fingerprint"]
