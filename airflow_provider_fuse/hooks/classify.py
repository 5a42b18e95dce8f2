"""What an answer of Fuse, or a failure to get one, means: one of the three outcomes of
:mod:`airflow_provider_fuse.exceptions`, for the sync path (requests) and the async one (httpx) alike.

:func:`classify_answer` reads a whole answer by its status and body; :func:`classify_network_error`
and :func:`failure` read what a client raised. Only a failure proven to come before sending is "not
sent": once a connection was made for a request, any failure is an unknown outcome, whatever the
client calls it; a failure while that connection was being made (a TLS handshake cut) is not sent.
An answer's head is read by one rule on both paths (:func:`head_within_bounds`,
:data:`ANSWER_HTTP_VERSIONS`). No message quotes an answer's body, nor a credential: Fuse's own
error text is shown scrubbed and redacted; any other body, or value, is described by its shape.
"""

from __future__ import annotations

import http.client
import re
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx
import requests
from urllib3.exceptions import LocationParseError

from airflow_provider_fuse.answers import describe_body, parse_answer
from airflow_provider_fuse.exceptions import (
    FuseApiError,
    FuseConnectionLostError,
    FuseError,
    FuseInvalidResponseError,
    FuseNotSentError,
    FuseRedirectError,
    FuseRequestError,
    FuseServerError,
    Outcome,
    rejection_class,
)
from airflow_provider_fuse.hooks.limits import (
    MAX_ANSWER_BYTES,
    MAX_ANSWER_HEAD_BYTES,
    MAX_ANSWER_HEADERS,
    MAX_CALL_ID_CHARS,
    MAX_CALLS_QUEUED,
)
from airflow_provider_fuse.masking import redact, shape

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "ANSWER_HTTP_VERSIONS",
    "Answer",
    "HeadTooLarge",
    "OtherHttpVersion",
    "asking_again_can_help",
    "calls_queued",
    "cause",
    "classify_answer",
    "classify_network_error",
    "failure",
    "head_refused",
    "head_within_bounds",
    "queued_call_id",
    "version_refused",
]

#: The versions an answer's status line may name. Both clients ask in HTTP/1.1, which a server
#: answers in HTTP/1.1 or, an older one, in HTTP/1.0. An answer naming any other is not read: it is
#: an unknown outcome (:func:`version_refused`), as the request was sent.
ANSWER_HTTP_VERSIONS = frozenset({"HTTP/1.0", "HTTP/1.1"})


@dataclass(frozen=True)
class Answer:
    """A 2xx answer of Fuse: its real status code, its fields, its headers."""

    status_code: int
    fields: dict[str, Any]
    headers: Mapping[str, str]


class HeadTooLarge(http.client.HTTPException):
    """An answer's head beyond :data:`MAX_ANSWER_HEADERS` or :data:`MAX_ANSWER_HEAD_BYTES` (or an
    interim head beyond :data:`MAX_INTERIM_HEAD_BYTES`): raised while the sync client reads it, so
    that urllib3 drops the connection; :func:`classify_network_error` finds it in the chain."""


class OtherHttpVersion(http.client.HTTPException):
    """An answer whose status line names a version not in :data:`ANSWER_HTTP_VERSIONS`: raised while
    the sync client reads it, so that urllib3 drops the connection; :func:`classify_network_error`
    finds it in the chain."""


