"""The data contract: every failure reported at once, fingerprints stable, GitHub output written."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from gitops_ml.cli import main
from gitops_ml.config import load_spec
from gitops_ml.data import check_data, fingerprint, read_table
from gitops_ml.errors import ConfigError, DataError

from .conftest import EXAMPLE_DATA, make_project


@pytest.fixture
def spec(tmp_path):
    return load_spec(make_project(tmp_path / "p", rows=300))


def write(tmp_path, frame: pd.DataFrame, name="data.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def sample(n=50) -> pd.DataFrame:
    return pd.read_csv(EXAMPLE_DATA, nrows=n)


def failures_by_column(report):
    return {f.column: f for f in report.failures}


def test_bundled_data_passes(spec):
    frame, report = check_data(spec)
    assert report.passed and report.rows == 300
    assert frame["support_calls"].dtype.kind == "i"


def test_text_in_numeric_and_null_in_non_nullable_are_both_reported(spec, tmp_path):
    frame = sample().astype({"monthly_charges": object})
    frame.loc[3, "monthly_charges"] = "twelve"
    frame.loc[7, "contract"] = None
    _, report = check_data(spec, write(tmp_path, frame))
    found = failures_by_column(report)
    assert not report.passed
    assert found["monthly_charges"].values == ["twelve"] and found["monthly_charges"].rows == [3]
    assert found["contract"].check == "not_nullable" and found["contract"].rows == [7]


def test_range_category_missing_and_unexpected_columns(spec, tmp_path):
    frame = sample()
    frame.loc[2, "age"] = 140
    frame.loc[4, "contract"] = "weekly"
    frame = frame.drop(columns=["region"]).assign(favourite_colour="blue")
    _, report = check_data(spec, write(tmp_path, frame))
    found = failures_by_column(report)
    assert found["age"].values == ["140.0"] and found["age"].rows == [2]
    assert found["contract"].values == ["weekly"]
    assert "region" in found and "favourite_colour" in found


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("", DataError, "the file is empty"),
        ("age,contract\n", DataError, "header but no rows"),
        ('a,b\n1,"unterminated\n', DataError, "not a readable CSV"),
    ],
)
def test_unreadable_files(tmp_path, content, error, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(error, match=message):
        read_table(str(path))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        read_table(str(tmp_path / "nope.csv"))
    with pytest.raises(ConfigError, match="unknown data format"):
        read_table(str(tmp_path / "data.xlsx"))


def test_fingerprint_ignores_column_order_and_format(spec, tmp_path):
    frame, _ = check_data(spec)
    parquet = tmp_path / "data.parquet"
    frame[frame.columns[::-1]].to_parquet(parquet)
    again, _ = check_data(spec, str(parquet))
    assert fingerprint(frame) == fingerprint(again)
    changed = frame.copy()
    changed.loc[0, "age"] = 33.0 if frame.loc[0, "age"] != 33.0 else 34.0
    assert fingerprint(changed) != fingerprint(frame)


def test_validate_command_under_github_actions(spec, tmp_path, monkeypatch):
    frame = sample()
    frame.loc[1, "support_calls"] = -3
    path = write(tmp_path, frame)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = CliRunner().invoke(main, ["--project", str(spec.root), "validate", path])
    assert result.exit_code == 1
    assert f"::error file={path},title=data contract%3A support_calls::" in result.output
    assert "| support_calls | greater_than_or_equal_to(0) | 1 | -3 | 1 |" in summary.read_text()


def test_validate_json_lists_every_failure(spec, tmp_path):
    frame = sample()
    frame.loc[0, "paperless_billing"] = "maybe"
    frame.loc[[5, 6], "tenure_months"] = -1
    result = CliRunner().invoke(main, ["--project", str(spec.root), "validate", write(tmp_path, frame), "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    counts = {f["column"]: f["count"] for f in payload["failures"]}
    assert counts == {"paperless_billing": 1, "tenure_months": 2}
