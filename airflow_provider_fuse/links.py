"""Where a user finds the campaign view: the extra links of the Fuse operators and sensors.

The view (:mod:`airflow_provider_fuse.results.view_app`) is served by the plugin on Airflow's
api-server at ``/fuse/campaigns/{dag_id}/{run_id}/{task_id}``. :class:`FuseCampaignLink` opens a bulk
task's campaign — from the bulk task, and from a ``FuseCampaignResultsSensor`` (its ``bulk_task_id``'s
campaign); :class:`FuseCallLink` opens a single call — from ``FuseQueueCallOperator`` and
``FuseCallStatusSensor``. On Airflow 3.1+ the plugin also adds the view as a tab of every task
instance (``external_views``), which shows it inside the UI.

The URL holds ids only (nothing secret: the view asks Airflow who may read the DAG), under
``[api] base_url`` as Airflow's own links are. Importing this module costs a DAG nothing beyond
Airflow's SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from airflow_provider_fuse._compat import conf

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "CALL_OPERATORS",
    "CAMPAIGNS_PATH",
    "RESULTS_SENSOR",
    "FuseCallLink",
    "FuseCampaignLink",
    "view_path",
]

#: The view's path in the app the plugin mounts at
#: :data:`~airflow_provider_fuse.results.plugin.URL_PREFIX`: ``/campaigns/{dag_id}/{run_id}/{task_id}``.
CAMPAIGNS_PATH = "/campaigns"
#: The class names of the operators whose task instances the view shows as a single call. The view
#: knows them, and their subclasses, by the :class:`FuseCallLink` they carry.
CALL_OPERATORS = frozenset({"FuseQueueCallOperator", "FuseCallStatusSensor"})
#: The class name of the sensor whose task instances show the campaign of its ``bulk_task_id``. The
#: view knows it, and its subclasses, by the :class:`FuseCampaignLink` it carries.
RESULTS_SENSOR = "FuseCampaignResultsSensor"


def view_path(dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
    """The view's path on the api-server for one task of one run: every id quoted as a path segment
    (``/`` too), ``?map_index=`` for a task instance of a mapped task (not -1)."""
    from airflow_provider_fuse.results.plugin import URL_PREFIX

    segments = "/".join(quote(str(value), safe="") for value in (dag_id, run_id, task_id))
    query = f"?map_index={int(map_index)}" if map_index is not None and int(map_index) >= 0 else ""
    return f"{URL_PREFIX}{CAMPAIGNS_PATH}/{segments}{query}"


def _url(path: str) -> str:
    """``path`` under Airflow's ``[api] base_url`` (as Airflow builds its own links: ``/`` when unset)."""
    base = str(conf.get("api", "base_url", fallback="/") or "/")
    return base.rstrip("/") + path


class FuseCampaignLink(BaseOperatorLink):
    """ "Fuse campaign": the campaign view of a ``FuseBulkQueueOperator`` task (every map index), or of
    the bulk task a ``FuseCampaignResultsSensor`` waits for."""

    name = "Fuse campaign"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        bulk_task_id = getattr(operator, "bulk_task_id", None)
        task_id = bulk_task_id if isinstance(bulk_task_id, str) and bulk_task_id else ti_key.task_id
        return _url(view_path(ti_key.dag_id, ti_key.run_id, task_id))


class FuseCallLink(BaseOperatorLink):
    """ "Fuse call": the view of the call a ``FuseQueueCallOperator`` queued, or a
    ``FuseCallStatusSensor`` waits for (its status and events)."""

    name = "Fuse call"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        map_index = getattr(ti_key, "map_index", -1)
        return _url(view_path(ti_key.dag_id, ti_key.run_id, ti_key.task_id, map_index))
