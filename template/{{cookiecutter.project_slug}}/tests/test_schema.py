{%- set classification = cookiecutter.task == "classification" -%}
{%- set schema = "ChurnSchema" if classification else "ChargesSchema" -%}
"""The data contract accepts the sample data and names what is wrong with bad rows."""

import pandera.errors
import pytest

from {{ cookiecutter.package_name }}.schema import {{ schema }}


def test_sample_data_meets_the_contract(sample):
    validated = {{ schema }}.validate(sample, lazy=True)
    assert len(validated) == len(sample)


def test_out_of_range_and_unknown_values_are_named(sample):
    bad = sample.head(20).copy()
    bad.loc[bad.index[0], "tenure_months"] = -3
    bad.loc[bad.index[1], "contract"] = "lifetime"
    with pytest.raises(pandera.errors.SchemaErrors) as caught:
        {{ schema }}.validate(bad, lazy=True)
    failing = set(caught.value.failure_cases["column"])
    assert {"tenure_months", "contract"} <= failing


def test_an_unexpected_column_is_a_contract_change(sample):
    with pytest.raises((pandera.errors.SchemaError, pandera.errors.SchemaErrors)):
        {{ schema }}.validate(sample.head(5).assign(surprise=1))


def test_the_target_is_in_the_contract(spec):
    assert spec.target in {{ schema }}.to_schema().columns
