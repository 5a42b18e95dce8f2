"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point.

Kept free of heavy imports: Airflow calls :func:`get_provider_info` without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_fuse import __version__
from airflow_provider_fuse.results.config import CONFIG

#: The connection form's standard fields: the same dict serves the declarative form (Airflow >= 3.2)
#: and ``FuseHook.get_ui_field_behaviour()`` (Airflow 3.1).
#:
#: ``port`` is shown: Airflow 3.3.2's *Test* button sends a connection without a port as port 0 and
#: its API then refuses the stored (masked) developer key (apache/airflow#73298, fixed after 3.3.2).
#: With 443 stored, as docs/connection.md says, the button works; the hook leaves the scheme's own
#: port out of the URL and a host with a port of its own keeps it.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {"login": "Account email", "password": "Developer key", "host": "API base URL"},
    "placeholders": {
        "login": "you@example.com",
        "password": "the developer key from My Account → Developer keys",
        "host": "https://fuse.plumvoice.com/api",
        "port": "443 (the API base URL's port; Airflow 3.3.2's Test button needs it)",
    },
}


_SECONDS = {"type": "number", "exclusiveMinimum": 0, "maximum": 86400}

#: The connection's extras as typed fields of the form (Airflow >= 3.2 reads ``conn-fields``;
#: ``FuseHook.get_connection_form_widgets()`` builds Airflow 3.1's from the same dict). The form
#: stores each under its own name in the extras, where the hook reads it as any extra: a field left
#: empty is an extra that is not set.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Timeouts (seconds)",
        "schema": {
            "type": ["object", "null"],
            "properties": {"connect": _SECONDS, "read": _SECONDS, "total": _SECONDS},
            "additionalProperties": False,
        },
        "description": "Seconds to connect, to wait for each read of the answer, and for the whole "
        'request: {"connect": 10, "read": 300, "total": 3600} when not set.',
    },
    "verify": {
        "label": "Verify TLS",
        "schema": {"type": ["string", "null"]},
        "description": "true (the default), false, or the path of a CA bundle to verify Fuse's "
        "certificate against.",
    },
    "proxies": {
        "label": "Proxies",
        "schema": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        "description": 'As requests takes them: {"https": "http://proxy.internal:3128"} (http:// is '
        'added to a proxy without a scheme); keys are schemes, "all", "scheme://host" or "no_proxy", '
        "any other key is refused.",
    },
    "allow_http": {
        "label": "Allow plain http",
        "schema": {"type": ["boolean", "null"], "default": False},
        "description": "Accept a plain-http API base URL off loopback: the developer key then "
        "travels in clear.",
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider-info dict Airflow's ProvidersManager reads."""
    return {
        "package-name": "airflow-provider-fuse",
        "name": "Plum Fuse",
        "description": "Queue outbound calls with Plum Fuse's outbound-calling API from Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Plum Fuse",
                "external-doc-url": "https://docs.plumvoice.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Plum Fuse",
                "python-modules": ["airflow_provider_fuse.hooks.fuse", "airflow_provider_fuse.hooks.results"],
            }
        ],
        "operators": [
            {
                "integration-name": "Plum Fuse",
                "python-modules": ["airflow_provider_fuse.operators.fuse"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Plum Fuse",
                "python-modules": [
                    "airflow_provider_fuse.sensors.fuse",
                    "airflow_provider_fuse.sensors.campaign_results",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Plum Fuse",
                "python-modules": [
                    "airflow_provider_fuse.triggers.fuse",
                    "airflow_provider_fuse.triggers.campaign_results",
                ],
            }
        ],
        "connection-types": [
            {
                "connection-type": "fuse",
                "hook-class-name": "airflow_provider_fuse.hooks.fuse.FuseHook",
                "hook-name": "Plum Fuse",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        # The [fuse] section (results receiver and collect_results). The receiver's plugin is
        # registered through the airflow.plugins entry point only (pyproject.toml says why).
        "config": CONFIG,
    }