def classify_answer(
    status_code: int, body: bytes, *, secrets: Iterable[str] = (), complete: bool = True
) -> dict[str, Any]:
    """Return the fields of a 2xx Fuse answer, or raise the failure this answer means.

    * 2xx → the answer's fields (``{}`` for an empty body, as the 202 of ``cancel``);
    * 4xx → the :class:`FuseRejectedError` subtype of :func:`rejection_class`, with Fuse's error text
      (its ``error``, else its ``message``);
    * 5xx → :class:`FuseServerError` (unknown outcome);
    * 1xx/3xx → :class:`FuseRedirectError` (unknown outcome: a POST answered 303 is often one that
      was processed; redirects are never followed). Interim 1xx answers before the final one never
      get here: both clients skip them; a ``101 Switching Protocols``, never asked for, is a broken
      answer to both (a lost connection, unknown outcome);
    * a 2xx whose body is not Fuse's, or was cut at :data:`MAX_ANSWER_BYTES` → an unknown outcome
      (:class:`FuseInvalidResponseError`) naming status and what the body is (:func:`describe_body`).

    Fuse's error text is scrubbed of ``secrets`` (every form of the connection's credential),
    redacted (no runs of 7+ digits) and cut short; a body without one is described, never quoted.

    :param complete: false when ``body`` is only the first :data:`MAX_ANSWER_BYTES` of the answer.
    """
    if 200 <= status_code < 300:
        if not complete:
            raise FuseInvalidResponseError(
                f"an answer of more than {MAX_ANSWER_BYTES} bytes is not Fuse's; it was not read whole",
                status_code,
            )
        answer = parse_answer(body)
        if answer is None and body.strip():
            raise FuseInvalidResponseError(
                f"an answer that is not Fuse's: {describe_body(body, secrets=secrets)}", status_code
            )
        return answer or {}
    if 300 <= status_code < 400 or status_code < 200:
        # Not an answer of Fuse's endpoint. Redirects are not followed (a POST must not silently
        # become a GET), and the request may have been processed before the redirect.
        raise FuseRedirectError(
            "a redirect, which is not followed; Fuse may have processed the request "
            "(check the connection's API base URL)",
            status_code,
        )
    answer = parse_answer(body) if complete else None
    error = _error_text(answer)
    if error is not None:
        text = redact(error, secrets=secrets)
    else:
        text = f"no Fuse error text in {describe_body(body, secrets=secrets)}"
    if 400 <= status_code < 500:
        raise rejection_class(status_code)(text, status_code)
    raise FuseServerError(text, status_code)


def _error_text(answer: Mapping[str, Any] | None) -> str | None:
    """Fuse's own words in a failure answer: its ``error``, else its ``message``, when one is text
    (or a number); ``None`` when neither is."""
    for name in ("error", "message"):
        value = answer.get(name) if answer else None
        if value and not isinstance(value, (dict, list)):
            return str(value)
    return None


def classify_network_error(
    error: BaseException, *, connected: bool | None = None, connect_failed: bool = False
) -> FuseApiError:
    """Map a failure to get any answer, from requests (sync) or httpx (async), onto the outcome it means.

    Could not be made (:class:`FuseRequestError`, not sent and not retryable): an invalid URL, scheme
    or header, an invalid proxy URL — the client refuses these before it sends anything.
    Not sent: connection refused, DNS failure, connect timeout, a refused TLS certificate, or a
    failure to connect through the proxy — the request never reached Fuse. Everything else (read
    timeout, a connection reset or closed after the request went out, any other TLS failure, a
    broken answer — and, conservatively, errors that are not about the network at all) is an
    unknown outcome. Messages name exception types only: an exception's text may quote the answer.

    Only a failure proven to come before sending is "not sent": with ``connected`` true (a
    connection was made for this request, so it may have left), every failure is an unknown outcome
    (:class:`FuseConnectionLostError`), whatever its class — urllib3 reads an answer with two
    different ``Content-Length`` headers by raising the ``InvalidHeader`` that requests also raises
    for a header it refuses to send. Without that word (``None``), the class decides, and a
    "could not be made" class caused by urllib3 reading an answer is an unknown outcome too.

    With ``connect_failed`` true (and ``connected`` not), the failure came while the connection for
    this request was being made — TCP, a proxy's tunnel, the TLS handshake — so nothing of the
    request left: what the class would call an unknown outcome (a reset during the handshake is a
    ``ConnectionError`` to requests) is not sent; what could not be made stays so.
    """
    classified = _classify_by_class(error)
    if connected and classified.outcome is not Outcome.UNKNOWN:
        return FuseConnectionLostError(
            f"the request failed once a connection was made for it ({cause(error)}); Fuse may have "
            "queued some or all calls"
        )
    if connect_failed and not connected and classified.outcome is Outcome.UNKNOWN:
        return FuseNotSentError(f"not sent: the connection to Fuse failed while it was made ({cause(error)})")
    return classified


