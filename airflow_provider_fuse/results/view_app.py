"""The campaign view's endpoints on Airflow's api-server, for those Airflow lets read the DAG.

:func:`create_view_app` is the app the plugin (:mod:`.plugin`) mounts at ``/fuse/campaigns``, beside
the results receiver's ``POST /fuse/results/{token}``:

* ``GET /fuse/campaigns/{dag_id}/{run_id}/{task_id}`` — the page (:mod:`.view`), ``?map_index=`` to
  choose one task instance of a mapped single call (a bulk task's page covers every map index);
* ``GET /fuse/campaigns/{dag_id}/{run_id}/{task_id}/view.json`` — the same numbers as JSON.

Plugin endpoints are not behind Airflow's authentication: every route here depends on the api-server's
own ``requires_access_dag`` for the DAG in the path, reading task instances and XComs (the JWT from the
``Authorization`` header or the UI's cookie, the deployment's auth manager deciding): anonymous is
answered 401, a user who may not read the DAG's task instances and XComs 403, before anything is read.
Nothing in the URLs is a secret.

What is read: Airflow's own records of the task instance (its operator, its ``fuse_results`` XComs, a
results sensor's rendered ``bulk_task_id``, a single call's XComs, and on Airflow 3.3+ the duplicate
guard's ledger in the task state store, for the rows of each part), and the results table's counts
(:meth:`~.table.ResultsTable.part_counts`, :meth:`~.table.ResultsTable.arrivals`), counted by the
database. Never a row of the results table: no phone number leaves it.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse.guard import LEDGER_KEY, Record
from airflow_provider_fuse.links import CALL_OPERATORS, RESULTS_SENSOR
from airflow_provider_fuse.results.campaign import RESULTS_XCOM_KEY, SentList, UnreadableRecord
from airflow_provider_fuse.results.config import ResultsConfig, ResultsConfigError
from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable
from airflow_provider_fuse.results.view import (
    CallView,
    CampaignView,
    Plot,
    bucket_seconds_for,
    nothing_to_show,
    unreadable_page,
)

if TYPE_CHECKING:
    from datetime import timedelta

    from fastapi import FastAPI
    from sqlalchemy.orm import Session

__all__ = ["create_view_app", "read_view"]

#: The XCom keys a single call's tasks push: the call id (queue) or its details (status sensor).
_CALL_KEYS = ("return_value", "call_details")


class _Tables:
    """One :class:`ResultsTable` per (connection, table) the ``[fuse]`` options name, kept for the
    process: its connections are reused across requests (one per thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[tuple[str, str], ResultsTable] = {}

    def get(self) -> tuple[ResultsTable, int]:
        """The table and ``[fuse] results_token_lifetime``."""
        config = ResultsConfig.load()
        with self._lock:
            key = (config.conn_id, config.table)
            if key not in self._tables:
                self._tables[key] = ResultsTable(config.conn_id, config.table)
            return self._tables[key], config.token_lifetime


def read_view(
    session: Session,
    tables: _Tables,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int | None,
    *,
    now: float,
) -> CampaignView | CallView | None:
    """What the view shows for one task of one run: its campaign (a bulk task's, or the bulk task's
    its results sensor waits for), its single call, or ``None`` when it recorded neither.

    :raises ResultsConfigError: ``[fuse]`` cannot be read.
    :raises ResultsStoreError: the results table cannot be read.
    """
    operators = _operators(session, dag_id, run_id, [task_id])
    if not operators:
        return None
    sent = _sent_lists(session, dag_id, run_id, task_id)
    campaign_task = task_id
    if not sent and RESULTS_SENSOR in operators.values():
        bulk_task_id = _rendered(
            session, dag_id, run_id, task_id, _chosen(operators, map_index), "bulk_task_id"
        )
        if isinstance(bulk_task_id, str) and bulk_task_id:
            campaign_task = bulk_task_id
            sent = _sent_lists(session, dag_id, run_id, bulk_task_id)
    if sent:
        parts = _ledger_parts(session, dag_id, run_id, campaign_task, sent)
        return _campaign(tables, dag_id, run_id, campaign_task, sent, parts, now=now)
    chosen = _chosen(operators, map_index)
    operator = operators.get(chosen)
    if operator not in CALL_OPERATORS:
        return None
    return _call(session, dag_id, run_id, task_id, chosen, operator, now=now)


def _campaign(
    tables: _Tables,
    dag_id: str,
    run_id: str,
    task_id: str,
    sent: dict[int, SentList],
    parts: dict[int, list[tuple[int | None, int | None] | None]],
    *,
    now: float,
) -> CampaignView:
    table, token_lifetime = tables.get()
    campaigns = sorted({one.campaign for one in sent.values()})
    counts = table.part_counts(dag_id, run_id, task_id, campaigns)
    window_start = min(max(one.queued_timestamp, one.start_timestamp or 0) for one in sent.values())
    ends = [one.window_end or one.last_attempt_timestamp for one in sent.values()]
    window_end = max((end for end in ends if end is not None), default=None)
    received = [time for one in counts for time in (one.first_received, one.last_received)]
    low = min([window_start, *received])
    high = max([window_end or window_start, *received])
    bucket_seconds = bucket_seconds_for(high - low)
    arrivals = (
        table.arrivals(dag_id, run_id, task_id, campaigns, bucket_seconds=bucket_seconds) if counts else {}
    )
    plot = Plot.of(arrivals, bucket_seconds, window_start=window_start, window_end=window_end, now=now)
    return CampaignView(dag_id, run_id, task_id, sent, parts, counts, plot, token_lifetime)


def _call(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int, operator: str, *, now: float
) -> CallView:
    """A single call: the queue task's call id and a status sensor's details for it, or the status
    sensor's own details (and, while it waits, its rendered ``call_id``)."""
    own = _xcoms(session, dag_id, run_id, [task_id], _CALL_KEYS, map_index=map_index)
    details = next((value for _, _, value in own if _is_details(value)), None)
    call_id: str | None = None
    if operator == "FuseQueueCallOperator":
        call_id = next(
            (value for _, key, value in own if key == "return_value" and isinstance(value, str)), None
        )
        sensors = [
            sensor
            for sensor, kind in _operators_of_run(session, dag_id, run_id).items()
            if kind == "FuseCallStatusSensor"
        ]
        found = _xcoms(session, dag_id, run_id, sensors, _CALL_KEYS) if sensors and call_id else []
        details = next(
            (value for _, _, value in found if _is_details(value) and value.get("call_id") == call_id), None
        )
    elif details is None:
        rendered = _rendered(session, dag_id, run_id, task_id, map_index, "call_id")
        call_id = rendered if isinstance(rendered, str) else None
    return CallView(dag_id, run_id, task_id, call_id, details, now)


def _is_details(value: object) -> bool:
    """Whether ``value`` is ``call_details`` as the status sensor pushes it."""
    return isinstance(value, dict) and "status" in value and "call_id" in value


def _chosen(operators: dict[int, str], map_index: int | None) -> int:
    """The task instance asked for, or the task's first (-1 for a task that is not mapped)."""
    return map_index if map_index is not None and map_index in operators else min(operators)


# --- Airflow's records -----------------------------------------------------------------------------


def _operators(session: Session, dag_id: str, run_id: str, task_ids: list[str]) -> dict[int, str]:
    """The operator (class name) of each map index of one task in the run."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    query = select(TaskInstance.map_index, TaskInstance.operator).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id.in_(task_ids)
    )
    return {int(map_index): str(operator or "") for map_index, operator in session.execute(query)}


def _operators_of_run(session: Session, dag_id: str, run_id: str) -> dict[str, str]:
    """The operator (class name) of every task of the run, by task id."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    query = select(TaskInstance.task_id, TaskInstance.operator).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
    )
    return {str(task): str(operator or "") for task, operator in session.execute(query)}


