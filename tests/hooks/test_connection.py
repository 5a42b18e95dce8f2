"""The ``fuse`` connection as Airflow knows it (:mod:`airflow_provider_fuse.hooks.connection`): its
form, the same for Airflow 3.1's widgets and 3.2+'s declarative fields; and it imports no HTTP
client, nor Airflow, so that the provider info and a DAG can read it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_provider_fuse.hooks.connection import is_loopback
from airflow_provider_fuse.hooks.fuse import FuseHook


def test_airflow_3_1_form_widgets_are_the_provider_infos_fields(monkeypatch):
    """Airflow 3.1 builds the form from get_connection_form_widgets() with stand-ins for wtforms."""
    import sys
    import types

    from airflow_provider_fuse.get_provider_info import CONN_FIELDS

    def field(kind: str):
        return lambda label, **kwargs: (kind, label, kwargs.get("description"))

    stand_ins = {
        "wtforms": {"StringField": field("string"), "BooleanField": field("boolean")},
        "flask_babel": {"lazy_gettext": str},
        "flask_appbuilder": {},
        "flask_appbuilder.fieldwidgets": {"BS3TextFieldWidget": object},
    }
    for name, attributes in stand_ins.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attributes))
    widgets = FuseHook.get_connection_form_widgets()
    assert widgets == {
        "timeout": ("string", "Timeouts (seconds)", CONN_FIELDS["timeout"]["description"]),
        "verify": ("string", "Verify TLS", CONN_FIELDS["verify"]["description"]),
        "proxies": ("string", "Proxies", CONN_FIELDS["proxies"]["description"]),
        "allow_http": ("boolean", "Allow plain http", CONN_FIELDS["allow_http"]["description"]),
    }


def test_importing_it_imports_no_http_client_nor_airflow():
    code = (
        "import json, sys\n"
        "import airflow_provider_fuse.hooks.connection, airflow_provider_fuse.get_provider_info\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(result.stdout))
    for name in ("requests", "httpx", "urllib3", "airflow", "airflow_provider_fuse.hooks.fuse"):
        assert name not in loaded


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("fuse.example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_is_localhost_or_a_loopback_address_never_a_resolved_name(host, loopback):
    assert is_loopback(host) is loopback
