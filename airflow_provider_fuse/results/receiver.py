"""The results receiver: the ASGI app Fuse POSTs each call's ``call_details`` to.

``create_app()`` builds a FastAPI app with one route, ``POST /results/{token}``. The plugin
(:mod:`.plugin`) mounts it on Airflow's api-server under ``/fuse``; ``fuse-results serve``
(:mod:`.cli`) or any ASGI server can run it standalone, mounted the same way. The URL Fuse is given
is ``<results_base_url>/fuse/results/<token>`` (:meth:`.ResultsConfig.result_url`).

What one request goes through, in this order:

1. The ``[fuse]`` config (signing key, connection, table), loaded on the first request and then kept
   for the life of the process (a changed key takes effect when the server restarts). Missing or
   unusable: **503** with :data:`.tokens.NOT_CONFIGURED_DETAIL` (the bulk task's check before dialing
   fails on it); unreadable for now (a ``_cmd`` that failed, a secrets backend out of reach, any
   unexpected error) or not read within :data:`STORE_TIMEOUT`: a plain **503** (a warning there).
   Either way an ERROR log line naming the option (rate-limited: nothing is known of the sender yet);
   a request after :data:`CONFIG_RETRY_INTERVAL` seconds tries again.
2. The token, checked in constant time with the signing key (:func:`.tokens.verify`) before anything
   else is read. Malformed, forged (another key) or expired: **403**, the body is not read, nothing
   is stored, and a WARNING line says which kind — never the token. Anyone can send forged tokens,
   so these lines are rate-limited: at most one per kind per :data:`REFUSAL_LOG_INTERVAL` seconds
   per process, the next one counting the refusals not logged in between (:class:`RefusalLog`).
3. The body, read as it streams in, at most :data:`.callbacks.MAX_BODY_BYTES`: a larger one is
   answered **413** (``Connection: close``) without reading the rest; a ``Content-Length`` over the
   cap is refused before reading anything. A body that has not arrived within
   :data:`BODY_TIMEOUT` seconds (a stalled or trickling sender) is answered **408** (``Connection:
   close``).
4. The body parsed (:func:`.callbacks.read_callback`: JSON, XML or form fields): **400** unreadable,
   **415** an unsupported media type — and 400 for a value no database stores as text (a NUL, a
   control character, a lone surrogate): it would fail on every retry. The error names what is
   wrong (a documented field name at most); the body is never quoted, field names included. Any
   other exception while parsing is a bug of ours met by the sender's text: also **400**, and an
   ERROR line naming the exception's type only (its message might quote the body).
5. The outcome stored in one of the receiver's threads (:meth:`.ResultsTable.store`, which commits
   before returning; the table is created on first use): **200** ``{"stored": "stored"}``, or
   ``{"stored": "duplicate"}`` for a repeated delivery (stored once); **409** when the part already
   holds as many outcomes as it sent rows; **400** when the table says the outcome can never be
   stored (``ResultsStoreError.final``); and **503** with ``Retry-After`` when it cannot be stored
   now — including when the database has not answered within :data:`STORE_TIMEOUT`, whatever it is
   doing (locked, frozen) — so a sender that retries, retries; with an ERROR line naming the upload
   part (ids, no values).

Every log line is rate-limited per kind (:class:`RefusalLog`): a flood of any refusal logs a line
per :data:`REFUSAL_LOG_INTERVAL` seconds.

There is nothing to read here: no GET route, no ``/docs``, ``/redoc`` or ``/openapi.json``. A token
authorises storing outcomes for its one upload part, nothing else.

**The token never reaches a log.** Servers log the request path: uvicorn's access log (Airflow 3.1's
api-server, and ``fuse-results serve``) logs ``scope["path"]`` when the response starts, and Airflow
3.2+'s ``HttpAccessLogMiddleware`` (which replaces uvicorn's) logs it after the app returns. A pure
ASGI layer of this app (:class:`MaskTokenMiddleware`) moves the token into the scope and rewrites
``scope["path"]`` and ``scope["raw_path"]`` to ``<prefix>/results/***`` *in place* before routing —
the very dict those loggers hold, as Starlette's ``Mount`` updates the scope it was given
(``scope.update(child_scope)``) rather than copying it. The logs show ``/fuse/results/***`` (uvicorn
before 0.55 URL-quoted it, ``%2A%2A%2A``). Every other path below the app becomes
``<prefix>/***``, so a 404 or 405 (a mangled URL, a GET) logs no token either. The end-to-end tests
read a real api-server's whole output, on both Airflow versions, for every token they sent.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from fastapi import FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from airflow_provider_fuse.results.callbacks import MAX_BODY_BYTES, CallbackError, read_callback
from airflow_provider_fuse.results.config import ResultsConfig, ResultsConfigError, ResultsConfigUnreadable
from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable, Stored
from airflow_provider_fuse.results.tokens import (
    NOT_CONFIGURED_DETAIL,
    REFUSED_DETAIL,
    TokenError,
    TokenExpired,
    UploadPart,
    verify,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from starlette.types import ASGIApp, Receive, Scope, Send

    from airflow_provider_fuse.calls import CallDetails

__all__ = [
    "BODY_TIMEOUT",
    "CONFIG_RETRY_INTERVAL",
    "MASK",
    "MAX_WAITING_STORES",
    "REFUSAL_LOG_INTERVAL",
    "STORE_TIMEOUT",
    "TOKEN_SCOPE_KEY",
    "MaskTokenMiddleware",
    "RefusalLog",
    "create_app",
    "mask_path",
]

log = logging.getLogger(__name__)

#: What stands for the token (and for any other path below the app) in ``scope["path"]``.
MASK = "***"
#: The ASGI scope key the token is moved to before the path is rewritten.
TOKEN_SCOPE_KEY = "fuse_results.token"
_RESULTS = "/results/"
#: Threads storing outcomes (see :class:`_Receiver`).
STORE_THREADS = 4
#: The longest (seconds) a callback waits for the results database — or for the ``[fuse]`` section
#: to be read — before it is answered 503 with ``Retry-After``, whatever the database does (a table
#: lock, a frozen server, a held SQLite lock): the wait is bounded here, around the store thread.
STORE_TIMEOUT = 10.0
#: Stores waiting for a thread or running, beyond which a callback is answered 503 at once.
MAX_WAITING_STORES = 256
#: The longest (seconds) a callback's body may take to arrive, in total; a slower one is answered
#: 408 and its connection closed.
BODY_TIMEOUT = 10.0
#: After the ``[fuse]`` section failed to load, callbacks are answered 503 for this many seconds
#: without trying again (each try may run a ``_cmd`` or ask a secrets backend).
CONFIG_RETRY_INTERVAL = 5.0
_T = TypeVar("_T")
#: The 503 while the ``[fuse]`` section cannot be read now (a ``_cmd`` that failed, a secrets backend
#: out of reach, an unexpected error): not :data:`.tokens.NOT_CONFIGURED_DETAIL`, which says the
#: options are missing or unusable and fails the bulk task's check before dialing.
_UNREADABLE_DETAIL = "the results receiver cannot read its configuration now; retry later"
#: A 503 asks the sender to wait this long (seconds) before retrying.
_RETRY = {"Retry-After": "60"}
#: At most one log line per kind (a refused token, a store that failed, ...) in this many seconds
#: (per process).
REFUSAL_LOG_INTERVAL = 10.0


def mask_path(scope: Scope) -> str | None:
    """Rewrite ``scope["path"]`` and ``scope["raw_path"]`` in place; return the token it held.

    The path below the app's mount point (``scope["root_path"]``, the way Starlette routes) becomes
    ``/results/***`` when it starts with ``/results/`` — everything after that is the token, returned
    — and ``/***`` otherwise (``None`` returned). The mount prefix is kept: on the api-server the
    logged path reads ``/fuse/results/***``.
    """
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    prefix = ""
    route_path = path
    if root_path and path.startswith(root_path) and (path == root_path or path[len(root_path)] == "/"):
        prefix, route_path = root_path, path[len(root_path) :]
    token: str | None = None
    if route_path.startswith(_RESULTS):
        token = route_path[len(_RESULTS) :]
        masked = prefix + _RESULTS + MASK
    else:
        masked = prefix + "/" + MASK
    scope["path"] = masked
    scope["raw_path"] = quote(masked, safe="/*").encode("ascii")
    return token


class MaskTokenMiddleware:
    """Pure ASGI: moves the token out of the request path (see :func:`mask_path`) before the app runs.

    Pure ASGI (no ``BaseHTTPMiddleware``) so the scope it rewrites is the very dict the server and
    Airflow's access log hold. The token goes to ``scope[TOKEN_SCOPE_KEY]``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[TOKEN_SCOPE_KEY] = mask_path(scope)
        await self.app(scope, receive, send)


class RefusalLog:
    """The receiver's log lines, at most one per kind ("malformed token", "token not signed with this
    key", "the results token has expired", a store that failed, a part that is full, ...) per
    ``interval`` seconds.

    A forged token costs its sender nothing, and a misconfigured or unreachable receiver refuses every
    callback, so unthrottled lines would let anyone (or any flood) fill the log. The first refusal of
    a kind is logged at once; the ones after it within ``interval`` are only counted, and the next
    line of that kind says how many there were since the last one (no timer: a burst's count is
    logged by the next refusal of its kind). The kinds are fixed messages (this module's and
    :mod:`.tokens`'s): never the token, never anything the sender chose.

    :param clock: monotonic seconds.
    """

    def __init__(self, clock: Callable[[], float], interval: float = REFUSAL_LOG_INTERVAL) -> None:
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}  # kind -> when its last line was logged
        self._unlogged: dict[str, int] = {}  # kind -> refusals since that line, not logged

    def refused(
        self, kind: str, message: str | None = None, *args: object, level: int = logging.WARNING
    ) -> None:
        """Count one refusal of ``kind``; log a line unless one of its kind was logged within the
        interval.

        :param message: the line, a ``%`` format of ``args`` (ids and fixed text only); by default
            ``Refused a call outcome: <kind>``. A line after unlogged ones says how many there were.
        :param level: the line's level.
        """
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
                return
            unlogged = self._unlogged.pop(kind, 0)
            self._last[kind] = now
        if message is None:
            if unlogged and last is not None:
                log.log(
                    level,
                    "Refused %d call outcomes in the last %.0f s: %s (one line per %.0f s)",
                    unlogged + 1,
                    now - last,
                    kind,
                    self._interval,
                )
            else:
                log.log(level, "Refused a call outcome: %s", kind)
        elif unlogged and last is not None:
            log.log(
                level,
                message + " (and %d more like it in the last %.0f s, not logged: one line per %.0f s)",
                *args,
                unlogged,
                now - last,
                self._interval,
            )
        else:
            log.log(level, message, *args)


class ReceiverBusy(Exception):
    """The store (or the config's load) did not finish within :data:`STORE_TIMEOUT`, or too many are
    waiting or every thread is stuck: answered 503, the sender retries.

    ``queue_full`` tells the two apart for the log: ``True`` when the job was never queued (the
    receiver is full), ``False`` when it was and the database did not answer in time.
    """

    def __init__(self, *, queue_full: bool = False) -> None:
        super().__init__("too many stores waiting" if queue_full else "the store did not finish in time")
        self.queue_full = queue_full


class _StoreThreads:
    """A few daemon threads running blocking jobs, and what they are doing.

    Not a ``ThreadPoolExecutor``: its threads are joined when the interpreter exits, so one stuck on a
    frozen database would hold the api-server worker's exit. These are daemon threads, and the pool
    knows how many jobs wait (:attr:`waiting`) and since when each thread runs its job
    (:meth:`all_stuck`).
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running: dict[int, float] = {}  # thread id -> when its job started (monotonic)
        self.waiting = 0  # jobs submitted and not done (queued or running)

    def submit(self, function: Callable[..., _T], *args: Any) -> Future[_T]:
        """Run ``function(*args)`` in one of the threads; cancelling the future before it starts
        means it never runs."""
        future: Future[_T] = Future()
        with self._lock:
            if not self._threads:
                for index in range(self._size):
                    thread = threading.Thread(target=self._work, name=f"{self._name}-{index}", daemon=True)
                    thread.start()
                    self._threads.append(thread)
            self.waiting += 1
        future.add_done_callback(self._done)  # run once, on completion or cancellation
        self._jobs.put((future, function, args))
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self.waiting -= 1

    def all_stuck(self, longer_than: float) -> bool:
        """Whether every thread has been on its current job for more than ``longer_than`` seconds."""
        now = time.monotonic()
        with self._lock:
            running = list(self._running.values())
        return len(running) >= self._size and all(now - started > longer_than for started in running)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, function, args = job
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited: its sender was answered already
            ident = threading.get_ident()
            with self._lock:
                self._running[ident] = time.monotonic()
            try:
                result = function(*args)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
            finally:
                with self._lock:
                    self._running.pop(ident, None)

    def shutdown(self, timeout: float) -> bool:
        """Stop the threads after their current jobs, waiting at most ``timeout`` seconds in all.

        :return: whether every thread stopped (``False``: one is still stuck in its job).
        """
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)


class _Receiver:
    """The state behind the route: the config and the table, each loaded once, and the store threads.

    Outcomes are stored by a small pool of threads of the receiver's own (:data:`STORE_THREADS`), not
    the server's shared threadpool: a burst of callbacks never takes the threads the api-server's own
    endpoints run in, and the threads live as long as the app (each keeps its database connection: no
    connection is left behind by a thread that ends). On SQLite the table has them take turns.

    Every wait on them is bounded (:meth:`in_thread`): a database that hangs holds a thread, never a
    request beyond :data:`STORE_TIMEOUT`.
    """

    def __init__(
        self,
        load_config: Callable[[], ResultsConfig],
        clock: Callable[[], float],
        store_threads: int,
        *,
        store_timeout: float = STORE_TIMEOUT,
        max_waiting: int = MAX_WAITING_STORES,
    ) -> None:
        self._load_config = load_config
        self.clock = clock
        self._store_timeout = store_timeout
        self._max_waiting = max_waiting
        self._settings_lock = threading.Lock()
        self._table_lock = threading.Lock()
        self._settings: tuple[ResultsConfig, str] | None = None
        self._failed: tuple[float, ResultsConfigError] | None = None  # when the last load failed, why
        self._table: ResultsTable | None = None
        self._threads = _StoreThreads(store_threads, "fuse-results")

    @property
    def loaded(self) -> tuple[ResultsConfig, str] | None:
        """The config and signing key once :meth:`settings` has loaded them, else ``None``."""
        return self._settings

    async def in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in one of the receiver's threads, awaited at most :data:`STORE_TIMEOUT`.

        :raises ReceiverBusy: it did not finish in time (if it had not started, it never will; if it
            had, it goes on in its thread and the sender's retry finds what it did), or it was not
            even queued: :data:`MAX_WAITING_STORES` already wait, or every thread has been stuck
            longer than the bound (a frozen database), so it could not finish in time anyway.
        """
        threads = self._threads
        if threads.waiting >= self._max_waiting:
            raise ReceiverBusy(queue_full=True)
        if threads.all_stuck(self._store_timeout):
            raise ReceiverBusy
        future = threads.submit(function, *args)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self._store_timeout)
        except TimeoutError:
            future.cancel()
            raise ReceiverBusy from None

    def settings(self) -> tuple[ResultsConfig, str]:
        """The config and its signing key (blocking: ``_cmd``/``_secret`` options may run or fetch).

        :raises ResultsConfigError: naming the option; nothing is kept, and the next request after
            :data:`CONFIG_RETRY_INTERVAL` seconds tries again (those before it get the same error).
        """
        settings = self._settings
        if settings is None:
            with self._settings_lock:
                if self._settings is None:
                    failed = self._failed
                    if failed is not None and time.monotonic() - failed[0] < CONFIG_RETRY_INTERVAL:
                        raise failed[1].with_traceback(None)
                    try:
                        config = self._load_config()
                        self._settings = (config, config.require_signing_key())
                    except ResultsConfigError as error:
                        self._failed = (time.monotonic(), error)
                        raise
                settings = self._settings
        return settings

    def store(self, part: UploadPart, details: CallDetails, received: float) -> Stored:
        """Store one outcome (blocking); the table is created when missing, on first use.

        :raises ResultsStoreError: from the table.
        :raises ResultsConfigError: from the config.
        """
        table = self._table
        if table is None:
            config, _ = self.settings()
            with self._table_lock:
                if self._table is None:
                    self._table = ResultsTable.ready(config.conn_id, config.table)
                table = self._table
        return table.store(part, details, received=received)

    def close(self) -> None:
        """Stop the store threads (after what they are doing, waiting at most :data:`STORE_TIMEOUT`)
        and close the table's connections — unless a thread is still stuck in one (a frozen database):
        then they are left to the process's exit."""
        stopped = self._threads.shutdown(self._store_timeout)
        with self._table_lock:
            table, self._table = self._table, None
        if table is not None and stopped:
            table.close()
        elif not stopped:
            log.warning(
                "A Fuse results store thread was still waiting for the database after %.0f s at shutdown",
                self._store_timeout,
            )


def _detail(status_code: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers or None)


def _where(part: UploadPart) -> str:
    """The upload part, for a log line (ids only: no personal data)."""
    index = f"[{part.map_index}]" if part.map_index >= 0 else ""
    return f"{part.dag_id}/{part.run_id}/{part.task_id}{index} part {part.part}"


async def _read_body(request: Request) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed :data:`MAX_BODY_BYTES`."""
    declared = (request.headers.get("content-length") or "").strip()
    # ASCII digits only: "²".isdigit() is true and int() refuses it (and more than 4,300 digits).
    if declared.isascii() and declared.isdigit() and (len(declared) > 9 or int(declared) > MAX_BODY_BYTES):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    *,
    load_config: Callable[[], ResultsConfig] = ResultsConfig.load,
    clock: Callable[[], float] = time.time,
    store_threads: int = STORE_THREADS,
    monotonic: Callable[[], float] = time.monotonic,
    store_timeout: float = STORE_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
) -> FastAPI:
    """The receiver app: ``POST /results/{token}`` (mount it under ``/fuse``). See the module docstring.

    :param load_config: reads the ``[fuse]`` section; called on the first request (again after a
        failure, at most every :data:`CONFIG_RETRY_INTERVAL` seconds), never at import or here.
    :param clock: unix seconds, for token expiry and ``received_timestamp``.
    :param store_threads: how many outcomes are stored at once (each thread its own connection).
    :param monotonic: monotonic seconds, for rate-limiting the log lines.
    :param store_timeout: the bound on a wait for the database (:data:`STORE_TIMEOUT`).
    :param body_timeout: the bound on the body's arrival (:data:`BODY_TIMEOUT`).
    """
    receiver = _Receiver(load_config, clock, store_threads, store_timeout=store_timeout)
    refusals = RefusalLog(monotonic)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(receiver.close)

    app = FastAPI(
        title="Fuse results receiver",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(MaskTokenMiddleware)

    def unreadable(error: Exception) -> Response:
        """The answer while ``[fuse]`` cannot be read now (a ``_cmd`` that failed, a secrets backend
        out of reach, an unexpected error): a plain 503, not the "not configured" one the check before
        dialing fails a task on without retries, since it may pass. The log line names our own
        error, any other by its type only (its message may quote a ``_cmd``'s output)."""
        refusals.refused(
            "config unreadable",
            "The Fuse results receiver cannot read the [fuse] config section (answered 503): %s",
            error if isinstance(error, ResultsConfigError) else type(error).__name__,
            level=logging.ERROR,
        )
        return _detail(503, _UNREADABLE_DETAIL, **_RETRY)

    # The path the route sees is the masked one (MaskTokenMiddleware); the token is in the scope.
    async def receive_result(request: Request) -> Response:
        token: str = request.scope.get(TOKEN_SCOPE_KEY) or ""
        # Before the token is checked nothing is known of the sender: every line logged up to there
        # is rate-limited (a flood against an unconfigured receiver logs a line per interval).
        try:
            # Loaded once: only the first requests pay the thread hop.
            loaded = receiver.loaded
            _, key = loaded if loaded is not None else await receiver.in_thread(receiver.settings)
        except ResultsConfigError as error:
            if isinstance(error, ResultsConfigUnreadable):
                return unreadable(error)
            # Missing or unusable: every outcome would be refused until the options are fixed.
            refusals.refused(
                "not configured",
                "The Fuse results receiver cannot accept call outcomes (answered 503): %s",
                error,
                level=logging.ERROR,
            )
            return _detail(503, NOT_CONFIGURED_DETAIL, **_RETRY)
        except ReceiverBusy as busy:
            # Busy, not unconfigured: not the answer the check before dialing fails a task on.
            if busy.queue_full:
                refusals.refused(
                    "store queue full",
                    "The Fuse results receiver is busy (answered 503): %d reads and stores are already "
                    "waiting",
                    MAX_WAITING_STORES,
                    level=logging.WARNING,
                )
            else:
                refusals.refused(
                    "config slow",
                    "The Fuse results receiver could not read the [fuse] config section within %.0f s "
                    "(answered 503)",
                    store_timeout,
                    level=logging.ERROR,
                )
            return _detail(503, "the results receiver is busy; retry later", **_RETRY)
        except Exception as error:  # unexpected: nothing says the options are wrong
            return unreadable(error)
        try:
            part = verify(token, key, now=receiver.clock())
        except TokenExpired:
            refusals.refused("the results token has expired")
            return _detail(403, REFUSED_DETAIL)
        except TokenError as error:
            refusals.refused(str(error))  # one of tokens.py's fixed messages
            return _detail(403, REFUSED_DETAIL)

        try:
            body = await asyncio.wait_for(_read_body(request), body_timeout)
        except ClientDisconnect:
            return Response(status_code=400)
        except TimeoutError:
            refusals.refused(
                "body timed out",
                "Dropped a call outcome for %s: its body did not arrive within %.0f s (answered 408)",
                _where(part),
                body_timeout,
            )
            return _detail(408, "the body did not arrive in time", Connection="close")
        if body is None:
            return _detail(413, f"the body exceeds {MAX_BODY_BYTES} bytes", Connection="close")
        try:
            # On the event loop: ~20 µs for a real call_details, ~7 ms for the costliest 64 KiB body
            # found (16,000 repeated XML elements), against ~50 µs for a hop to a thread and back.
            details = read_callback(body, request.headers.get("content-type"))
        except CallbackError as error:
            return _detail(error.status_code, str(error))
        except Exception as error:
            # A bug of ours met by the sender's text: still the sender's body that is unreadable, so
            # 400 and no traceback (it might quote the body). Type only, as for the store below.
            refusals.refused(
                "read failed",
                "Could not read a call outcome for %s (answered 400): %s",
                _where(part),
                type(error).__name__,
                level=logging.ERROR,
            )
            return _detail(400, "the callback body is unreadable")

        try:
            outcome = await receiver.in_thread(receiver.store, part, details, receiver.clock())
        except ReceiverBusy as busy:
            if busy.queue_full:
                refusals.refused(
                    "store queue full",
                    "Could not queue a call outcome for %s (answered 503): %d stores are already "
                    "waiting for the results database",
                    _where(part),
                    MAX_WAITING_STORES,
                    level=logging.WARNING,
                )
            else:
                refusals.refused(
                    "store timed out",
                    "Could not store a call outcome for %s within %.0f s (answered 503): the results "
                    "database is not answering",
                    _where(part),
                    store_timeout,
                    level=logging.ERROR,
                )
            return _detail(503, "the outcome could not be stored; retry later", **_RETRY)
        except Exception as error:
            if isinstance(error, ResultsStoreError) and error.final:
                # This outcome can never be stored (the database refuses its values): a retry would
                # fail the same way for ever.
                refusals.refused(
                    "store refused",
                    "Refused a call outcome for %s that the database cannot store (answered 400): %s",
                    _where(part),
                    error,
                )
                return _detail(400, "the outcome cannot be stored: the database refuses its values")
            # Our own errors name the connection or option, scrubbed; any other error by its type
            # only, since its message might quote what it was given.
            reason = error if isinstance(error, (ResultsStoreError, ResultsConfigError)) else None
            refusals.refused(
                "store failed",
                "Could not store a call outcome for %s (answered 503): %s",
                _where(part),
                reason or type(error).__name__,
                level=logging.ERROR,
            )
            return _detail(503, "the outcome could not be stored; retry later", **_RETRY)
        if outcome is Stored.FULL:
            refusals.refused(
                "part full",
                "Refused a call outcome for %s: the part already holds as many outcomes as it sent rows (%d)",
                _where(part),
                part.rows,
            )
            return _detail(409, "this upload part already holds all its call outcomes")
        return JSONResponse({"stored": outcome.value})

    # A plain Starlette route: nothing for FastAPI's parameter analysis to do on each request.
    app.add_route(_RESULTS + MASK, receive_result, methods=["POST"])
    return app
