"""Fault injection: the pending faults, and the broken answers they produce."""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from typing import TYPE_CHECKING

from starlette.responses import Response

from airflow_provider_fuse.sandbox.render import error_response

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from airflow_provider_fuse.sandbox.models import Fault

__all__ = ["ConnectionDropped", "DroppedResponse", "FaultQueue", "fault_response", "install_log_filter"]


class ConnectionDropped(Exception):
    """Raised after a response has started so that uvicorn closes the connection mid-body."""


class FaultQueue:
    """Faults waiting for matching requests; the oldest matching fault answers first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Each pending fault with the matching requests it still lets through, and still answers.
        self._pending: list[tuple[Fault, int, int]] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` for its next ``fault.count`` matching requests, after ``fault.skip``."""
        with self._lock:
            self._pending.append((fault, fault.skip, fault.count))

    def take(self, endpoint: str | None, method: str) -> Fault | None:
        """The fault that answers this request, if any, using up one of its count."""
        with self._lock:
            for index, (fault, skip, left) in enumerate(self._pending):
                if not fault.matches(endpoint, method):
                    continue
                if skip:
                    self._pending[index] = (fault, skip - 1, left)
                    return None
                if left <= 1:
                    del self._pending[index]
                else:
                    self._pending[index] = (fault, 0, left - 1)
                return fault
        return None

    def pending(self) -> list[tuple[Fault, int]]:
        """Each pending fault with the number of requests it will still answer."""
        with self._lock:
            return [(fault, left) for fault, _, left in self._pending]

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._pending.clear()


def _html_page(status: int) -> bytes:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def fault_response(fault: Fault, xml: bool) -> Response:
    """The complete answer of a status fault (``fault.status`` must be set)."""
    status = fault.status or 500
    if fault.body == "json":
        return error_response(status, fault.default_message, xml=False)
    if fault.body == "xml":
        return error_response(status, fault.default_message, xml=True)
    if fault.body == "html":
        return Response(_html_page(status), status_code=status, media_type="text/html")
    if fault.body == "raw":
        return Response(fault.raw, status_code=status, headers={"Content-Type": fault.content_type})
    return Response(status_code=status)


class DroppedResponse(Response):
    """Starts a response promising more body than it sends, then aborts the connection.

    uvicorn answers an application error raised after the response started by closing the
    transport, so the client reads headers and part of a body, then EOF: ``requests`` raises
    ``ChunkedEncodingError`` (or ``ConnectionError``), never a clean status.
    """

    def __init__(self, status_code: int = 200) -> None:
        super().__init__(status_code=status_code)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        partial = b'{"calls_queued":'
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": partial, "more_body": True})
        raise ConnectionDropped("fault injection: connection dropped mid-response")


class _DropFilter(logging.Filter):
    """Hides uvicorn's traceback for the deliberate :class:`ConnectionDropped`."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


_FILTER = _DropFilter()


def install_log_filter() -> None:
    """Silence uvicorn's "Exception in ASGI application" log for injected drops (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