def _classify_by_class(error: BaseException) -> FuseApiError:
    """:func:`classify_network_error` by the error's class and chain alone."""
    from urllib3.exceptions import HTTPError as Urllib3Error
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    if _head_too_large(error):
        return head_refused()
    if _in_chain(error, lambda item: isinstance(item, OtherHttpVersion)):
        return version_refused()
    if isinstance(error, (httpx.HTTPError, httpx.InvalidURL)):
        return _classify_httpx_error(error)
    if isinstance(error, requests.exceptions.InvalidHeader) and _in_chain(
        error, lambda item: isinstance(item, Urllib3Error)
    ):
        # Not a header requests refused to send: urllib3 refusing the answer's (two different
        # Content-Lengths), raised while reading it, after the request was sent.
        return FuseConnectionLostError(
            f"the answer could not be read ({cause(error)}); Fuse may have queued some or all calls"
        )
    if isinstance(
        error,
        (
            requests.exceptions.InvalidURL,  # InvalidProxyURL too
            requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidHeader,
            requests.exceptions.URLRequired,
            LocationParseError,
        ),
    ):
        return FuseRequestError(f"not sent: the request could not be made ({cause(error)})")
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return FuseNotSentError(f"not sent: connecting to Fuse timed out ({type(error).__name__})")
    if isinstance(error, requests.exceptions.ProxyError):
        return FuseNotSentError(f"not sent: could not connect through the proxy ({cause(error)})")
    if isinstance(error, requests.exceptions.SSLError):
        # urllib3 reports TLS failures after the body went out as SSLError too: only a refused
        # certificate proves that nothing was sent.
        if _certificate_refused(error):
            return FuseNotSentError(f"not sent: Fuse's TLS certificate was not accepted ({cause(error)})")
        return FuseConnectionLostError(
            f"the TLS connection failed ({cause(error)}); Fuse may have queued some or all calls"
        )
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = error.args[0] if error.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        if isinstance(reason, NewConnectionError):
            return FuseNotSentError(f"not sent: could not connect to Fuse ({type(reason).__name__})")
        return FuseConnectionLostError(
            f"the connection was lost after the request was sent ({cause(error)}); Fuse may have queued "
            "some or all calls"
        )
    if isinstance(error, requests.exceptions.ReadTimeout):
        return FuseConnectionLostError(
            "no answer from Fuse within the read timeout after the request was sent; Fuse may have queued "
            "some or all calls"
        )
    return FuseConnectionLostError(
        f"the answer could not be read ({cause(error)}); Fuse may have queued some or all calls"
    )


