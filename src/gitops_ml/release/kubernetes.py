"""The running service as desired state: ``environments/<env>/kustomization.yaml`` beside ``release.yaml``.

A project that sets ``[tool.gitops-ml.release.kubernetes]`` keeps a kustomize base of its service
(``deploy/kubernetes/base/``: Deployment, Service, ...). ``promote`` writes, with each release, an
overlay of that base that pins the image by digest and labels every object with the version; Argo CD
or Flux syncs it. ``verify`` checks that the overlay and the release agree and that it renders.

The overlay is written only for a release that has an ``image_digest``: a tag can move, a digest
cannot, and without one there is nothing the controller could run that is known to be this release.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from ..config import KubernetesEnvironment, Spec
from .environments import check_environment
from .manifest import IMAGE_DIGEST, ReleaseManifest

OVERLAY = "kustomization.yaml"
VERSION_LABEL = "app.kubernetes.io/version"
MODEL_VERSION = "gitops-ml.ai/model-version"
BENTO_TAG = "gitops-ml.ai/bento-tag"
ENVIRONMENT = "gitops-ml.ai/environment"
HEADER = (
    "# Kubernetes overlay of this release, written by `gitops-ml promote` with release.yaml beside it.\n"
    "# Argo CD or Flux syncs this folder; kustomize does not read release.yaml. Change it only by\n"
    "# promoting (or reverting the promotion): `gitops-ml verify` checks it agrees with release.yaml.\n"
)
RENDER_TIMEOUT = 60


class _Block(str):
    """A multi-line string written as a YAML literal block (the JSON patches), as a person would."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Block, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|"))


def enabled(spec: Spec) -> bool:
    return spec.release.kubernetes is not None


def workload_name(spec: Spec) -> str:
    """The Deployment, container and image placeholder name in the base."""
    settings = spec.release.kubernetes
    return (settings.name if settings and settings.name else spec.model_name).lower()


def overlay_path(spec: Spec, env: str) -> Path:
    return spec.environments_dir / check_environment(spec, env) / OVERLAY


def relative_overlay(spec: Spec, env: str) -> str:
    return overlay_path(spec, env).relative_to(spec.root).as_posix()


def base_from_overlay(spec: Spec, env: str) -> str:
    """The base as the overlay's ``resources`` names it: relative to the overlay's folder."""
    return os.path.relpath(spec.root / spec.release.kubernetes.base, overlay_path(spec, env).parent).replace(
        os.sep, "/"
    )


def environment_settings(spec: Spec, env: str) -> KubernetesEnvironment:
    return spec.release.kubernetes.environments.get(env) or KubernetesEnvironment()


def overlay_document(spec: Spec, manifest: ReleaseManifest) -> dict:
    """The overlay of ``manifest``'s release, which must have a digest."""
    if manifest.image_digest is None:
        raise ValueError("an overlay pins the image by digest: the release has none")
    env = manifest.environment
    name = workload_name(spec)
    settings = environment_settings(spec, env)
    resources = {
        "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
        "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
    }
    container = "/spec/template/spec/containers/0/resources"
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [base_from_overlay(spec, env)],
        # Selectors are immutable: the version goes on objects and pod templates, never on selectors.
        "labels": [{"pairs": {VERSION_LABEL: f"v{manifest.version}"}, "includeTemplates": True}],
        "commonAnnotations": {
            ENVIRONMENT: env,
            MODEL_VERSION: str(manifest.version),
            BENTO_TAG: manifest.bento_tag,
        },
        "images": [{"name": name, "newName": manifest.image_repository, "digest": manifest.image_digest}],
        "patches": [
            {
                "target": {"kind": "Deployment", "name": name},
                "patch": _Block(yaml.safe_dump([{"op": "replace", "path": container, "value": resources}])),
            },
            {
                # The autoscaler owns the replica count (a controller that set spec.replicas would fight it).
                "target": {"kind": "HorizontalPodAutoscaler", "name": name},
                "patch": _Block(
                    yaml.safe_dump(
                        [
                            {"op": "replace", "path": "/spec/minReplicas", "value": settings.min_replicas},
                            {"op": "replace", "path": "/spec/maxReplicas", "value": settings.max_replicas},
                        ],
                        sort_keys=False,
                    )
                ),
            },
        ],
    }


def dump_overlay(document: dict) -> str:
    return HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


# -- checks ----------------------------------------------------------------------------------------------
def agreement_reasons(spec: Spec, env: str, manifest: ReleaseManifest | None) -> list[str]:
    """Every way ``environments/<env>/kustomization.yaml`` disagrees with ``manifest`` (the release beside
    it), each naming the field; then whether it renders and what the rendered Deployment runs."""
    path = overlay_path(spec, env)
    shown = relative_overlay(spec, env)
    if not path.is_file():
        if manifest is not None and manifest.image_digest is not None:
            return [f"{shown} does not exist: release.yaml pins image digest {manifest.image_digest}; "
                    f"promote again to write the overlay"]  # fmt: skip
        return []
    if manifest is None:
        return [f"{shown} is left without a release: remove it with release.yaml (revert the promotion)"]
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return [f"{shown}: not valid YAML: {' '.join(str(exc).split())}"]
    if not isinstance(document, dict):
        return [f"{shown}: expected a Kustomization mapping, got {type(document).__name__}"]
    reasons = [f"{shown}: {reason}" for reason in _field_reasons(spec, env, manifest, document)]
    rendered, problem = render(spec, env)
    if problem:
        return [*reasons, f"{shown}: {problem}"]
    return reasons + [f"{shown}: {reason}" for reason in rendered_reasons(spec, manifest, rendered)]


