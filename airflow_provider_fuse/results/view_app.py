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

What is read: Airflow's own records of the task instance (the extra links its serialized task
records — a task whose class is or derives from one of the provider's operators and sensors carries
their ``Fuse campaign`` or ``Fuse call`` link —, its ``fuse_results`` XComs, a results sensor's
rendered ``bulk_task_id``, a single call's XComs, and on Airflow 3.3+ the duplicate guard's ledger in
the task state store, for the rows of each part), and the results table's counts
(:meth:`~.table.ResultsTable.campaign_counts`), counted by the database. Never a row of the results
table: no phone number leaves it.

What it costs the api-server, per worker process: the reads run on :data:`VIEW_READERS` threads of
the view's own (so at most that many results-database connections, kept for reuse), never on the
thread pool Airflow's own endpoints share; :data:`VIEW_QUEUE` more requests wait, and any beyond are
answered 503 at once. A page opened reads the counts as they are; a page reloading itself
(``?reload=``, ``?retry=``) shows them as read in the last :data:`~.view.REFRESH_SECONDS` by the
process, so all the tabs left open on a campaign cost one read per interval between them.
Every answer carries ``Cache-Control: no-store``, ``X-Content-Type-Options: nosniff`` and a
Content-Security-Policy that allows no script and no fetch (the page's style and SVG are inline) and
lets only Airflow's own pages frame it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlencode

from airflow_provider_fuse.guard import LEDGER_KEY, Record
from airflow_provider_fuse.links import FuseCallLink, FuseCampaignLink
from airflow_provider_fuse.results.campaign import RESULTS_XCOM_KEY, SentList, UnreadableRecord
from airflow_provider_fuse.results.config import ResultsConfig, ResultsConfigError
from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable
from airflow_provider_fuse.results.view import (
    REFRESH_SECONDS,
    CallView,
    CampaignView,
    Plot,
    bucket_seconds_for,
    nothing_to_show,
    unreadable_page,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable, Sequence
    from datetime import timedelta

    from fastapi import FastAPI
    from sqlalchemy.orm import Session

    from airflow_provider_fuse.results.table import PartCount

__all__ = ["VIEW_QUEUE", "VIEW_READERS", "create_view_app", "read_view"]

#: Threads that read a page's numbers, per api-server worker: the most results-database connections
#: the view holds there.
VIEW_READERS = 4
#: Requests that may wait for a reader; any beyond are answered 503 at once.
VIEW_QUEUE = 8
#: What a page or its JSON says while the numbers cannot be read: the reason goes to the api-server's
#: log only (it may name a host, a port or a role).
_UNREADABLE = "The outcomes cannot be read now; the api-server's log says why."
_NOTHING = "this task instance recorded no Fuse campaign or call"
_BUSY = "Too many campaign pages are being read at once; try again in a few seconds."
#: The most DAG versions whose tasks' links are kept.
_VERSIONS_KEPT = 64

_K = TypeVar("_K")
_V = TypeVar("_V")

#: The XCom keys a single call's tasks push: the call id (queue) or its details (status sensor).
_CALL_KEYS = ("return_value", "call_details")
log = logging.getLogger(__name__)


class _Recent(Generic[_V]):
    """Values read in the last ``seconds``, by key, for the process; at most ``size`` kept. Concurrent
    asks for one key while it is read wait for that read and share its answer, or its error (kept for
    a third of the time), instead of reading again."""

    def __init__(self, seconds: float, size: int = 256, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (kept until, when its read began, the value or the error)
        self._kept: dict[Hashable, tuple[float, float, _V | BaseException]] = {}
        self._reading: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, read: Callable[[], _V], *, fresh: bool = False) -> _V:
        """The value kept for ``key`` when recent, else ``read()`` (kept). ``fresh``: only a value
        whose read began after this ask (a read under way when asked is waited for, then read again)."""
        asked = self._clock() if fresh else -math.inf
        with self._lock:
            found = self._recent(key, asked)
            turn = self._reading.setdefault(key, threading.Lock()) if found is None else None
        if turn is not None:
            with turn:
                with self._lock:
                    found = self._recent(key, asked)
                if found is None:
                    found = self._read(key, read)
        assert found is not None
        if isinstance(found, BaseException):
            raise found
        return found

    def _recent(self, key: Hashable, since: float) -> _V | BaseException | None:
        kept = self._kept.get(key)
        if kept is None or kept[0] <= self._clock() or kept[1] <= since:
            return None
        return kept[2]

    def _read(self, key: Hashable, read: Callable[[], _V]) -> _V | BaseException:
        began = self._clock()
        try:
            value: _V | BaseException = read()
            until = self._clock() + self._seconds
        except (ResultsConfigError, ResultsStoreError) as error:
            value, until = error, self._clock() + self._seconds / 3
        with self._lock:
            self._reading.pop(key, None)
            now = self._clock()
            for old in [old for old, kept in self._kept.items() if kept[0] <= now]:
                del self._kept[old]
            while len(self._kept) >= self._size:
                del self._kept[next(iter(self._kept))]
            self._kept[key] = (until, began, value)
        return value


class _Tables:
    """One :class:`ResultsTable` per (connection, table) the ``[fuse]`` options name, kept for the
    process (its connections are reused across requests: one per reader thread), and each campaign's
    counts read in the last :data:`~.view.REFRESH_SECONDS`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[tuple[str, str], ResultsTable] = {}
        self._counts: _Recent[tuple[list[PartCount], int, dict[int, int]]] = _Recent(REFRESH_SECONDS)

    def get(self) -> tuple[ResultsTable, int]:
        """The table and ``[fuse] results_token_lifetime``."""
        config = ResultsConfig.load()
        with self._lock:
            key = (config.conn_id, config.table)
            if key not in self._tables:
                self._tables[key] = ResultsTable(config.conn_id, config.table)
            return self._tables[key], config.token_lifetime

    def campaign_counts(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Sequence[str],
        bucket_seconds: Callable[[Sequence[PartCount]], int],
        window: tuple[int, int | None],
        *,
        fresh: bool = True,
    ) -> tuple[list[PartCount], int, dict[int, int], int]:
        """:meth:`ResultsTable.campaign_counts` of the campaign (for every ``window``: what the
        buckets' width depends on), and ``[fuse] results_token_lifetime``. Not ``fresh`` (a page
        reloading itself): as read in the last :data:`~.view.REFRESH_SECONDS`, where they were."""
        table, token_lifetime = self.get()
        key = (table.conn_id, table.table, dag_id, run_id, task_id, tuple(campaigns), window)
        counts, width, arrivals = self._counts.get(
            key,
            lambda: table.campaign_counts(dag_id, run_id, task_id, campaigns, bucket_seconds=bucket_seconds),
            fresh=fresh,
        )
        return counts, width, arrivals, token_lifetime


def read_view(
    session: Session,
    tables: _Tables,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int | None,
    *,
    now: float,
    fresh: bool = True,
) -> CampaignView | CallView | None:
    """What the view shows for one task of one run: its campaign (a bulk task's, or the bulk task's
    its results sensor waits for), its single call, or ``None`` when it recorded neither (or has no
    such ``map_index``). Not ``fresh`` (a page reloading itself): a campaign's counts as read in the
    last :data:`~.view.REFRESH_SECONDS`, where they were.

    :raises ResultsConfigError: ``[fuse]`` cannot be read.
    :raises ResultsStoreError: the results table cannot be read.
    """
    versions = _versions(session, dag_id, run_id, task_id)
    chosen = _chosen(versions, map_index)
    if chosen is None:
        return None
    links = _links(session, versions[chosen]).get(task_id, frozenset())
    sent = _sent_lists(session, dag_id, run_id, task_id)
    campaign_task = task_id
    if not sent and FuseCampaignLink.name in links:  # a results sensor, or a subclass of it
        bulk_task_id = _rendered(session, dag_id, run_id, task_id, chosen, "bulk_task_id")
        if isinstance(bulk_task_id, str) and bulk_task_id:
            campaign_task = bulk_task_id
            sent = _sent_lists(session, dag_id, run_id, bulk_task_id)
    if sent:
        parts = _ledger_parts(session, dag_id, run_id, campaign_task, sent)
        return _campaign(tables, dag_id, run_id, campaign_task, sent, parts, now=now, fresh=fresh)
    if FuseCallLink.name not in links:
        return None
    return _call(session, dag_id, run_id, task_id, chosen, versions[chosen], now=now)


def _campaign(
    tables: _Tables,
    dag_id: str,
    run_id: str,
    task_id: str,
    sent: dict[int, SentList],
    parts: dict[int, list[tuple[int | None, int | None] | None]],
    *,
    now: float,
    fresh: bool = True,
) -> CampaignView:
    campaigns = sorted({one.campaign for one in sent.values()})
    window_start = min(max(one.queued_timestamp, one.start_timestamp or 0) for one in sent.values())
    ends = [one.window_end or one.last_attempt_timestamp for one in sent.values()]
    window_end = max((end for end in ends if end is not None), default=None)

    def width(counts: Sequence[PartCount]) -> int:
        """The buckets' width: the window and every arrival in at most ``MAX_BUCKETS`` bars."""
        received = [at for one in counts for at in (one.first_received, one.last_received)]
        return bucket_seconds_for(
            max([window_end or window_start, *received]) - min([window_start, *received])
        )

    counts, bucket_seconds, arrivals, token_lifetime = tables.campaign_counts(
        dag_id, run_id, task_id, campaigns, width, (window_start, window_end), fresh=fresh
    )
    plot = Plot.of(arrivals, bucket_seconds, window_start=window_start, window_end=window_end, now=now)
    return CampaignView(dag_id, run_id, task_id, sent, parts, counts, plot, token_lifetime)


def _call(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int, version: object, *, now: float
) -> CallView:
    """A single call: a status sensor's own details (and, while it waits, its rendered ``call_id``),
    or the queue task's call id and the details another task with the call link (a status sensor)
    pushed for it."""
    own = _xcoms(session, dag_id, run_id, [task_id], _CALL_KEYS, map_index=map_index)
    details = next((value for _, _, value in own if _is_details(value)), None)
    call_id = next((value for _, key, value in own if key == "return_value" and isinstance(value, str)), None)
    if details is None and call_id is not None:  # the queue task: its call's status is a sensor's
        sensors = [other for other, links in _links(session, version).items() if FuseCallLink.name in links]
        found = _xcoms(session, dag_id, run_id, [s for s in sensors if s != task_id], _CALL_KEYS)
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


def _chosen(versions: dict[int, object], map_index: int | None) -> int | None:
    """The task instance asked for, or the task's first (-1 for a task that is not mapped) when none
    is; ``None`` when the task has no such map index (or no task instance)."""
    if map_index is None:
        return min(versions, default=None)
    return map_index if map_index in versions else None


# --- Airflow's records -----------------------------------------------------------------------------


def _versions(session: Session, dag_id: str, run_id: str, task_id: str) -> dict[int, object]:
    """The DAG version (id) each map index of one task in the run ran with."""
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    query = select(TaskInstance.map_index, TaskInstance.dag_version_id).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
    )
    return {int(map_index): version for map_index, version in session.execute(query)}


_LINKS: dict[object, dict[str, frozenset[str]]] = {}
_LINKS_LOCK = threading.Lock()


def _links(session: Session, version: object) -> dict[str, frozenset[str]]:
    """The names of the extra links each task of a DAG version carries, by task id, as Airflow
    serialized them: a subclass of the provider's operators inherits their links, so the view knows
    it as it knows them. A version's tasks never change: read once per process (the last
    :data:`_VERSIONS_KEPT` versions kept)."""
    with _LINKS_LOCK:
        known = _LINKS.get(version)
    if known is not None:
        return known
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import select

    found: dict[str, frozenset[str]] = {}
    serialized = session.scalar(
        select(SerializedDagModel).where(SerializedDagModel.dag_version_id == version)
    )
    data = serialized.data if serialized is not None else None
    tasks = data.get("dag", {}).get("tasks", []) if isinstance(data, dict) else []
    for task in tasks:
        fields = task.get("__var", task) if isinstance(task, dict) else {}
        links = fields.get("_operator_extra_links") if isinstance(fields, dict) else None
        if isinstance(fields, dict) and isinstance(fields.get("task_id"), str) and isinstance(links, dict):
            found[fields["task_id"]] = frozenset(str(name) for name in links)
    with _LINKS_LOCK:
        while len(_LINKS) >= _VERSIONS_KEPT:
            del _LINKS[next(iter(_LINKS))]
        _LINKS[version] = found
    return found


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
    from fastapi import APIRouter, Depends, FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    with warnings.catch_warnings():
        # Airflow's API imports svcs, which imports starlette's test client, which warns about the
        # httpx it finds: not this provider's to fix (the api-server has imported it already).
        warnings.simplefilter("ignore")
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
        from airflow.api_fastapi.core_api.security import requires_access_dag

    from airflow_provider_fuse.results.receiver import RefusalLog

    allowed = [
        Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE)),
        Depends(requires_access_dag("GET", DagAccessEntity.XCOM)),
    ]
    router = APIRouter(dependencies=allowed)
    tables = _Tables()
    # The reads block (the metadata database, the results table): they run on the view's own threads,
    # each read bounded by the results table's waits, so a slow database holds these and nothing of
    # Airflow's; requests beyond the readers and their queue are answered 503 at once.
    readers = ThreadPoolExecutor(max_workers=VIEW_READERS, thread_name_prefix="fuse-campaign-view")
    slots = threading.BoundedSemaphore(VIEW_READERS + VIEW_QUEUE)
    unreadable = RefusalLog(time.monotonic)

    def shown(
        dag_id: str, run_id: str, task_id: str, map_index: int | None, fresh: bool
    ) -> CampaignView | CallView | None:
        with create_session() as session:
            return read_view(
                session, tables, dag_id, run_id, task_id, map_index, now=time.time(), fresh=fresh
            )

    async def answer(
        dag_id: str, run_id: str, task_id: str, map_index: int | None, *, fresh: bool = True
    ) -> CampaignView | CallView | str | None:
        """The view, ``None`` when there is none, or the text of a 503."""
        if not slots.acquire(blocking=False):
            return _BUSY
        try:
            reading = readers.submit(shown, dag_id, run_id, task_id, map_index, fresh)
            return await asyncio.wrap_future(reading)
        except (ResultsConfigError, ResultsStoreError) as error:
            # Its text names the connection, the database's host or a role: for the log only.
            unreadable.refused(
                f"campaign view: {type(error).__name__}",
                "The campaign view cannot read the outcomes of %s/%s/%s: %s",
                dag_id,
                run_id,
                task_id,
                str(error),
            )
            return _UNREADABLE
        finally:
            slots.release()

    @router.api_route("/{dag_id}/{run_id}/{task_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
    async def campaign_page(
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: str | None = None,
        retry: str | None = None,
        reload: str | None = None,
    ) -> HTMLResponse:
        # A page opened (the tab, a link) shows the counts as they are now; one reloading itself
        # (?reload=, ?retry=) may show them as read in the last interval, for any tab open on it.
        chosen = _map_index(map_index)
        view = await answer(dag_id, run_id, task_id, chosen, fresh=reload is None and retry is None)
        if isinstance(view, str):
            tried = _map_index(retry) or 0
            return HTMLResponse(unreadable_page(view, retry=tried, map_index=chosen), status_code=503)
        if view is None:
            return HTMLResponse(nothing_to_show(dag_id, run_id, task_id), status_code=404)
        query = {"map_index": chosen} if chosen is not None else {}
        return HTMLResponse(view.html(reload="?" + urlencode({**query, "reload": 1})))

    @router.api_route("/{dag_id}/{run_id}/{task_id}/view.json", methods=["GET", "HEAD"])
    async def campaign_numbers(
        dag_id: str, run_id: str, task_id: str, map_index: str | None = None
    ) -> JSONResponse:
        view = await answer(dag_id, run_id, task_id, _map_index(map_index))
        if isinstance(view, str):
            return JSONResponse({"detail": view}, status_code=503)
        if view is None:
            return JSONResponse({"detail": _NOTHING}, status_code=404)
        return JSONResponse(view.as_dict())

    app = FastAPI(title="Fuse campaign view", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)

    @app.middleware("http")
    async def hardened(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Every answer, the 401, 403, 404 and 405 of the framework's own included.
        response = await call_next(request)
        response.headers.update(_HEADERS)
        if response.status_code == 503:
            response.headers["Retry-After"] = str(REFRESH_SECONDS)
        return response

    return app


#: The headers of every answer: never cached (the numbers change, and they are one user's to see);
#: never sniffed; no script, no fetch, no form, framed only by Airflow's own pages (the UI's tab).
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'self'"
    ),
    "Referrer-Policy": "same-origin",
}


def _map_index(value: str | None) -> int | None:
    """``?map_index=``: a whole number from -1, or nothing (the UI leaves ``{MAP_INDEX}`` as it is on
    a task that is not mapped)."""
    text = (value or "").strip()
    if text.lstrip("-").isdigit() and text.isascii() and len(text) < 10:
        return max(-1, int(text))
    return None
