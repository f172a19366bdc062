"""Shape the generated repository to the answers: remove what the chosen MLOps level does not
include, and derive the regression sample from the bundled churn data when the task is regression.

Runs inside the generated folder with the Python that runs cookiecutter: standard library only.
"""

import csv
import hashlib
import shutil
import sys
from pathlib import Path

LEVEL = int({{ cookiecutter.mlops_level | tojson }})
TASK = {{ cookiecutter.task | tojson }}
ENGINE_SOURCE = {{ cookiecutter.engine_source | tojson }}
ENGINE_WHEEL = {{ cookiecutter._engine_wheel | tojson }}
CONTROLLER = {{ cookiecutter.gitops_controller | tojson }}
DEPLOY = Path("deploy")
# The controller manifests each answer keeps; the Kubernetes base is level 2's, as is the image it pins.
CONTROLLERS = {"argocd": DEPLOY / "argocd", "flux": DEPLOY / "flux"}
KUBERNETES_LEVEL = 2
ENGINE_DIR = Path("engine")

# What each level adds to the one below it, from cookiecutter.json (``_workflows_by_level``), the
# one place `gitops-ml new` and the tests read it from too.
ADDED_AT_LEVEL = {int(level): paths for level, paths in {{ cookiecutter._workflows_by_level | tojson }}.items()}

# Not a level's workflow: the Canary workflow comes with level 2 only when production is released by canary.
CANARY_WORKFLOW = Path(".github/workflows/canary.yml")
# The canary's Deployment: its base, the folder its overlay is written to and each controller's manifest.
CANARY_FILES = (
    DEPLOY / "kubernetes" / "canary",
    Path("environments/production/canary"),
    DEPLOY / "argocd" / "production-canary.yaml",
    DEPLOY / "flux" / "production-canary.yaml",
)
STRATEGY = {{ cookiecutter.release_strategy | tojson }}

CLASSIFICATION_DATA = Path("data/churn.csv")
REGRESSION_DATA = Path("data/charges.csv")
# Total charges are monthly charges times tenure (they would leak the target); churn happens after
# the charges are set, so it is not something the price is predicted from.
REGRESSION_DROPS = ("total_charges", "churned")


def remove_above_level(level: int) -> list[str]:
    removed = []
    for added_at, paths in ADDED_AT_LEVEL.items():
        if added_at > level:
            for path in paths:
                Path(path).unlink()
                removed.append(path)
    return removed


def keep_deploy(level: int, controller: str) -> list[str]:
    """deploy/ holds the Kubernetes base and the chosen controller's manifests, at level 2 only: below
    it no image is built, so there is no digest for an environment to pin."""
    if level < KUBERNETES_LEVEL:
        shutil.rmtree(DEPLOY)
        return [str(DEPLOY)]
    removed = []
    for name, folder in CONTROLLERS.items():
        if name != controller:
            shutil.rmtree(folder)
            removed.append(str(folder))
    return removed


def remove_canary() -> None:
    """Without a canary strategy at level 2 there is no second Deployment to run, sync or check."""
    CANARY_WORKFLOW.unlink()
    for path in CANARY_FILES:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def derive_regression_sample(source: Path, destination: Path) -> int:
    """The churn sample without the columns a price model must not see; ``monthly_charges`` goes last."""
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        kept = [c for c in reader.fieldnames if c not in REGRESSION_DROPS and c != "monthly_charges"]
        columns = [*kept, "monthly_charges"]
        rows = [{c: row[c] for c in columns} for row in reader]
    with destination.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    source.unlink()
    return len(rows)


def vendor_engine(wheel: Path, folder: Path) -> Path:
    """Keep the engine's wheel in the repository, pinned by its hash, for ``make setup`` to install
    before the project itself: the engine works before (and without) a release on a package index."""
    folder.mkdir()
    kept = folder / wheel.name
    shutil.copyfile(wheel, kept)
    digest = hashlib.sha256(kept.read_bytes()).hexdigest()
    (folder / "requirements.txt").write_text(
        "# The gitops-ml engine this repository was generated with; make setup installs it first.\n"
        f"./{folder.name}/{kept.name} --hash=sha256:{digest}\n",
        encoding="utf-8",
    )
    return kept


def main() -> int:
    if ENGINE_SOURCE == "wheel":
        wheel = Path(ENGINE_WHEEL)
        if not ENGINE_WHEEL or not wheel.is_file() or wheel.suffix != ".whl":
            print(f"engine_source 'wheel' keeps a wheel of gitops-ml in the repository, but _engine_wheel "
                  f"{ENGINE_WHEEL!r} is not a wheel file: run `gitops-ml new engine_source=wheel`, which "
                  "builds it from the running engine, or pass _engine_wheel=/path/to/gitops_ml-*.whl",
                  file=sys.stderr)
            return 1
        vendor_engine(wheel, ENGINE_DIR)
    remove_above_level(LEVEL)
    keep_deploy(LEVEL, CONTROLLER)
    if LEVEL < KUBERNETES_LEVEL or STRATEGY != "canary":
        remove_canary()
    if TASK == "regression":
        derive_regression_sample(CLASSIFICATION_DATA, REGRESSION_DATA)
    return 0


if __name__ == "__main__":
    sys.exit(main())
