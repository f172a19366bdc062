"""Offline checks of every level-2 bake's Kubernetes manifests (issue 14 items 1, 2 and 5).

Each bake gets, per environment, the overlay ``gitops-ml promote`` writes for a release with a digest;
``kubectl kustomize environments/<env>`` must render it (kubectl has kustomize built in; a machine
without kubectl fails here with a message saying so, it does not skip). The rendered objects validate
against the Kubernetes 1.32 API schemas that ``kubernetes-validate`` ships (kubectl here is 1.32), strict
(unknown fields refused); the Argo CD and Flux objects against the CRD schemas in ``tests/schemas/``.
Then the policy every rendered environment must meet: probes on /livez and /readyz, a digest and never a
mutable tag, no root, no privilege escalation, resources set, and the digest that release.yaml pins.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml

from gitops_ml.config import load_spec
from gitops_ml.release import dump_manifest, kubernetes
from gitops_ml.release.manifest import Gates, ReleaseManifest

from .support.bake import bake, files_of, template_facts

KUBERNETES_VERSION = "1.32.0"  # kubectl's minor version on these machines
SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("argoproj.io/v1alpha1", "Application"): "argocd-application.json",
    ("source.toolkit.fluxcd.io/v1", "GitRepository"): "flux-gitrepository.json",
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): "flux-kustomization.json",
}
DIGEST = "sha256:" + "ab" * 32
CONTROLLERS = template_facts()["gitops_controller"]


@pytest.fixture(scope="module")
def kubectl() -> str:
    found = kubernetes.kubectl()
    if found is None:
        pytest.fail("kubectl is not on PATH: these checks render every overlay with `kubectl kustomize` (kubectl "
                    "1.32 with kustomize 5.5 is on the project's machines; apt or the Kubernetes release binaries "
                    "install it)")  # fmt: skip
    return found


def release_of(spec, env: str, version: int = 3, digest: str | None = DIGEST) -> ReleaseManifest:
    """A release as promote writes it; only the fields the overlay reads matter here."""
    tag = f"{spec.model_name}:v{version}-0123456789ab"
    return ReleaseManifest(
        schema_version=1, environment=env, model_name=spec.model_name, version=version,
        model_uri=f"models:/{spec.model_name}/{version}", logged_model_uri="models:/m-0123abcd",
        artifact_sha256="0" * 64, run_id="run", git_commit="", data_fingerprint="f" * 64, metrics={},
        gates=Gates(passed=True, evaluated_against=None, baseline_version=None, results=[]),
        model_card=f"model_cards/{spec.model_name}-v{version}.md", bento_tag=tag,
        image=f"{spec.release.image_repository}:v{version}-0123456789ab", image_digest=digest,
        promoted_from="registry" if env == spec.release.environments[0] else spec.release.environments[0],
        promoted_at="2026-12-01T00:00:00Z", replaces=None,
    )  # fmt: skip


def released(project: Path) -> dict[str, ReleaseManifest]:
    """Each environment of the bake released, with release.yaml and the overlay promote writes beside it."""
    spec = load_spec(project)
    releases = {}
    for env in spec.release.environments:
        manifest = release_of(spec, env)
        (project / "environments" / env / "release.yaml").write_text(dump_manifest(manifest))
        overlay = kubernetes.dump_overlay(kubernetes.overlay_document(spec, manifest))
        kubernetes.overlay_path(spec, env).write_text(overlay)
        releases[env] = manifest
    return releases


@pytest.fixture(scope="module", params=CONTROLLERS)
def level2(request, tmp_path_factory) -> tuple[str, Path, dict[str, ReleaseManifest]]:
    project = bake(tmp_path_factory.mktemp(f"k8s-{request.param}"), mlops_level="2", gitops_controller=request.param)
    return request.param, project, released(project)


def render(kubectl: str, folder: Path) -> list[dict]:
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"kubectl kustomize {folder}: {done.stderr}"
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def kubernetes_problems(documents: list[dict]) -> list[str]:
    problems = []
    for document in documents:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            problems.append(f"{document['kind']} {document['metadata'].get('name')}: {where}: {exc.message}")
    return problems


def crd_problems(documents: list[dict]) -> list[str]:
    resources = [
        (f"https://schemas.gitops-ml.test/{p.name}", referencing.Resource.from_contents(json.loads(p.read_text())))
        for p in SCHEMAS.glob("*.json")
    ]
    registry = referencing.Registry().with_resources(resources)
    problems = []
    for document in documents:
        name = CRD_SCHEMAS.get((document.get("apiVersion"), document.get("kind")))
        if name is None:
            problems.extend(kubernetes_problems([document]))  # a Namespace beside the GitRepository
            continue
        schema = registry.contents(f"https://schemas.gitops-ml.test/{name}")
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        for error in validator.iter_errors(document):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{document['kind']} {document['metadata'].get('name')}: {where}: {error.message}")
    return problems


ENVIRONMENT_KINDS = ("Service", "ServiceAccount", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap")


def policy_problems(documents: list[dict], manifest: ReleaseManifest, needs: tuple[str, ...] = ENVIRONMENT_KINDS
                    ) -> list[str]:  # fmt: skip
    """What a rendered environment must hold, whatever else it does."""
    problems = []
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    if not deployments:
        return ["no Deployment"]
    kinds = {d["kind"] for d in documents}
    for kind in needs:
        if kind not in kinds:
            problems.append(f"no {kind}")
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        for container in pod["containers"]:
            name = container["name"]
            security = {**pod_security, **container.get("securityContext", {})}
            image = container["image"]
            if "@sha256:" not in image:
                problems.append(f"{name}: image {image!r} is a mutable tag, not pinned by digest")
            elif image != f"{manifest.image_repository}@{manifest.image_digest}":
                problems.append(f"{name}: image {image!r} is not release.yaml's {manifest.pinned_image}")
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
                if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                    problems.append(f"{name}: no {probe} on {path}")
            if security.get("runAsNonRoot") is not True or security.get("runAsUser", 1) == 0:
                problems.append(f"{name}: may run as root (runAsNonRoot true and a non-zero runAsUser needed)")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if not security.get("readOnlyRootFilesystem"):
                problems.append(f"{name}: the root filesystem is writable")
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(container.get("resources", {}).get(kind, {})):
                    problems.append(f"{name}: no cpu and memory {kind}")
        version = deployment["spec"]["template"]["metadata"]["labels"].get(kubernetes.VERSION_LABEL)
        if version != f"v{manifest.version}":
            problems.append(f"pods labelled version {version!r}, release.yaml says v{manifest.version}")
    return problems


# -- every level-2 bake, every controller ---------------------------------------------------------------
def test_each_environment_renders_validates_and_meets_the_policy(level2, kubectl) -> None:
    _, project, releases = level2
    for env, manifest in releases.items():
        documents = render(kubectl, project / "environments" / env)
        assert kubernetes_problems(documents) == [], env
        assert policy_problems(documents, manifest) == [], env
        hpa = next(d for d in documents if d["kind"] == "HorizontalPodAutoscaler")
        settings = load_spec(project).release.kubernetes.environments[env]
        assert hpa["spec"]["minReplicas"] == settings.min_replicas
        assert hpa["spec"]["maxReplicas"] == settings.max_replicas
        deployment = next(d for d in documents if d["kind"] == "Deployment")
        assert "replicas" not in deployment["spec"], "the autoscaler owns the count"
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["limits"]["memory"] == settings.memory_limit
        env_from = {next(iter(ref)): ref[next(iter(ref))] for ref in container["envFrom"]}
        assert env_from["secretRef"]["name"].endswith("-inference-log"), "storage credentials by secret reference"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        config = next(d for d in documents if d["kind"] == "ConfigMap")
        log = config["data"]["GITOPS_ML_INFERENCE_LOG"]
        assert any(log.startswith(mount + "/") for mount in mounts), "the default log folder is writable"
        # The engine's own check agrees: nothing to say about an overlay promote wrote.
        assert kubernetes.agreement_reasons(load_spec(project), env, manifest) == []


def test_the_controller_manifests_validate_and_point_at_the_environments(level2, kubectl) -> None:
    controller, project, releases = level2
    files = files_of(project)
    if controller == "none":
        assert not [f for f in files if f.startswith(("deploy/argocd/", "deploy/flux/"))]
        return
    folder = project / "deploy" / controller
    documents = [d for path in sorted(folder.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]
    assert crd_problems(documents) == []
    slug = project.name
    if controller == "argocd":
        applications = {d["spec"]["source"]["path"]: d for d in documents if d["kind"] == "Application"}
        assert set(applications) == {f"environments/{env}" for env in releases}
        for application in applications.values():
            assert application["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
            assert application["spec"]["source"]["repoURL"] == f"https://github.com/your-org/{slug}.git"
            assert application["spec"]["source"]["targetRevision"] == "main"
    else:
        [repository] = [d for d in documents if d["kind"] == "GitRepository"]
        assert repository["spec"]["url"] == f"https://github.com/your-org/{slug}"
        kustomizations = {d["spec"]["path"]: d for d in documents if d["kind"] == "Kustomization"}
        assert set(kustomizations) == {f"./environments/{env}" for env in releases}
        for kustomization in kustomizations.values():
            assert kustomization["spec"]["prune"] is True
            source = {"kind": "GitRepository", "name": repository["metadata"]["name"]}
            assert kustomization["spec"]["sourceRef"] == source
            namespace = kustomization["spec"]["targetNamespace"]
            assert {"kind": "Namespace", "name": namespace} in [
                {"kind": d["kind"], "name": d["metadata"]["name"]} for d in documents
            ]
    readme = " ".join((project / "README.md").read_text().split())
    assert f"deploy/{controller}/" in readme and "git revert" in readme


def test_the_readme_says_how_the_rollout_works(level2) -> None:
    controller, project, _ = level2
    readme = " ".join((project / "README.md").read_text().split())
    assert "kustomization.yaml" in readme and "IMAGE_DIGEST=sha256:" in readme and "deploy/kubernetes/base/" in readme
    assert "Promoting to production builds nothing: it copies staging's digest" in readme
    assert "the Deploy workflow builds nothing either" in readme
    assert "the controller syncs the previous digest" in readme


def test_levels_below_2_have_no_kubernetes_manifests(tmp_path) -> None:
    for level in ("0", "1"):
        project = bake(tmp_path / level, mlops_level=level, gitops_controller="flux")
        assert not [f for f in files_of(project) if f.startswith("deploy/")]
        assert load_spec(project).release.kubernetes is None


# -- the checks catch what they are for ------------------------------------------------------------------
@pytest.fixture(scope="module")
def rendered(level2, kubectl) -> tuple[list[dict], ReleaseManifest]:
    _, project, releases = level2
    return render(kubectl, project / "environments" / "production"), releases["production"]


def _container(documents: list[dict]) -> dict:
    return next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _pod(documents: list[dict]) -> dict:
    return next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: _container(d).pop("readinessProbe"), "no readinessProbe on /readyz"),
        (lambda d: _container(d)["livenessProbe"]["httpGet"].update(path="/healthz"), "no livenessProbe on /livez"),
        (lambda d: _container(d).update(image="ghcr.io/your-org/x:v3"), "is a mutable tag"),
        (lambda d: _container(d).update(image="ghcr.io/your-org/x:latest"), "is a mutable tag"),
        (lambda d: _pod(d)["securityContext"].update(runAsUser=0), "may run as root"),
        (lambda d: [c["securityContext"].pop("runAsNonRoot") for c in (_pod(d), _container(d))], "may run as root"),
        (lambda d: _container(d)["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
        (lambda d: _container(d).update(image=_container(d)["image"].replace("ab", "cd")), "is not release.yaml's"),
    ],
    ids=["no-readiness", "liveness-elsewhere", "tag", "latest", "root-uid", "no-non-root", "escalation",
         "other-digest"],
)
def test_the_policy_fails_on(rendered, change, said) -> None:
    documents, manifest = copy.deepcopy(rendered[0]), rendered[1]
    change(documents)
    problems = policy_problems(documents, manifest)
    assert any(said in problem for problem in problems), problems


def test_the_schemas_refuse_an_unknown_field(rendered) -> None:
    documents = copy.deepcopy(rendered[0])
    _container(documents)["readinesProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}}
    assert any("readinesProbe" in p for p in kubernetes_problems(documents))


def test_the_crd_schemas_refuse_a_misspelt_field(tmp_path) -> None:
    project = bake(tmp_path, mlops_level="2", gitops_controller="argocd")
    [application] = yaml.safe_load_all((project / "deploy" / "argocd" / "staging.yaml").read_text())
    application["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    assert any("selfheal" in p for p in crd_problems([application]))


def test_an_overlay_whose_digest_differs_from_release_yaml_fails(level2, kubectl, tmp_path) -> None:
    _, project, releases = level2
    copy_of = shutil.copytree(project, tmp_path / "copy")
    spec = load_spec(copy_of)
    overlay = kubernetes.overlay_path(spec, "staging")
    overlay.write_text(overlay.read_text().replace(DIGEST, "sha256:" + "cd" * 32))
    reasons = kubernetes.agreement_reasons(spec, "staging", releases["staging"])
    assert any("field 'images[0].digest'" in r and "is not release.yaml's image_digest" in r for r in reasons), reasons
    documents = render(kubectl, copy_of / "environments" / "staging")
    assert any("is not release.yaml's" in p for p in policy_problems(documents, releases["staging"]))


# -- a canary bake: the canary's Deployment beside the stable one, behind one Service ----------------------
@pytest.fixture(scope="module", params=[c for c in CONTROLLERS if c != "none"])
def canary_bake(request, tmp_path_factory) -> tuple[str, Path, str]:
    project = bake(tmp_path_factory.mktemp(f"canary-{request.param}"), mlops_level="2",
                   gitops_controller=request.param, release_strategy="canary")  # fmt: skip
    return request.param, project, kubernetes.canary_overlay_path(load_spec(project), "production").read_text()


def test_a_canary_bake_renders_a_second_deployment_that_shares_the_service(canary_bake, kubectl) -> None:
    controller, project, baked = canary_bake
    spec = load_spec(project)
    assert baked == kubernetes.dump_canary_overlay(spec, None)  # the bake's empty folder is what abort writes
    assert render(kubectl, project / "environments/production/canary") == []
    releases = released(project)
    candidate = release_of(spec, "production", version=4, digest="sha256:" + "cd" * 32)
    (project / "environments/production/canary.yaml").write_text(dump_manifest(candidate))
    kubernetes.canary_overlay_path(spec, "production").write_text(kubernetes.dump_canary_overlay(spec, candidate))
    canary = render(kubectl, project / "environments/production/canary")
    assert kubernetes_problems(canary) == []
    assert policy_problems(canary, candidate, needs=()) == []
    [deployment] = canary
    assert deployment["metadata"]["name"] == f"{project.name}-canary"
    assert deployment["spec"]["replicas"] == kubernetes.canary_replicas(spec, "production") == 1
    stable = render(kubectl, project / "environments/production")
    assert policy_problems(stable, releases["production"]) == []
    assert kubernetes.sharing_reasons(spec, stable, canary) == []
    assert kubernetes.canary_agreement_reasons(spec, "production", candidate) == []
    # the pod template shares the stable one's ConfigMap, Secret and ServiceAccount by name
    pod, stable_pod = (d["spec"]["template"]["spec"] for d in (deployment, next(s for s in stable
                                                                                if s["kind"] == "Deployment")))
    assert pod["serviceAccountName"] == stable_pod["serviceAccountName"]
    assert pod["containers"][0]["envFrom"] == stable_pod["containers"][0]["envFrom"]

    low, high = kubernetes.canary_share(spec, "production")  # the README's numbers are the engine's
    readme = " ".join((project / "README.md").read_text().split())
    assert f"single canary pod gets {low * 100:.0f} % to {high * 100:.0f} % of the requests" in readme
    assert f"deploy/{controller}/production-canary.yaml" in readme

    documents = yaml.safe_load((project / "deploy" / controller / "production-canary.yaml").read_text())
    assert crd_problems([documents]) == []
    if controller == "argocd":
        assert documents["spec"]["source"]["path"] == "environments/production/canary"
        assert documents["spec"]["destination"]["namespace"] == f"{project.name}-production"
        assert documents["spec"]["syncPolicy"]["automated"]["prune"] is True
    else:
        assert documents["spec"]["path"] == "./environments/production/canary"
        assert documents["spec"]["targetNamespace"] == f"{project.name}-production" and documents["spec"]["prune"]


def test_a_direct_bake_has_no_canary_files_but_its_selector_keeps_the_track(level2) -> None:
    _, project, _ = level2
    assert not [f for f in files_of(project) if "canary" in f]
    deployment = yaml.safe_load((project / "deploy/kubernetes/base/deployment.yaml").read_text())
    assert deployment["spec"]["selector"]["matchLabels"][kubernetes.TRACK] == "stable"
