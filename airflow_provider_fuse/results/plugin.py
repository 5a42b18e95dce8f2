"""``FuseResultsPlugin``: mounts the results receiver and the campaign view on Airflow's api-server,
under ``/fuse``, and adds the view as a tab of the task instance in Airflow's UI (3.1+).

Registered only through the ``airflow.plugins`` entry point in ``pyproject.toml`` (the provider
info's ``plugins`` list is read only with ``[core] lazy_discover_providers=False``, and both ways at
once make Airflow record a "Plugin already registered" import error). A default deployment with the
provider installed on its api-server serves ``POST /fuse/results/{token}`` (the results receiver:
the token is its authentication) and ``GET /fuse/campaigns/...`` (the campaign view,
:mod:`.view_app`: behind Airflow's own authentication and authorization).

Every Airflow component loads plugins — the task runner does, for each task — but only the
api-server mounts FastAPI apps. So importing this module imports no web framework: the app is built
the first time ``fastapi_apps`` is read (by the api-server, or ``airflow plugins``), and once per
process.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.providers.common.compat.sdk import AirflowPlugin

from airflow_provider_fuse.links import CAMPAIGNS_PATH

__all__ = ["TASK_INSTANCE_VIEW", "URL_PREFIX", "FuseResultsPlugin"]

#: Where the receiver is mounted on the api-server: ``POST /fuse/results/{token}``; the campaign view
#: is beside it, at ``GET /fuse/campaigns/{dag_id}/{run_id}/{task_id}``.
URL_PREFIX = "/fuse"
#: The campaign view as a tab of every task instance in Airflow's UI (3.1+): the UI puts the task
#: instance's ids in place of ``{DAG_ID}``, ``{RUN_ID}``, ``{TASK_ID}`` and, on a mapped task,
#: ``{MAP_INDEX}`` (left as it is otherwise: the view then takes the task's first task instance).
#: Airflow 3.1's UI puts them in unencoded: a run id with ``?``, ``#`` or ``%`` (only possible under a
#: loosened ``allowed_run_id_pattern``) does not open there; one with ``/`` opens on no version.
TASK_INSTANCE_VIEW = {
    "name": "Fuse",
    "href": f"{URL_PREFIX}{CAMPAIGNS_PATH}/{{DAG_ID}}/{{RUN_ID}}/{{TASK_ID}}?map_index={{MAP_INDEX}}",
    "destination": "task_instance",
    "url_route": "fuse-campaign",
}


@cache
def _fastapi_apps() -> list[dict[str, Any]]:
    from airflow_provider_fuse.results.receiver import create_app
    from airflow_provider_fuse.results.view_app import create_view_app

    # Two apps: everything below the receiver's prefix is a token to it (masked before routing and
    # logging), so the view is an app of its own, mounted first (the api-server mounts in this order,
    # and the first mount that matches a path takes it).
    return [
        {"app": create_view_app(), "name": "Fuse campaign view", "url_prefix": URL_PREFIX + CAMPAIGNS_PATH},
        {"app": create_app(), "name": "Fuse results receiver", "url_prefix": URL_PREFIX},
    ]


class FuseResultsPlugin(AirflowPlugin):
    """The Fuse results receiver (:mod:`airflow_provider_fuse.results.receiver`) and the campaign view
    (:mod:`airflow_provider_fuse.results.view_app`) on the api-server."""

    name = "fuse_results"
    external_views = [TASK_INSTANCE_VIEW]

    # A property, not the class attribute AirflowPlugin declares: built when read, not at import.
    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The view app (at ``/fuse/campaigns``) and the receiver app (at :data:`URL_PREFIX`), built on
        first read (once per process)."""
        return _fastapi_apps()
