"""The operators' import path gives operators; helpers it once gave still resolve, with a warning."""

from __future__ import annotations

import importlib
import sys

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_fuse import masking
from airflow_provider_fuse.operators import fuse, task_failures


def test_the_operators_import_path_exports_the_operators_their_parameters_values_and_the_old_helpers():
    assert set(fuse.__all__) == {
        "FuseBulkQueueOperator",
        "FuseQueueCallOperator",
        "FuseCancelCallsOperator",
        "ON_DUPLICATE_DESTINATIONS",
        "ON_UNKNOWN_OUTCOME",
        "RESEND_CONF_KEY",
        "mask_personal_data",
        "task_failure",
    }


def test_import_star_from_the_operators_path_still_gives_the_old_helpers_with_a_deprecation_warning():
    names: dict[str, object] = {}
    with pytest.warns(AirflowProviderDeprecationWarning):
        exec(f"from {fuse.__name__} import *", names)
    assert names["task_failure"] is task_failures.task_failure
    assert names["mask_personal_data"] is masking.mask_personal_data


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
