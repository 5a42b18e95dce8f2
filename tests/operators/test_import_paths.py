"""The operators' import path gives operators; helpers it once gave still resolve, with a warning."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_fuse import masking
from airflow_provider_fuse.operators import fuse, task_failures


def test_the_operators_import_path_exports_the_operators_and_their_parameters_values():
    assert set(fuse.__all__) == {
        "FuseBulkQueueOperator",
        "FuseQueueCallOperator",
        "FuseCancelCallsOperator",
        "ON_DUPLICATE_DESTINATIONS",
        "ON_UNKNOWN_OUTCOME",
        "RESEND_CONF_KEY",
    }


def test_import_star_from_the_operators_path_gives_the_operators_without_a_warning():
    names: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(f"from {fuse.__name__} import *", names)
    assert names["FuseBulkQueueOperator"] is fuse.FuseBulkQueueOperator
    assert "task_failure" not in names
    assert "mask_personal_data" not in names


@pytest.mark.parametrize(
    ("name", "owner"), [("mask_personal_data", masking), ("task_failure", task_failures)]
)
def test_a_helper_imported_from_the_operators_path_is_its_owners_with_a_deprecation_warning(name, owner):
    with pytest.warns(AirflowProviderDeprecationWarning, match=owner.__name__):
        helper = getattr(fuse, name)
    assert helper is getattr(owner, name)


def test_an_unknown_name_of_the_operators_path_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute"):
        fuse.no_such_name  # noqa: B018


def test_the_outcomes_module_gives_the_task_failures_names_with_a_deprecation_warning(monkeypatch):
    monkeypatch.delitem(sys.modules, "airflow_provider_fuse.operators.outcomes", raising=False)
    with pytest.warns(AirflowProviderDeprecationWarning, match="task_failures"):
        outcomes = importlib.import_module("airflow_provider_fuse.operators.outcomes")
    for name in outcomes.__all__:
        assert getattr(outcomes, name) is getattr(task_failures, name)
