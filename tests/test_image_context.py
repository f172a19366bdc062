"""``gitops-ml image-context``: the image a promotion needs. The first environment builds it (the context
of the version's bento); a later one takes the digest the environment before it runs and builds nothing;
an environment with no release has no image to rebuild."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_ml.cli import main
from gitops_ml.config import load_spec
from gitops_ml.release import oci

from .test_release import cli, repo, two_versions  # noqa: F401


def test_an_environment_with_no_release_has_no_image_to_build(project: Path) -> None:
    done = CliRunner().invoke(main, ["image-context", "staging"])
    assert done.exit_code == 1, done.output
    assert "environments/staging/release.yaml does not exist: staging runs no release, no image to build" in done.output
    assert not (project / ".gitops-ml" / "image").exists()


def test_an_unknown_environment_is_named(project: Path) -> None:
    done = CliRunner().invoke(main, ["image-context", "prod"])
    assert done.exit_code == 2, done.output
    assert "prod" in done.output


# -- the image of a promotion: built once, for the first environment ------------------------------------


def test_the_first_environment_builds_the_version_image_without_an_environment_label(repo: Path) -> None:  # noqa: F811
    code, out, plan = cli(repo, "image-context", "staging", "--version", "2", "--json")
    assert code == 0, out
    assert plan["build"] is True and plan["version"] == 2 and plan["takes_from"] is None
    context = plan["context"]
    assert Path(context["dockerfile"]).is_file() and any(Path(context["context"]).rglob("MLmodel"))
    assert context["labels"] == {"org.opencontainers.image.version": "v2", oci.BENTO_LABEL: context["bento_tag"],
                                 oci.VERSION_LABEL: "2"}  # the same image goes on to production: no env label
    assert plan["registry"] == oci.registry_host(plan["image"])
    assert not (repo / "environments" / "staging" / "release.yaml").exists()  # nothing promoted yet


def test_a_later_environment_takes_the_digest_and_builds_nothing(
    repo: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digest = "sha256:" + "ab" * 32
    assert cli(repo, "promote", "1", "--to", "staging", "--image-digest", digest)[0] == 0
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    code, out, plan = cli(repo, "image-context", "production", "--version", "1", "--json")
    assert code == 0, out
    assert (plan["build"], plan["takes_from"], plan["digest"]) == (False, "staging", digest)
    assert "build<<" in outputs.read_text() and "\nfalse\n" in outputs.read_text()
    assert not (repo / ".gitops-ml" / "image" / "production").exists()


@pytest.mark.parametrize("case", ["other version", "no digest"])
def test_a_later_environment_refuses_before_anything_is_built(repo: Path, case: str) -> None:  # noqa: F811
    assert cli(repo, "promote", "1", "--to", "staging",
               *(["--image-digest", "sha256:" + "cd" * 32] if case == "other version" else []))[0] == 0
    version = "2" if case == "other version" else "1"
    code, out, _ = cli(repo, "image-context", "production", "--version", version)
    assert code == 1, out
    said = {"other version": "staging runs v1 (environments/staging/release.yaml): promote v2 to staging first",
            "no digest": "environments/staging/release.yaml has no field 'image_digest'"}[case]
    assert said in " ".join(out.split()), out
    assert not (repo / ".gitops-ml" / "image").exists()


def test_image_registry_names_the_host_to_log_in_to(repo: Path) -> None:  # noqa: F811
    code, out, _ = cli(repo, "image-registry")
    expected = oci.registry_host(load_spec(repo).release.image_repository or "churn-classifier")
    assert code == 0 and out.strip() == f"registry={expected}", out


@pytest.mark.parametrize("image, host", [("ghcr.io/acme/churn:v1", "ghcr.io"), ("127.0.0.1:5000/churn:v1",
                         "127.0.0.1:5000"), ("localhost/churn:v1", "localhost"), ("acme/churn:v1", "docker.io"),
                         ("churn:v1", "docker.io")])  # fmt: skip
def test_registry_host(image: str, host: str) -> None:
    assert oci.registry_host(image) == host
