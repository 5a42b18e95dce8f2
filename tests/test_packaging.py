"""What a user installs: one version everywhere, typed, and — in CI — the wheel, not the source tree."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import airflow_provider_fuse
from airflow_provider_fuse.get_provider_info import get_provider_info

#: Set by `make test-wheel`, which runs this suite against the installed wheel from outside the tree.
INSTALLED = os.environ.get("FUSE_TEST_INSTALLED_WHEEL") == "1"
PACKAGE_DIR = Path(airflow_provider_fuse.__file__).resolve().parent


def test_the_version_is_defined_once_and_read_everywhere():
    from airflow_provider_fuse.hooks.fuse import FuseHook

    assert version("airflow-provider-fuse") == airflow_provider_fuse.__version__
    assert get_provider_info()["versions"] == [airflow_provider_fuse.__version__]
    hook = FuseHook()
    assert f"airflow-provider-fuse/{airflow_provider_fuse.__version__} " in hook_user_agent(hook)


def hook_user_agent(hook) -> str:
    os.environ.setdefault(
        "AIRFLOW_CONN_FUSE_DEFAULT",
        '{"conn_type": "fuse", "login": "a@b.c", "password": "k-123456", "host": ""}',
    )
    return hook.session.headers["User-Agent"]


def test_the_package_is_typed():
    assert (PACKAGE_DIR / "py.typed").is_file()


@pytest.mark.skipif(not INSTALLED, reason="only under `make test-wheel`")
def test_the_package_under_test_is_the_installed_wheel():
    assert "site-packages" in PACKAGE_DIR.parts, PACKAGE_DIR
    assert not (PACKAGE_DIR.parent / "pyproject.toml").exists()


def airflow_providers_get() -> dict:
    airflow = str(Path(sys.executable).parent / "airflow")
    result = subprocess.run(
        [airflow, "providers", "get", "airflow-provider-fuse", "--full", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("[{")]
    (info,) = json.loads(line)
    return info


def test_airflow_providers_get_shows_the_version_and_everything_listed_imports():
    info = airflow_providers_get()
    assert info["versions"][0] == airflow_provider_fuse.__version__
    modules = [
        module
        for kind in ("hooks", "operators", "sensors", "triggers")
        for entry in info.get(kind, [])
        for module in entry.get("python-modules", [])
    ]
    modules += [entry["hook-class-name"].rpartition(".")[0] for entry in info["connection-types"]]
    assert modules
    for name in modules:
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().is_relative_to(PACKAGE_DIR), name
