"""The running service as desired state: ``environments/<env>/kustomization.yaml`` beside ``release.yaml``.

A project that sets ``[tool.gitops-ml.release.kubernetes]`` keeps a kustomize base of its service
(``deploy/kubernetes/base/``: Deployment, Service, ...). ``promote`` writes, with each release, an
overlay of that base that pins the image by digest and labels every object with the version; Argo CD
or Flux syncs it. ``verify`` checks that the overlay and the release agree and that it renders.

The overlay is written only for a release that has an ``image_digest``: a tag can move, a digest
cannot, and without one there is nothing the controller could run that is known to be this release.

A canary (``strategy = "canary"``) is a second Deployment behind the same Service, weighted by replicas:
``environments/<env>/canary/kustomization.yaml`` overlays ``deploy/kubernetes/canary/`` (the base's
Deployment alone, renamed ``<name>-canary`` and selecting ``gitops-ml.ai/track: canary`` pods) with the
canary's digest and a fixed replica count. It is a sibling of the stable overlay, synced by its own
Argo CD Application or Flux Kustomization, not one of its resources: the stable overlay's version label
and annotations would otherwise be written over the canary's. With no canary it lists no resources, so
the controller prunes the canary Deployment when the second pull request (complete or abort) merges.
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
CANARY_FOLDER = "canary"
TRACK = "gitops-ml.ai/track"
VERSION_LABEL = "app.kubernetes.io/version"
MODEL_VERSION = "gitops-ml.ai/model-version"
BENTO_TAG = "gitops-ml.ai/bento-tag"
ENVIRONMENT = "gitops-ml.ai/environment"
HEADER = (
    "# Kubernetes overlay of this release, written by `gitops-ml promote` with release.yaml beside it.\n"
    "# Argo CD or Flux syncs this folder; kustomize does not read release.yaml. Change it only by\n"
    "# promoting (or reverting the promotion): `gitops-ml verify` checks it agrees with release.yaml.\n"
)
CANARY_HEADER = (
    "# Kubernetes overlay of the canary, written by `gitops-ml promote` with ../canary.yaml beside it and emptied\n"
    "# by `gitops-ml canary complete|abort`. Its own Argo CD Application / Flux Kustomization syncs this folder\n"
    "# (the stable overlay's labels would otherwise overwrite the canary's). `gitops-ml verify` checks it.\n"
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
    document = _pinned_overlay(spec, manifest, base_from_overlay(spec, manifest.environment), workload_name(spec))
    settings = environment_settings(spec, manifest.environment)
    # The autoscaler owns the replica count (a controller that set spec.replicas would fight it).
    document["patches"].append(_json_patch("HorizontalPodAutoscaler", workload_name(spec), [
        {"op": "replace", "path": "/spec/minReplicas", "value": settings.min_replicas},
        {"op": "replace", "path": "/spec/maxReplicas", "value": settings.max_replicas},
    ], sort_keys=False))  # fmt: skip
    return document


def canary_overlay_document(spec: Spec, manifest: ReleaseManifest) -> dict:
    """The canary overlay of ``manifest`` (the canary's release, with a digest): a fixed replica count,
    which with the stable Deployment's pods behind one Service gives the canary its share of requests."""
    env = manifest.environment
    base = os.path.relpath(spec.root / canary_base(spec), canary_overlay_path(spec, env).parent).replace(os.sep, "/")
    document = _pinned_overlay(spec, manifest, base, canary_workload(spec))
    document["replicas"] = [{"name": canary_workload(spec), "count": canary_replicas(spec, env)}]
    return document


def no_canary_document() -> dict:
    """The canary folder while no canary runs: nothing to sync, so the controller prunes the Deployment."""
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": []}


def _pinned_overlay(spec: Spec, manifest: ReleaseManifest, base: str, deployment: str) -> dict:
    """What both overlays set: the base, the version labels and annotations, the digest, the resources."""
    if manifest.image_digest is None:
        raise ValueError("an overlay pins the image by digest: the release has none")
    settings = environment_settings(spec, manifest.environment)
    resources = {
        "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
        "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
    }
    container = "/spec/template/spec/containers/0/resources"
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [base],
        # Selectors are immutable: the version goes on objects and pod templates, never on selectors.
        "labels": [{"pairs": {VERSION_LABEL: f"v{manifest.version}"}, "includeTemplates": True}],
        "commonAnnotations": {
            ENVIRONMENT: manifest.environment,
            MODEL_VERSION: str(manifest.version),
            BENTO_TAG: manifest.bento_tag,
        },
        "images": [
            {"name": workload_name(spec), "newName": manifest.image_repository, "digest": manifest.image_digest}
        ],
        "patches": [
            _json_patch("Deployment", deployment, [{"op": "replace", "path": container, "value": resources}])
        ],
    }


