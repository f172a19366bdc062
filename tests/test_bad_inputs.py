"""Bad inputs, one table per family (project spec, data files, training data, drift inputs).

Every case runs the real command line on a copy of one trained project (a git repository whose
staging alias points at v1) and asserts the exit code, a message naming the place (file, field,
column), and that nothing changed: registry versions, tags, aliases and runs, the files under
``environments/`` and ``model_cards/``, and ``git status``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from gitops_ml.cli import main

from .conftest import EXAMPLE_DATA, copy_project

MODEL = "churn-classifier"
FACTORY = 'model_factory = "gitops_ml.example.model:build_model"'
SCHEMA = 'schema = "gitops_ml.example.schema:ChurnSchema"'


# -- the project every case starts from, and what "nothing changed" means -------------------------
def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def base(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's trained project, copied once: v1 aliased to staging, everything committed."""
    root = copy_project(trained_project, tmp_path_factory.mktemp("bad-inputs") / "project")
    client = registry(root)
    client.set_registered_model_alias(MODEL, "staging", "1")
    (root / ".gitignore").write_text(".mlflow/\n.bentoml/\n.gitops-ml/\n")
    git(root, "init", "--quiet", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-m", "project")
    return root


@pytest.fixture
def work(base: Path, tmp_path: Path) -> Path:
    """A copy of the base project for one case, which may change it freely."""
    return copy_project(base, tmp_path / "project")


def registry(root: Path) -> MlflowClient:
    uri = f"sqlite:///{root / '.mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def state(root: Path) -> tuple:
    """Registry (versions with tags, aliases, runs), environments/ and model_cards/ files, git status."""
    client = registry(root)
    versions = sorted(
        (int(v.version), tuple(sorted(v.tags.items()))) for v in client.search_model_versions(f"name='{MODEL}'")
    )
    aliases = dict(client.get_registered_model(MODEL).aliases)
    runs = len(client.search_runs([client.get_experiment_by_name(MODEL).experiment_id]))
    files = tuple(
        (p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for folder in ("environments", "model_cards")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    )
    return versions, aliases, runs, files, git(root, "status", "--porcelain", "--untracked-files=all")


def cli(root: Path, *args: str):
    return CliRunner().invoke(main, ["--project", str(root), *args], catch_exceptions=False)


def refused(root: Path, args: list[str], code: int, *names: str) -> str:
    """Run a command that must be refused: its exit code, every name in its message, nothing changed."""
    before = state(root)
    result = cli(root, *args)
    assert result.exit_code == code, (args, result.output)
    for name in names:
        assert name in result.output, (args, name, result.output)
    assert "Traceback" not in result.output
    assert state(root) == before, args
    return result.output


def edit(root: Path, old: str, new: str) -> None:
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    assert old in text, old
    pyproject.write_text(text.replace(old, new, 1))


def append(root: Path, text: str) -> None:
    with (root / "pyproject.toml").open("a") as handle:
        handle.write("\n" + text + "\n")


# -- family 1: the project spec --------------------------------------------------------------------
# (id, change to pyproject.toml, the field the message must name)
SPEC_CASES = [
    ("test_size as text", (FACTORY, FACTORY + '\ntest_size = "0.2"'), "'test_size'"),
    ("seed as boolean", (FACTORY, FACTORY + "\nseed = true"), "'seed'"),
    ("seed as float", (FACTORY, FACTORY + "\nseed = 4.2"), "'seed'"),
    ("seed as text", (FACTORY, FACTORY + '\nseed = "42"'), "'seed'"),
    ("time_column as number", ('time_column = "snapshot_date"', "time_column = 5"), "'time_column'"),
    ("task as number", ('task = "classification"', "task = 3"), "'task'"),
    ("task unknown", ('task = "classification"', 'task = "ranking"'), "'task'"),
    ("model_name with spaces", ('model_name = "churn-classifier"', 'model_name = "churn model!"'), "'model_name'"),
    ("misspelt top-level field", (FACTORY, FACTORY + '\nprimary_metrc = "f1"'), "'primary_metrc'"),
    ("primary_metric typo", (FACTORY, FACTORY + '\nprimary_metric = "aucroc"'), "'primary_metric'"),
    ("primary_metric of regression", (FACTORY, FACTORY + '\nprimary_metric = "rmse"'), "'primary_metric'"),
    ("primary_metric as number", (FACTORY, FACTORY + "\nprimary_metric = 1"), "'primary_metric'"),
    ("threshold metric typo", ("roc_auc = 0.75", "aucroc = 0.75"), "'gates.thresholds.aucroc'"),
    ("threshold metric of regression", ("roc_auc = 0.75", "r2 = 0.75"), "'gates.thresholds.r2'"),
    ("threshold as text", ("roc_auc = 0.75", 'roc_auc = "0.75"'), "'gates.thresholds.roc_auc'"),
    ("max_regression negative", ("max_regression = 0.02", "max_regression = -1"), "'gates.max_regression'"),
    ("max_regression as text", ("max_regression = 0.02", 'max_regression = "0.02"'), "'gates.max_regression'"),
    ("target not in the schema", ('target = "churned"', 'target = "churn"'), "'target'"),
    ("time_column not in the schema", ('time_column = "snapshot_date"', 'time_column = "when"'), "'time_column'"),
    ("factory module missing", (FACTORY, 'model_factory = "no_such_module:build"'), "'model_factory'"),
    ("factory attribute missing", (FACTORY, 'model_factory = "gitops_ml.example.model:missing"'), "'model_factory'"),
    ("factory not callable", (FACTORY, 'model_factory = "tests.bad_factories:NOT_A_FUNCTION"'), "'model_factory'"),
    ("factory without colon", (FACTORY, 'model_factory = "gitops_ml.example.model"'), "'model_factory'"),
    ("schema module missing", (SCHEMA, 'schema = "no_such_module:Schema"'), "'schema'"),
    ("schema not a DataFrameModel", (SCHEMA, 'schema = "gitops_ml.example.model:build_model"'), "'schema'"),
    (
        "environments repeated",
        ("", '[tool.gitops-ml.release]\nenvironments = ["staging", "staging"]'),
        "'release.environments'",
    ),
    ("environments empty", ("", "[tool.gitops-ml.release]\nenvironments = []"), "'release.environments'"),
    (
        "environment name a path",
        ("", '[tool.gitops-ml.release]\nenvironments = ["staging", "../production"]'),
        "'release.environments'",
    ),
    ("environments as text", ("", '[tool.gitops-ml.release]\nenvironments = "staging"'), "'release.environments'"),
    ("drift share as text", ("", '[tool.gitops-ml.drift]\nmax_invalid_share = "0.1"'), "'drift.max_invalid_share'"),
    ("drift share above one", ("", "[tool.gitops-ml.drift]\nmax_invalid_share = 5"), "'drift.max_invalid_share'"),
    (
        "drift grades out of order",
        ("", "[tool.gitops-ml.drift]\nretrain_drift_share = 0.8\nescalate_drift_share = 0.5"),
        "'drift.escalate_drift_share'",
    ),
    ("drift window unit", ("", '[tool.gitops-ml.drift]\nwindow = "7x"'), "'drift.window'"),
    ("drift min_rows as float", ("", "[tool.gitops-ml.drift]\nmin_rows = 500.0"), "'drift.min_rows'"),
    ("serving workers as boolean", ("", "[tool.gitops-ml.serving]\nworkers = true"), "'serving.workers'"),
    (
        "serving batch size as text",
        ("", '[tool.gitops-ml.serving]\nmax_batch_size = "1000"'),
        "'serving.max_batch_size'",
    ),
    ("serving extra_fields unknown", ("", '[tool.gitops-ml.serving]\nextra_fields = "keep"'), "'serving.extra_fields'"),
    ("id_column not in the schema", (FACTORY, FACTORY + '\nid_column = "customer_id"'), "'id_column'"),
    ("id_column is the target", (FACTORY, FACTORY + '\nid_column = "churned"'), "'id_column'"),
    ("id_column is the time column", (FACTORY, FACTORY + '\nid_column = "snapshot_date"'), "'id_column'"),
    ("id_column as number", (FACTORY, FACTORY + "\nid_column = 3"), "'id_column'"),
    ("slice column not in the schema", ("", '[tool.gitops-ml.slices]\ncolumns = ["regoin"]'), "'slices.columns'"),
    ("slice by the target", ("", '[tool.gitops-ml.slices]\ncolumns = ["churned"]'), "'slices.columns'"),
    ("slice column repeated", ("", '[tool.gitops-ml.slices]\ncolumns = ["region", "region"]'), "'slices.columns'"),
    ("slice columns as text", ("", '[tool.gitops-ml.slices]\ncolumns = "region"'), "'slices.columns'"),
    ("numeric slice without bins", ("", '[tool.gitops-ml.slices]\ncolumns = ["age"]'), "'slices.bins.age'"),
    (
        "slice bins not increasing",
        ("", '[tool.gitops-ml.slices]\ncolumns = ["age"]\nbins = { age = [45, 30] }'),
        "'slices.bins'",
    ),
    (
        "slice bins on a text column",
        ("", '[tool.gitops-ml.slices]\ncolumns = ["region"]\nbins = { region = [1] }'),
        "'slices.bins.region'",
    ),
    ("slice bins for a column not sliced", ("", "[tool.gitops-ml.slices]\nbins = { age = [30] }"), "'slices.bins.age'"),
    ("slice min_rows zero", ("", "[tool.gitops-ml.slices]\nmin_rows = 0"), "'slices.min_rows'"),
    ("slice min_metric as text", ("", '[tool.gitops-ml.slices]\nmin_metric = "0.7"'), "'slices.min_metric'"),
    ("slice max_gap negative", ("", "[tool.gitops-ml.slices]\nmax_gap = -0.1"), "'slices.max_gap'"),
    (
        "slice parity above one",
        ("", "[tool.gitops-ml.slices]\nmax_parity_difference = 1.5"),
        "'slices.max_parity_difference'",
    ),
    (
        "slice parity column not sliced",
        ("", '[tool.gitops-ml.slices]\ncolumns = ["region"]\nparity_columns = ["contract"]'),
        "'slices.parity_columns'",
    ),
    ("slice share_shift zero", ("", "[tool.gitops-ml.slices]\nshare_shift = 0"), "'slices.share_shift'"),
    ("slice field misspelt", ("", "[tool.gitops-ml.slices]\nmin_row = 10"), "'slices.min_row'"),
]
SPEC_COMMANDS = (["validate"], ["train"], ["evaluate"], ["card"], ["status"], ["drift", "--env", "staging"])


@pytest.mark.parametrize(("change", "field"), [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_bad_spec_is_refused_by_every_command(work: Path, change: tuple[str, str], field: str) -> None:
    old, new = change
    if old:
        edit(work, old, new)
    else:
        append(work, new)
    for args in SPEC_COMMANDS:
        refused(work, args, 2, str(work / "pyproject.toml"), f"[tool.gitops-ml] field {field}")


def test_every_bad_field_is_named_at_once(work: Path) -> None:
    edit(work, FACTORY, FACTORY + '\nseed = true\nprimary_metric = "aucroc"')
    append(work, '[tool.gitops-ml.release]\nenvironments = ["qa", "qa"]')
    output = refused(work, ["validate"], 2)
    assert "'seed'" in output and "'release.environments'" in output
    # the metric is checked once the types are right: fix them, and it is named
    edit(work, "seed = true", "seed = 7")
    edit(work, '["qa", "qa"]', '["qa"]')
    refused(work, ["validate"], 2, "'primary_metric': 'aucroc' is not a classification metric")


# -- family 2: data files, through validate and train ----------------------------------------------
def sample(rows: int = 60) -> pd.DataFrame:
    return pd.read_csv(EXAMPLE_DATA, nrows=rows)


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def with_value(column: str, value, rows=(3,)) -> Callable[[], pd.DataFrame]:
    def make() -> pd.DataFrame:
        frame = sample().astype({column: object})
        frame.loc[list(rows), column] = value
        return frame

    return make


def text_column(column: str, value: str, row: int = 3) -> pd.DataFrame:
    """A column stored as text (as Parquet keeps it), one of its values not a number."""
    frame = sample().astype({column: str})
    frame.loc[row, column] = value
    return frame


def duplicated_column() -> str:
    lines = csv_text(sample()).splitlines()
    header, *rows = lines
    # a second tenure_months column at the end, as a hand-merged export has it
    return "\n".join([header + ",tenure_months", *(row + ",7" for row in rows)]) + "\n"


def delimited(separator: str) -> Callable[[], str]:
    return lambda: sample().to_csv(index=False, sep=separator)


@dataclass(frozen=True)
class DataCase:
    id: str
    name: str  # file name, its extension decides the reader
    content: Callable[[], object]  # a DataFrame (written as the file's format), str or bytes
    code: int
    names: tuple[str, ...]  # besides the file's path, what the message must name


DATA_CASES = [
    DataCase("empty file", "d.csv", lambda: "", 1, ("the file is empty",)),
    DataCase("header only", "d.csv", lambda: "age,contract\n", 1, ("header but no rows",)),
    DataCase("unterminated quote", "d.csv", lambda: 'a,b\n1,"open\n', 1, ("not a readable CSV",)),
    DataCase("unknown format", "d.xlsx", lambda: "x", 2, ("unknown data format",)),
    DataCase("duplicate column", "d.csv", duplicated_column, 1, ("duplicate column 'tenure_months'",)),
    DataCase(
        "duplicate column gzip",
        "d.csv.gz",
        lambda: gzip.compress(duplicated_column().encode()),
        1,
        ("duplicate column 'tenure_months'",),
    ),
    DataCase("semicolon separated", "d.csv", delimited(";"), 1, ("delimiter looks wrong", "';'")),
    DataCase("tab separated", "d.csv", delimited("\t"), 1, ("delimiter looks wrong", "tab")),
    DataCase("pipe separated", "d.csv", delimited("|"), 1, ("delimiter looks wrong", "'|'")),
    DataCase("text in a number", "d.csv", with_value("monthly_charges", "twelve"), 1, ("monthly_charges", "twelve")),
    DataCase("null where not nullable", "d.csv", with_value("contract", None), 1, ("contract", "not_nullable")),
    DataCase("number out of range", "d.csv", with_value("age", 140), 1, ("age", "less_than_or_equal_to(100)")),
    DataCase("unknown category", "d.csv", with_value("contract", "weekly"), 1, ("contract", "weekly")),
    DataCase("negative count", "d.csv", with_value("support_calls", -3), 1, ("support_calls",)),
    DataCase("target outside its classes", "d.csv", with_value("churned", 2), 1, ("churned", "isin")),
    DataCase(
        "date in another format", "d.csv", with_value("snapshot_date", "01/02/2025"), 1, ("snapshot_date", "01/02/2025")
    ),
    DataCase("missing column", "d.csv", lambda: sample().drop(columns=["region"]), 1, ("region",)),
    DataCase("unexpected column", "d.csv", lambda: sample().assign(favourite_colour="blue"), 1, ("favourite_colour",)),
    DataCase(
        "target column missing",
        "d.csv",
        lambda: sample().drop(columns=["churned"]),
        1,
        ("no column 'churned', the target", "'target'"),
    ),
    DataCase("parquet that is text", "d.parquet", lambda: b"not parquet at all", 1, ("not a readable PARQUET",)),
    DataCase("parquet missing a column", "d.parquet", lambda: sample().drop(columns=["age"]), 1, ("age",)),
    DataCase(
        "parquet with a text number",
        "d.parquet",
        lambda: text_column("tenure_months", "ten"),
        1,
        ("tenure_months", "ten"),
    ),
]


def write_data(folder: Path, case: DataCase) -> Path:
    path = folder / case.name
    content = case.content()
    if isinstance(content, pd.DataFrame):
        if case.name.endswith(".parquet"):
            content.to_parquet(path, index=False)
        else:
            content.to_csv(path, index=False)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("case", DATA_CASES, ids=[c.id for c in DATA_CASES])
def test_bad_data_file_is_refused_by_validate_and_train(work: Path, tmp_path: Path, case: DataCase) -> None:
    path = write_data(tmp_path, case)  # outside the project: git status stays the project's own
    for args in (["validate", str(path)], ["train", "--data", str(path)]):
        refused(work, args, case.code, str(path), *case.names)


def test_missing_data_file(work: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    for args in (["validate", str(missing)], ["train", "--data", str(missing)]):
        refused(work, args, 2, str(missing), "file not found")


def test_duplicate_column_is_not_blamed_on_an_invented_name(work: Path, tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(duplicated_column())
    output = refused(work, ["validate", str(path)], 1, "columns 3 and 13 of the header")
    assert "tenure_months.1" not in output


# -- family 3: data that meets the contract but cannot be fitted, and factories that build nothing -
def inf_charges() -> pd.DataFrame:
    frame = sample(200)
    frame.loc[[4, 9], "total_charges"] = float("inf")  # ge=0 and no upper bound: the contract allows it
    return frame


def one_class() -> pd.DataFrame:
    return sample(200).assign(churned=0)


def churners_only_recent() -> pd.DataFrame:
    """The time-ordered split keeps the newest 20 % for testing: put every churner there."""
    frame = sample(200).assign(churned=0)
    frame.loc[frame.index[-10:], "churned"] = 1
    return frame


FIT_CASES = [
    ("infinite value", inf_charges, ("total_charges", "infinite", "rows 4, 9")),
    ("one class only", one_class, ("'churned' has one class only",)),
    ("three rows", lambda: sample(3), ("only 3 rows",)),
    ("one class in the training split", churners_only_recent, ("one class only in the training rows",)),
]


@pytest.mark.parametrize(("make", "names"), [c[1:] for c in FIT_CASES], ids=[c[0] for c in FIT_CASES])
def test_data_the_model_cannot_fit(work: Path, tmp_path: Path, make, names) -> None:
    path = tmp_path / "fit.csv"
    make().to_csv(path, index=False)
    assert cli(work, "validate", str(path)).exit_code == 0  # the contract allows it...
    refused(work, ["train", "--data", str(path)], 1, "nothing was trained or registered", *names)  # ...the model not


FACTORY_CASES = [
    ("returns text", "tests.bad_factories:returns_text", ("returned str", "not an unfitted scikit-learn classifier")),
    ("returns a regressor", "tests.bad_factories:returns_a_regressor", ("returned LinearRegression",)),
    ("raises", "tests.bad_factories:raises", ("raised RuntimeError: the feature store is down",)),
    ("no predict_proba", "tests.bad_factories:without_probabilities", ("cannot be scored", "predict_proba")),
]


@pytest.mark.parametrize(("factory", "names"), [c[1:] for c in FACTORY_CASES], ids=[c[0] for c in FACTORY_CASES])
def test_factory_that_builds_no_usable_model(work: Path, factory: str, names) -> None:
    edit(work, FACTORY, f'model_factory = "{factory}"')
    git(work, "commit", "--quiet", "-am", "another factory")  # keep git status clean for the snapshot
    assert cli(work, "validate").exit_code == 0
    refused(work, ["train"], 1, factory, *names)


def test_target_that_is_also_a_feature(work: Path) -> None:
    # tenure_months is in the schema, so the spec is sound; but the model reads it as an input
    edit(work, 'target = "churned"', 'target = "tenure_months"')
    edit(work, "roc_auc = 0.75, f1 = 0.5", "accuracy = 0.1")
    git(work, "commit", "--quiet", "-am", "another target")
    refused(work, ["train"], 1, "cannot be fitted", "'tenure_months'", "nothing was trained or registered")


# -- family 4: drift inputs ------------------------------------------------------------------------
def broken_rows(rows: int, broken: int) -> pd.DataFrame:
    frame = sample(rows)
    frame.loc[: broken - 1, "contract"] = "weekly"
    return frame


@dataclass(frozen=True)
class DriftCase:
    id: str
    name: str
    content: Callable[[], object] | None
    args: tuple[str, ...]
    code: int
    names: tuple[str, ...]
    decision: str | None = None  # for the cases that exit 0: the decision they must reach
    file_at_fault: bool = True  # the message names the file (else the option or environment it names)


DRIFT_CASES = [
    DriftCase(
        "every row breaks the contract",
        "c.csv",
        lambda: broken_rows(600, 600),
        (),
        0,
        ("contract", "100.0%"),
        "escalate",
    ),
    DriftCase(
        "most rows break, too few left",
        "c.csv",
        lambda: broken_rows(600, 300),
        (),
        0,
        ("contract", "50.0%"),
        "escalate",
    ),
    DriftCase("every one of few rows breaks", "c.csv", lambda: broken_rows(40, 40), (), 0, ("contract",), "escalate"),
    DriftCase("every age is text", "c.csv", lambda: sample(60).assign(age="old"), (), 0, ("age",), "escalate"),
    DriftCase(
        "few rows, share under the limit",
        "c.csv",
        lambda: broken_rows(60, 1),
        (),
        0,
        ("drift.min_rows",),
        "insufficient_data",
    ),
    DriftCase("empty file", "c.csv", lambda: "", (), 0, ("0 usable rows",), "insufficient_data"),
    DriftCase("missing file", "c.csv", None, (), 2, ("file not found",)),
    DriftCase("unknown format", "c.json", lambda: "{}", (), 2, ("unknown data format",)),
    DriftCase("duplicate column", "c.csv", duplicated_column, (), 1, ("duplicate column 'tenure_months'",)),
    DriftCase("semicolon separated", "c.csv", delimited(";"), (), 1, ("delimiter looks wrong",)),
    DriftCase(
        "missing feature column",
        "c.csv",
        lambda: sample().drop(columns=["region"]),
        (),
        1,
        ("missing column(s) region",),
    ),
    DriftCase("parquet that is text", "c.parquet", lambda: b"PAR1 nope", (), 1, ("not a readable PARQUET",)),
    DriftCase(
        "window without a time column",
        "c.csv",
        lambda: sample().drop(columns=["snapshot_date"]),
        ("--window", "7d"),
        2,
        ("--window needs a time column",),
        file_at_fault=False,
    ),
    DriftCase(
        "unknown environment",
        "c.csv",
        lambda: sample(),
        ("--env", "qa"),
        2,
        ("unknown environment 'qa'",),
        file_at_fault=False,
    ),
    DriftCase(  # nothing to monitor is not a failure of the scheduled run: a notice, exit 0
        "environment running nothing",
        "c.csv",
        lambda: sample(),
        ("--env", "production"),
        0,
        ("no model is released to environment 'production'",),
        "no_release",
        file_at_fault=False,
    ),
]


@pytest.mark.parametrize("case", DRIFT_CASES, ids=[c.id for c in DRIFT_CASES])
def test_bad_drift_input(work: Path, tmp_path: Path, case: DriftCase) -> None:
    path = tmp_path / case.name
    if case.content is not None:
        write_data(tmp_path, DataCase(case.id, case.name, case.content, case.code, ()))
    env = () if "--env" in case.args else ("--env", "staging")
    args = ["drift", "--current", str(path), *env, *case.args, "--output-dir", str(tmp_path / "out"), "--json"]
    output = refused(work, args, case.code, *case.names, *((str(path),) if case.code and case.file_at_fault else ()))
    if case.decision:
        payload = json.loads(output[output.index("{") :])
        assert payload["decision"] == case.decision, payload.get("reasons")
        if case.decision == "escalate":
            assert any(r["grade"] == "escalate" and r["signal"] == "contract" for r in payload["reasons"])
            assert (tmp_path / "out" / "title.txt").read_text().startswith(f"{MODEL} v1 in staging: severe drift")


# -- family 5: labels joined back (feedback join) ---------------------------------------------------
def logged(root: Path, rows: int = 20) -> list[str]:
    """Production rows in the project's inference log, as the service writes them; their request ids."""
    from gitops_ml.serve.inference_log import LogWriter

    frame = sample(rows).drop(columns=["churned"])
    writer = LogWriter(root / "logs" / "inference", model_name=MODEL, model_version=1, data_fingerprint="t")
    ids = [f"r{i}" for i in range(rows)]
    writer.submit(frame.astype(object).where(frame.notna(), None).to_dict("records"), [0] * rows, [0.1] * rows,
                  request_ids=ids)
    writer.close()
    return ids


def labels(ids: list[str], **columns) -> pd.DataFrame:
    return pd.DataFrame({"request_id": ids, "churned": [i % 2 for i in range(len(ids))]} | columns)


# (id, label file name, its content (None: no file), extra arguments, exit code, names in the message)
FEEDBACK_CASES = [
    ("missing label file", "l.csv", None, (), 2, ("file not found",)),
    ("label file of unknown format", "l.json", lambda ids: "{}", (), 2, ("unknown data format",)),
    ("label file empty", "l.csv", lambda ids: "", (), 1, ("empty",)),
    ("no key column", "l.csv", lambda ids: labels(ids).drop(columns=["request_id"]), (), 1, ("'request_id'",)),
    ("no target column", "l.csv", lambda ids: labels(ids).drop(columns=["churned"]), (), 1, ("'churned'",)),
    ("a key is empty", "l.csv", lambda ids: labels([*ids[:3], None]), (), 1, ("'request_id'", "rows 3")),
    ("a target is empty", "l.csv", lambda ids: labels(ids[:3]).assign(churned=[1, None, 0]), (), 1,
     ("'churned'", "rows 1")),
    ("a key labelled twice", "l.csv", lambda ids: labels([*ids, ids[2], ids[5]]), (), 1,
     ("labelled more than once", "r2", "r5")),
    ("no label matches", "l.csv", lambda ids: labels(["x1", "x2"]), (), 1, ("no label", "left as it was")),
    ("unknown join key", "l.csv", lambda ids: labels(ids), ("--on", "customer_id"), 2, ("--on 'customer_id'",
                                                                                        "id_column")),
    ("bad window", "l.csv", lambda ids: labels(ids), ("--window", "a week"), 2, ("--window",)),
    ("output of unknown format", "l.csv", lambda ids: labels(ids), ("-o", "out.xlsx"), 2, ("unknown data format",)),
    ("no output anywhere", "l.csv", lambda ids: labels(ids), ("--no-output",), 2, ("-o", "feedback")),
]


@pytest.mark.parametrize(("name", "content", "extra", "code", "names"), [c[1:] for c in FEEDBACK_CASES],
                         ids=[c[0] for c in FEEDBACK_CASES])
def test_bad_feedback_join(work: Path, tmp_path: Path, name, content, extra, code, names) -> None:
    ids = logged(work)
    git(work, "add", "-A")  # the log is part of the state the refusal must leave as it was
    git(work, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-m", "log")
    path = tmp_path / name
    if content is not None:
        made = content(ids)
        if isinstance(made, pd.DataFrame):
            made.to_csv(path, index=False)
        else:
            path.write_text(made)
    output = ["-o", str(tmp_path / "joined.csv")]
    args = [a for a in extra if a != "--no-output"]
    if "-o" in extra or "--no-output" in extra:
        output = []
    refused(work, ["feedback", "join", str(path), *args, *output], code, *names)
    assert not (tmp_path / "joined.csv").exists() and not (tmp_path / "out.xlsx").exists()
