"""``gitops-ml image-context``: an environment with no release has no image to build."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gitops_ml.cli import main


def test_an_environment_with_no_release_has_no_image_to_build(project: Path) -> None:
    done = CliRunner().invoke(main, ["image-context", "staging"])
    assert done.exit_code == 1, done.output
    assert "environments/staging/release.yaml does not exist: staging runs no release, no image to build" in done.output
    assert not (project / ".gitops-ml" / "image").exists()


def test_an_unknown_environment_is_named(project: Path) -> None:
    done = CliRunner().invoke(main, ["image-context", "prod"])
    assert done.exit_code == 2, done.output
    assert "prod" in done.output