def _xcoms(
    session: Session,
    dag_id: str,
    run_id: str,
    task_ids: list[str],
    keys: tuple[str, ...],
    *,
    map_index: int | None = None,
) -> list[tuple[int, str, Any]]:
    """``(map_index, key, value)`` of the XComs under ``keys`` of the tasks in the run."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = select(XComModel).where(
        XComModel.dag_id == dag_id,
        XComModel.run_id == run_id,
        XComModel.task_id.in_(task_ids),
        XComModel.key.in_(keys),
    )
    if map_index is not None:
        query = query.where(XComModel.map_index == map_index)
    return [
        (int(row.map_index), str(row.key), XComModel.deserialize_value(row)) for row in session.scalars(query)
    ]


def _sent_lists(session: Session, dag_id: str, run_id: str, task_id: str) -> dict[int, SentList]:
    """Each map index's ``fuse_results`` record; one that cannot be read is left out."""
    sent = {}
    for map_index, _, value in _xcoms(session, dag_id, run_id, [task_id], (RESULTS_XCOM_KEY,)):
        try:
            sent[map_index] = SentList.from_xcom(value)
        except UnreadableRecord:
            continue
    return sent


def _rendered(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int, name: str) -> object:
    """One rendered template field of a task instance (``None`` when not recorded)."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from sqlalchemy import select

    query = select(RenderedTaskInstanceFields.rendered_fields).where(
        RenderedTaskInstanceFields.dag_id == dag_id,
        RenderedTaskInstanceFields.run_id == run_id,
        RenderedTaskInstanceFields.task_id == task_id,
        RenderedTaskInstanceFields.map_index == map_index,
    )
    fields = session.scalar(query)
    return fields.get(name) if isinstance(fields, dict) else None


def _ledger_parts(
    session: Session, dag_id: str, run_id: str, task_id: str, sent: dict[int, SentList]
) -> dict[int, list[tuple[int | None, int | None] | None]]:
    """Each map index's parts as the duplicate guard's ledger records them: ``(rows, calls_queued)``
    per part, ``None`` for a part not sent. Airflow 3.3+ only (its task state store, in the metadata
    database); none where the ledger is missing, kept elsewhere, unreadable or of another campaign."""
    try:
        from airflow.models.task_state_store import TaskStateStoreModel
        from sqlalchemy import select
    except ImportError:  # Airflow < 3.3: no task state store
        return {}
    query = select(TaskStateStoreModel.map_index, TaskStateStoreModel.value).where(
        TaskStateStoreModel.dag_id == dag_id,
        TaskStateStoreModel.run_id == run_id,
        TaskStateStoreModel.task_id == task_id,
        TaskStateStoreModel.key == LEDGER_KEY,
    )
    parts: dict[int, list[tuple[int | None, int | None] | None]] = {}
    for map_index, value in session.execute(query):
        try:
            record = Record.read(_Read(json.loads(value)), LEDGER_KEY)
        except Exception:  # not this provider's ledger, or another backend's reference
            continue
        one = sent.get(int(map_index))
        if (
            record is None
            or one is None
            or record.campaign is None
            or record.campaign.campaign != one.campaign
        ):
            continue
        parts[int(map_index)] = [
            None
            if entry is None
            else (entry.get("rows"), entry.get("calls_queued") if entry.get("state") == "queued" else None)
            for entry in record.entries
        ]
    return parts


class _Read:
    """A ledger value read from the task state store, as :meth:`Record.read` asks for it (read-only)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, key: str, default: Any = None) -> Any:
        return self.value if key == LEDGER_KEY else default

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        raise NotImplementedError("the view writes no ledger")