def _json_patch(kind: str, name: str, operations: list[dict], sort_keys: bool = True) -> dict:
    return {"target": {"kind": kind, "name": name},
            "patch": _Block(yaml.safe_dump(operations, sort_keys=sort_keys))}  # fmt: skip


# -- the canary's Deployment ------------------------------------------------------------------------------
def canary_base(spec: Spec) -> str:
    return spec.release.kubernetes.canary_base


def canary_workload(spec: Spec) -> str:
    return f"{workload_name(spec)}-canary"


def canary_overlay_path(spec: Spec, env: str) -> Path:
    return spec.environments_dir / check_environment(spec, env) / CANARY_FOLDER / OVERLAY


def relative_canary_overlay(spec: Spec, env: str) -> str:
    return canary_overlay_path(spec, env).relative_to(spec.root).as_posix()


def canary_replicas(spec: Spec, env: str) -> int:
    """Canary pods for ``canary_weight`` of the requests beside the stable floor: at least one."""
    weight, stable = spec.release.canary_weight, environment_settings(spec, env).min_replicas
    return max(1, round(weight * stable / (1 - weight))) if weight < 1 else stable


def canary_share(spec: Spec, env: str) -> tuple[float, float]:
    """The share of requests the canary's pods get, as the autoscaler moves the stable pods between its
    floor and ceiling (the Service spreads connections evenly over ready pods)."""
    canary, settings = canary_replicas(spec, env), environment_settings(spec, env)
    return canary / (canary + settings.max_replicas), canary / (canary + settings.min_replicas)


def canary_share_notice(spec: Spec, env: str) -> str | None:
    """Said (not failed) when replicas cannot give the share asked: one pod is the smallest step."""
    low, high = canary_share(spec, env)
    weight = spec.release.canary_weight
    if low <= weight <= high:
        return None
    settings = environment_settings(spec, env)
    return (f"the canary's {canary_replicas(spec, env)} pod(s) beside {settings.min_replicas}-{settings.max_replicas} "
            f"stable pods get {low:.0%}-{high:.0%} of {env}'s requests, not canary_weight = {weight:g}: replicas "
            f"split traffic a pod at a time (raise {env}'s min_replicas for a finer split, or route by weight "
            "with Argo Rollouts or a service mesh)")  # fmt: skip


def dump_overlay(document: dict, header: str = HEADER) -> str:
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def dump_canary_overlay(spec: Spec, manifest: ReleaseManifest | None) -> str:
    """The canary folder's kustomization.yaml: ``manifest``'s overlay, or the empty one (None)."""
    if manifest is None:
        return dump_overlay(no_canary_document(), CANARY_HEADER + "# No canary runs: nothing to sync.\n")
    return dump_overlay(canary_overlay_document(spec, manifest), CANARY_HEADER)


# -- checks ----------------------------------------------------------------------------------------------
def agreement_reasons(spec: Spec, env: str, manifest: ReleaseManifest | None) -> list[str]:
    """Every way ``environments/<env>/kustomization.yaml`` disagrees with ``manifest`` (the release beside
    it), each naming the field; then whether it renders and what the rendered Deployment runs."""
    path, shown = overlay_path(spec, env), relative_overlay(spec, env)
    if manifest is None:
        return [f"{shown} is left without a release: remove it with release.yaml (revert the promotion)"] \
            if path.is_file() else []  # fmt: skip
    document, reasons = _read_overlay(path, shown, manifest)
    if document is None:
        return reasons
    reasons = [f"{shown}: {r}" for r in _field_reasons(spec, env, manifest, document, base_from_overlay(spec, env))]
    rendered, problem = render(path.parent)
    if problem:
        return [*reasons, f"{shown}: {problem}"]
    return reasons + [f"{shown}: {r}" for r in rendered_reasons(spec, manifest, rendered, workload_name(spec))]


