"""The bento's real image (issue 14 item 4): one image per version, built and smoke-tested before merge,
pinned by digest, promoted unchanged.

A level-2 bake is trained; ``gitops-ml image-context staging --version N`` writes its bento's build context
and names the image and its labels, as the Promote workflow's build step takes them, and buildah builds
exactly that context (the bento's own Dockerfile), from a base image made on this machine
(tests/support/containers.py, after /work/shared/CONTAINERS.md); skopeo pushes it to a real registry on
127.0.0.1 and ``promote --image-digest`` pins the registry's digest. The image then runs under podman
exactly as the rendered Deployment of ``environments/staging`` says (tests/support/deployment.py: its
image by digest, args, environment, user, read-only root, volumes), is waited on at the Deployment's own
readiness path, smoke-tested, sent predictions and a bad request, and stopped; the inference log it wrote
is read back. Production then takes staging's digest, and no image is built for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from gitops_ml.config import load_spec
from gitops_ml.processes import free_port
from gitops_ml.serve.inference_log import read_log
from gitops_ml.serve.smoke import call, sample_rows

from .support.bake import bake, git, repository
from .support.containers import Containers
from .support.deployment import PodmanRun, podman_run
from .support.registry import Registry, registry
from .test_release import cli, fill_in_card, merge, push

pytestmark = pytest.mark.slow

NAME = "acme/customer-churn"
BENTOML = str(Path(sys.executable).with_name("bentoml"))
GITOPS = str(Path(sys.executable).with_name("gitops-ml"))
READY_SECONDS = 180  # the image's server loads the model in a few seconds; a slow machine gets more
PREDICTIONS = 5  # single-row requests; then one batch of BATCH rows
BATCH = 3


@dataclass
class Released:
    """The bake, its image built once and pushed, and v1 promoted to staging with the registry's digest."""

    root: Path
    registry: Registry
    containers: Containers
    version: int
    image: str  # the tag the image was built and pushed as
    digest: str  # the registry's digest of it
    images_after_build: set[str]  # the store's image ids once the image was built


def run_json(root: Path, *args: str) -> dict:
    code, out, payload = cli(root, *args, "--json")
    assert code == 0 and payload is not None, out[-3000:]
    return payload


