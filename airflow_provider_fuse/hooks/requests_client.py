"""The sync path: one ``requests.Session`` per hook, and one try of a request over it.

A session's connections read answers as the async path (httpx) does (:class:`_FuseHTTPResponse`):
interim 1xx answers skipped, a head h11 refuses refused, a head beyond the bounds of
:mod:`~airflow_provider_fuse.hooks.limits` not read. A :class:`Watchdog` ends a request at its
overall deadline, and says whether it may have left. A contact CSV is checked before it is opened
(:func:`check_csv`) and streamed, never read whole into memory.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from contextlib import ExitStack, contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests_toolbelt.multipart.encoder import MultipartEncoder, MultipartEncoderMonitor

from airflow_provider_fuse.exceptions import FuseApiError, FuseCsvError, FuseError, FuseRequestError
from airflow_provider_fuse.hooks.classify import (
    ANSWER_HTTP_VERSIONS,
    Answer,
    HeadTooLarge,
    OtherHttpVersion,
    cause,
    classify_answer,
    failure,
    head_within_bounds,
)
from airflow_provider_fuse.hooks.client_logs import keep_answers_out_of_client_logs
from airflow_provider_fuse.hooks.connection import request_headers
from airflow_provider_fuse.hooks.limits import MAX_ANSWER_BYTES, MAX_INTERIM_HEAD_BYTES, UPLOAD_BLOCK_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from urllib3.connection import HTTPConnection

    from airflow_provider_fuse.hooks.settings import ConnectionSettings

    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object

__all__ = [
    "CsvSource",
    "DeadlinePassed",
    "FuseAdapter",
    "Watchdog",
    "check_csv",
    "new_session",
    "read_answer",
    "request_and_read",
    "rewinder",
    "send",
]

#: A contact CSV: a path, or a binary file object (sent from its current position).
CsvSource = str | os.PathLike[str] | IO[bytes]


def new_session(settings: ConnectionSettings, watchdog: Watchdog) -> requests.Session:
    """A session with basic auth, JSON answers, TLS verification, the provider's User-Agent, whose
    connections report to ``watchdog``."""
    session = requests.Session()
    # As bytes, UTF-8: requests would encode text as Latin-1 (failing on other characters), and
    # the header must be exactly :attr:`ConnectionSettings.authorization`, the form scrubbed.
    session.auth = HTTPBasicAuth(settings.email.encode(), settings.developer_key.encode())
    session.headers.update(request_headers("python-requests", requests.__version__))
    session.verify = settings.verify
    session.proxies.update(settings.proxies)
    adapter = FuseAdapter(watchdog)
    keep_answers_out_of_client_logs()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def send(
    session: Callable[[], requests.Session],
    watchdog: Watchdog,
    settings: ConnectionSettings,
    method: str,
    url: str,
    *,
    fields: Mapping[str, str] | None,
    csv: CsvSource | None,
    deadline: float,
    log: Any,
    progress_interval: float,
) -> Answer:
    """One try: send, read at most :data:`MAX_ANSWER_BYTES` of the answer, classify it.

    :param session: gives the session to send on (building it may fail: a request not made).
    :raises FuseError: only; one that is not an unknown outcome means nothing left the machine.
    """
    error: FuseApiError | None = None
    with ExitStack() as stack:
        try:
            # Nothing can have left before session.request: a session that cannot be built, a
            # body that cannot be opened, a watchdog whose timer thread cannot start is a request
            # not made. Said here, not by failure(): the watchdog may still describe the last request.
            requests_session = session()
            data, headers = stack.enter_context(_multipart_body(fields, csv, log, progress_interval))
            stack.enter_context(watchdog.watch(deadline - time.monotonic()))
        except FuseError:
            raise
        except Exception as raised:  # the contract: only FuseErrors leave the hook
            error = FuseRequestError(f"not sent: the request could not be made ({cause(raised)})")
        else:
            try:
                size = f" ({headers['Content-Length']} bytes)" if data is not None else ""
                log.info("%s %s%s", method, url, size)
                response, body, complete = request_and_read(
                    requests_session,
                    watchdog,
                    method,
                    url,
                    limit=MAX_ANSWER_BYTES,
                    data=data,
                    headers=headers,
                    timeout=settings.timeout,
                    # Per request, not only on the session: requests lets REQUESTS_CA_BUNDLE and
                    # HTTPS_PROXY override session-level settings, but not these.
                    verify=settings.verify,
                    proxies=dict(settings.proxies),
                )
            except FuseError:
                raise
            except Exception as raised:  # the contract: only FuseErrors leave the hook
                error = failure(
                    raised,
                    expired=watchdog.expired,
                    connected=watchdog.connected,
                    total_timeout=settings.total_timeout,
                    connect_failed=watchdog.connect_failed,
                )
    if error is not None:
        # Raised outside the except block, with no cause or context: an exception's text may
        # quote the answer (a chunk-length line, a header). The failure names its types.
        raise error
    answer = classify_answer(response.status_code, body, secrets=settings.secrets, complete=complete)
    return Answer(response.status_code, answer, dict(response.headers))


@contextmanager
def _multipart_body(
    fields: Mapping[str, str] | None, csv: CsvSource | None, log: Any, progress_interval: float
) -> Iterator[tuple[MultipartEncoderMonitor | None, dict[str, str]]]:
    """The request's body and its headers: none without fields or a CSV, else multipart/form-data
    with the CSV as field ``csv`` (streamed, its upload logged every ``progress_interval`` seconds).

    :raises FuseCsvError: a file that cannot be read; nothing was sent.
    """
    if csv is None and fields is None:
        yield None, {}
        return
    with _open_csv(csv) as (file, filename):
        parts: list[tuple[str, Any]] = list((fields or {}).items())
        if file is not None:
            parts.append(("csv", (filename, file, "text/csv")))
        try:
            encoder = MultipartEncoder(fields=parts)
        except (OSError, ValueError) as error:
            # The encoder measures the file: a closed or unreadable one fails here, unsent.
            raise FuseCsvError(f"the file cannot be read ({type(error).__name__})") from None
        monitor = MultipartEncoderMonitor(encoder, _UploadProgress(log, encoder.len, progress_interval))
        yield monitor, {"Content-Type": encoder.content_type, "Content-Length": str(encoder.len)}


class DeadlinePassed(Exception):
    """The watchdog cut the request; :func:`~airflow_provider_fuse.hooks.classify.failure` says
    what that means."""


def request_and_read(
    session: requests.Session, watchdog: Watchdog, method: str, url: str, *, limit: int, **kwargs: Any
) -> tuple[requests.Response, bytes, bool]:
    """Send over ``session`` (no redirect followed) and read at most ``limit`` bytes of the answer,
    closing it: (the response, the bytes, whether that was all of it).

    :raises DeadlinePassed: ``watchdog`` cut the request (a body that ends with the connection reads
        as whole when the watchdog cut it).
    """
    response = session.request(method, url, allow_redirects=False, stream=True, **kwargs)
    try:
        body, complete = read_answer(response, limit)
    finally:
        response.close()
    if watchdog.expired:
        raise DeadlinePassed
    return response, body, complete


def read_answer(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of a streamed answer: (the bytes, whether that was all of it)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=min(64 * 1024, limit + 1)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], False
    return b"".join(chunks), True


class FuseAdapter(HTTPAdapter):
    """The default adapter, sending request bodies in blocks of :data:`UPLOAD_BLOCK_SIZE`, whose
    connections — direct or through a proxy — report their sockets to the hook's :class:`Watchdog`."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog  # before super().__init__, which builds the pool manager
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", UPLOAD_BLOCK_SIZE)
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager, self.watchdog)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        kwargs.setdefault("blocksize", UPLOAD_BLOCK_SIZE)
        manager = super().proxy_manager_for(proxy, **kwargs)
        _watch_pools(manager, self.watchdog)
        return manager


