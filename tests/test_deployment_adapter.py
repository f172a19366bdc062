"""The adapter that runs a rendered Deployment's container under podman (tests/support/deployment.py),
checked against what ``kubectl kustomize environments/staging`` renders for a level-2 bake: every field the
real-image test relies on becomes the podman flag it stands for, and a spec it cannot run is refused with
the field named."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from .support.bake import bake
from .support.deployment import SpecError, podman_run
from .test_template_kubernetes import DIGEST, kubectl, released, render  # noqa: F401 - kubectl is a fixture

pytestmark = pytest.mark.slow  # it bakes the template


@pytest.fixture(scope="module")
def documents(tmp_path_factory, kubectl) -> list[dict]:  # noqa: F811
    project = bake(tmp_path_factory.mktemp("adapter"), mlops_level="2", gitops_controller="none")
    released(project)
    return render(kubectl, project / "environments" / "staging")


def _container(documents: list[dict]) -> dict:
    return next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _pairs(flags: tuple[str, ...], name: str) -> list[str]:
    return [flags[i + 1] for i, flag in enumerate(flags) if flag == name]


def test_the_rendered_container_becomes_podman_flags(documents, tmp_path: Path) -> None:
    spec = podman_run(documents, port=43117, volumes={"inference-log": tmp_path})
    assert spec.image == f"ghcr.io/your-org/customer-churn@{DIGEST}"
    assert spec.args == ("serve", "--host", "0.0.0.0", "--port", "43117")  # the free port, not 3000
    assert (spec.readiness_path, spec.liveness_path) == ("/readyz", "/livez")
    flags = spec.flags
    assert _pairs(flags, "--user") == ["1034:1034"] and _pairs(flags, "--group-add") == ["1034"]
    assert "--read-only" in flags and "--read-only-tmpfs=false" in flags
    assert _pairs(flags, "--security-opt") == ["no-new-privileges"] and _pairs(flags, "--cap-drop") == ["ALL"]
    assert _pairs(flags, "--tmpfs") == ["/tmp:rw,mode=1777,size=256m"]
    assert _pairs(flags, "--volume") == [f"{tmp_path}:/var/log/gitops-ml:rw"]
    assert _pairs(flags, "--network") == ["host"] and "--entrypoint" not in flags  # the image's entrypoint
    # The ConfigMap's values; the optional Secret nobody gave is left out, as the kubelet leaves it out.
    assert spec.env == {"GITOPS_ML_INFERENCE_LOG": "/var/log/gitops-ml/inference", "BENTOML_DO_NOT_TRACK": "True",
                        "DO_NOT_TRACK": "1", "OMP_NUM_THREADS": "1",
                        "BENTOML_HOME": "/tmp/bentoml"}  # the Deployment's env, after the ConfigMap's  # fmt: skip
    assert _pairs(flags, "--env") == [f"{k}={v}" for k, v in spec.env.items()]
    argv = spec.argv("x")
    assert argv[:4] == ["podman", "run", "--detach", "--name"] and argv[-6:] == [spec.image, *spec.args]


def test_without_a_bound_folder_an_empty_dir_is_a_tmpfs(documents) -> None:
    spec = podman_run(documents, port=43117)
    assert _pairs(spec.flags, "--tmpfs") == ["/tmp:rw,mode=1777,size=256m", "/var/log/gitops-ml:rw,mode=1777,size=1g"]


def test_a_given_secret_is_read_after_the_config_map_and_wins(documents) -> None:
    secret = {"GITOPS_ML_INFERENCE_LOG": "s3://bucket/prefix", "AWS_ACCESS_KEY_ID": "id"}
    spec = podman_run(documents, port=1, secrets={"customer-churn-inference-log": secret})
    assert spec.env["GITOPS_ML_INFERENCE_LOG"] == "s3://bucket/prefix" and spec.env["AWS_ACCESS_KEY_ID"] == "id"


def test_env_and_command_are_carried_over(documents) -> None:
    changed = copy.deepcopy(documents)
    container = _container(changed)
    container["command"] = ["/bin/entry", "now"]
    container["env"] = [{"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "customer-churn-serving",
                                                                        "key": "OMP_NUM_THREADS"}}},
                        {"name": "OMP_NUM_THREADS", "value": "2"}]  # fmt: skip
    spec = podman_run(changed, port=1)
    assert _pairs(spec.flags, "--entrypoint") == ['["/bin/entry", "now"]']
    assert (spec.env["A"], spec.env["B"], spec.env["OMP_NUM_THREADS"]) == ("1", "1", "2")  # env over envFrom


@pytest.mark.parametrize(
    ("change", "bound", "said"),
    [
        (lambda c, p: p["securityContext"].update(runAsUser=0), {}, "runAsNonRoot' is true but runAsUser is 0"),
        (lambda c, p: c.update(args=["serve"]), {}, "field 'args' ['serve'] has no '--port 3000'"),
        (
            lambda c, p: c["readinessProbe"]["httpGet"].update(port=8080),
            {},
            "field 'readinessProbe.httpGet.port' 8080 is not the container's port 3000",
        ),
        (
            lambda c, p: c["envFrom"][1]["secretRef"].pop("optional"),
            {},
            "field 'envFrom[1].secretRef' names 'customer-churn-inference-log', which nobody provides",
        ),
        (
            lambda c, p: c.update(env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
            {},
            "field 'env[0].valueFrom'",
        ),
        (lambda c, p: None, {"cache": Path("/tmp")}, "the test binds ['cache'], volumes the pod does not have"),
        (
            lambda c, p: (
                p["volumes"][0].update(emptyDir=None, hostPath={"path": "/x"}) or p["volumes"][0].pop("emptyDir")
            ),
            {},
            "volume 'tmp' is not an emptyDir",
        ),
    ],
    ids=["root", "no-port-arg", "probe-port", "missing-secret", "field-ref", "unknown-volume", "host-path"],
)
def test_a_spec_it_cannot_run_is_refused_naming_the_field(documents, change, bound, said) -> None:
    changed = copy.deepcopy(documents)
    pod = next(d for d in changed if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    change(pod["containers"][0], pod)
    with pytest.raises(SpecError) as refused:
        podman_run(changed, port=1, volumes=bound)
    assert said in str(refused.value)
    assert str(refused.value).startswith("Deployment customer-churn: container 'customer-churn'")
