"""``FuseSandbox``: the sandbox app served by uvicorn in a background thread, plus its Python API."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import quote

import uvicorn

from airflow_provider_fuse.hooks.connection import is_loopback
from airflow_provider_fuse.sandbox.app import create_app
from airflow_provider_fuse.sandbox.assumptions import SandboxAssumptions as SandboxAssumptions
from airflow_provider_fuse.sandbox.faults import install_log_filter
from airflow_provider_fuse.sandbox.models import Call, Fault, FaultBody, RequestRecord, Upload
from airflow_provider_fuse.sandbox.service import FuseService
from airflow_provider_fuse.sandbox.settings import DEFAULT_EMAIL as DEFAULT_EMAIL
from airflow_provider_fuse.sandbox.settings import DEFAULT_MAX_UPLOAD_BYTES as DEFAULT_MAX_UPLOAD_BYTES
from airflow_provider_fuse.sandbox.settings import settings_from

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Unpack

    from airflow_provider_fuse.sandbox.settings import SandboxOptions, SandboxSettings

__all__ = ["FuseSandbox"]

log = logging.getLogger(__name__)

_STARTUP_TIMEOUT = 10.0


class FuseSandbox:
    """A local fake Fuse outbound API on a loopback port, for demos and end-to-end tests.

    ``with FuseSandbox() as sandbox:`` starts uvicorn in a background thread and returns once the
    server answers; leaving the block stops it and joins every thread it started.

    :param host: address to bind. Anything but loopback must be asked for explicitly and logs a
        warning: the sandbox serves plain http.
    :param port: port to bind; 0 picks a free one (the socket is bound here, then handed to uvicorn,
        so there is no race).
    :param settings: the account, its deployments, its clock and its limits; or, instead, their
        fields as keywords: ``email``, ``developer_key`` (default a random ``secrets.token_urlsafe``),
        ``state_file`` (SQLite, so a restart loses nothing; ``None``: memory), ``time_scale``
        (sandbox seconds per real second: 60 makes a one-minute ``reattempt_wait`` take 1 s),
        ``deployments``, ``deleted_deployments``, ``assumptions`` (readings of undocumented
        behaviour, see ``docs/sandbox.md``), ``allow_external_callbacks``, ``max_upload_bytes``
        (default 256 MiB; a larger body is answered 413 and nothing of it is stored). See
        :class:`~airflow_provider_fuse.sandbox.settings.SandboxSettings`.
    :param log_level: uvicorn's log level.
    :raises TypeError: settings given both as an object and as keywords.
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        **options: Unpack[SandboxOptions],
    ) -> None:
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self.service: FuseService | None = FuseService(settings_from(settings, options))
        # A restart (stop, start) keeps the same key, so connections built from it stay valid.
        self.settings = self.service.settings
        self.port: int = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FuseSandbox:
        """Bind, serve in a background thread, and wait until the server answers.

        :raises RuntimeError: if already running, or the server does not come up in time.
        :raises OSError: if the address cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("the Fuse sandbox is already running")
        if self.service is None:
            self.service = FuseService(self.settings)
        sock = self._bind()
        self.port = sock.getsockname()[1]
        if not is_loopback(self.host):
            log.warning(
                "The Fuse sandbox listens on %s:%s, beyond loopback, and serves plain http: credentials"
                " cross the network unencrypted (the Fuse hook accepts http only with the connection"
                " extra allow_http).",
                self.host,
                self.port,
            )
        install_log_filter()
        config = uvicorn.Config(
            create_app(self.service),
            host=self.host,
            port=self.port,
            log_level=self._log_level,
            access_log=False,
            http="h11",
            ws="none",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fuse-sandbox-server", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        try:
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Shut uvicorn down, stop the simulator and callback threads, close the state file.

        Idempotent; after it returns nothing the sandbox started is running. ``start()`` may be
        called again (the state survives only with a ``state_file``).
        """
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join()
        self._server = self._thread = None
        if self.service is not None:
            self.service.close()
            self.service = None

    def __enter__(self) -> FuseSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self._requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        return sock

    def _wait_until_answering(self) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while True:
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError("the Fuse sandbox server exited during startup")
            if self._server is not None and self._server.started:
                try:
                    with opener.open(f"{self.root_url}/_sandbox/info", timeout=2) as response:
                        if response.status == 200:
                            return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Fuse sandbox did not answer within 10 seconds")
            time.sleep(0.01)

    # -- addresses and credentials -------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def _url_host(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"[{host}]" if ":" in host else host

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (the inspection API lives under ``/_sandbox``)."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, ``http://HOST:PORT/api``: what a ``fuse`` connection's host takes."""
        return f"{self.root_url}/api"

    @property
    def email(self) -> str:
        """The account login the sandbox accepts."""
        return self.settings.email

    @property
    def developer_key(self) -> str:
        """The Developer Key the sandbox accepts."""
        return str(self.settings.developer_key)

    def connection_uri(self) -> str:
        """An Airflow connection URI for the ``fuse`` connection type.

        ``fuse://http://LOGIN:KEY@HOST:PORT/api`` with login and key URL-quoted: Airflow reads the
        ``http://`` inside as the host's scheme (host ``http://HOST``, port ``PORT``, schema ``api``).
        """
        login, key = quote(self.email, safe=""), quote(self.developer_key, safe="")
        return f"fuse://http://{login}:{key}@{self._url_host}:{self.port}/api"

    def connection_json(self) -> str:
        """The connection as Airflow's JSON form (e.g. for ``AIRFLOW_CONN_FUSE_DEFAULT``)."""
        return json.dumps(
            {"conn_type": "fuse", "login": self.email, "password": self.developer_key, "host": self.url}
        )

    # -- inspection ----------------------------------------------------------------------------

    def _running_service(self) -> FuseService:
        if self.service is None:
            raise RuntimeError("the Fuse sandbox is stopped")
        return self.service

    def uploads(self) -> list[Upload]:
        """Every ``bulk_queue`` request received (answered or not), oldest first."""
        return self._running_service().store.uploads()

    def calls(self, status: str | None = None) -> list[Call]:
        """Queued calls (optionally only those with ``status``), brought up to the sandbox clock."""
        return self._running_service().calls(status)

    def call(self, call_id: str) -> Call | None:
        """One call by id, or ``None``."""
        service = self._running_service()
        service.simulator.catch_up()
        return service.store.call(call_id)

    def requests(self) -> list[RequestRecord]:
        """Every ``/api`` request received, oldest first, including faulted and refused ones."""
        return self._running_service().store.requests()

    def inject_fault(
        self,
        status: int | None = None,
        body: FaultBody = "json",
        count: int = 1,
        skip: int = 0,
        delay: float = 0.0,
        drop: bool = False,
        after_queue: bool = False,
        endpoint: str | None = None,
        method: str | None = None,
        message: str | None = None,
        raw: bytes = b"",
        content_type: str = "application/octet-stream",
    ) -> Fault:
        """Make the next ``count`` matching ``/api`` requests misbehave; see :class:`Fault`.

        :returns: the queued fault.
        :raises ValueError: for a fault that changes nothing or has out-of-range values.
        """
        fault = Fault(
            status=status,
            body=body,
            message=message,
            raw=raw,
            content_type=content_type,
            delay=delay,
            drop=drop,
            after_queue=after_queue,
            count=count,
            skip=skip,
            endpoint=endpoint,
            method=method,
        )
        self.add_fault(fault)
        return fault

    def add_fault(self, fault: Fault) -> None:
        """Queue a ready-made :class:`Fault`."""
        self._running_service().faults.add(fault)

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._running_service().faults.clear()

    def add_deployment(self, application_id: int, deployment_id: int, deleted: bool = False) -> None:
        """Make a deployment exist, or exist as deleted (answered 409)."""
        self._running_service().add_deployment(application_id, deployment_id, deleted)

    def now(self) -> float:
        """The sandbox clock, unix seconds."""
        return self._running_service().clock.now()

    def advance(self, seconds: float) -> float:
        """Move the sandbox clock ``seconds`` forward, applying what became due; return the new time."""
        return self._running_service().advance(seconds)

    def wait_for_calls(
        self, count: int | None = None, timeout: float = 10.0, status: str | None = None
    ) -> list[Call]:
        """Wait until at least ``count`` (default 1) calls exist and all have ended; return the calls.

        With ``status``, wait for ``count`` calls (default: all) to have that status instead.
        Callbacks are waited for too: no ended call's ``result_delivery`` is still ``"pending"``.

        :raises TimeoutError: if that does not happen within ``timeout`` real seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls()
            if status is None:
                done = all(c.is_terminal for c in calls) and len(calls) >= (count or 1)
            else:
                matching = sum(1 for c in calls if c.status == status)
                done = bool(calls) and matching >= (count if count is not None else len(calls))
            if done and all(c.result_delivery != "pending" for c in calls):
                return calls
            if time.monotonic() > deadline:
                raise TimeoutError(f"calls did not settle within {timeout} s: {[c.status for c in calls]}")
            time.sleep(0.01)

    def reset(self) -> None:
        """Forget uploads, calls, requests and pending faults (credentials and deployments stay)."""
        self._running_service().reset()