def _watch_pools(manager: Any, watchdog: Watchdog) -> None:
    """Make every pool of ``manager`` open connections that report to ``watchdog`` (once)."""
    classes = manager.pool_classes_by_scheme
    if all(getattr(cls, "_fuse_watchdog", None) is watchdog for cls in classes.values()):
        return
    watched = {}
    for scheme, pool_class in classes.items():
        connection_class = type(
            f"Watched{pool_class.ConnectionCls.__name__}",
            (_WatchedConnection, pool_class.ConnectionCls),
            {"watchdog": watchdog},
        )
        watched[scheme] = type(
            f"Watched{pool_class.__name__}",
            (pool_class,),
            {"ConnectionCls": connection_class, "_fuse_watchdog": watchdog},
        )
    manager.pool_classes_by_scheme = watched


class _UnaskedSwitch(http.client.HTTPException):
    """A ``101 Switching Protocols`` the request never asked for (it sends no ``Upgrade``): a broken
    answer, as httpx's h11 holds it on the async path."""


class _MalformedHead(http.client.HTTPException):
    """An answer's head that httpx's parser (h11) refuses: a header line without a colon, a space
    before the colon, a NUL or other control character, two different ``Content-Length`` values...
    Raised while the sync client reads it, so that urllib3 drops the connection and reports a broken
    answer (an unknown outcome), as the async path does; it quotes nothing of the head."""