def canary_agreement_reasons(spec: Spec, env: str, manifest: ReleaseManifest | None) -> list[str]:
    """``environments/<env>/canary/kustomization.yaml`` against the canary ``manifest`` (None: no canary
    runs, and the folder must list nothing): its fields, what it renders, and that the two Deployments
    share the Service without selecting each other's pods."""
    path, shown = canary_overlay_path(spec, env), relative_canary_overlay(spec, env)
    if manifest is None:
        document, reasons = _read_overlay(path, shown, None)
        if document and document.get("resources"):
            reasons.append(f"{shown}: field 'resources': {document['resources']} with no canary.yaml beside "
                           "it: no canary runs, so it must list none (`gitops-ml canary complete|abort` empties "
                           "it)")  # fmt: skip
        return reasons
    document, reasons = _read_overlay(path, shown, manifest, "canary.yaml")
    if document is None:
        return reasons
    base = os.path.relpath(spec.root / canary_base(spec), path.parent).replace(os.sep, "/")
    name = canary_workload(spec)
    fields = _field_reasons(spec, env, manifest, document, base, source="canary.yaml")
    counts = [r.get("count") for r in document.get("replicas") or [] if isinstance(r, dict) and r.get("name") == name]
    if not counts or not isinstance(counts[0], int) or counts[0] < 1:
        fields.append(f"field 'replicas': no count of at least 1 for the Deployment {name!r}: the canary's pods "
                      "are its share of the Service's traffic")  # fmt: skip
    reasons = [f"{shown}: {r}" for r in fields]
    rendered, problem = render(path.parent)
    if problem:
        return [*reasons, f"{shown}: {problem}"]
    reasons += [f"{shown}: {r}" for r in rendered_reasons(spec, manifest, rendered, name, source="canary.yaml")]
    reasons += [f"{shown}: {r}" for r in _canary_only(rendered, name)]
    stable, problem = render(overlay_path(spec, env).parent) if overlay_path(spec, env).is_file() else ([], None)
    if problem:
        return [*reasons, f"{relative_overlay(spec, env)}: {problem}"]
    return reasons + [f"{shown}: {r}" for r in sharing_reasons(spec, stable, rendered)]


def _read_overlay(path: Path, shown: str, manifest: ReleaseManifest | None,
                  source: str = "release.yaml") -> tuple[dict | None, list[str]]:  # fmt: skip
    """The overlay's mapping, or None with why not (a release pinned by digest needs one)."""
    if not path.is_file():
        if manifest is not None and manifest.image_digest is not None:
            return None, [f"{shown} does not exist: {source} pins image digest {manifest.image_digest}; "
                          f"promote again to write the overlay"]  # fmt: skip
        return None, []
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return None, [f"{shown}: not valid YAML: {' '.join(str(exc).split())}"]
    if not isinstance(document, dict):
        return None, [f"{shown}: expected a Kustomization mapping, got {type(document).__name__}"]
    return document, []


def _field_reasons(spec: Spec, env: str, manifest: ReleaseManifest, document: dict, base: str,
                   source: str = "release.yaml") -> list[str]:  # fmt: skip
    reasons = []
    name = workload_name(spec)
    if manifest.image_digest is None:
        reasons.append(f"field 'images': {source} has no image_digest, so there is no digest this overlay "
                       "may pin; promote with --image-digest")  # fmt: skip
    if base not in (document.get("resources") or []):
        reasons.append(f"field 'resources': does not include the base {base}")
    images = [i for i in document.get("images") or [] if isinstance(i, dict) and i.get("name") == name]
    if not images:
        reasons.append(f"field 'images': no entry for the base's image {name!r}: the image must be pinned by digest")
    for index, image in enumerate(document.get("images") or []):
        reasons += _image_reasons(f"images[{index}]", image, name, manifest, source)
    versions = [
        label.get("pairs", {}).get(VERSION_LABEL)
        for label in document.get("labels") or []
        if isinstance(label, dict) and isinstance(label.get("pairs"), dict)
    ]
    expected = f"v{manifest.version}"
    if expected not in versions or any(v is not None and v != expected for v in versions):
        found = next((v for v in versions if v is not None), None)
        reasons.append(f"field 'labels.pairs.{VERSION_LABEL}': {found!r} is not {source}'s version {expected!r}")
    annotations = document.get("commonAnnotations") or {}
    for key, value in ((MODEL_VERSION, str(manifest.version)), (BENTO_TAG, manifest.bento_tag), (ENVIRONMENT, env)):
        if annotations.get(key) != value:
            reasons.append(f"field 'commonAnnotations.{key}': {annotations.get(key)!r} is not {value!r} ({source})")
    return reasons


def _image_reasons(where: str, image: object, name: str, manifest: ReleaseManifest, source: str) -> list[str]:
    if not isinstance(image, dict):
        return [f"field '{where}': expected a mapping"]
    reasons = []
    if "newTag" in image:
        reasons.append(f"field '{where}.newTag': {image['newTag']!r} is a tag, which can move; pin the image "
                       "by digest (digest: sha256:...)")  # fmt: skip
    digest = image.get("digest")
    if digest is None:
        reasons.append(f"field '{where}.digest': missing: the image must be pinned by digest")
    elif not isinstance(digest, str) or not re.fullmatch(IMAGE_DIGEST, digest):
        reasons.append(f"field '{where}.digest': {digest!r} is not a digest sha256:<64 hex digits>")
    elif manifest.image_digest is not None and digest != manifest.image_digest:
        reasons.append(f"field '{where}.digest': {digest} is not {source}'s image_digest {manifest.image_digest}")
    if image.get("name") == name and image.get("newName") != manifest.image_repository:
        reasons.append(f"field '{where}.newName': {image.get('newName')!r} is not {source}'s image "
                       f"repository {manifest.image_repository!r}")  # fmt: skip
    return reasons