def _field_reasons(spec: Spec, env: str, manifest: ReleaseManifest, document: dict) -> list[str]:
    reasons = []
    name = workload_name(spec)
    if manifest.image_digest is None:
        reasons.append("field 'images': release.yaml has no image_digest, so there is no digest this overlay "
                       "may pin; promote with --image-digest")  # fmt: skip
    base = base_from_overlay(spec, env)
    if base not in (document.get("resources") or []):
        reasons.append(f"field 'resources': does not include the base {base}")
    images = [i for i in document.get("images") or [] if isinstance(i, dict) and i.get("name") == name]
    if not images:
        reasons.append(f"field 'images': no entry for the base's image {name!r}: the image must be pinned by digest")
    for index, image in enumerate(document.get("images") or []):
        where = f"images[{index}]"
        if not isinstance(image, dict):
            reasons.append(f"field '{where}': expected a mapping")
            continue
        if "newTag" in image:
            reasons.append(f"field '{where}.newTag': {image['newTag']!r} is a tag, which can move; pin the image "
                           "by digest (digest: sha256:...)")  # fmt: skip
        digest = image.get("digest")
        if digest is None:
            reasons.append(f"field '{where}.digest': missing: the image must be pinned by digest")
        elif not isinstance(digest, str) or not re.fullmatch(IMAGE_DIGEST, digest):
            reasons.append(f"field '{where}.digest': {digest!r} is not a digest sha256:<64 hex digits>")
        elif manifest.image_digest is not None and digest != manifest.image_digest:
            reasons.append(f"field '{where}.digest': {digest} is not release.yaml's image_digest "
                           f"{manifest.image_digest}")  # fmt: skip
        if image.get("name") == name and image.get("newName") != manifest.image_repository:
            reasons.append(f"field '{where}.newName': {image.get('newName')!r} is not release.yaml's image "
                           f"repository {manifest.image_repository!r}")  # fmt: skip
    versions = [
        label.get("pairs", {}).get(VERSION_LABEL)
        for label in document.get("labels") or []
        if isinstance(label, dict) and isinstance(label.get("pairs"), dict)
    ]
    expected = f"v{manifest.version}"
    if expected not in versions or any(v is not None and v != expected for v in versions):
        found = next((v for v in versions if v is not None), None)
        reasons.append(f"field 'labels.pairs.{VERSION_LABEL}': {found!r} is not release.yaml's version {expected!r}")
    annotations = document.get("commonAnnotations") or {}
    for key, value in ((MODEL_VERSION, str(manifest.version)), (BENTO_TAG, manifest.bento_tag), (ENVIRONMENT, env)):
        if annotations.get(key) != value:
            reasons.append(f"field 'commonAnnotations.{key}': {annotations.get(key)!r} is not {value!r} "
                           "(release.yaml)")  # fmt: skip
    return reasons


def rendered_reasons(spec: Spec, manifest: ReleaseManifest, documents: list[dict]) -> list[str]:
    """What the rendered overlay runs: every container of the Deployment on the release's pinned image."""
    name = workload_name(spec)
    deployments = [d for d in documents if d.get("kind") == "Deployment" and d["metadata"].get("name") == name]
    if not deployments:
        return [f"renders no Deployment named {name!r}"]
    reasons = []
    for deployment in deployments:
        pod = deployment.get("spec", {}).get("template", {})
        for container in pod.get("spec", {}).get("containers", []):
            if manifest.pinned_image and container.get("image") != manifest.pinned_image:
                reasons.append(f"the Deployment's container {container.get('name')!r} runs {container.get('image')!r}, "
                               f"not release.yaml's {manifest.pinned_image}")  # fmt: skip
        version = pod.get("metadata", {}).get("labels", {}).get(VERSION_LABEL)
        if version != f"v{manifest.version}":
            reasons.append(f"the Deployment's pods are labelled {VERSION_LABEL}={version!r}, not 'v{manifest.version}'")
    return reasons


def kubectl() -> str | None:
    return shutil.which(os.environ.get("KUBECTL", "kubectl"))


def render(spec: Spec, env: str) -> tuple[list[dict], str | None]:
    """``kubectl kustomize environments/<env>``: the objects, or why it did not render."""
    binary = kubectl()
    if binary is None:
        return [], ("cannot be rendered: kubectl is not on PATH (verify renders each overlay with "
                    "`kubectl kustomize`, built into kubectl since 1.14); install kubectl")  # fmt: skip
    try:
        done = subprocess.run([binary, "kustomize", str(overlay_path(spec, env).parent)], capture_output=True,
                              text=True, timeout=RENDER_TIMEOUT, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return [], f"does not render: kubectl kustomize took more than {RENDER_TIMEOUT} s"
    if done.returncode != 0:
        said = " ".join((done.stderr or done.stdout).split())
        return [], f"does not render (kubectl kustomize): {said[:400]}"
    try:
        return [d for d in yaml.safe_load_all(done.stdout) if d], None
    except yaml.YAMLError as exc:  # pragma: no cover - kustomize writes YAML
        return [], f"rendered YAML does not parse: {exc}"


def digest_notice(spec: Spec, env: str, manifest: ReleaseManifest) -> str | None:
    """Said (not failed) for a release with no digest yet: nothing for the controller to roll out."""
    if not enabled(spec) or manifest.image_digest is not None:
        return None
    return (f"environments/{env}/release.yaml has no image_digest yet: {relative_overlay(spec, env)} is not written "
            f"and the controller rolls nothing out for v{manifest.version}; once its image is pushed, promote "
            "with --image-digest sha256:... to pin it")  # fmt: skip