class _HeadParser:
    """The file the sync client reads an answer's head from, handing every line it reads to h11 —
    the parser of the async path — so that the sync path refuses exactly the heads the async one
    refuses. Sizes are not h11's to judge here (:func:`head_within_bounds` is, on both paths)."""

    def __init__(self, fp: Any) -> None:
        import h11

        self.fp = fp
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 40)
        self._h11.send(h11.Request(method="GET", target="/", headers=[("Host", "fuse")]))
        self._h11.send(h11.EndOfMessage())
        self._answered = self._closed = False

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self.fp.readline(limit)
        if self._answered or self._closed:
            return line
        self._h11.receive_data(line)  # b"": the connection ended
        self._closed = not line
        if line in (b"\r\n", b"\n", b""):  # the end of a head: parse it now
            self.check(final=False)
        return line

    def check(self, *, final: bool = True) -> None:
        """Parse the heads read so far; with ``final``, the answer's head must be among them.

        :raises _MalformedHead: h11 refuses a head (or, with ``final``, has none whole).
        """
        import h11

        try:
            while not self._answered:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    break
                self._answered = isinstance(event, h11.Response)
        except h11.RemoteProtocolError:
            raise _MalformedHead from None
        if final and not self._answered:
            raise _MalformedHead


class _FuseHTTPResponse(http.client.HTTPResponse):
    """http.client's response, reading heads as httpx does on the async path: interim 1xx answers
    skipped, up to :data:`MAX_INTERIM_HEAD_BYTES` of head each (http.client skips a 100 only, and
    takes a 103 for the answer); a 101 refused; every head refused that h11 refuses
    (:class:`_HeadParser`); the final answer refused unless it is in one of
    :data:`ANSWER_HTTP_VERSIONS` (h11 takes any ``HTTP/<digit>.<digit>``, http.client any
    ``HTTP/1.x`` and ``HTTP/0.9``); the final head held to :data:`MAX_ANSWER_HEADERS` and
    :data:`MAX_ANSWER_HEAD_BYTES`."""

    def begin(self) -> None:
        parser = _HeadParser(self.fp)
        self.fp = parser  # type: ignore[assignment]  # read by readline only, in begin()
        try:
            super().begin()
        except http.client.LineTooLong:  # a status or header line over 64 KiB
            raise HeadTooLarge from None
        except http.client.HTTPException as error:
            if type(error) is not http.client.HTTPException:  # http.client's "more than 100 headers"
                raise
            raise HeadTooLarge from None
        finally:
            self.fp = parser.fp
        parser.check()
        if not head_within_bounds(self.msg.items(), self.reason):
            raise HeadTooLarge

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if status == 101:
                raise _UnaskedSwitch
            if not 100 <= status < 200:
                if version not in ANSWER_HTTP_VERSIONS:
                    raise OtherHttpVersion
                return version, status, reason
            self._skip_interim_head()

    def _skip_interim_head(self) -> None:
        size = 0
        while True:
            line = self.fp.readline(MAX_INTERIM_HEAD_BYTES + 1 - size)
            size += len(line)
            if size > MAX_INTERIM_HEAD_BYTES:
                raise HeadTooLarge
            if line in (b"\r\n", b"\n", b""):  # the end of the head, or of the connection
                return


class _WatchedConnection(_ConnectionBase):
    """A urllib3 connection that hands its socket to the watchdog and says when it is connected,
    and reads answers with :class:`_FuseHTTPResponse`."""

    watchdog: Watchdog
    response_class = _FuseHTTPResponse

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self.watchdog.adopt(sock)
        return sock

    def connect(self) -> None:
        self.watchdog.mark_connecting()
        super().connect()
        self.watchdog.mark_connected()

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection: already connected
            self.watchdog.adopt(self.sock)
            self.watchdog.mark_connected()
        super().request(*args, **kwargs)


