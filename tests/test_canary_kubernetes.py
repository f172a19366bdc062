"""The canary as Kubernetes runs it (issue 18 part 3): a second Deployment behind the same Service,
weighted by replicas. A canary promotion writes ``environments/production/canary/kustomization.yaml``
(pinned by the canary's digest) beside ``canary.yaml``; ``verify`` checks it against canary.yaml, renders
it with kubectl, and checks that the two Deployments share the Service without selecting each other's
pods; ``deploy`` moves the alias ``production-canary``; abort and complete empty the folder, and deploy
removes the alias. Real git with a bare remote, real MLflow, a real image registry, real kubectl.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_ml import tracking
from gitops_ml.config import load_spec
from gitops_ml.release import kubernetes

from .support.registry import release_labels
from .test_release import alias, cli, fill_in_card, git, merge, push, repo, snapshot, two_versions  # noqa: F401

NAME = "acme/churn-classifier"
PRODUCTION = "environments/production"
CANARY_OVERLAY = f"{PRODUCTION}/canary/kustomization.yaml"
OTHER = "sha256:" + "7a" * 32
STABLE_PODS = {"app": "churn", "gitops-ml.ai/track": "stable"}
BASE = {
    "kustomization.yaml": {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                           "resources": ["deployment.yaml", "service.yaml", "hpa.yaml"]},
    "deployment.yaml": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "churn-classifier"},
                        "spec": {"selector": {"matchLabels": dict(STABLE_PODS)}, "template": {
                            "metadata": {"labels": dict(STABLE_PODS)},
                            "spec": {"containers": [{"name": "churn-classifier", "image": "churn-classifier"}]}}}},
    "service.yaml": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "churn-classifier"},
                     "spec": {"selector": {"app": "churn"}, "ports": [{"port": 80, "targetPort": 3000}]}},
    "hpa.yaml": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "churn-classifier"},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn-classifier"},
                          "minReplicas": 1, "maxReplicas": 2}},
}  # fmt: skip
# As the template's deploy/kubernetes/canary/ does it: the Deployment alone, renamed, on the canary track.
CANARY_BASE = {
    "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["../base"],
    "nameSuffix": "-canary",
    "labels": [{"pairs": {"gitops-ml.ai/track": "canary"}, "includeSelectors": True}],
    "patches": [{"target": {"kind": "Service|HorizontalPodAutoscaler"},
                 "patch": "$patch: delete\nkind: Any\nmetadata:\n  name: any\n"}],
}  # fmt: skip


@pytest.fixture
def canary_kube(repo: Path, image_registry) -> Path:  # noqa: F811
    """Images in a registry on 127.0.0.1, a Kubernetes base and its canary base, production released by
    canary; v1 stable in staging and production, v2 in staging, each pinned by its pushed digest; all merged."""
    if kubernetes.kubectl() is None:
        pytest.fail("kubectl is not on PATH: verify renders each overlay with `kubectl kustomize`")
    for name, document in BASE.items():
        _write_yaml(repo / "deploy" / "base" / name, document)
    _write_yaml(repo / "deploy" / "canary" / "kustomization.yaml", CANARY_BASE)
    with (repo / "pyproject.toml").open("a") as handle:
        handle.write(f'\n[tool.gitops-ml.release]\nimage_repository = "{image_registry.host}/{NAME}"\n'
                     'strategy = "canary"\ncanary_weight = 0.25\n\n'
                     '[tool.gitops-ml.release.kubernetes]\nbase = "deploy/base"\ncanary_base = "deploy/canary"\n\n'
                     "[tool.gitops-ml.release.kubernetes.environments.production]\nmin_replicas = 3\n"
                     "max_replicas = 6\n")  # fmt: skip
    git(repo, "add", "pyproject.toml", "deploy")
    git(repo, "commit", "--quiet", "-m", "Kubernetes base; production released by canary")
    git(repo, "push", "--quiet", "origin", "main")
    digests = [image_registry.push(NAME, f"v{v}", release_labels(repo, v)) for v in (1, 2)]
    _promote_and_merge(repo, 1, "staging", "--image-digest", digests[0])
    _promote_and_merge(repo, 1, "production")  # the first release of production goes directly
    _promote_and_merge(repo, 2, "staging", "--image-digest", digests[1])
    git(repo, "switch", "--quiet", "main")
    git(repo, "reset", "--quiet", "--hard", "HEAD")
    return repo


def _write_yaml(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _promote_and_merge(repo: Path, version: int, env: str, *options: str) -> dict:  # noqa: F811
    if env == "production":
        fill_in_card(repo, version)
        git(repo, "commit", "--quiet", "-am", f"Complete the card of v{version}")
    code, out, promoted = cli(repo, "promote", str(version), "--to", env, "--branch", "--json", *options)
    assert code == 0, out
    push(repo, promoted["branch"])
    code, out, verified = cli(repo, "verify", "--base", "origin/main", "--json")
    assert code == 0, out
    merge(repo, promoted["branch"])
    return {**promoted, "verified": verified}


def _rendered(root: Path, folder: str) -> list[dict]:
    documents, problem = kubernetes.render(root / folder)
    assert problem is None, problem
    return documents


def test_a_canary_runs_as_a_second_deployment_behind_the_service_then_ends(canary_kube: Path) -> None:
    root = canary_kube
    code, out, _ = cli(root, "deploy", "production")
    assert code == 0, out
    assert alias(root, "production") == 1 and alias(root, "production-canary") is None

    # v2 to production: canary.yaml and the canary's overlay, release.yaml and the stable overlay untouched
    stable = (f"{PRODUCTION}/release.yaml", f"{PRODUCTION}/kustomization.yaml")
    stable_files = {p: (root / p).read_text() for p in stable}
    promoted = _promote_and_merge(root, 2, "production")
    assert promoted["canary"] and promoted["overlay_path"].endswith(CANARY_OVERLAY)
    assert {p: (root / p).read_text() for p in stable_files} == stable_files
    canary_release = yaml.safe_load((root / PRODUCTION / "canary.yaml").read_text())
    overlay = yaml.safe_load((root / CANARY_OVERLAY).read_text())
    assert overlay["resources"] == ["../../../deploy/canary"]
    assert overlay["images"][0]["digest"] == canary_release["image_digest"]
    # 1 canary pod beside 3 to 6 stable ones: 14 % to 25 % of the requests, canary_weight 0.25 included
    assert overlay["replicas"] == [{"name": "churn-classifier-canary", "count": 1}]
    body = Path(promoted["body_file"]).read_text()
    assert "starts as a **canary** beside v1" in body and "14% to 25% of the requests" in body, body
    assert promoted["verified"]["notices"] == []

    canary = _rendered(root, f"{PRODUCTION}/canary")
    [deployment] = canary  # the Deployment alone: the Service and the autoscaler are the stable overlay's
    assert deployment["metadata"]["name"] == "churn-classifier-canary" and deployment["spec"]["replicas"] == 1
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    assert pods["gitops-ml.ai/track"] == "canary" and pods["app.kubernetes.io/version"] == "v2"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(canary_release["image_digest"])
    stable = _rendered(root, PRODUCTION)
    [service] = [d for d in stable if d["kind"] == "Service"]
    assert all(pods.get(k) == v for k, v in service["spec"]["selector"].items())  # the Service reaches both
    [stable_deployment] = [d for d in stable if d["kind"] == "Deployment"]
    assert stable_deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "v1"

    code, out, deployed = cli(root, "deploy", "production", "--json")
    assert code == 0, out
    assert (alias(root, "production"), alias(root, "production-canary")) == (1, 2)
    assert deployed["canary_version"] == 2 and deployed["canary_alias_changed"]
    code, out, _ = cli(root, "deploy", "production")  # again: nothing moves
    assert code == 0 and "alias 'production-canary' already at v2 (the canary)" in out, out
    # the canary's alias moved by hand: the scheduled reconcile puts it back where canary.yaml says
    spec = load_spec(root)
    tracking.connect(spec).set_registered_model_alias(spec.model_name, "production-canary", "1")
    code, out, reconciled = cli(root, "reconcile", "--json")
    assert code == 0, out
    rows = {c["env"]: (c["alias_before"], c["alias_after"], c["action"]) for c in reconciled["environments"]}
    assert rows["production-canary"] == (1, 2, "moved") and rows["production"] == (1, 1, "in sync")

    # abort: canary.yaml goes and the folder is emptied (the controller prunes the Deployment); alias removed
    code, out, aborted = cli(root, "canary", "abort", "--branch", "--json")
    assert code == 0, out
    changed = sorted(git(root, "show", "--name-status", "--format=", "HEAD").splitlines())
    assert changed == [f"D\t{PRODUCTION}/canary.yaml", f"M\t{CANARY_OVERLAY}"]
    assert _rendered(root, f"{PRODUCTION}/canary") == []
    push(root, aborted["branch"])
    code, out, verified = cli(root, "verify", "--base", "origin/main", "--json")
    assert code == 0 and [c["change"] for c in verified["checks"]] == ["removal"], out
    merge(root, aborted["branch"])
    code, out, deployed = cli(root, "deploy", "production", "--json")
    assert code == 0, out
    assert (alias(root, "production"), alias(root, "production-canary")) == (1, None)
    assert deployed["canary_version"] is None and deployed["canary_alias_changed"]
    code, out, reconciled = cli(root, "reconcile", "--json")  # no canary, no alias: nothing to re-assert
    assert code == 0 and "production-canary" not in {c["env"] for c in reconciled["environments"]}, out


def test_complete_makes_the_canary_the_stable_release_and_its_overlay(canary_kube: Path) -> None:
    root = canary_kube
    _promote_and_merge(root, 2, "production")
    digest = yaml.safe_load((root / PRODUCTION / "canary.yaml").read_text())["image_digest"]
    code, out, completed = cli(root, "canary", "complete", "--branch", "--json")
    assert code == 0, out
    changed = sorted(git(root, "show", "--name-status", "--format=", "HEAD").splitlines())
    assert changed == [f"D\t{PRODUCTION}/canary.yaml", f"M\t{CANARY_OVERLAY}", f"M\t{PRODUCTION}/kustomization.yaml",
                       f"M\t{PRODUCTION}/release.yaml"]  # fmt: skip
    [stable] = [d for d in _rendered(root, PRODUCTION) if d["kind"] == "Deployment"]
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"].endswith(digest)
    assert stable["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "v2"
    push(root, completed["branch"])
    assert cli(root, "verify", "--base", "origin/main")[0] == 0
    merge(root, completed["branch"])
    code, out, _ = cli(root, "deploy", "production")
    assert code == 0, out
    assert (alias(root, "production"), alias(root, "production-canary")) == (2, None)


def _edit(root: Path, path: str, change) -> None:
    document = yaml.safe_load((root / path).read_text())
    change(document)
    (root / path).write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.mark.parametrize(
    ("path", "change", "said"),
    [
        (CANARY_OVERLAY, lambda d: d["images"][0].update(digest=OTHER),
         f"{CANARY_OVERLAY}: field 'images[0].digest': {OTHER} is not canary.yaml's image_digest"),
        (CANARY_OVERLAY, lambda d: d["labels"][0]["pairs"].update({"app.kubernetes.io/version": "v1"}),
         "field 'labels.pairs.app.kubernetes.io/version': 'v1' is not canary.yaml's version 'v2'"),
        (CANARY_OVERLAY, lambda d: d.pop("replicas"),
         "field 'replicas': no count of at least 1 for the Deployment 'churn-classifier-canary'"),
        ("deploy/canary/kustomization.yaml", lambda d: d.pop("patches"),
         "renders Service 'churn-classifier-canary': the canary folder renders its Deployment alone"),
        ("deploy/base/deployment.yaml", lambda d: [d["spec"]["selector"]["matchLabels"].pop("gitops-ml.ai/track"),
                                                   d["spec"]["template"]["metadata"]["labels"].pop("gitops-ml.ai/track")],
         "the stable Deployment 'churn-classifier' selects the canary's pods too"),
        ("deploy/base/service.yaml", lambda d: d["spec"]["selector"].update({"gitops-ml.ai/track": "stable"}),
         "does not select the canary's pods: it would get no traffic"),
    ],
    ids=["other-digest", "version-label", "no-replicas", "renders-the-service", "overlapping-selectors",
         "service-misses-the-canary"],
)  # fmt: skip
def test_verify_refuses_a_canary_overlay_that_disagrees_naming_file_and_field(canary_kube: Path, path, change,
                                                                              said) -> None:  # fmt: skip
    root = canary_kube
    fill_in_card(root, 2)
    git(root, "commit", "--quiet", "-am", "Complete the card of v2")
    assert cli(root, "promote", "2", "--to", "production", "--branch")[0] == 0
    _edit(root, path, change)
    git(root, "commit", "--quiet", "-am", "Edit by hand")
    code, out, verified = cli(root, "verify", "--base", "origin/main", "--json")
    assert code == 1 and any(said in " ".join(r.split()) for r in verified["reasons"]), out


def test_an_overlay_left_behind_without_canary_yaml_is_refused_and_deploy_moves_nothing(canary_kube: Path) -> None:
    root = canary_kube
    _promote_and_merge(root, 2, "production")
    assert cli(root, "deploy", "production")[0] == 0
    # the canary's overlay alone edited on a branch (canary.yaml as main has it): still checked against it
    git(root, "switch", "--quiet", "-c", "edit-overlay")
    _edit(root, CANARY_OVERLAY, lambda d: d["images"][0].update(digest=OTHER))
    git(root, "commit", "--quiet", "-am", "Another digest by hand")
    code, out, verified = cli(root, "verify", "--base", "origin/main", "--json")
    assert code == 1 and [(c["path"], c["change"], c["version"]) for c in verified["checks"]] == [
        (CANARY_OVERLAY, "overlay", 2)], out
    assert f"field 'images[0].digest': {OTHER} is not canary.yaml's image_digest" in out, out
    git(root, "switch", "--quiet", "main")
    git(root, "switch", "--quiet", "-c", "by-hand")
    git(root, "rm", "--quiet", f"{PRODUCTION}/canary.yaml")  # canary.yaml removed, its Deployment left running
    git(root, "commit", "--quiet", "-m", "Remove canary.yaml by hand")
    push(root, "by-hand")
    code, out, verified = cli(root, "verify", "--base", "origin/main", "--json")
    assert code == 1 and f"{CANARY_OVERLAY}: field 'resources'" in out and "must list none" in out, out

    # a canary.yaml naming a version whose image is not in the registry: deploy refuses, no alias moves
    git(root, "switch", "--quiet", "main")
    _edit(root, f"{PRODUCTION}/canary.yaml", lambda d: d.update(image_digest=OTHER, image=d["image"]))
    git(root, "commit", "--quiet", "-am", "A digest nobody pushed")
    before = snapshot(root)
    code, out, _ = cli(root, "deploy", "production")
    assert code == 1 and f"{PRODUCTION}/canary.yaml: " in out and "image_digest" in out, out
    assert (alias(root, "production"), alias(root, "production-canary")) == (1, 2)
    assert snapshot(root) == before


def test_the_canary_folder_of_a_spec_that_asks_a_finer_split_than_pods_give_gets_a_notice(canary_kube: Path) -> None:
    def weighted(weight: float):
        spec = load_spec(canary_kube)
        return spec.model_copy(update={"release": spec.release.model_copy(update={"canary_weight": weight})})

    assert kubernetes.canary_share_notice(weighted(0.25), "production") is None
    spec = weighted(0.05)  # 1 pod beside 3-6 is 14 %-25 %: more than asked
    notice = kubernetes.canary_share_notice(spec, "production")
    assert notice and "get 14%-25% of production's requests, not canary_weight = 0.05" in notice
    spec = weighted(0.5)  # half: 3 canary pods beside 3-6 stable ones
    assert kubernetes.canary_replicas(spec, "production") == 3
    assert kubernetes.canary_share(spec, "production") == (1 / 3, 1 / 2)
