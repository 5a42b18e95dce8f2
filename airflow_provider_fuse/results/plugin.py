"""``FuseResultsPlugin``: mounts the results receiver on Airflow's api-server, under ``/fuse``.

Registered only through the ``airflow.plugins`` entry point in ``pyproject.toml`` (the provider
info's ``plugins`` list is read only with ``[core] lazy_discover_providers=False``, and both ways at
once make Airflow record a "Plugin already registered" import error). A default deployment with the
provider installed on its api-server serves ``POST /fuse/results/{token}``.

Every Airflow component loads plugins — the task runner does, for each task — but only the
api-server mounts FastAPI apps. So importing this module imports no web framework: the app is built
the first time ``fastapi_apps`` is read (by the api-server, or ``airflow plugins``), and once per
process.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin

__all__ = ["URL_PREFIX", "FuseResultsPlugin"]

#: Where the receiver is mounted on the api-server: ``POST /fuse/results/{token}``.
URL_PREFIX = "/fuse"


@cache
def _fastapi_apps() -> list[dict[str, Any]]:
    from airflow_provider_fuse.results.receiver import create_app

    return [{"app": create_app(), "name": "Fuse results receiver", "url_prefix": URL_PREFIX}]


class FuseResultsPlugin(AirflowPlugin):
    """The Fuse results receiver (:mod:`airflow_provider_fuse.results.receiver`) on the api-server."""

    name = "fuse_results"

    # A property, not the class attribute AirflowPlugin declares: built when read, not at import.
    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The receiver app, built on first read (one per process), mounted at :data:`URL_PREFIX`."""
        return _fastapi_apps()
