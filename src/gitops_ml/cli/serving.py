"""Serving: package, serve, smoke."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from .. import release
from ..errors import CheckFailed, ConfigError
from .output import console, emit, table
from .root import json_option, main, parse_version, spec_of


@main.command("package")
@click.argument("version", required=False)
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the .bento archive into DIR (made absolute first).")
@json_option
@click.pass_context
def package_command(ctx: click.Context, version: str | None, export_dir: Path | None) -> None:
    """Build the bento of a registered VERSION (default: the newest), reusing one already built.

    The BentoML store is BENTOML_HOME, else the project's .bentoml/.
    """
    from ..serve.package import package

    spec = spec_of(ctx)
    console.info(f"packaging {spec.model_name} {'v' + version if version else '(newest version)'}")
    result = package(spec, parse_version(version), export_dir)
    emit(result.as_dict(), lambda: table(f"bento {result.bento_tag}", ["", ""], [
        ("model version", result.model_version), ("BentoML model", result.model_tag),
        ("archive", result.archive or "(not exported; --export DIR)"), ("Dockerfile", result.dockerfile)]))
    return result


@main.command("serve")
@click.argument("version", required=False)
@click.option("--env", "env", metavar="ENV", help="Serve the version ENV's release manifest names.")
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; 0.0.0.0 in a container, where it must take outside traffic.")
@click.pass_context
def serve_command(ctx: click.Context, version: str | None, env: str | None, port: int, host: str) -> None:
    """Serve a version's bento with BentoML's server (packaging it first if needed).

    The inference log goes to [tool.gitops-ml.serving] inference_log, resolved in the project.
    """
    from ..serve.package import bentoml_home, package

    spec = spec_of(ctx)
    if version is not None and env is not None:
        raise ConfigError("give VERSION or --env ENV, not both")
    chosen = parse_version(version)
    if env is not None:
        chosen = release.current_version(spec, env)
        if chosen is None:
            raise ConfigError(f"environment {env!r} runs no version yet ({release.manifest_path(spec, env)})")
    result = package(spec, chosen)
    environment = {**os.environ, "BENTOML_HOME": str(bentoml_home(spec))}
    log = spec.serving.inference_log if spec.serving.logging_off else spec.resolve(spec.serving.inference_log)
    if spec.serving.logging_off:  # said to the bento too: a host's own log setting must not turn it back on
        environment["GITOPS_ML_INFERENCE_LOG"] = log
    elif "://" not in log:
        environment["GITOPS_ML_INFERENCE_LOG"] = str(Path(log).resolve())
    command = [*_bentoml_command(), "serve", result.bento_tag, "--host", host, "--port", str(port)]
    console.err(f"serving {spec.model_name} v{result.model_version} ({result.bento_tag}) "
                f"on http://{host}:{port}; inference log: {environment.get('GITOPS_ML_INFERENCE_LOG', log)}")
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server: signals, exit status and the process id are BentoML's own.
    os.execvpe(command[0], command, environment)


def _bentoml_command() -> list[str]:
    """The ``bentoml`` beside this Python (the project's virtualenv), else the module."""
    beside = Path(sys.executable).parent / "bentoml"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("bentoml")
    return [found] if found else [sys.executable, "-m", "bentoml"]


@main.command("smoke")
@click.argument("url")
@click.option("--expect-version", type=int, help="Fail unless the service serves this version.")
@click.option("--expect-fingerprint",
              help="Fail unless the served model was trained on this data fingerprint "
                   "(default with --expect-version: the registry's record of that version).")
@click.option("--rows", type=click.IntRange(2, 1000), default=20, show_default=True,
              help="Sample rows of the project's data to send.")
@click.option("--wait", type=float, default=30.0, show_default=True, help="Seconds to wait for /readyz.")
@json_option
@click.pass_context
def smoke_command(ctx: click.Context, url: str, expect_version: int | None, expect_fingerprint: str | None,
                  rows: int, wait: float) -> None:
    """Check a running service: health, identity, well-formed predictions, a refused bad request."""
    from ..serve.smoke import smoke

    spec = spec_of(ctx)
    result = smoke(spec, url, expect_version, expect_fingerprint, rows, wait)

    def render() -> None:
        table(f"smoke {result.url}: v{result.model_version} ({str(result.data_fingerprint)[:12]})",
              ["check", "outcome", "detail"], [(c.name, c.passed, c.detail) for c in result.checks])

    emit(result.as_dict(), render)
    if not result.passed:
        failed = [c.name for c in result.checks if not c.passed]
        raise CheckFailed(f"{url}: {len(failed)} smoke check(s) failed: {', '.join(failed)}", result)
    return result
