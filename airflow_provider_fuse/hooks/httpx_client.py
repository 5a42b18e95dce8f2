"""The async path, for the triggerer's event loop: an httpx client configured as the sync path's
session is, and one try of a request over it.

The client is given the CA bundle and the proxy requests resolves for the worker (the hook's
``_route``), never httpx's own reading of the environment, so the triggerer and the worker agree.
An answer is read as the sync path reads it: the same head rule, the same read cap (inflating a
compressed body chunk by chunk, never past the cap), the same classification; httpx's trace events
say whether the request may have left.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import requests

from airflow_provider_fuse.exceptions import FuseApiError, FuseError, FuseRequestError
from airflow_provider_fuse.hooks.classify import (
    ANSWER_HTTP_VERSIONS,
    Answer,
    cause,
    classify_answer,
    failure,
    head_refused,
    head_within_bounds,
    version_refused,
)
from airflow_provider_fuse.hooks.client_logs import keep_answers_out_of_client_logs
from airflow_provider_fuse.hooks.connection import request_headers
from airflow_provider_fuse.hooks.limits import MAX_ANSWER_BYTES

if TYPE_CHECKING:
    from airflow_provider_fuse.hooks.settings import ConnectionSettings

__all__ = ["check_async_proxy", "new_client", "send"]


def new_client(settings: ConnectionSettings, verify: bool | str, proxy: str | None) -> httpx.AsyncClient:
    """An httpx client as the sync path's session is: credentials, headers, TLS, proxies, timeouts.

    :param verify: the CA bundle (or false) requests resolved for the API base URL.
    :param proxy: the proxy requests resolved for it, if any.
    :raises FuseRequestError: a CA bundle or proxy that httpx cannot use; nothing was sent.
    """
    try:
        return _new_client(settings, verify, proxy)
    except Exception as error:
        refused = FuseRequestError(f"not sent: the request could not be made ({cause(error)})")
    raise refused  # outside the except block: no chain that could quote the error's text


def _new_client(settings: ConnectionSettings, verify: bool | str, proxy: str | None) -> httpx.AsyncClient:
    keep_answers_out_of_client_logs()
    connect, read = settings.timeout
    return httpx.AsyncClient(
        # Exactly :attr:`ConnectionSettings.authorization`, the form scrubbed from answers.
        headers={**request_headers("httpx", httpx.__version__), "Authorization": settings.authorization},
        verify=_ssl_context(verify),
        proxy=proxy,
        # The environment was read by requests' rules in the hook's _route; httpx's own
        # (SSL_CERT_FILE, its NO_PROXY patterns) would make the triggerer disagree with the worker.
        trust_env=False,
        timeout=httpx.Timeout(read, connect=connect, pool=connect),
        follow_redirects=False,
    )


async def send(
    client: httpx.AsyncClient,
    settings: ConnectionSettings,
    method: str,
    url: str,
    *,
    deadline: float,
    log: Any,
) -> Answer:
    """One try, as the sync path's: an overall deadline instead of the watchdog, httpx's trace
    events instead of the watchdog's word on whether the request may have left.

    :raises FuseError: only; one that is not an unknown outcome means nothing left the machine.
    """
    sent = _Sent()
    error: FuseApiError | None = None
    try:
        log.info("%s %s", method, url)
        # httpx's read timeout starts again with every chunk: only an overall deadline ends an
        # answer that trickles.
        status_code, headers, body, complete = await asyncio.wait_for(
            _read_answer(client, method, url, sent.trace), deadline - time.monotonic()
        )
    except asyncio.TimeoutError:
        error = failure(None, expired=True, connected=sent.connected, total_timeout=settings.total_timeout)
    except FuseError:
        raise
    except Exception as raised:  # the contract: only FuseErrors leave the hook
        error = failure(raised, expired=False, connected=sent.connected, total_timeout=settings.total_timeout)
    if error is not None:
        raise error  # outside the except block, as on the sync path
    answer = classify_answer(status_code, body, secrets=settings.secrets, complete=complete)
    return Answer(status_code, answer, headers)


async def _read_answer(
    client: httpx.AsyncClient, method: str, url: str, trace: Callable[[str, Any], Awaitable[None]]
) -> tuple[int, dict[str, str], bytes, bool]:
    """Send, then read at most :data:`MAX_ANSWER_BYTES` of the answer, as the sync path does:
    (status, headers, the bytes, whether that was all of it). The rest of a bigger answer is never
    read: the connection is closed instead."""
    async with client.stream(method, url, extensions={"trace": trace}) as response:
        if response.http_version not in ANSWER_HTTP_VERSIONS:
            raise version_refused()  # as the sync path's response class refuses it
        if not head_within_bounds(response.headers.raw, response.extensions.get("reason_phrase", b"")):
            raise head_refused()  # as the sync path's response class refuses it
        status_code, headers = response.status_code, dict(response.headers)
        inflate = _Inflater(response.headers.get("Content-Encoding"))
        body = bytearray()
        # Raw bytes, inflated here: httpx's decoder would inflate a whole chunk before the check.
        async for chunk in response.aiter_raw():
            body += inflate(chunk, MAX_ANSWER_BYTES + 1 - len(body))
            if len(body) > MAX_ANSWER_BYTES:
                return status_code, headers, bytes(body[:MAX_ANSWER_BYTES]), False
        return status_code, headers, bytes(body), True


class _Inflater:
    """An answer's ``Content-Encoding`` (gzip or deflate) undone chunk by chunk, never making more
    than the room it is given: a small compressed answer cannot inflate past the read cap. Any other
    encoding is passed through as it came (it was not asked for: it reads as not Fuse's answer).

    :raises zlib.error: a body that is not what its encoding says (read after the request was sent).
    """

    def __init__(self, encoding: str | None) -> None:
        name = (encoding or "").strip().lower()
        self._raw_deflate_tried = name != "deflate"
        self._inflater = (
            zlib.decompressobj(16 + zlib.MAX_WBITS)
            if name in ("gzip", "x-gzip")
            else zlib.decompressobj()
            if name == "deflate"
            else None
        )

    def __call__(self, chunk: bytes, room: int) -> bytes:
        if self._inflater is None:
            return chunk
        # max_length 0 would mean no limit; input beyond it is left unread, as the caller stops.
        try:
            inflated = self._inflater.decompress(chunk, max(room, 1))
        except zlib.error:
            if self._raw_deflate_tried:
                raise
            # "deflate" is often sent without its zlib header; requests and httpx accept both.
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            inflated = self._inflater.decompress(chunk, max(room, 1))
        self._raw_deflate_tried = True
        return inflated


class _Sent:
    """Whether an httpx request may have left: told by httpx's trace events, as the sync path's
    :class:`~airflow_provider_fuse.hooks.requests_client.Watchdog` is told by its connections."""

    def __init__(self) -> None:
        self.connected = False

    async def trace(self, event: str, info: Any) -> None:
        if event.endswith(".send_request_headers.started"):
            # A proxy's tunnel is asked for with a CONNECT of its own, traced as this request's:
            # nothing of the request has left until that tunnel stands.
            request = info.get("request") if isinstance(info, Mapping) else None
            if getattr(request, "method", None) not in (b"CONNECT", "CONNECT"):
                self.connected = True


def _ssl_context(verify: bool | str) -> bool | ssl.SSLContext:
    """A ``verify`` as requests resolved it (the hook's ``_route``), as httpx takes it: false, or a
    context trusting the CA bundle requests would — the given one (a file or directory, as requests
    reads one), or requests' default (certifi's) for true."""
    if verify is False:
        return False
    if isinstance(verify, bool):
        verify = requests.utils.DEFAULT_CA_BUNDLE_PATH
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def check_async_proxy(proxy: str | None) -> None:
    """Refuse a SOCKS proxy httpx cannot use here before anything is sent, naming what to do (httpx
    would raise an ImportError or a ValueError, only once asked to connect)."""
    scheme = urlsplit(proxy).scheme.lower() if proxy else ""
    if scheme in ("socks4", "socks4a"):
        raise FuseRequestError(
            f"not sent: the proxy is {scheme}, which the triggerer's HTTP client (httpx) does not "
            "support; use a socks5 proxy, or the sensor without deferrable=True"
        )
    if scheme in ("socks5", "socks5h") and importlib.util.find_spec("socksio") is None:
        raise FuseRequestError(
            "not sent: a SOCKS proxy in the triggerer needs socksio, which is not installed "
            "(pip install 'httpx[socks]')"
        )


#: Bytes urllib3 reads from the multipart encoder per send. Its default (16 KiB) makes a