# --- The routes ------------------------------------------------------------------------------------


def create_view_app() -> FastAPI:
    """The view's app (mount it at ``/fuse/campaigns``): every route behind the api-server's
    authentication and its auth manager's permission to read the DAG's task instances and XComs.
    Built by the api-server only: imports FastAPI and Airflow's API."""
    from airflow.utils.session import create_session
    from fastapi import APIRouter, Depends, FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse

    with warnings.catch_warnings():
        # Airflow's API imports svcs, which imports starlette's test client, which warns about the
        # httpx it finds: not this provider's to fix (the api-server has imported it already).
        warnings.simplefilter("ignore")
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
        from airflow.api_fastapi.core_api.security import requires_access_dag

    allowed = [
        Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
        Depends(requires_access_dag("GET", DagAccessEntity.XCOM)),
    ]
    router = APIRouter(dependencies=allowed)
    tables = _Tables()
    no_cache = {"Cache-Control": "no-store"}

    def shown(
        dag_id: str, run_id: str, task_id: str, map_index: str | None
    ) -> CampaignView | CallView | None:
        with create_session() as session:
            return read_view(session, tables, dag_id, run_id, task_id, _map_index(map_index), now=time.time())

    # Sync handlers: FastAPI runs them in its thread pool (the reads block); every read is bounded by
    # the results table's own waits.
    @router.get("/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse)
    def campaign_page(dag_id: str, run_id: str, task_id: str, map_index: str | None = None) -> HTMLResponse:
        try:
            view = shown(dag_id, run_id, task_id, map_index)
        except (ResultsConfigError, ResultsStoreError) as error:
            return HTMLResponse(unreadable_page(str(error)), status_code=503, headers=no_cache)
        if view is None:
            return HTMLResponse(nothing_to_show(dag_id, run_id, task_id), status_code=404, headers=no_cache)
        return HTMLResponse(view.html(), headers=no_cache)

    @router.get("/{dag_id}/{run_id}/{task_id}/view.json")
    def campaign_numbers(
        dag_id: str, run_id: str, task_id: str, map_index: str | None = None
    ) -> JSONResponse:
        try:
            view = shown(dag_id, run_id, task_id, map_index)
        except (ResultsConfigError, ResultsStoreError) as error:
            return JSONResponse({"detail": str(error)}, status_code=503, headers=no_cache)
        if view is None:
            return JSONResponse(
                {"detail": "this task instance recorded no Fuse campaign or call"}, status_code=404
            )
        return JSONResponse(view.as_dict(), headers=no_cache)

    app = FastAPI(title="Fuse campaign view", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    return app


def _map_index(value: str | None) -> int | None:
    """``?map_index=``: a whole number from -1, or nothing (the UI leaves ``{MAP_INDEX}`` as it is on
    a task that is not mapped)."""
    text = (value or "").strip()
    if text.lstrip("-").isdigit() and text.isascii() and len(text) < 10:
        return max(-1, int(text))
    return None
