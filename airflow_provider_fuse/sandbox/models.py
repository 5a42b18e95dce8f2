"""What the sandbox records and what a test can ask of it, as frozen dataclasses."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

__all__ = [
    "ENDPOINTS",
    "Call",
    "Fault",
    "FaultBody",
    "RequestRecord",
    "SandboxCallEvent",
    "SandboxCallStatus",
    "Upload",
]

#: The ``/api`` endpoints a :class:`Fault` can be aimed at.
ENDPOINTS: tuple[str, ...] = ("bulk_queue", "queue", "outbound", "cancel")

FaultBody = Literal["json", "xml", "html", "empty", "raw"]


class SandboxCallStatus:
    """The ``status`` values of ``call_details``, in Fuse's words."""

    QUEUED = "queued"
    DIALING = "dialing"
    CONNECTED = "connected"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    #: Statuses after which a call never changes again (and its ``result_url`` is called).
    TERMINAL: frozenset[str] = frozenset({COMPLETED, FAILED, CANCELED})


@dataclass(frozen=True)
class Upload:
    """One ``POST .../bulk_queue`` request as the sandbox read it, whatever it answered.

    :param upload_id: the sandbox's sequence number of the upload (1, 2, ...).
    :param application_id: the path's application id, ``None`` when it was not numeric.
    :param deployment_id: the path's deployment id, ``None`` when it was not numeric.
    :param fields: every form field but ``csv``, as the strings received.
    :param filename: the ``csv`` part's filename, ``None`` when there was no file part.
    :param content_type: the ``csv`` part's content type, ``None`` when there was no file part.
    :param csv: the ``csv`` part's bytes exactly as received (``b""`` when absent).
    :param rows: data rows the sandbox could read (blank lines and the header excluded; 0 if unreadable).
    :param calls_queued: calls queued from this upload; ``None`` when nothing was queued because the
        upload was refused or a fault pre-empted it.
    :param status_code: the HTTP status answered; ``None`` when the connection was dropped.
    :param fault: the kind of injected fault that answered (``"status"``, ``"delay"``, ``"drop"``), if any.
    :param received_at: real wall-clock unix time the upload was recorded.
    """

    upload_id: int
    application_id: int | None
    deployment_id: int | None
    fields: dict[str, str]
    filename: str | None
    content_type: str | None
    csv: bytes
    rows: int
    calls_queued: int | None
    status_code: int | None
    fault: str | None
    received_at: float

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of :attr:`csv`."""
        return hashlib.sha256(self.csv).hexdigest()

    @property
    def size(self) -> int:
        """Length of :attr:`csv` in bytes."""
        return len(self.csv)


@dataclass(frozen=True)
class SandboxCallEvent:
    """One entry of ``call_details.events``: what happened and when (sandbox unix seconds)."""

    event: str
    timestamp: int


@dataclass(frozen=True)
class Call:
    """One queued call and its simulated progress.

    Timestamps are sandbox-clock unix seconds. ``destination`` is the value as sent (with any
    ``;ani=``/``;postd=`` options); ``phone_number`` is its number part. ``variables`` are the other
    CSV columns (``bulk_queue``) or the ``call_parameters`` object (``queue``).
    ``result_delivery`` is ``None`` (no ``result_url``, or the call has not ended), ``"pending"``,
    ``"delivered"`` (2xx answered), ``"failed"`` (error or non-2xx; see ``result_detail``) or
    ``"not_delivered"`` (the ``result_url`` host is not loopback and external callbacks are off).
    """

    call_id: str
    application_id: int
    deployment_id: int
    upload_id: int | None
    destination: str
    phone_number: str
    variables: dict[str, Any]
    queued_timestamp: int
    start_timestamp: int | None
    end_timestamp: int | None
    max_attempts: int
    reattempt_wait: int | None
    result_url: str | None
    is_pci: bool
    status: str
    attempts: int
    events: tuple[SandboxCallEvent, ...]
    duration: int | None
    next_at: float | None
    result_delivery: str | None
    result_status_code: int | None
    result_detail: str | None

    @property
    def is_terminal(self) -> bool:
        """True once the call is completed, failed or canceled."""
        return self.status in SandboxCallStatus.TERMINAL

    @property
    def event_names(self) -> list[str]:
        """The ``event`` names of :attr:`events`, in order."""
        return [e.event for e in self.events]


@dataclass(frozen=True)
class RequestRecord:
    """One request to ``/api``, logged on arrival (before its body is read).

    ``status_code`` is ``None`` until answered, and stays ``None`` when the connection was dropped.
    ``fault`` names the injected fault kind that answered it (``"status"``, ``"delay"``, ``"drop"``).
    """

    method: str
    path: str
    status_code: int | None
    fault: str | None
    received_at: float


@dataclass(frozen=True)
class Fault:
    """An injected misbehaviour for the next ``count`` matching ``/api`` requests.

    :param status: answer this HTTP status instead of the real answer. ``None``: answer normally
        (useful with ``delay`` alone).
    :param body: with ``status``: ``"json"`` (Fuse ``{"error": ...}``), ``"xml"`` (Fuse
        ``<result><error>``), ``"html"`` (a proxy's error page, e.g. nginx's 502 Bad Gateway),
        ``"empty"`` (no body) or ``"raw"`` (``raw`` bytes with ``content_type``).
    :param message: the error text of a json/xml body (default: a generic text for the status).
    :param raw: the bytes of a ``"raw"`` body.
    :param content_type: the content type of a ``"raw"`` body.
    :param delay: seconds to wait before answering (also before a drop).
    :param drop: after reading the request, start a response and close the connection mid-body:
        the client sees a broken response (``requests`` raises ``ChunkedEncodingError``/``ConnectionError``).
    :param after_queue: do the real work first (queue the calls), then answer the fault:
        "Fuse accepted it but the answer was lost". Without it a status/drop fault queues nothing.
    :param count: how many matching requests the fault answers.
    :param skip: how many matching requests to let through untouched first (fail the third
        chunk of an upload with ``skip=2``).
    :param endpoint: only requests to this endpoint (``bulk_queue``, ``queue``, ``outbound``,
        ``cancel``); ``None`` matches any ``/api`` request.
    :param method: only requests with this HTTP method; ``None`` matches any.
    :raises ValueError: for a fault that would change nothing or out-of-range values.
    """

    status: int | None = None
    body: FaultBody = "json"
    message: str | None = None
    raw: bytes = b""
    content_type: str = "application/octet-stream"
    delay: float = 0.0
    drop: bool = False
    after_queue: bool = False
    count: int = 1
    skip: int = 0
    endpoint: str | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"Fault.status must be an HTTP status 100-599, not {self.status}")
        if self.body not in ("json", "xml", "html", "empty", "raw"):
            raise ValueError(f"Fault.body must be json, xml, html, empty or raw, not {self.body!r}")
        if self.count < 1:
            raise ValueError("Fault.count must be at least 1")
        if self.skip < 0:
            raise ValueError("Fault.skip must not be negative")
        if self.delay < 0:
            raise ValueError("Fault.delay must not be negative")
        if self.endpoint is not None and self.endpoint not in ENDPOINTS:
            raise ValueError(f"Fault.endpoint must be one of {ENDPOINTS} or None, not {self.endpoint!r}")
        if self.status is None and not self.drop and not self.delay:
            raise ValueError("a Fault needs a status, drop=True or a delay")
        if self.method is not None:
            object.__setattr__(self, "method", self.method.upper())

    @property
    def kind(self) -> str:
        """``"drop"``, ``"status"`` or ``"delay"``: what the client will see."""
        if self.drop:
            return "drop"
        if self.status is not None:
            return "status"
        return "delay"

    @property
    def preempts(self) -> bool:
        """True when the fault replaces the real answer (a status or a drop)."""
        return self.drop or self.status is not None

    @property
    def default_message(self) -> str:
        """The error text a json/xml body carries."""
        if self.message is not None:
            return self.message
        status = self.status or 500
        known = {
            400: "Supplied data improperly formatted or invalid.",
            401: "Authentication headers invalid or the account is inactive.",
            403: "You do not have permission to perform this action.",
            404: "Not found.",
            409: "The user, deployment or application was previously deleted.",
            429: "Too many requests.",
            500: "A database error occurred.",
        }
        if status in known:
            return known[status]
        try:
            return HTTPStatus(status).phrase + "."
        except ValueError:
            return "Error."

    def matches(self, endpoint: str | None, method: str) -> bool:
        """Whether this fault applies to a request to ``endpoint`` with ``method``."""
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        return self.method is None or self.method == method.upper()

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``raw`` decoded as UTF-8) for the inspection API."""
        return {
            "status": self.status,
            "body": self.body,
            "message": self.message,
            "raw": self.raw.decode("utf-8", errors="replace"),
            "content_type": self.content_type,
            "delay": self.delay,
            "drop": self.drop,
            "after_queue": self.after_queue,
            "count": self.count,
            "skip": self.skip,
            "endpoint": self.endpoint,
            "method": self.method,
        }
