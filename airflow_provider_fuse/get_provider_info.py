"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point.

Kept free of heavy imports: Airflow calls :func:`get_provider_info` without importing the hook. The
connection form comes from :mod:`airflow_provider_fuse.hooks.connection`, which imports no HTTP
client.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_fuse import __version__
from airflow_provider_fuse.hooks.connection import CONN_FIELDS, CONN_TYPE, HOOK_NAME, UI_FIELD_BEHAVIOUR
from airflow_provider_fuse.results.config import CONFIG

# The connection form is the connection module's; named here too, where Airflow reads it.
__all__ = ["CONN_FIELDS", "UI_FIELD_BEHAVIOUR", "get_provider_info"]


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
        "notifications": ["airflow_provider_fuse.notifications.fuse.FuseNotifier"],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_fuse.hooks.fuse.FuseHook",
                "hook-name": HOOK_NAME,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        # The [fuse] section (results receiver and collect_results). The receiver's plugin is
        # registered through the airflow.plugins entry point only (pyproject.toml says why).
        "config": CONFIG,
    }