def _classify_httpx_error(error: httpx.HTTPError | httpx.InvalidURL) -> FuseApiError:
    """httpx's failures, in the outcome classes :func:`classify_network_error` states.

    httpx connects (TLS handshake included) before it writes a byte of the request, so every
    failure to connect — a refused certificate too — is not sent.
    """
    if isinstance(error, (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return FuseRequestError(f"not sent: the request could not be made ({cause(error)})")
    if isinstance(error, httpx.ProxyError):
        return FuseNotSentError(f"not sent: could not connect through the proxy ({cause(error)})")
    if isinstance(error, httpx.ConnectTimeout):
        return FuseNotSentError(f"not sent: connecting to Fuse timed out ({cause(error)})")
    if isinstance(error, (httpx.ConnectError, httpx.PoolTimeout)):
        return FuseNotSentError(f"not sent: could not connect to Fuse ({cause(error)})")
    if isinstance(error, httpx.ReadTimeout):
        return FuseConnectionLostError(
            "no answer from Fuse within the read timeout after the request was sent; Fuse may have queued "
            "some or all calls"
        )
    if isinstance(error, httpx.TransportError):
        return FuseConnectionLostError(
            f"the connection was lost after the request was sent ({cause(error)}); Fuse may have queued "
            "some or all calls"
        )
    return FuseConnectionLostError(
        f"the answer could not be read ({cause(error)}); Fuse may have queued some or all calls"
    )


def asking_again_can_help(error: FuseError) -> bool:
    """Whether asking Fuse for a call's status again, later, can get an answer.

    The one rule for the sensor and the trigger's error events. Yes for a failure its class calls
    retryable (not sent, 429), and for an unknown outcome: a status read changes nothing in Fuse, so
    the risk that makes an unknown outcome final for a queueing POST is not there. No for invalid
    input, a rejection other than 429, and a request that cannot be made at all
    (:class:`FuseRequestError`): the same read would fail the same way.
    """
    if not isinstance(error, FuseApiError):
        return False
    return error.retryable or error.outcome is Outcome.UNKNOWN


def head_within_bounds(fields: Iterable[tuple[str | bytes, str | bytes]], reason: str | bytes) -> bool:
    """Whether an answer's head, as its client parsed it, is within :data:`MAX_ANSWER_HEADERS`
    header fields and :data:`MAX_ANSWER_HEAD_BYTES` (the reason phrase, and ``name: value`` and
    CRLF for each field)."""
    size = len(reason)
    if size > MAX_ANSWER_HEAD_BYTES:
        return False
    for count, (name, value) in enumerate(fields, 1):
        size += len(name) + len(value) + 4
        if count > MAX_ANSWER_HEADERS or size > MAX_ANSWER_HEAD_BYTES:
            return False
    return True


def head_refused() -> FuseInvalidResponseError:
    """The one error for an answer whose head is beyond the bounds, sync or async. Its status is not
    given: the sync client refuses such a head before it says the status."""
    return FuseInvalidResponseError(
        f"an answer with more than {MAX_ANSWER_HEADERS} header fields or "
        f"{MAX_ANSWER_HEAD_BYTES // 1024} KiB of them is not Fuse's and was not read; Fuse may have "
        "queued some or all calls"
    )


def version_refused() -> FuseConnectionLostError:
    """The one error for an answer whose status line names a version not in
    :data:`ANSWER_HTTP_VERSIONS`, sync or async. Its status is not given: it was not read."""
    return FuseConnectionLostError(
        "an answer in a protocol other than HTTP/1.0 or HTTP/1.1 is not Fuse's and was not read; Fuse "
        "may have queued some or all calls"
    )


def _head_too_large(error: BaseException) -> bool:
    """Whether a client refused an answer's head as too large, anywhere in ``error``'s chain: the
    sync path's :class:`HeadTooLarge`, or httpx's h11 refusing a head over its bound (its 431 hint)."""
    import h11  # httpx's HTTP/1.1 parser (through httpcore): always there with httpx

    return _in_chain(
        error,
        lambda item: (
            isinstance(item, HeadTooLarge)
            or (isinstance(item, h11.RemoteProtocolError) and item.error_status_hint == 431)
        ),
    )


def _in_chain(error: BaseException, found: Callable[[BaseException], bool]) -> bool:
    """Whether ``found`` holds for ``error`` or any exception in its args, causes or contexts."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if found(item):
            return True
        pending.extend([*item.args, item.__cause__, item.__context__, getattr(item, "reason", None)])
    return False


def _certificate_refused(error: BaseException) -> bool:
    """Whether a certificate verification failure is anywhere in ``error``'s chain of causes."""
    return _in_chain(
        error,
        lambda item: (
            isinstance(item, ssl.SSLCertVerificationError) or type(item).__name__ == "CertificateError"
        ),
    )


def cause(error: BaseException) -> str:
    names = [type(error).__name__]
    inner: object = error.args[0] if error.args else None
    while isinstance(inner, BaseException):
        names.append(type(inner).__name__)
        inner = inner.args[1] if len(inner.args) > 1 else None
    return " ← ".join(names)


_ASCII_DIGITS = re.compile(r"[0-9]+")


def calls_queued(answer: Mapping[str, Any], status_code: int, secrets: Iterable[str]) -> int:
    """``calls_queued`` of a bulk_queue answer: a JSON int (not a bool) or a text of ASCII digits,
    from 0 to :data:`MAX_CALLS_QUEUED` (exclusive). Anything else is not Fuse's answer.

    (``int()`` alone would take ``"1_000"``, ``"-5"`` or Arabic-Indic digits.)

    :raises FuseInvalidResponseError: with the answer's real status code.
    """
    value = answer.get("calls_queued")
    count: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value.strip(" \t\r\n")):
        digits = value.strip(" \t\r\n")
        count = int(digits) if len(digits) <= 10 else None
    if count is not None and 0 <= count < MAX_CALLS_QUEUED:
        return count
    if value is None:
        raise FuseInvalidResponseError(
            f"a success answer without a calls_queued count: {shape(answer, secrets=secrets)}",
            status_code,
        )
    raise FuseInvalidResponseError(
        f"a calls_queued that is not a count from 0 to 2147483647: {shape(value, secrets=secrets)}",
        status_code,
    )


def queued_call_id(
    answer: Mapping[str, Any], headers: Mapping[str, str], status_code: int, secrets: Iterable[str]
) -> str:
    """The call id of a ``queue`` answer: ``call_id`` in the body, else the ``Link`` URI's last segment.

    :raises FuseInvalidResponseError: (with the real status code) when the answer names none, or one
        that cannot be a call id: longer than :data:`MAX_CALL_ID_CHARS`, with spaces or control
        characters, or containing the connection's credential (it would reach XCom).
    """
    value = answer.get("call_id")
    candidate: str | None = None
    if value is not None and not isinstance(value, (dict, list, bool)) and str(value).strip():
        candidate = str(value).strip()
    else:
        link = next((text for name, text in headers.items() if name.lower() == "link"), None)
        if link:
            # "<https://.../outbound/123>; rel=..." or a bare URI; several links: the first.
            uri = link.split(",", 1)[0].split(";", 1)[0].strip().strip("<>").strip()
            try:
                candidate = unquote(urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]) or None
            except ValueError:
                candidate = None
    if candidate is None:
        raise FuseInvalidResponseError(
            "a success answer that names no call_id (neither in the body nor in a Link header); "
            f"Fuse may have queued the call; the answer is {shape(answer, secrets=secrets)}",
            status_code,
        )
    secret_in_it = any(secret and secret in candidate for secret in secrets)
    if (
        secret_in_it
        or len(candidate) > MAX_CALL_ID_CHARS
        or any(char.isspace() or not char.isprintable() for char in candidate)
    ):
        raise FuseInvalidResponseError(
            "a call_id that cannot be Fuse's (too long, with spaces or control characters, or quoting "
            "the credential); Fuse may have queued the call",
            status_code,
        )
    return candidate


