"""The wheel of the running engine, for repositories generated with ``engine_source=wheel``.

Before gitops-ml is published on a package index (or on a network without one), a generated
repository can still install it: ``gitops-ml new`` copies this engine's wheel into the repository,
pinned by its hash, and ``make setup`` installs it first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import unquote, urlparse

from .errors import ConfigError

DISTRIBUTION = "gitops-ml"


def installed_from() -> tuple[str, Path | None]:
    """How this engine was installed (``"wheel"``, ``"source"`` or ``"index"``) and from where."""
    try:
        text = distribution(DISTRIBUTION).read_text("direct_url.json")
    except PackageNotFoundError:
        return "index", None
    info = json.loads(text) if text else {}
    url = info.get("url", "")
    if not url.startswith("file://"):
        return "index", None
    path = Path(unquote(urlparse(url).path))
    if "archive_info" in info and path.suffix == ".whl":
        return "wheel", path
    if "dir_info" in info:
        return "source", path
    return "index", None


def running_engine_wheel(folder: Path) -> Path:
    """A wheel of the running engine in ``folder``: the wheel it was installed from, or one built from
    the checkout it runs from. Refused, saying why, when neither is at hand."""
    kind, path = installed_from()
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "wheel" and path is not None and path.is_file():
        return Path(shutil.copy(path, folder / path.name))
    if kind == "source" and path is not None and (path / "pyproject.toml").is_file():
        return build_wheel(path, folder)
    where = f"{kind} ({path})" if path else kind
    raise ConfigError(f"engine_source=wheel copies the running engine's wheel into the repository, but gitops-ml "
                      f"was installed from {where}, and neither its wheel file nor its source is at hand: install "
                      "it from a checkout (pip install -e .) or from a wheel file, or answer engine_source='package "
                      "index'")


def build_wheel(source: Path, folder: Path) -> Path:
    """``pip wheel`` of the checkout at ``source`` (no dependencies: they install from the index)."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder),
                           str(source)], capture_output=True, text=True)  # fmt: skip
    wheels = sorted(folder.glob("gitops_ml-*.whl"))
    if done.returncode != 0 or not wheels:
        raise ConfigError(f"could not build the engine's wheel from {source}: {done.stderr.strip()[-2000:]}")
    return wheels[-1]
