"""Packaging: a registered MLflow version -> the BentoML model store -> a bento (-> a ``.bento`` archive).

The bento holds the engine's service (``service.py`` and the two modules it uses, copied in as the
package ``gitops_ml_service``) and ``bento_config.json``: the model's identity, the request contract
derived from the project's pandera schema, and the ``[tool.gitops-ml.serving]`` settings. Its
version is ``v<model version>-<digest of all of that>``, so packaging the same version with the
same contract, settings and service code again finds the bento already in the store and reuses it.

The BentoML store is ``BENTOML_HOME`` when set, else ``<project>/.bentoml``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import __version__, tracking
from ..config import Spec
from ..data import load_schema
from ..errors import CheckFailed, ConfigError, GitopsMLError
from .contract import derive_contract

SERVICE_PACKAGE = "gitops_ml_service"
SERVICE_MODULES = ("service.py", "contract.py", "inference_log.py")
SERVICE_IMPORT = f"{SERVICE_PACKAGE}.service:ModelService"
CONFIG_FILE = "bento_config.json"
DOCKERFILE = "env/docker/Dockerfile"
# What the service imports at serve time besides BentoML (which the bento always has).
SERVICE_PACKAGES = ("mlflow", "skops", "scikit-learn", "pandas", "orjson")


class PackagingError(GitopsMLError):
    """The bento could not be built or exported: exit 1."""


@dataclass(frozen=True)
class PackageResult:
    bento_tag: str
    model_version: int
    model_tag: str
    archive: str | None
    dockerfile: str

    def as_dict(self) -> dict:
        return asdict(self)


def bentoml_home(spec: Spec) -> Path:
    """``BENTOML_HOME`` if set, else the project's own ``.bentoml`` (git-ignored)."""
    configured = os.environ.get("BENTOML_HOME")
    return Path(configured).expanduser().resolve() if configured else (spec.root / ".bentoml").resolve()


def slug(name: str) -> str:
    """A BentoML tag name: lower case letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-._") or "model"


def package(spec: Spec, version: int | None = None, export_dir: Path | None = None) -> PackageResult:
    """Import ``version`` (default: the newest) into the BentoML store and build its bento; export it
    when ``export_dir`` is given."""
    from .inference_log import missing_driver_message

    # The bento pins the driver the engine has: without it the service could not write its log.
    missing = missing_driver_message(spec.resolve(spec.serving.inference_log))
    if missing:
        raise PackagingError(missing)
    client = tracking.connect(spec)
    found = tracking.get_version(spec, client, version)
    with bentoml_store(bentoml_home(spec)):
        model_tag = import_model(spec, found)
        config = bento_config(spec, found, model_tag)
        bento = build_bento(config)
        dockerfile = Path(bento.path_of(DOCKERFILE))
        if not dockerfile.is_file():
            raise CheckFailed(f"bento {bento.tag}: no generated Dockerfile at {dockerfile}")
        archive = export(bento, export_dir) if export_dir is not None else None
    return PackageResult(bento_tag=str(bento.tag), model_version=found.version, model_tag=model_tag,
                         archive=archive, dockerfile=str(dockerfile))


@contextlib.contextmanager
def bentoml_store(home: Path) -> Iterator[Path]:
    """Point BentoML's model and bento stores at ``home`` for the duration.

    BentoML caches its stores on first use; patching them (rather than only setting
    ``BENTOML_HOME``) lets one process package projects with different stores, as tests do.
    """
    from bentoml._internal.bento import BentoStore
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    for folder in ("bentos", "models", "tmp", "envs"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    overrides = {
        BentoMLContainer.bentoml_home: str(home),
        BentoMLContainer.bento_store_dir: str(home / "bentos"),
        BentoMLContainer.model_store_dir: str(home / "models"),
        BentoMLContainer.tmp_bento_store_dir: str(home / "tmp"),
        BentoMLContainer.env_store_dir: str(home / "envs"),
        BentoMLContainer.bento_store: BentoStore(str(home / "bentos")),
        BentoMLContainer.model_store: ModelStore(str(home / "models")),
        BentoMLContainer.tmp_bento_store: BentoStore(str(home / "tmp")),
    }
    with contextlib.ExitStack() as stack:
        for provider, value in overrides.items():
            stack.enter_context(provider.patch(value))
        yield home


def model_tag_of(spec: Spec, found: tracking.Version) -> str:
    """``<model>:v<version>-<logged model id>``: two projects sharing a store never collide."""
    identity = found.model_id.removeprefix("m-") or hashlib.sha256(found.source.encode()).hexdigest()
    return f"{slug(spec.model_name)}:v{found.version}-{identity[:12]}"


def import_model(spec: Spec, found: tracking.Version) -> str:
    """The version in the BentoML model store (imported once, then reused)."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = model_tag_of(spec, found)
    try:
        bentoml.models.get(tag)
        return tag
    except NotFound:
        pass
    try:
        model = bentoml.mlflow.import_model(
            tag,
            found.model_uri,
            labels={"model_name": spec.model_name, "model_version": str(found.version)},
            metadata={"data_fingerprint": found.data_fingerprint, "git_commit": found.git_commit,
                      "run_id": found.run_id, "source": found.source},
        )
    except Exception as exc:  # MLflow download errors of any kind
        failure = tracking.store_failure(tracking.connect(spec), found.run_id, f"the model of v{found.version}") \
            if found.run_id else None
        if failure is not None:
            raise failure from exc
        raise PackagingError(
            f"cannot import {found.model_uri} from {spec.tracking} into BentoML: {exc}") from exc
    return str(model.tag)


