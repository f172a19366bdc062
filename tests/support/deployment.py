"""A rendered Deployment's container, as ``podman run`` flags: the image runs here as the pod would run it.

What is carried over: the image, ``command`` (the entrypoint) and ``args``, the environment (``envFrom``
then ``env``, as Kubernetes orders them; ConfigMap values from the rendered ConfigMap, Secret values from
the test, an optional Secret that is not given is left out as Kubernetes leaves it out), the user and group
(pod ``securityContext`` overlaid by the container's), ``runAsNonRoot``, ``readOnlyRootFilesystem``,
``allowPrivilegeEscalation: false`` and dropped capabilities, and the volumes (an ``emptyDir`` is a tmpfs
unless the test binds a host folder in its place, to read what the container wrote there).

What is not: resource limits (cgroups here are hybrid v1/v2, where podman's limits are not the kubelet's)
and the network. The container shares the host's network (CONTAINERS.md), so the port the container
listens on is a port of this machine: the ``--port <containerPort>`` in ``args`` is replaced by a free
port, and the probes are read against it. A spec that sets its port some other way is refused, since
then two runs on one machine would collide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class SpecError(ValueError):
    """The Deployment cannot be run as given: the message names the field."""


@dataclass(frozen=True)
class PodmanRun:
    """``podman run`` of one container of a Deployment."""

    image: str
    flags: tuple[str, ...]  # everything between ``podman run`` and the image
    args: tuple[str, ...]  # after the image: the container's args (``command`` is ``--entrypoint``)
    port: int  # where the container listens, on this machine
    readiness_path: str
    liveness_path: str | None
    env: dict[str, str]

    def argv(self, name: str) -> list[str]:
        return ["podman", "run", "--detach", "--name", name, *self.flags, self.image, *self.args]


def deployment_of(documents: list[dict]) -> dict:
    found = [d for d in documents if d.get("kind") == "Deployment"]
    if len(found) != 1:
        raise SpecError(f"the rendered objects hold {len(found)} Deployments, not one")
    return found[0]


def podman_run(documents: list[dict], port: int, secrets: dict[str, dict[str, str]] | None = None,
               volumes: dict[str, Path] | None = None, image: str | None = None) -> PodmanRun:  # fmt: skip
    """The first container of the one Deployment in ``documents`` (``kubectl kustomize`` output).

    ``port``: the free port it listens on here. ``secrets``: Secret name -> its data. ``volumes``: volume
    name -> host folder bound in its place. ``image``: another reference to run instead of the spec's.
    """
    deployment = deployment_of(documents)
    pod = deployment["spec"]["template"]["spec"]
    containers = pod.get("containers") or []
    if not containers:
        raise SpecError("Deployment: field 'spec.template.spec.containers' is empty")
    container = containers[0]
    where = f"Deployment {deployment['metadata']['name']}: container {container.get('name')!r}"
    container_port = listening_port(container, where)
    env = environment(container, config_maps(documents), secrets or {}, where)
    flags = [
        *user_flags(pod.get("securityContext") or {}, container.get("securityContext") or {}, where),
        *volume_flags(pod, container, volumes or {}, where),
        *[flag for name, value in env.items() for flag in ("--env", f"{name}={value}")],
        "--network", "host",
    ]  # fmt: skip
    if container.get("command"):
        flags += ["--entrypoint", json.dumps(container["command"])]
    return PodmanRun(
        image=image or container["image"],
        flags=tuple(flags),
        args=tuple(moved_port(container.get("args") or [], container_port, port, where)),
        port=port,
        readiness_path=probe_path(container, "readinessProbe", container_port, where),
        liveness_path=probe_path(container, "livenessProbe", container_port, where)
        if container.get("livenessProbe") else None,
        env=env,
    )  # fmt: skip


def listening_port(container: dict, where: str) -> int:
    ports = container.get("ports") or []
    if len(ports) != 1 or "containerPort" not in ports[0]:
        raise SpecError(f"{where}: field 'ports' must list exactly one containerPort, it has {ports!r}")
    return int(ports[0]["containerPort"])


def moved_port(args: list[str], container_port: int, port: int, where: str) -> list[str]:
    """``args`` listening on ``port`` instead of ``container_port`` (``--port N`` or ``--port=N``)."""
    moved, found = [], False
    for i, arg in enumerate(args):
        if arg == str(container_port) and i > 0 and args[i - 1] == "--port":
            moved.append(str(port))
            found = True
        elif arg == f"--port={container_port}":
            moved.append(f"--port={port}")
            found = True
        else:
            moved.append(arg)
    if not found:
        raise SpecError(f"{where}: field 'args' {args!r} has no '--port {container_port}': on the host's network "
                        "the test must move the port, and cannot")  # fmt: skip
    return moved


def probe_path(container: dict, probe: str, container_port: int, where: str) -> str:
    get = (container.get(probe) or {}).get("httpGet")
    if not get or "path" not in get:
        raise SpecError(f"{where}: field '{probe}.httpGet.path' is missing")
    named = {p.get("name"): p["containerPort"] for p in container.get("ports") or [] if p.get("name")}
    target = named.get(get.get("port"), get.get("port"))
    if target != container_port:
        raise SpecError(f"{where}: field '{probe}.httpGet.port' {get.get('port')!r} is not the container's port "
                        f"{container_port}")  # fmt: skip
    return get["path"]


def config_maps(documents: list[dict]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data") or {} for d in documents if d.get("kind") == "ConfigMap"}


def environment(container: dict, maps: dict[str, dict[str, str]], secrets: dict[str, dict[str, str]],
                where: str) -> dict[str, str]:  # fmt: skip
    """``envFrom`` first, then ``env`` over it: the order in which Kubernetes resolves them."""
    sources = {"configMapRef": maps, "secretRef": secrets}
    env: dict[str, str] = {}
    for i, reference in enumerate(container.get("envFrom") or []):
        [(kind, ref)] = [(k, v) for k, v in reference.items() if k in sources]
        data = sources[kind].get(ref["name"])
        if data is None:
            if ref.get("optional"):
                continue  # Kubernetes starts the pod without it
            raise SpecError(f"{where}: field 'envFrom[{i}].{kind}' names {ref['name']!r}, which nobody provides")
        env.update({f"{reference.get('prefix', '')}{k}": str(v) for k, v in data.items()})
    for i, item in enumerate(container.get("env") or []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item.get("valueFrom") or {}
        [(kind, ref)] = [(k, v) for k, v in source.items()] or [("", {})]
        if kind not in ("configMapKeyRef", "secretKeyRef"):
            raise SpecError(f"{where}: field 'env[{i}].valueFrom' {source!r}: only ConfigMap and Secret keys run here")
        data = (maps if kind == "configMapKeyRef" else secrets).get(ref["name"], {})
        if ref["key"] in data:
            env[item["name"]] = str(data[ref["key"]])
        elif not ref.get("optional"):
            raise SpecError(f"{where}: field 'env[{i}].valueFrom.{kind}': {ref['name']}/{ref['key']} is not provided")
    return env


def user_flags(pod_security: dict, container_security: dict, where: str) -> list[str]:
    """Who the container runs as, and what it may not do."""
    security = {**pod_security, **container_security}
    uid, gid = security.get("runAsUser"), security.get("runAsGroup")
    if security.get("runAsNonRoot") and (uid is None or int(uid) == 0):
        # The kubelet refuses to start it (a name or root cannot be checked as non-root): so does the test.
        raise SpecError(f"{where}: field 'securityContext.runAsNonRoot' is true but runAsUser is {uid!r}")
    flags = []
    if uid is not None:
        flags += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
    if "fsGroup" in pod_security:
        flags += ["--group-add", str(pod_security["fsGroup"])]
    if security.get("readOnlyRootFilesystem"):
        # Only what the spec mounts is writable, as in the pod: no tmpfs of podman's own choosing.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    if security.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    capabilities = security.get("capabilities") or {}
    flags += [f for cap in capabilities.get("drop") or [] for f in ("--cap-drop", cap)]
    flags += [f for cap in capabilities.get("add") or [] for f in ("--cap-add", cap)]
    return flags


def volume_flags(pod: dict, container: dict, bound: dict[str, Path], where: str) -> list[str]:
    """Each mount: a host folder the test binds, else an ``emptyDir`` as a tmpfs."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    unknown = set(bound) - volumes.keys()
    if unknown:
        raise SpecError(f"{where}: the test binds {sorted(unknown)}, volumes the pod does not have")
    flags = []
    for i, mount in enumerate(container.get("volumeMounts") or []):
        volume = volumes.get(mount["name"])
        if volume is None:
            raise SpecError(f"{where}: field 'volumeMounts[{i}].name' {mount['name']!r} is no volume of the pod")
        mode = "ro" if mount.get("readOnly") else "rw"
        if mount["name"] in bound:
            flags += ["--volume", f"{bound[mount['name']]}:{mount['mountPath']}:{mode}"]
        elif "emptyDir" in volume:
            size = (volume["emptyDir"] or {}).get("sizeLimit")
            options = ",".join([mode, "mode=1777", *([f"size={tmpfs_size(size)}"] if size else [])])
            flags += ["--tmpfs", f"{mount['mountPath']}:{options}"]
        else:
            raise SpecError(f"{where}: volume {mount['name']!r} is not an emptyDir: bind a host folder for it")
    return flags


def tmpfs_size(quantity: str) -> str:
    """A Kubernetes quantity (256Mi, 1Gi) as tmpfs's size= (256m, 1g)."""
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    for suffix, unit in units.items():
        if quantity.endswith(suffix):
            return quantity.removesuffix(suffix) + unit
    return quantity