def failure(
    error: Exception | None,
    *,
    expired: bool,
    connected: bool,
    total_timeout: float,
    connect_failed: bool = False,
) -> FuseApiError:
    """What a failure to get an answer means: the one reading for sync and async requests.

    :param error: what the client raised (``None`` when the deadline alone ended the request).
    :param expired: the overall deadline ended the request.
    :param connected: the request may have left (a connection was made for it).
    :param total_timeout: the connection's overall deadline, in seconds, as the message names it.
    :param connect_failed: a connection was being made for the request and was not made: nothing
        of the request left (see :func:`classify_network_error`).
    """
    if expired or error is None:
        if connected:
            return FuseConnectionLostError(
                f"no whole answer within the overall deadline of {total_timeout:g} s (extra timeout.total) "
                "after the request was sent; Fuse may have queued some or all calls"
            )
        return FuseNotSentError(
            f"not sent: could not connect to Fuse within the overall deadline of {total_timeout:g} s "
            "(extra timeout.total)"
        )
    if isinstance(error, (requests.RequestException, LocationParseError, httpx.HTTPError, httpx.InvalidURL)):
        return classify_network_error(error, connected=connected, connect_failed=connect_failed)
    if not connected:
        # Raised before any connection was made: a missing CA bundle, a proxy scheme urllib3
        # does not know, a file that cannot be read... Trying again cannot help.
        return FuseRequestError(f"not sent: the request could not be made ({cause(error)})")
    return FuseConnectionLostError(
        f"the request failed after it was sent ({cause(error)}); Fuse may have queued some or all calls"
    )
