"""Provider discovery and metadata, checked the way Airflow itself reads them."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import jsonschema
import pytest

import airflow_provider_fuse
from airflow_provider_fuse.get_provider_info import get_provider_info

ROOT = Path(__file__).resolve().parents[1]


def test_provider_info_matches_airflows_own_schema():
    import airflow

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_package_name_is_the_distribution_name_and_versions_the_installed_one():
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-fuse"
    assert info["versions"] == [airflow_provider_fuse.__version__] == [version("airflow-provider-fuse")]


def test_entry_point_points_at_get_provider_info():
    (point,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.dist.name == "airflow-provider-fuse"
    ]
    assert point.load() is get_provider_info


def test_connection_type_hooks_and_operators_are_declared_and_import():
    import importlib

    info = get_provider_info()
    (connection,) = info["connection-types"]
    assert connection["connection-type"] == "fuse"
    module, _, name = connection["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name).conn_type == "fuse"
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module_name in entry["python-modules"]:
                importlib.import_module(module_name)


def test_the_notifier_is_declared_and_imports():
    import importlib

    (path,) = get_provider_info()["notifications"]
    module, _, name = path.rpartition(".")
    assert getattr(importlib.import_module(module), name).__name__ == "FuseNotifier"


_SERVED_FORM = """
import json, sys, warnings
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "fuse"]
    from airflow.providers_manager import ProvidersManager
    ProvidersManager().hooks.get("fuse")  # imports the hook, where 3.2+ warn about its form methods
out = {
    "hook_name": meta.hook_name,
    "standard_fields": meta.standard_fields.model_dump(),
    "extra_fields": json.loads(json.dumps(meta.extra_fields, default=str)),
    "warnings": [str(w.message) for w in caught if "fuse" in str(w.message).lower()],
}
try:
    from airflow.providers_manager import ProvidersManager
    import airflow
    if not airflow.__version__.startswith("3.1."):
        out["field_behaviours"] = ProvidersManager().field_behaviours["fuse"]
except Exception as error:
    out["field_behaviours_error"] = repr(error)
print("FORM=" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def served_form(tmp_path_factory) -> dict:
    """The connection form as Airflow's UI service builds it, in a fresh process (its caches are global)."""
    result = subprocess.run(
        [sys.executable, "-c", _SERVED_FORM],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path_factory.mktemp("form"),
    )
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("FORM=")]
    return json.loads(line.removeprefix("FORM="))


def test_connection_form_as_airflow_serves_it(served_form):
    fields = served_form["standard_fields"]
    assert served_form["hook_name"] == "Plum Fuse"
    assert fields["login"]["title"] == "Account email"
    assert fields["password"]["title"] == "Developer key"
    assert fields["host"]["title"] == "API base URL"
    assert fields["host"]["placeholder"] == "https://fuse.plumvoice.com/api"
    # Shown, with 443 as its placeholder: Airflow 3.3.2's Test button needs a stored port
    # (docs/connection.md, tests/e2e/test_connection_form.py).
    assert fields["port"]["hidden"] is False
    assert "443" in fields["port"]["placeholder"]
    assert fields["url_schema"]["hidden"] is True
    assert fields["login"]["hidden"] is False


def test_every_extra_the_hook_reads_is_a_field_of_the_form(served_form):
    from airflow_provider_fuse.hooks.fuse import KNOWN_EXTRAS

    assert set(served_form["extra_fields"]) == KNOWN_EXTRAS


@pytest.mark.parametrize(
    ("name", "title", "kind"),
    [
        ("timeout", "Timeouts (seconds)", {"object", "string"}),  # 3.1's form types JSON as text
        ("verify", "Verify TLS", {"string"}),
        ("proxies", "Proxies", {"object", "string"}),
        ("allow_http", "Allow plain http", {"boolean"}),
    ],
)
def test_an_extra_is_a_typed_field_with_its_label(served_form, name, title, kind):
    schema = served_form["extra_fields"][name]["schema"]
    assert schema["title"] == title
    assert {t for t in schema["type"] if t != "null"} <= kind
    assert served_form["extra_fields"][name]["description"]


def test_the_form_says_how_long_a_timeout_may_be_as_the_hook_does():
    from airflow_provider_fuse.get_provider_info import CONN_FIELDS
    from airflow_provider_fuse.hooks.fuse import MAX_TIMEOUT

    for seconds in CONN_FIELDS["timeout"]["schema"]["properties"].values():
        assert seconds == {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT}


def test_no_deprecation_warning_names_the_provider(served_form):
    assert served_form["warnings"] == []


def test_declarative_form_is_read_by_the_providers_manager_on_3_2_and_later(served_form):
    import airflow

    if airflow.__version__.startswith("3.1."):
        pytest.skip("Airflow 3.1 reads the form from FuseHook.get_ui_field_behaviour(), checked above")
    behaviours = served_form["field_behaviours"]
    assert behaviours["hidden_fields"] == ["schema"]
    assert behaviours["relabeling"]["password"] == "Developer key"


def test_airflow_providers_list_shows_the_provider(tmp_path):
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "providers", "hooks", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("[{")]
    hooks = json.loads(line)
    assert {"connection_type": "fuse", "class": "airflow_provider_fuse.hooks.fuse.FuseHook"}.items() <= next(
        hook for hook in hooks if hook["connection_type"] == "fuse"
    ).items()


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        # What the form stores as the docs say: the host empty, port 443 → Fuse's public API.
        ("", 443, "https://fuse.plumvoice.com/api"),
        (None, "443", "https://fuse.plumvoice.com/api"),
        ("", 8443, "https://fuse.plumvoice.com:8443/api"),
        ("fuse.example.com", 443, "https://fuse.example.com/api"),
        ("http://127.0.0.1", 80, "http://127.0.0.1/api"),
        ("http://127.0.0.1", 8123, "http://127.0.0.1:8123/api"),
        # A host with a port of its own keeps it.
        ("http://127.0.0.1:8123/api", 8123, "http://127.0.0.1:8123/api"),
        ("http://127.0.0.1:8123/api", 443, "http://127.0.0.1:8123/api"),
    ],
)
def test_the_port_the_form_stores_is_read_with_the_host(host, port, expected):
    from airflow_provider_fuse.hooks.fuse import base_url

    assert base_url(host, port) == expected