def rendered_reasons(spec: Spec, manifest: ReleaseManifest, documents: list[dict], name: str,
                     source: str = "release.yaml") -> list[str]:  # fmt: skip
    """What the rendered overlay runs: every container of Deployment ``name`` on the release's pinned image."""
    deployments = [d for d in documents if d.get("kind") == "Deployment" and d["metadata"].get("name") == name]
    if not deployments:
        return [f"renders no Deployment named {name!r}"]
    reasons = []
    for deployment in deployments:
        pod = deployment.get("spec", {}).get("template", {})
        for container in pod.get("spec", {}).get("containers", []):
            if manifest.pinned_image and container.get("image") != manifest.pinned_image:
                reasons.append(f"the Deployment's container {container.get('name')!r} runs {container.get('image')!r}, "
                               f"not {source}'s {manifest.pinned_image}")  # fmt: skip
        version = pod.get("metadata", {}).get("labels", {}).get(VERSION_LABEL)
        if version != f"v{manifest.version}":
            reasons.append(f"the Deployment's pods are labelled {VERSION_LABEL}={version!r}, not 'v{manifest.version}'")
    return reasons


def _canary_only(documents: list[dict], name: str) -> list[str]:
    """The canary folder renders its Deployment alone, its pods and selector on the canary track: the
    Service, autoscaler and the rest belong to the stable overlay (two controllers would fight over them)."""
    others = [d for d in documents if not (d.get("kind") == "Deployment" and d["metadata"].get("name") == name)]
    reasons = [f"renders {d.get('kind')} {d.get('metadata', {}).get('name')!r}: the canary folder renders its "
               "Deployment alone (the stable overlay owns the rest)" for d in others]  # fmt: skip
    for deployment in (d for d in documents if d.get("kind") == "Deployment"):
        spec = deployment.get("spec", {})
        pods = spec.get("template", {}).get("metadata", {}).get("labels", {})
        if pods.get(TRACK) != "canary" or spec.get("selector", {}).get("matchLabels", {}).get(TRACK) != "canary":
            reasons.append(f"the Deployment's pods and selector must carry {TRACK}: canary (they are labelled "
                           f"{pods.get(TRACK)!r}); deploy/kubernetes/canary/ sets it")  # fmt: skip
    return reasons


def sharing_reasons(spec: Spec, stable: list[dict], canary: list[dict]) -> list[str]:
    """Two Deployments behind one Service: the Service selects both's pods, and neither Deployment (nor
    the stable autoscaler's target) selects the other's, or the stable one would count, scale or adopt them."""

    def pods(documents: list[dict]) -> list[dict]:
        return [d["spec"]["template"]["metadata"].get("labels", {}) for d in documents if d.get("kind") == "Deployment"]

    def selects(selector: dict, labels: dict) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    reasons = []
    stable_pods, canary_pods = pods(stable), pods(canary)
    for service in (d for d in stable if d.get("kind") == "Service"):
        selector = service.get("spec", {}).get("selector") or {}
        if not any(selects(selector, labels) for labels in canary_pods):
            reasons.append(f"the Service {service['metadata']['name']!r} (selector {selector}) does not select the "
                           "canary's pods: it would get no traffic")  # fmt: skip
    for deployment in (d for d in stable if d.get("kind") == "Deployment"):
        selector = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {})
        if any(selects(selector, labels) for labels in canary_pods):
            reasons.append(f"the stable Deployment {deployment['metadata']['name']!r} selects the canary's pods too "
                           f"(selector {selector}): add {TRACK}: stable to the selector and pod labels of "
                           f"{spec.release.kubernetes.base}/deployment.yaml")  # fmt: skip
    for deployment in (d for d in canary if d.get("kind") == "Deployment"):
        selector = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {})
        if any(selects(selector, labels) for labels in stable_pods):
            reasons.append(f"the canary Deployment selects the stable pods too (selector {selector})")
    return reasons


def kubectl() -> str | None:
    return shutil.which(os.environ.get("KUBECTL", "kubectl"))


def render(folder: Path) -> tuple[list[dict], str | None]:
    """``kubectl kustomize <folder>`` (an environment's, or its canary's): the objects, or why it did not render."""
    binary = kubectl()
    if binary is None:
        return [], ("cannot be rendered: kubectl is not on PATH (verify renders each overlay with "
                    "`kubectl kustomize`, built into kubectl since 1.14); install kubectl")  # fmt: skip
    try:
        done = subprocess.run([binary, "kustomize", str(folder)], capture_output=True,
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