def render(root: Path, env: str) -> list[dict]:
    done = subprocess.run(["kubectl", "kustomize", str(root / "environments" / env)], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, f"kubectl kustomize environments/{env}: {done.stderr}"
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def pinned(root: Path, env: str) -> tuple[str, str]:
    """(release.yaml's image_digest, the overlay's images[0].digest) of ``env``."""
    release = yaml.safe_load((root / "environments" / env / "release.yaml").read_text())
    overlay = yaml.safe_load((root / "environments" / env / "kustomization.yaml").read_text())
    return release["image_digest"], overlay["images"][0]["digest"]


def build_image(containers: Containers, root: Path, version: int) -> str:
    """What the Promote workflow builds: ``gitops-ml image-context`` writes v``version``'s build context and
    names its image and labels (as build-push-action takes them); buildah builds exactly that."""
    plan = run_json(root, "image-context", "staging", "--version", str(version))
    assert plan["build"] is True, plan
    context = plan["context"]
    labels = context["labels"]
    containers.timed("containerize", "buildah", "build", "--network", "host", "--layers",
                     *[a for k, v in labels.items() for a in ("--label", f"{k}={v}")],
                     "-f", context["dockerfile"], "-t", context["image"], context["context"], timeout=1800)  # fmt: skip
    assert containers.labels(context["image"]) | labels == containers.labels(context["image"])
    return context["image"]


def push_image(containers: Containers, image: str) -> str:
    """skopeo copy to the registry; the registry's digest of what it holds."""
    containers.timed("push", "skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"containers-storage:{image}",
                     f"docker://{image}", timeout=900)  # fmt: skip
    found = containers.run("skopeo", "inspect", "--no-tags", "--tls-verify=false", f"docker://{image}")
    return json.loads(found.stdout)["Digest"]


@pytest.fixture(scope="module")
def released(container_images: Containers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Released]:
    folder = tmp_path_factory.mktemp("real-image")
    with registry(folder / "registry") as served, pytest.MonkeyPatch.context() as patch:
        registries_conf = str(served.folder / "registries.conf")
        patch.setenv("CONTAINERS_REGISTRIES_CONF", registries_conf)  # verify's skopeo reads it
        container_images.env["CONTAINERS_REGISTRIES_CONF"] = registries_conf  # podman pulls by digest from it
        project = bake(folder, mlops_level="2", python_version="3.11")  # the base made here is Debian's 3.11
        pyproject = project / "pyproject.toml"
        baked = pyproject.read_text()
        assert 'image_repository = "ghcr.io/your-org/customer-churn"' in baked
        pyproject.write_text(baked.replace("ghcr.io/your-org/customer-churn", f"{served.host}/{NAME}"))
        root = repository(project)
        git(root, "config", "user.name", "Image Tester")
        git(root, "config", "user.email", "image-tester@example.com")
        patch.chdir(root)
        patch.delenv("BENTOML_HOME", raising=False)  # the project's own .bentoml, as containerize reads it

        version = int(run_json(root, "train")["version"])
        assert run_json(root, "evaluate", str(version))["passed"] is True
        run_json(root, "card", str(version))
        image = build_image(container_images, root, version)
        images_after_build = container_images.image_ids()
        digest = push_image(container_images, image)

        promoted = run_json(root, "promote", str(version), "--to", "staging", "--branch", "--image-digest", digest)
        push(root, promoted["branch"])
        verified = run_json(root, "verify", "--base", "main")
        assert verified["passed"], verified
        merge(root, promoted["branch"])
        yield Released(root, served, container_images, version, image, digest, images_after_build)
        print(f"\nreal image timings (s): {container_images.timings}")


@pytest.fixture
def container(released: Released, tmp_path: Path) -> Iterator[tuple[PodmanRun, str, Path]]:
    """The staging Deployment's container running under podman; removed after the test, pass or fail."""
    log_folder = tmp_path / "inference-log"
    log_folder.mkdir()
    os.chown(log_folder, 1034, 1034)  # the Deployment's runAsUser/runAsGroup: it writes here as in its emptyDir
    spec = podman_run(render(released.root, "staging"), port=free_port(), volumes={"inference-log": log_folder})
    name = f"gitops-ml-real-image-{spec.port}"
    try:
        released.containers.timed("run", *spec.argv(name), timeout=600)
        wait_ready(released.containers, name, f"http://127.0.0.1:{spec.port}{spec.readiness_path}")
        yield spec, name, log_folder
    finally:
        released.containers.run("podman", "rm", "--force", "--ignore", "--time", "10", name, timeout=120)


def wait_ready(containers: Containers, name: str, url: str) -> None:
    """Until ``url`` answers 200; a container that exits first fails the test with its log."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        state = containers.run("podman", "inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running":
            logs = containers.run("podman", "logs", name).stderr
            pytest.fail(f"container {name} is {state} before {url} answered:\n{logs[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    logs = containers.run("podman", "logs", name).stderr
    pytest.fail(f"{url} did not answer 200 within {READY_SECONDS} s:\n{logs[-3000:]}")


def test_the_pinned_image_runs_as_the_deployment_says_and_serves(released: Released, container) -> None:
    spec, name, log_folder = container
    root, digest = released.root, released.digest
    # What runs is what staging pins: the registry's digest, in release.yaml and in the overlay.
    assert pinned(root, "staging") == (digest, digest)
    assert spec.image == f"{released.registry.host}/{NAME}@{digest}"
    assert spec.env["GITOPS_ML_INFERENCE_LOG"] == "/var/log/gitops-ml/inference"  # from the rendered ConfigMap
    running = released.containers.run("podman", "inspect", "--format", "{{.ImageName}} {{.Config.User}}", name)
    assert running.stdout.split() == [spec.image, "1034:1034"], running.stdout
    who = released.containers.run("podman", "exec", name, "id", "-u").stdout.strip()
    assert who == "1034"
    refused = subprocess.run(["podman", "exec", name, "touch", "/home/bentoml/bento/written"],
                             env=released.containers.env, capture_output=True, text=True, check=False)  # fmt: skip
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr, refused.stderr

    url = f"http://127.0.0.1:{spec.port}"
    assert spec.liveness_path is not None and call(f"{url}{spec.liveness_path}").status == 200  # the kubelet's too
    smoked = subprocess.run([GITOPS, "smoke", url, "--expect-version", str(released.version), "--json"],
                            cwd=root, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert smoked.returncode == 0, smoked.stdout + smoked.stderr
    assert json.loads(smoked.stdout)["passed"]

    project = load_spec(root)
    columns = [c["name"] for c in call(f"{url}/metadata").json()["contract"]["columns"]]
    rows = sample_rows(project, columns, PREDICTIONS + BATCH)
    for row in rows[:PREDICTIONS]:
        answer = call(f"{url}/predict", "POST", row)
        assert answer.status == 200, answer.body[:300]
    answer = call(f"{url}/predict_batch", "POST", rows[PREDICTIONS:])
    assert answer.status == 200 and len(answer.json()) == BATCH, answer.body[:300]
    missing = {k: v for k, v in rows[0].items() if k != "tenure_months"}
    refused_request = call(f"{url}/predict", "POST", missing)
    assert refused_request.status == 400 and b"tenure_months" in refused_request.body, refused_request.body[:300]

    # SIGTERM, as the kubelet stops a pod: the service flushes what it holds, then the log is read back.
    released.containers.run("podman", "stop", "--time", "30", name, timeout=120)
    logged = read_log(str(log_folder / "inference"))
    assert len(logged.frame) == PREDICTIONS + BATCH, logged
    assert set(logged.frame["model_version"]) == {released.version}
    assert set(logged.frame["tenure_months"]) == {row["tenure_months"] for row in rows}


def test_production_takes_staging_digest_and_nothing_is_built(released: Released) -> None:
    root, digest = released.root, released.digest
    fill_in_card(root, released.version)
    git(root, "commit", "--quiet", "-am", f"Complete the card of v{released.version}")
    promoted = run_json(root, "promote", str(released.version), "--to", "production", "--branch")
    assert pinned(root, "production") == (digest, digest)
    [deployment] = [d for d in render(root, "production") if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{released.registry.host}/{NAME}@{digest}"
    push(root, promoted["branch"])
    verified = run_json(root, "verify", "--base", "main")
    assert verified["passed"], verified
    # No build for production: the store holds the images it held once staging's was built, and the
    # registry the one pushed.
    assert released.containers.image_ids() == released.images_after_build
    tags = json.loads(
        released.containers.run(
            "skopeo", "list-tags", "--tls-verify=false", f"docker://{released.registry.host}/{NAME}"
        ).stdout
    )["Tags"]
    assert tags == [released.image.rsplit(":", 1)[1]]
