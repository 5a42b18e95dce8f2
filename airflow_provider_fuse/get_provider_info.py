"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point.

Kept free of heavy imports: Airflow calls :func:`get_provider_info` without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_fuse import __version__

#: The connection form: the same dict serves the declarative form (Airflow >= 3.2) and
#: ``FuseHook.get_ui_field_behaviour()`` (Airflow 3.1).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["port", "schema"],
    "relabeling": {"login": "Account email", "password": "Developer key", "host": "API base URL"},
    "placeholders": {
        "login": "you@example.com",
        "password": "the developer key from My Account → Developer keys",
        "host": "https://fuse.plumvoice.com/api",
        "extra": '{"timeout": [10, 300], "verify": true, "allow_http": false}',
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
                "python-modules": ["airflow_provider_fuse.hooks.fuse"],
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
                "python-modules": ["airflow_provider_fuse.sensors.fuse"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Plum Fuse",
                "python-modules": ["airflow_provider_fuse.triggers.fuse"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "fuse",
                "hook-class-name": "airflow_provider_fuse.hooks.fuse.FuseHook",
                "hook-name": "Plum Fuse",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
