"""Constants and helpers shared by the tests."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fsspec.implementations.memory import MemoryFileSystem
from requests_toolbelt.multipart.decoder import MultipartDecoder

EMAIL = "ops@example.com"
DEVELOPER_KEY = "dk-4f1c9e2a7b3d5e6f"
BASE_URL = "https://fuse.example.com/api"


# A path below /fuse in an access log, up to the end of the path (a space, a quote or the query).
FUSE_PATH = re.compile(r"(/fuse/[^\s\"?]*)")
#: What the receiver's paths must read as once logged: the token (or any unknown path) replaced.
MASKED_FUSE_PATHS = frozenset({"/fuse/results/***", "/fuse/***"})


def logged_fuse_paths(log: str) -> list[str]:
    """Every path below /fuse in ``log``, percent-decoded: servers spell a logged ``*`` differently
    (uvicorn up to 0.54 quoted it, ``%2A``; 0.55 and Airflow 3.3's access log write it as is), and
    what matters is what the path says, not how one release formats it."""
    return [urllib.parse.unquote(path) for path in FUSE_PATH.findall(log)]


def run_command(command: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` with exactly ``env``, its output captured as text, for at most two
    minutes; its exit status is the caller's to check."""
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def connection_json(**fields: object) -> str:
    """A ``fuse`` connection in Airflow's JSON environment-variable form."""
    conn: dict[str, object] = {
        "conn_type": "fuse",
        "login": EMAIL,
        "password": DEVELOPER_KEY,
        "host": BASE_URL,
    }
    conn.update(fields)
    return json.dumps({key: value for key, value in conn.items() if value is not None})


def decode_multipart(request: object) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Read the streamed body requests-mock was handed and split it into named parts."""
    body = request.body  # type: ignore[attr-defined]
    raw = body.read() if hasattr(body, "read") else body
    decoder = MultipartDecoder(raw, request.headers["Content-Type"])  # type: ignore[attr-defined]
    parts = {}
    for part in decoder.parts:
        disposition = part.headers[b"Content-Disposition"].decode()
        name = disposition.split('name="')[1].split('"')[0]
        headers = {key.decode(): value.decode() for key, value in part.headers.items()}
        parts[name] = (part.content, headers)
    return parts


class MemoryStore:
    """Stands in for Airflow's ``context["task_state_store"]``: JSON values by key, with a retention."""

    def __init__(self) -> None:
        self.values: dict = {}
        self.retentions: dict = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value, *, retention=None):
        self.values[key] = json.loads(json.dumps(value))  # what a JSON store gives back
        self.retentions[key] = retention


def assert_retryable(error: BaseException) -> None:
    """The task failed in a way its retries apply to: an AirflowException, not AirflowFailException."""
    from airflow_provider_fuse._compat import AirflowException, AirflowFailException

    assert isinstance(error, AirflowException)
    assert not isinstance(error, AirflowFailException)


@contextmanager
def serving(monkeypatch: Any, app: Any) -> Iterator[str]:
    """Run an ASGI ``app`` with uvicorn on a free loopback port, in a thread; yield its base URL.

    The environment's proxies are cleared (through ``monkeypatch``) so requests reach loopback directly.
    """
    import uvicorn

    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="error", lifespan="off", timeout_graceful_shutdown=1
    )
    live = uvicorn.Server(config)
    thread = threading.Thread(target=live.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not live.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = live.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        live.should_exit = True
        thread.join(10)


#: How long :meth:`Served.trickle` takes (one byte a second), and how much :meth:`Served.flood` sends.
TRICKLE_SECONDS = 30
HUGE_BYTES = 100 * 2**20
_CHUNK = 64 * 1024


class Served:
    """Answers a misbehaving Fuse could stream, counting what went out (for a test server's routes)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.requests = 0

    async def trickle(self, last: bytes) -> AsyncIterator[bytes]:
        """One byte a second for :data:`TRICKLE_SECONDS`, then ``last``."""
        import asyncio

        for _ in range(TRICKLE_SECONDS):
            self.bytes += 1
            yield b" "
            await asyncio.sleep(1)
        yield last

    async def flood(self) -> AsyncIterator[bytes]:
        """:data:`HUGE_BYTES` of filler, in 64 KiB blocks."""
        block = b"x" * _CHUNK
        for _ in range(HUGE_BYTES // _CHUNK):
            self.bytes += _CHUNK
            yield block


@contextmanager
def serving_answers(monkeypatch: Any, make_app: Callable[[Served], Any]) -> Iterator[tuple[str, Served]]:
    """:func:`serving` the app ``make_app`` builds around a new :class:`Served`; yield its base URL
    and that :class:`Served` (what it has sent)."""
    served = Served()
    with serving(monkeypatch, make_app(served)) as base:
        yield base, served


class CountingMemoryFileSystem(MemoryFileSystem):
    """An in-memory filesystem (``memory://``) that counts how often this instance opens a file for
    reading. Like every ``MemoryFileSystem``, its files live in one store shared by all instances."""

    protocol = "memory"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if "r" in mode:
            self.reads += 1
        return super()._open(path, mode, *args, **kwargs)


@contextmanager
def memory_storage(files: Mapping[str, bytes]) -> Iterator[CountingMemoryFileSystem]:
    """A new :class:`CountingMemoryFileSystem` holding ``files`` (path: content), attached as Airflow's
    ``memory`` object store while the block runs; yield it.

    Afterwards everything is as it was, whatever the block did: the files in memory (the store is
    shared by every ``MemoryFileSystem``), the ``memory`` store Airflow had attached (Airflow keeps the
    first filesystem attached under a name and has no way to detach one, so its registry is edited),
    and fsspec's cache of memory filesystem instances. A test that leaves any of them behind changes
    what a later test in the same process reads through ``memory://``.
    """
    from airflow.sdk.io import attach, store

    saved_files, saved_dirs = dict(MemoryFileSystem.store), list(MemoryFileSystem.pseudo_dirs)
    saved_store = store._STORE_CACHE.pop("memory", None)
    fs = CountingMemoryFileSystem(skip_instance_cache=True)
    for path, content in files.items():
        fs.pipe(path, content)
    attach("memory", fs=fs)
    try:
        yield fs
    finally:
        store._STORE_CACHE.pop("memory", None)
        if saved_store is not None:
            store._STORE_CACHE["memory"] = saved_store
        MemoryFileSystem.store.clear()
        MemoryFileSystem.store.update(saved_files)
        MemoryFileSystem.pseudo_dirs[:] = saved_dirs
        for cls in (MemoryFileSystem, CountingMemoryFileSystem):
            cls.clear_instance_cache()


def connect_to(monkeypatch: Any, url: str, timeout: object = None) -> None:
    """Point ``fuse_default`` at ``url``, with ``timeout`` as its ``timeout`` extra when given."""
    extra = {} if timeout is None else {"timeout": timeout}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host=url, extra=extra))
