"""The sandbox package: its names need the sandbox extra and say so; 0.1.0's names still resolve."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import airflow_provider_fuse.sandbox as sandbox
from airflow_provider_fuse.sandbox.models import SandboxCallEvent, SandboxCallStatus
from airflow_provider_fuse.sandbox.requirements import SandboxExtraMissing
from airflow_provider_fuse.sandbox.server import FuseSandbox


def test_every_public_name_resolves_to_its_definition():
    assert sandbox.FuseSandbox is FuseSandbox
    assert sandbox.SandboxCallStatus is SandboxCallStatus
    for name in sandbox.__all__:
        assert getattr(sandbox, name).__name__ == name


def test_no_sandbox_module_exports_a_name_the_provider_uses():
    import airflow_provider_fuse.calls
    import airflow_provider_fuse.exceptions

    provider = {*airflow_provider_fuse.calls.__all__, *airflow_provider_fuse.exceptions.__all__}
    exported = set(sandbox.__all__)
    for module in pkgutil.iter_modules(sandbox.__path__):
        if module.name != "__main__":
            exported |= set(importlib.import_module(f"{sandbox.__name__}.{module.name}").__all__)
    assert {"SandboxCallStatus", "SandboxCallEvent", "SandboxError"} <= exported
    assert provider & exported == set()


def test_a_sandbox_name_without_the_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(SandboxExtraMissing, match=r"needs fastapi, .*airflow-provider-fuse\[sandbox\]"):
        _ = sandbox.FuseSandbox


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'CallDetails'"):
        _ = sandbox.CallDetails


@pytest.mark.parametrize(("old", "new"), [("CallStatus", SandboxCallStatus), ("CallEvent", SandboxCallEvent)])
def test_the_names_of_0_1_0_still_resolve_with_a_deprecation_warning(old, new):
    with pytest.warns(DeprecationWarning, match=f"sandbox.{old} is renamed {new.__name__}"):
        assert getattr(sandbox, old) is new
