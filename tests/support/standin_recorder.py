"""The body of the harness's stand-in actions and commands: record what they were given.

Runs with the job's Python, standard library only. As an action (``STANDIN_ACTION`` set) it
records the inputs; inputs that name files in the workspace (``path``, ``body-path``,
``add-paths``, ``context``) have those files copied beside the record, so a test can read the
pull-request body, the report or the build context that was handed over. ``upload-artifact``
keeps its files under ``STANDIN_ARTIFACTS/<name>`` (and sets ``artifact-url``) and
``download-artifact`` restores them, as GitHub's artifact store would between jobs. A file a step
names in its environment (``COMMENT_FILE``) is kept too. As a command (``--command NAME ARGS...``) it records
the arguments and the file of any ``--body-file``.

``docker/build-push-action`` with ``push: true`` and a tag on a registry of 127.0.0.1 (one the test
runs) pushes a real one-layer image with the step's labels there (``oci_image.py``, beside this file)
and sets the ``digest`` output from what the registry holds, so the digest a workflow pins is real.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from oci_image import oci_layout  # beside this file, copied with it

FILE_INPUTS = ("path", "body-path", "add-paths", "context")
# Files a step hands to its script through the environment (github-script reads the comment so).
FILE_ENV = ("COMMENT_FILE",)


def record_slot(name: str) -> Path:
    """A fresh place for one record: ``<slot>.json`` and the folder ``<slot>/`` for its files."""
    folder = Path(os.environ["STANDIN_RECORD"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{time.time_ns()}-{name.replace('/', '_')}"


def write(slot: Path, entry: dict) -> None:
    entry["files"] = str(slot)
    slot.with_name(f"{slot.name}.json").write_text(json.dumps(entry, indent=2))


def copy_into(paths: list[str], destination: Path) -> list[str]:
    """Copy the workspace files ``paths`` name into ``destination``; returns them relative to the workspace."""
    workspace = Path(os.environ.get("GITHUB_WORKSPACE", ".")).resolve()
    copied = []
    for text in paths:
        source = (workspace / text).resolve()
        if not source.is_relative_to(workspace) or not source.exists():
            continue
        relative = source.relative_to(workspace)
        if source.is_dir():
            shutil.copytree(source, destination / relative, dirs_exist_ok=True)
        else:
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, destination / relative)
        copied.append(f"{relative}/" if source.is_dir() else str(relative))
    return copied


def as_action() -> int:
    action = os.environ["STANDIN_ACTION"]
    inputs = json.loads(os.environ.get("STANDIN_INPUTS") or "{}")
    slot = record_slot(action)
    named = [line.strip() for key in FILE_INPUTS for line in str(inputs.get(key) or "").splitlines() if line.strip()]
    named += [os.environ[name] for name in FILE_ENV if os.environ.get(name)]
    copied = copy_into(named, slot)
    workspace = str(Path(os.environ.get("GITHUB_WORKSPACE", ".")).resolve())
    write(
        slot,
        {
            "action": action,
            "inputs": inputs,
            "job": os.environ.get("GITHUB_JOB"),
            "copied": copied,
            "workspace": workspace,
        },
    )
    if action == "docker/build-push-action" and inputs.get("push") in (True, "true"):
        pushed = push_local(inputs)
        if pushed:
            set_output("digest", pushed)
            print(f"stand-in build-push-action: pushed {inputs['tags']} as {pushed}")
    artifacts = Path(os.environ["STANDIN_ARTIFACTS"])
    if action == "actions/upload-artifact":
        store = artifacts / inputs["name"]
        shutil.rmtree(store, ignore_errors=True)
        source = Path(os.environ.get("GITHUB_WORKSPACE", ".")) / inputs["path"]
        if source.is_dir():
            shutil.copytree(source, store)
        elif inputs.get("if-no-files-found") == "error":
            print(f"::error::stand-in upload-artifact: no files at {inputs['path']}")
            return 1
        set_output("artifact-url", artifact_url(inputs["name"]))
    if action == "actions/download-artifact":
        store = artifacts / inputs["name"]
        if not store.is_dir():
            print(f"::error::stand-in download-artifact: no artifact named {inputs['name']}")
            return 1
        shutil.copytree(
            store, Path(os.environ.get("GITHUB_WORKSPACE", ".")) / (inputs.get("path") or "."), dirs_exist_ok=True
        )
    return 0


def push_local(inputs: dict) -> str | None:
    """Push a one-layer image with the step's labels as its tag, when the tag is on a registry of
    127.0.0.1; the registry's digest (skopeo's --digestfile), or None for a remote registry."""
    tag = str(inputs.get("tags") or "").splitlines()[0].strip()
    if not tag.startswith("127.0.0.1:"):
        return None
    labels = dict(line.split("=", 1) for line in str(inputs.get("labels") or "").splitlines() if "=" in line)
    with tempfile.TemporaryDirectory() as scratch:
        layout = oci_layout(Path(scratch) / "image", "built", labels)
        digest_file = Path(scratch) / "digest"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--digestfile",
                str(digest_file),
                f"oci:{layout}:built",
                f"docker://{tag}",
            ],
            check=True,
            timeout=120,
        )
        return digest_file.read_text().strip()


def artifact_url(name: str) -> str:
    """Where GitHub would list the artifact (upload-artifact's ``artifact-url`` output)."""
    server, repository = os.environ.get("GITHUB_SERVER_URL", "https://github.com"), os.environ.get("GITHUB_REPOSITORY")
    return f"{server}/{repository}/actions/runs/{os.environ.get('GITHUB_RUN_ID', '0')}/artifacts/{name}"


def set_output(name: str, value: str) -> None:
    if not os.environ.get("GITHUB_OUTPUT"):  # run outside a job (the harness's own tests)
        return
    with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as outputs:
        outputs.write(f"{name}={value}\n")


def as_command(arguments: list[str]) -> int:
    name, rest = arguments[0], arguments[1:]
    slot = record_slot(name)
    if "--body-file" in rest:
        body = Path(rest[rest.index("--body-file") + 1])
        if body.is_file():
            slot.mkdir(parents=True, exist_ok=True)
            shutil.copy(body, slot / "body.md")
    write(slot, {"command": name, "args": rest})
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--command":
        sys.exit(as_command(sys.argv[2:]))
    sys.exit(as_action())
