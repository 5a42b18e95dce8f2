"""The plugin: registered once (entry point only), loads without import errors, mounts the receiver at
/fuse, and costs a task nothing: importing it imports no web framework."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from airflow_provider_fuse.get_provider_info import get_provider_info
from airflow_provider_fuse.results.plugin import URL_PREFIX, FuseResultsPlugin
from tests.helpers import run_command

AIRFLOW = str(Path(sys.executable).parent / "airflow")
APP = "fastapi.applications.FastAPI"


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    return {**base, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **extra}


def run_python(code: str, env: dict[str, str], cwd: Path) -> str:
    # Not from the checkout: ``python -c`` puts the working directory on sys.path, and a
    # ``*.egg-info`` left there by a build would make the distribution (and its plugin) appear twice.
    done = run_command([sys.executable, "-c", code], env, cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_airflow_plugins_lists_it_once(tmp_path: Path) -> None:
    env = airflow_env(tmp_path)

    done = run_command([AIRFLOW, "plugins", "-o", "json"], env, tmp_path)

    assert done.returncode == 0, done.stderr[-3000:]
    listed = json.loads(done.stdout.strip().splitlines()[-1])
    ours = [plugin for plugin in listed if plugin["name"] == "fuse_results"]
    assert len(ours) == 1
    assert ours[0]["fastapi_apps"] == [
        {"app": APP, "name": "Fuse campaign view", "url_prefix": "/fuse/campaigns"},
        {"app": APP, "name": "Fuse results receiver", "url_prefix": "/fuse"},
    ]
    assert "airflow.plugins" in ours[0]["source"]


# The core plugins manager (the api-server's) and, on 3.3+, the task SDK's (every task runner's).
IMPORT_ERRORS = """
import json, sys
from airflow import plugins_manager as core
if hasattr(core, "get_import_errors"):  # Airflow >= 3.2
    names = [plugin.name for plugin in core._get_plugins()[0]]
    errors = core.get_import_errors()
else:  # Airflow 3.1
    core.ensure_plugins_loaded()
    names = [plugin.name for plugin in core.plugins]
    errors = core.import_errors
sdk_names, sdk_errors = [], {}
try:
    from airflow.sdk import plugins_manager as sdk
except ImportError:
    pass
else:
    sdk_names, sdk_errors = [plugin.name for plugin in sdk._get_plugins()[0]], sdk._get_plugins()[1]
print(json.dumps({"names": names, "errors": errors, "sdk_names": sdk_names, "sdk_errors": sdk_errors,
                  "fastapi": "fastapi" in sys.modules}))
"""


@pytest.mark.parametrize("lazy_discover_providers", ["True", "False"])
def test_the_plugins_managers_load_it_once_without_import_errors(
    tmp_path: Path, lazy_discover_providers: str
) -> None:
    env = airflow_env(tmp_path, AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS=lazy_discover_providers)

    loaded = json.loads(run_python(IMPORT_ERRORS, env, tmp_path))

    assert loaded["names"].count("fuse_results") == 1
    assert loaded["errors"] == {}
    if loaded["sdk_names"]:
        assert loaded["sdk_names"].count("fuse_results") == 1
    assert loaded["sdk_errors"] == {}
    # Loading plugins (as a task runner does) builds no app.
    assert loaded["fastapi"] is False


def test_the_provider_info_declares_no_plugins() -> None:
    """Registered both ways, Airflow records a "Plugin already registered" import error."""
    assert "plugins" not in get_provider_info()


def test_importing_the_plugin_imports_no_web_framework_nor_the_sandbox(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_fuse.results.plugin\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )

    added = json.loads(run_python(code, airflow_env(tmp_path), tmp_path))

    for name in (
        "fastapi",
        "uvicorn",
        "airflow_provider_fuse.sandbox",
        "airflow_provider_fuse.results.receiver",
    ):
        assert name not in added


def test_the_plugin_mounts_the_receiver_at_fuse() -> None:
    plugin = FuseResultsPlugin()

    [view, entry] = plugin.fastapi_apps

    assert FuseResultsPlugin.name == "fuse_results"
    assert entry["url_prefix"] == URL_PREFIX == "/fuse"
    assert isinstance(entry["app"], FastAPI)
    assert [route.path for route in entry["app"].routes] == ["/results/***"]  # type: ignore[attr-defined]
    # Mounted first: every path below the receiver's prefix is a token to it.
    assert view["url_prefix"] == "/fuse/campaigns"


def test_the_app_is_built_once_per_process() -> None:
    assert FuseResultsPlugin().fastapi_apps[0]["app"] is FuseResultsPlugin().fastapi_apps[0]["app"]