def bento_config(spec: Spec, found: tracking.Version, model_tag: str) -> dict:
    """Everything the service needs at serve time, baked into the bento."""
    contract = derive_contract(load_schema(spec), exclude={spec.target})
    if not contract["columns"]:
        raise ConfigError(
            f"{spec.pyproject}: [tool.gitops-ml] field 'schema': no feature columns besides the target")
    return {
        "service_name": slug(spec.model_name),
        "model_name": spec.model_name,
        "model_version": found.version,
        "model_tag": model_tag,
        "data_fingerprint": found.data_fingerprint,
        "git_commit": found.git_commit,
        "run_id": found.run_id,
        "task": spec.task,
        "target": spec.target,
        "id_column": spec.id_column,
        "contract": contract,
        # The service reads plain numbers: the bento does not ship the engine's duration parser.
        "serving": spec.serving.model_dump(mode="json") | {
            "log_rotate_seconds": spec.serving.log_rotate_seconds,
            "log_flush_seconds": spec.serving.log_flush_seconds,
        },
        "gitops_ml_version": __version__,
    }


def bento_version(config: dict) -> str:
    """``v<model version>-<digest>`` of the config and the service's code: same inputs, same bento."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    here = Path(__file__).parent
    for name in SERVICE_MODULES:
        digest.update((here / name).read_bytes())
    return f"v{config['model_version']}-{digest.hexdigest()[:12]}"


def build_bento(config: dict):
    """The bento for ``config``: found in the store, or built from a scratch build context."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = f"{config['service_name']}:{bento_version(config)}"
    try:
        return bentoml.bentos.get(tag)
    except NotFound:
        pass
    model = bentoml.models.get(config["model_tag"])
    with tempfile.TemporaryDirectory(prefix="gitops-ml-bento-") as scratch:
        context = Path(scratch)
        write_build_context(context, config)
        _forget_service_modules()
        try:
            return bentoml.bentos.build(
                SERVICE_IMPORT,
                name=config["service_name"],
                version=tag.split(":", 1)[1],
                build_ctx=str(context),
                include=[f"{SERVICE_PACKAGE}/*.py", CONFIG_FILE],
                labels={"model_name": slug(config["model_name"]),
                        "model_version": str(config["model_version"])},
                description=f"{config['model_name']} v{config['model_version']}, "
                            f"served by gitops-ml {__version__}",
                python={"packages": python_packages(model, config["serving"]["inference_log"]),
                        "lock_packages": False},
            )
        except Exception as exc:
            raise PackagingError(f"bentoml build of {tag} failed: {exc}") from exc
        finally:
            # The build imported the service from the scratch context; the next build must not reuse it.
            _forget_service_modules()


def write_build_context(context: Path, config: dict) -> None:
    """The service package and its config, as the bento will hold them."""
    package_dir = context / SERVICE_PACKAGE
    package_dir.mkdir()
    (package_dir / "__init__.py").write_text('"""The gitops-ml service, as packaged into this bento."""\n')
    for name in SERVICE_MODULES:
        shutil.copyfile(Path(__file__).parent / name, package_dir / name)
    (context / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def python_packages(model, inference_log: str = "") -> list[str]:
    """What the model needs (MLflow's pinned requirements of it) plus what the service imports."""
    requirements = Path(model.path_of("mlflow_model")) / "requirements.txt"
    lines = []
    if requirements.is_file():
        lines = [line.strip() for line in requirements.read_text().splitlines()
                 if line.strip() and not line.startswith(("#", "-"))]
    named = {re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower().replace("_", "-") for line in lines}
    for package_name in (*SERVICE_PACKAGES, *storage_packages(inference_log)):
        if package_name not in named:
            lines.append(_pinned(package_name))
    return lines


def storage_packages(inference_log: str) -> tuple[str, ...]:
    """The fsspec driver the bento needs to write its log to an object store (s3fs for ``s3://``...)."""
    from .inference_log import DRIVERS, protocol_of

    driver = DRIVERS.get(protocol_of(inference_log))
    return ("fsspec", driver[0]) if driver else ()


def _pinned(package_name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{package_name}=={version(package_name)}"
    except PackageNotFoundError:
        return package_name


def _forget_service_modules() -> None:
    for name in [m for m in sys.modules if m == SERVICE_PACKAGE or m.startswith(SERVICE_PACKAGE + ".")]:
        del sys.modules[name]


def unpack_build_context(archive: str, folder: Path) -> Path:
    """An exported bento, unpacked into ``folder``: a container build context that holds the service,
    its models and the generated Dockerfile (``env/docker/Dockerfile``). What ``bentoml containerize``
    builds, for builders that need no Docker daemon of BentoML's choosing (buildx, buildah)."""
    import tarfile

    folder = Path(folder).resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with tarfile.open(archive, "r:*") as bundle:
        bundle.extractall(folder, filter="data")
    if not (folder / DOCKERFILE).is_file():
        raise PackagingError(f"{archive} holds no {DOCKERFILE}: not a bento with a generated Dockerfile")
    return folder


def export(bento, export_dir: Path) -> str:
    """Write ``<dir>/<name>-<version>.bento``; the path is made absolute first, since BentoML writes a
    relative export path at the filesystem root."""
    import bentoml

    folder = Path(export_dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{bento.tag.name}-{bento.tag.version}.bento"
    try:
        written = bentoml.bentos.export_bento(bento.tag, str(target))
    except Exception as exc:
        raise PackagingError(f"cannot export bento {bento.tag} to {target}: {exc}") from exc
    return str(Path(written).resolve())