class Watchdog:
    """Ends the request in flight at its overall deadline by shutting down its sockets.

    Per-read timeouts cannot bound an answer that trickles (each byte resets them), nor a slow
    upload; SIGALRM belongs to Airflow's ``execution_timeout``. So a timer thread shuts the
    connection down, which makes the blocked send or receive fail at once. It works on a duplicate
    of the socket's descriptor: a shutdown ends the connection for every descriptor of it, including
    the TLS socket that later wraps it. ``connected`` says whether the request may have left;
    ``connect_failed``, whether a connection for it was begun and never made (nothing left).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._watching = False
        #: Which watch is current. ``timer.cancel()`` cannot stop an ``_expire`` already past its
        #: wait: one that runs late must find its watch over, not cut the next request.
        self._generation = 0
        self.expired = False
        self.connected = False
        self._connecting = False

    @contextmanager
    def watch(self, seconds: float) -> Iterator[None]:
        """Watch the request made inside: shut it down after ``seconds`` (at once if not positive).

        :raises RuntimeError: the timer thread cannot start; nothing is watched, nothing was sent.
        """
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._watching, self.expired, self.connected, self._sockets = True, False, False, []
            self._connecting = False
        timer = threading.Timer(max(seconds, 0.0), self._expire, args=(generation,))
        timer.daemon = True
        try:
            timer.start()
            yield
        finally:
            timer.cancel()
            with self._lock:
                self._watching = False
                sockets, self._sockets = self._sockets, []
            for sock in sockets:
                with suppress(OSError):  # only our copy: failing to close it cannot undo the request
                    sock.close()

    def adopt(self, sock: socket.socket) -> None:
        """Called by a connection with the socket it sends on."""
        with self._lock:
            if not self._watching:
                return
            try:
                copy = socket.fromfd(sock.fileno(), sock.family, sock.type)
            except OSError:
                return
            self._sockets.append(copy)
            if self.expired:
                _shutdown(copy)

    def mark_connecting(self) -> None:
        """Called by a connection as it begins to connect (TCP, a proxy's tunnel, TLS): nothing of the
        request leaves before it is connected."""
        with self._lock:
            if self._watching:
                self._connecting = True

    def mark_connected(self) -> None:
        """Called by a connection once it is connected: from here on the request may reach Fuse."""
        with self._lock:
            if self._watching:
                self.connected = True
                self._connecting = False

    @property
    def connect_failed(self) -> bool:
        """Whether a connection for the request watched was begun and never made: a failure then
        came before anything of the request left."""
        return self._connecting and not self.connected

    def _expire(self, generation: int) -> None:
        """The timer of watch ``generation`` ran out: end that request, if it is still the one watched."""
        with self._lock:
            if generation != self._generation or not self._watching:
                return
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed by its owner
        sock.shutdown(socket.SHUT_RDWR)


class _UploadProgress:
    """Log how much of a long upload has been sent: once per ``interval`` seconds, never for quick ones."""

    def __init__(self, log: Any, total: int, interval: float) -> None:
        self.log = log
        self.total = total
        self.interval = interval
        self.started = self.last = time.monotonic()
        self.logged = self.finished = False

    def __call__(self, monitor: MultipartEncoderMonitor) -> None:
        if self.finished:
            return
        now = time.monotonic()
        self.finished = monitor.bytes_read >= self.total
        # A line per interval, and a closing 100% line for an upload that logged any.
        if now - self.last < self.interval and not (self.finished and self.logged):
            return
        self.last = now
        self.logged = True
        self.log.info(
            "Uploaded %.1f of %.1f MiB (%d%%) in %.0f s",
            monitor.bytes_read / 2**20,
            self.total / 2**20,
            100 * monitor.bytes_read // max(self.total, 1),
            now - self.started,
        )


def check_csv(csv: CsvSource | None) -> None:
    """Refuse, before anything is opened, a CSV that is not a regular file: a FIFO would block the
    open, ``/dev/zero`` would never end, a directory cannot be read.

    :raises FuseCsvError: naming what is wrong, never the file's content.
    """
    if csv is None:
        return
    if isinstance(csv, (str, os.PathLike)):
        from airflow_provider_fuse.snapshot import open_regular_file

        try:
            os.close(open_regular_file(csv))  # the one check of a path: refuses without blocking
        except OSError as error:  # fstat or close failing: before any request, as any unreadable file
            raise FuseCsvError(f"the file cannot be read ({type(error).__name__})") from None
        return
    from airflow_provider_fuse.snapshot import refuse_irregular

    try:
        descriptor = csv.fileno()
    except (OSError, ValueError, AttributeError):
        return  # an in-memory file object: nothing to check
    try:
        refuse_irregular(descriptor, "the file object")
    except OSError as error:  # fstat failing: before any request, as any unreadable file
        raise FuseCsvError(f"the file cannot be read ({type(error).__name__})") from None


@contextmanager
def _open_csv(csv: CsvSource | None) -> Iterator[tuple[IO[bytes] | None, str]]:
    if csv is None:
        yield None, ""
    elif isinstance(csv, (str, os.PathLike)):
        from airflow_provider_fuse.snapshot import open_regular_file

        file = open(open_regular_file(csv), "rb")  # noqa: SIM115 - closed below, after the request
        with file:
            yield file, os.path.basename(os.fspath(csv)) or "contacts.csv"
    else:
        name = getattr(csv, "name", None)
        yield csv, os.path.basename(name) if isinstance(name, str) and name else "contacts.csv"


def rewinder(csv: CsvSource | None) -> Callable[[], bool]:
    """Return a callable that prepares ``csv`` to be sent again, answering whether it could."""
    if csv is None or isinstance(csv, (str, os.PathLike)):
        return lambda: True
    try:
        start = csv.tell() if csv.seekable() else None
    except (OSError, ValueError, AttributeError):
        start = None
    if start is None:
        return lambda: False

    def rewind() -> bool:
        try:
            csv.seek(start)
        except (OSError, ValueError):
            return False
        return True

    return rewind
