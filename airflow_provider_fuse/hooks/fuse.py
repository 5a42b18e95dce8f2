"""FuseHook: Plum Fuse's outbound-calling API over HTTP, for Airflow.

The hook owns everything HTTP: the connection's base URL and credentials, one ``requests.Session``,
the multipart upload, reading Fuse's JSON or XML answers, and deciding — in :func:`classify_answer`
and :func:`classify_network_error`, nowhere else — which of the three outcomes of
:mod:`airflow_provider_fuse.exceptions` a failure is in.

Its contract with the duplicate guard: for any input or connection, the endpoints raise only
:class:`~airflow_provider_fuse.exceptions.FuseError`\\ s, and an error that is not an unknown outcome
means that nothing left the machine. What can be checked is checked when the connection is read;
a request that cannot be made is a :class:`~airflow_provider_fuse.exceptions.FuseRequestError`.
Every request has an overall deadline (``timeout.total``) and reads at most
:data:`MAX_ANSWER_BYTES` of an answer, so a slow or huge answer cannot hold a worker.

The sync path (requests) and the async one (httpx) read the same answers, by one rule: interim 1xx
answers (``100 Continue``, ``103 Early Hints``, ...) before the final answer are skipped, as RFC 9110
asks of every client; a final answer whose head has more than :data:`MAX_ANSWER_HEADERS` header
fields or :data:`MAX_ANSWER_HEAD_BYTES` of them is not read: an unknown outcome
(:class:`~airflow_provider_fuse.exceptions.FuseInvalidResponseError`), whatever its status; a head
that httpx's parser (h11) refuses — a line without a colon, a space before it, a NUL, two different
``Content-Length`` values — is a broken answer on both (an unknown outcome,
:class:`~airflow_provider_fuse.exceptions.FuseConnectionLostError`). Once a connection was made for a
request, any failure is an unknown outcome, whatever the client calls it: only a failure proven to
come before sending is "not sent".
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import importlib.util
import ipaddress
import json
import logging
import math
import os
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, TypeGuard
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import requests
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests_toolbelt.multipart.encoder import MultipartEncoder, MultipartEncoderMonitor
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from airflow_provider_fuse import __version__
from airflow_provider_fuse.answers import parse_answer
from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.exceptions import (
    FuseApiError,
    FuseAuthenticationError,
    FuseConnectionLostError,
    FuseCsvError,
    FuseError,
    FuseInvalidResponseError,
    FuseNotSentError,
    FuseRedirectError,
    FuseRejectedError,
    FuseRequestError,
    FuseServerError,
    FuseUnknownOutcomeError,
    FuseValidationError,
    Outcome,
    redact,
    rejection_class,
)
from airflow_provider_fuse.fields import (
    CallParameterValue,
    QueueFields,
    TimestampLike,
    to_call_parameters,
    to_phone_number,
    to_positive_id,
)
from airflow_provider_fuse.results.tokens import NOT_CONFIGURED_DETAIL, REFUSED_DETAIL

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from airflow.sdk import Connection
    from urllib3.connection import HTTPConnection

    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object

__all__ = [
    "DEFAULT_BASE_URL",
    "CallDetails",
    "CallStatus",
    "ConnectionSettings",
    "CsvSource",
    "FuseHook",
    "ProbeAnswer",
    "asking_again_can_help",
    "probe_results_receiver",
]

DEFAULT_BASE_URL = "https://fuse.plumvoice.com/api"
#: (connect, read) seconds. The read timeout is generous: Fuse answers a bulk upload only once it
#: has taken the whole list.
DEFAULT_TIMEOUT = (10.0, 300.0)
#: Seconds one request may take from start to the end of its answer, connect retries included: an
#: hour, so that no upload a worker can reasonably send is cut short, yet a trickling answer (which
#: per-read timeouts never end) cannot hold the worker for ever.
DEFAULT_TOTAL_TIMEOUT = 3600.0
#: The longest any timeout may be: a day (beyond it, sockets and timers overflow).
MAX_TIMEOUT = 86400.0
#: The most bytes read of an answer. Fuse's answers are a few hundred bytes; the rest of a bigger one
#: is never read (a 2xx that big is not Fuse's answer, a 4xx/5xx is classified by its status).
MAX_ANSWER_BYTES = 1 << 20
#: The most header fields of an answer that is read, on both paths: below http.client's own bound
#: (100 lines, the blank one that ends the head included), which the sync path cannot raise. Fuse's
#: answers have about ten; proxies add a few.
MAX_ANSWER_HEADERS = 96
#: The most bytes of an answer's header fields (``name: value`` and a line end each, as parsed) that
#: are read: below both clients' own bounds (a 64 KiB line for http.client, a 100 KiB head for
#: httpx's h11), so both refuse the same heads.
MAX_ANSWER_HEAD_BYTES = 64 * 1024
#: The most bytes of an interim (1xx) answer's head that the sync path skips: httpx's own bound
#: (httpcore's ``MAX_INCOMPLETE_EVENT_SIZE``); interim answers are never read, only skipped.
MAX_INTERIM_HEAD_BYTES = 100 * 1024
#: The most characters of a call id (from an answer) that is taken as one.
MAX_CALL_ID_CHARS = 256
#: The most ``connect_retries`` a hook takes: more tries of a request that was not sent do not help.
MAX_CONNECT_RETRIES = 10
#: The most seconds of ``retry_backoff``, the first wait before a retry.
MAX_RETRY_BACKOFF = 300.0
#: The longest single wait between two tries, however far the backoff has doubled.
MAX_RETRY_DELAY = 3600.0
#: Beyond this, a ``calls_queued`` count is not Fuse's (it is a 32-bit count of the rows sent).
MAX_CALLS_QUEUED = 2**31
KNOWN_EXTRAS = frozenset({"timeout", "verify", "proxies", "allow_http"})
_TIMEOUT_KEYS = ("connect", "read", "total")
_SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})

#: A contact CSV: a path, or a binary file object (sent from its current position).
CsvSource = str | os.PathLike[str] | IO[bytes]


@dataclass(frozen=True)
class ConnectionSettings:
    """What a ``fuse`` connection says, checked: where Fuse is, who we are, how to reach it.

    ``timeout`` is (connect, read) seconds; ``total_timeout`` bounds a whole request.
    """

    base_url: str
    email: str
    developer_key: str = field(repr=False)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    verify: bool | str = True
    proxies: Mapping[str, str] = field(default_factory=dict, repr=False)
    ignored_extras: tuple[str, ...] = ()
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT

    @classmethod
    def from_connection(cls, conn: Connection) -> ConnectionSettings:
        """Read and check a ``fuse`` connection.

        login = account email, password = developer key, host = API base URL (see :func:`base_url`),
        extras ``timeout``, ``verify``, ``proxies``, ``allow_http``; other extras are reported in
        ``ignored_extras`` and never used. No message quotes the host, a proxy or a credential.

        :raises FuseValidationError: naming the connection field that is missing or wrong: a host
            that is not an http(s) URL or carries a user name or password, a port outside 1–65535,
            a proxy this install cannot use or a ``proxies`` key requests does not read, a timeout
            that is not a finite positive number of seconds.
        """
        extras = conn.extra_dejson if conn.extra else {}
        if not isinstance(extras, dict):
            raise FuseValidationError("extra", "the connection's extra must be a JSON object")
        # The connection form stores a field left empty as null (or, on Airflow 3.1, ""): not set.
        extras = {key: value for key, value in extras.items() if value is not None and value != ""}
        url = base_url(conn.host, conn.port, conn.schema)
        _refuse_clear_text(url, allow_http=_to_bool("allow_http", extras.get("allow_http", False)))
        if not conn.login:
            raise FuseValidationError("login", "the connection needs the Fuse account email as its login")
        if not conn.password:
            raise FuseValidationError(
                "password", "the connection needs the Fuse developer key as its password"
            )
        connect, read, total = _timeout(extras.get("timeout"))
        return cls(
            base_url=url,
            email=conn.login,
            developer_key=conn.password,
            timeout=(connect, read),
            total_timeout=total,
            verify=_verify(extras.get("verify", True)),
            proxies=_proxies(extras.get("proxies")),
            ignored_extras=tuple(sorted(set(extras) - KNOWN_EXTRAS)),
        )

    @property
    def authorization(self) -> str:
        """The value of the Authorization header these credentials make (a secret)."""
        token = base64.b64encode(f"{self.email}:{self.developer_key}".encode()).decode("ascii")
        return f"Basic {token}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every form of a credential an answer could echo, for :func:`redact`: the developer key,
        the Authorization value and its base64 token, and the passwords of the proxies' URLs."""
        authorization = self.authorization
        values = [self.developer_key, authorization, authorization.removeprefix("Basic ")]
        for key, proxy in self.proxies.items():
            auth = _proxy_auth(proxy) if key != "no_proxy" else None
            if auth:
                values.extend([auth, auth.partition(":")[2], unquote(auth.partition(":")[2])])
        return tuple(value for value in values if value)


def base_url(host: str | None, port: int | str | None = None, schema: str | None = None) -> str:
    """Form the API base URL from a connection's host, port and schema.

    Empty host → Fuse's public API, ``https://fuse.plumvoice.com/api``, read by the same rules as a
    host. A host without a scheme gets ``https://``. A host without a path gets ``/<schema>`` when
    the schema is set, else ``/api``. A host with a path is taken as it is.

    The ``port`` field (which Airflow 3.3.2's *Test* button needs stored; the form's placeholder
    says 443, Fuse's port):

    * the other scheme's own port (443 with an http host, 80 with an https one) is taken for that
      placeholder copied in, not for a port: it is not used (``http://127.0.0.1`` with 443 is
      ``http://127.0.0.1/api``, not ``http://127.0.0.1:443/api``). To reach such a port, put it in
      the host;
    * otherwise, for a host without a port: added to the URL, unless it is the scheme's own (443
      for https, 80 for http);
    * for a host with a port: it must be that port.

    :raises FuseValidationError: naming ``host`` when it is not an http(s) URL, carries a user name
        or password, or has a port outside 1–65535; naming ``port`` when that is outside 1–65535,
        or differs from the port in the host. The message never quotes the host.
    """
    text = (host or "").strip() or DEFAULT_BASE_URL
    if any(char.isspace() or not char.isprintable() for char in text):
        raise FuseValidationError("host", "the API base URL must not contain spaces or control characters")
    if "://" not in text:
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        hostname = parts.hostname
    except ValueError:
        hostname = scheme = None
    if scheme not in ("http", "https") or not hostname:
        raise FuseValidationError(
            "host", "the API base URL must be an http(s) URL such as " + DEFAULT_BASE_URL
        )
    if "@" in parts.netloc:
        # Credentials in the URL would be logged with it; they belong in login and password.
        raise FuseValidationError(
            "host",
            "the API base URL must not carry a user name or password: put the account email in login "
            "and the developer key in password",
        )
    try:
        host_port = parts.port
    except ValueError:
        host_port = 0
    if host_port == 0:
        raise FuseValidationError("host", "the port in the API base URL must be a number from 1 to 65535")
    netloc = parts.netloc
    field_port = _port(port)
    if field_port == _DEFAULT_PORTS["http" if scheme == "https" else "https"]:
        field_port = None  # the form's placeholder, not this scheme's port
    if field_port and host_port is not None and field_port != host_port:
        raise FuseValidationError(
            "port",
            f"{field_port} differs from the port in the host's API base URL ({host_port}): make them the "
            "same, or leave port empty",
        )
    if field_port and host_port is None and field_port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{field_port}"
    path = parts.path.rstrip("/")
    if not path:
        path = "/" + schema.strip("/") if schema and schema.strip("/") else "/api"
    url = urlunsplit((scheme, netloc, path, "", ""))
    try:
        # What requests will do with it: IDNA-encode the host, parse every part.
        requests.PreparedRequest().prepare_url(f"{url}/", None)
    except (requests.RequestException, LocationParseError, ValueError):
        raise FuseValidationError(
            "host", "the API base URL is not a valid URL (check its host name, port and path)"
        ) from None
    return url


#: The port a scheme's URL means without one: a ``port`` field naming it adds nothing to the URL.
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _port(value: object) -> int | None:
    """The connection's ``port`` field: unset, or a number from 1 to 65535."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise FuseValidationError("port", "must be a number from 1 to 65535")


def _refuse_clear_text(url: str, *, allow_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme != "http" or allow_http or _is_loopback(parts.hostname or ""):
        return
    raise FuseValidationError(
        "host",
        f"{url} is plain http and would send the developer key in clear; use https, or set the "
        'connection extra {"allow_http": true} if this network is trusted',
    )


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _to_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise FuseValidationError(f"extra.{name}", "must be true or false")


def _from_text(value: object) -> object:
    """A connection extra given as text (the URI form's query string): its JSON value, if it has one."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _is_seconds(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= MAX_TIMEOUT
    )


def _timeout(value: object) -> tuple[float, float, float]:
    """The ``timeout`` extra as (connect, read, total) seconds, each finite, positive, at most a day."""
    value = _from_text(value)
    connect, read = DEFAULT_TIMEOUT
    total = DEFAULT_TOTAL_TIMEOUT
    if value is None:
        return connect, read, total
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        connect = read = value
    elif isinstance(value, Mapping) and set(value) <= set(_TIMEOUT_KEYS):
        connect = value.get("connect", connect)
        read = value.get("read", read)
        total = value.get("total", total)
    elif isinstance(value, (list, tuple)) and len(value) in (2, 3):
        connect, read = value[0], value[1]
        total = value[2] if len(value) == 3 else total
    else:
        raise FuseValidationError(
            "extra.timeout", 'must be seconds, [connect, read] or {"connect": s, "read": s, "total": s}'
        )
    for name, seconds in zip(_TIMEOUT_KEYS, (connect, read, total), strict=True):
        if not _is_seconds(seconds):
            raise FuseValidationError(
                f"extra.timeout.{name}", f"must be a number of seconds above 0 and at most {MAX_TIMEOUT:.0f}"
            )
    return float(connect), float(read), float(total)


def _verify(value: object) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str) and value:
        return value
    raise FuseValidationError("extra.verify", "must be true, false, or the path of a CA bundle")


#: The keys of the ``proxies`` extra requests reads: a scheme (``http``, ``https``), ``all``, a
#: scheme or ``all`` with a host (``https://fuse.example.com``), and ``no_proxy`` (hosts for which
#: the environment's proxies are not used).
_PROXY_KEY = re.compile(r"(?:https?|all)(?:://[^\s/]+)?")


def _proxies(value: object) -> dict[str, str]:
    """The ``proxies`` extra as both clients use it: each proxy a URL with a scheme this install can
    use (``http://`` put in front of one without, as requests does), each key one requests reads.
    A key requests would ignore is refused rather than silently unused. No message quotes a proxy
    URL: it may carry the proxy's password."""
    value = _from_text(value)
    if value is None:
        return {}
    if not (
        isinstance(value, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise FuseValidationError("extra.proxies", 'must be an object such as {"https": "http://proxy:3128"}')
    proxies: dict[str, str] = {}
    for key, proxy in value.items():
        name = f"extra.proxies.{redact(key, 40)}"
        if key == "no_proxy":
            if not proxy.isprintable():
                raise FuseValidationError(name, "must be a comma-separated list of host names")
            proxies[key] = proxy
            continue
        if not _PROXY_KEY.fullmatch(key):
            raise FuseValidationError(
                name,
                "is not a key requests reads: use http, https, all, <scheme>://<host> or no_proxy",
            )
        text = proxy.strip()
        if "://" not in text:
            text = f"http://{text}"  # as requests reads a proxy without a scheme
        try:
            parsed = parse_url(text)
            port = parsed.port
        except (LocationParseError, ValueError):
            raise FuseValidationError(name, "is not a valid proxy URL") from None
        scheme = (parsed.scheme or "").lower()
        if not parsed.host or port == 0 or any(char.isspace() for char in text):
            raise FuseValidationError(name, "is not a valid proxy URL")
        if scheme in _SOCKS_SCHEMES and not _socks_available():
            raise FuseValidationError(
                name, "a SOCKS proxy needs PySocks, which is not installed (pip install 'requests[socks]')"
            )
        if scheme not in ("http", "https") and scheme not in _SOCKS_SCHEMES:
            raise FuseValidationError(name, "must be an http, https or socks proxy URL")
        proxies[key] = text
    return proxies


def _socks_available() -> bool:
    """Whether urllib3's SOCKS support imports in this install (it needs PySocks)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # urllib3 warns before it raises
            import urllib3.contrib.socks  # noqa: F401
    except ImportError:
        return False
    return True


def _proxy_auth(proxy: str) -> str | None:
    try:
        return parse_url(proxy if "://" in proxy else f"http://{proxy}").auth
    except (LocationParseError, ValueError):
        return None


# --- Answers -----------------------------------------------------------------------------------------


def _excerpt(body: bytes, secrets: Iterable[str]) -> str:
    if not body.strip():
        return "(empty body)"
    return redact(body.decode("utf-8", errors="replace"), secrets=secrets)


def classify_answer(
    status_code: int, body: bytes, *, secrets: Iterable[str] = (), complete: bool = True
) -> dict[str, Any]:
    """Return the fields of a 2xx Fuse answer, or raise the failure this answer means.

    * 2xx → the answer's fields (``{}`` for an empty body, as the 202 of ``cancel``);
    * 4xx → the :class:`FuseRejectedError` subtype of :func:`rejection_class`, with Fuse's error text;
    * 5xx → :class:`FuseServerError` (unknown outcome);
    * 1xx/3xx → :class:`FuseRedirectError` (unknown outcome: a POST answered 303 is often one that
      was processed; redirects are never followed). Interim 1xx answers before the final one never
      get here: both clients skip them; a ``101 Switching Protocols``, never asked for, is a broken
      answer to both (a lost connection, unknown outcome);
    * a 2xx whose body is not Fuse's, or was cut at :data:`MAX_ANSWER_BYTES` → an unknown outcome
      (:class:`FuseInvalidResponseError`) naming status and an excerpt.

    Text taken from the body is scrubbed of ``secrets`` (every form of the connection's credential),
    redacted (no runs of 7+ digits) and cut short.

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
                f"an answer that is not Fuse's: {_excerpt(body, secrets)}", status_code
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
    error = answer.get("error") if answer else None
    if error and not isinstance(error, (dict, list)):
        text = redact(str(error), secrets=secrets)
    else:
        text = f"no Fuse error text; body: {_excerpt(body, secrets)}"
    if 400 <= status_code < 500:
        raise rejection_class(status_code)(text, status_code)
    raise FuseServerError(text, status_code)


def classify_network_error(error: BaseException, *, connected: bool | None = None) -> FuseApiError:
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
    """
    classified = _classify_network_error(error)
    if connected and classified.outcome is not Outcome.UNKNOWN:
        return FuseConnectionLostError(
            f"the request failed once a connection was made for it ({_cause(error)}); Fuse may have "
            "queued some or all calls"
        )
    return classified


def _classify_network_error(error: BaseException) -> FuseApiError:
    """:func:`classify_network_error` by the error's class and chain alone."""
    from urllib3.exceptions import HTTPError as Urllib3Error
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    if _head_too_large(error):
        return _head_refused()
    if isinstance(error, (httpx.HTTPError, httpx.InvalidURL)):
        return _classify_httpx_error(error)
    if isinstance(error, requests.exceptions.InvalidHeader) and _in_chain(
        error, lambda item: isinstance(item, Urllib3Error)
    ):
        # Not a header requests refused to send: urllib3 refusing the answer's (two different
        # Content-Lengths), raised while reading it, after the request was sent.
        return FuseConnectionLostError(
            f"the answer could not be read ({_cause(error)}); Fuse may have queued some or all calls"
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
        return FuseRequestError(f"not sent: the request could not be made ({_cause(error)})")
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return FuseNotSentError(f"not sent: connecting to Fuse timed out ({type(error).__name__})")
    if isinstance(error, requests.exceptions.ProxyError):
        return FuseNotSentError(f"not sent: could not connect through the proxy ({_cause(error)})")
    if isinstance(error, requests.exceptions.SSLError):
        # urllib3 reports TLS failures after the body went out as SSLError too: only a refused
        # certificate proves that nothing was sent.
        if _certificate_refused(error):
            return FuseNotSentError(f"not sent: Fuse's TLS certificate was not accepted ({_cause(error)})")
        return FuseConnectionLostError(
            f"the TLS connection failed ({_cause(error)}); Fuse may have queued some or all calls"
        )
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = error.args[0] if error.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        if isinstance(reason, NewConnectionError):
            return FuseNotSentError(f"not sent: could not connect to Fuse ({type(reason).__name__})")
        return FuseConnectionLostError(
            f"the connection was lost after the request was sent ({_cause(error)}); Fuse may have queued "
            "some or all calls"
        )
    if isinstance(error, requests.exceptions.ReadTimeout):
        return FuseConnectionLostError(
            "no answer from Fuse within the read timeout after the request was sent; Fuse may have queued "
            "some or all calls"
        )
    return FuseConnectionLostError(
        f"the answer could not be read ({_cause(error)}); Fuse may have queued some or all calls"
    )


def _classify_httpx_error(error: httpx.HTTPError | httpx.InvalidURL) -> FuseApiError:
    """httpx's failures, in the outcome classes :func:`classify_network_error` states.

    httpx connects (TLS handshake included) before it writes a byte of the request, so every
    failure to connect — a refused certificate too — is not sent.
    """
    if isinstance(error, (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return FuseRequestError(f"not sent: the request could not be made ({_cause(error)})")
    if isinstance(error, httpx.ProxyError):
        return FuseNotSentError(f"not sent: could not connect through the proxy ({_cause(error)})")
    if isinstance(error, httpx.ConnectTimeout):
        return FuseNotSentError(f"not sent: connecting to Fuse timed out ({_cause(error)})")
    if isinstance(error, (httpx.ConnectError, httpx.PoolTimeout)):
        return FuseNotSentError(f"not sent: could not connect to Fuse ({_cause(error)})")
    if isinstance(error, httpx.ReadTimeout):
        return FuseConnectionLostError(
            "no answer from Fuse within the read timeout after the request was sent; Fuse may have queued "
            "some or all calls"
        )
    if isinstance(error, httpx.TransportError):
        return FuseConnectionLostError(
            f"the connection was lost after the request was sent ({_cause(error)}); Fuse may have queued "
            "some or all calls"
        )
    return FuseConnectionLostError(
        f"the answer could not be read ({_cause(error)}); Fuse may have queued some or all calls"
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


def _head_within_bounds(fields: Iterable[tuple[str | bytes, str | bytes]], reason: str | bytes) -> bool:
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


def _head_refused() -> FuseInvalidResponseError:
    """The one error for an answer whose head is beyond the bounds, sync or async. Its status is not
    given: the sync client refuses such a head before it says the status."""
    return FuseInvalidResponseError(
        f"an answer with more than {MAX_ANSWER_HEADERS} header fields or "
        f"{MAX_ANSWER_HEAD_BYTES // 1024} KiB of them is not Fuse's and was not read; Fuse may have "
        "queued some or all calls"
    )


def _head_too_large(error: BaseException) -> bool:
    """Whether a client refused an answer's head as too large, anywhere in ``error``'s chain: the
    sync path's :class:`_HeadTooLarge`, or httpx's h11 refusing a head over its bound (its 431 hint)."""
    import h11  # httpx's HTTP/1.1 parser (through httpcore): always there with httpx

    return _in_chain(
        error,
        lambda item: (
            isinstance(item, _HeadTooLarge)
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


def _cause(error: BaseException) -> str:
    names = [type(error).__name__]
    inner: object = error.args[0] if error.args else None
    while isinstance(inner, BaseException):
        names.append(type(inner).__name__)
        inner = inner.args[1] if len(inner.args) > 1 else None
    return " ← ".join(names)


_ASCII_DIGITS = re.compile(r"[0-9]+")


def _calls_queued(answer: Mapping[str, Any], status_code: int, secrets: Iterable[str]) -> int:
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
            "a success answer without a calls_queued count: "
            f"{redact(json.dumps(answer, default=str), secrets=secrets)}",
            status_code,
        )
    raise FuseInvalidResponseError(
        "a calls_queued that is not a count from 0 to 2147483647: "
        f"{redact(json.dumps(value, default=str), 60, secrets=secrets)}",
        status_code,
    )


def _call_id(
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
            f"Fuse may have queued the call: {redact(json.dumps(answer, default=str), secrets=secrets)}",
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


def _to_call_id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or value.strip() == "None":
        raise FuseValidationError("call_id", f"must be Fuse's call id (a non-empty string), got {value!r}")
    return value.strip()


def _status_path(call_id: str) -> str:
    return f"outbound/{quote(call_id, safe='')}"


# --- Our own results receiver ----------------------------------------------------------------------------

#: Seconds :func:`probe_results_receiver` waits to connect to the receiver.
PROBE_CONNECT_TIMEOUT = 5.0
#: Seconds :func:`probe_results_receiver` takes at most, from the first byte sent to the last read.
PROBE_DEADLINE = 10.0
#: The most bytes of the receiver's answer :func:`probe_results_receiver` reads: its answers to the
#: probe are a few dozen bytes.
PROBE_READ_BYTES = 4 * 1024
#: The ``detail`` of the results receiver's JSON answer (403) to a token it refuses: malformed,
#: signed with another key, or expired (:mod:`airflow_provider_fuse.results.receiver`).
RECEIVER_REFUSES_TOKEN = REFUSED_DETAIL
#: The ``detail`` of the results receiver's JSON answer (503) while its ``[fuse]`` options are
#: missing or unusable (:mod:`airflow_provider_fuse.results.receiver`).
RECEIVER_NOT_CONFIGURED = NOT_CONFIGURED_DETAIL
#: The answers that say nothing at the probed URL is the results receiver.
NO_RECEIVER_STATUSES = frozenset({404, 405, 410})
#: What to check when the receiver is missing or not configured: said by the bulk operator's check
#: before dialing and by the results sensor (no value, no secret in it).
RECEIVER_SETUP_HINT = (
    "Check [fuse] results_base_url: the api-server's root URL as Fuse reaches it, without /fuse (the "
    "provider adds /fuse/results/<token>); and that the api-server has this provider installed (its "
    "plugin mounts the receiver), has the same [fuse] options as the workers, and was restarted after "
    "they were set"
)


@dataclass(frozen=True)
class ProbeAnswer:
    """What our own results receiver answered to :func:`probe_results_receiver`.

    :param status_code: the answer's HTTP status; ``None`` when no whole answer came (the receiver
        out of this worker's reach, or not answering within :data:`PROBE_DEADLINE`, or a broken
        answer). 400 is the receiver taking the token and refusing the empty body.
    :param refuses_token: the answer is the receiver's own refusal of the token: a 403 whose body is
        exactly its JSON ``{"detail": RECEIVER_REFUSES_TOKEN}``. A 403 of anything else (a proxy,
        another application at that path) is not.
    :param not_configured: the answer is the receiver's own "not configured": a 503 whose body is
        exactly its JSON ``{"detail": RECEIVER_NOT_CONFIGURED}`` (its ``[fuse]`` options missing or
        unusable: it refuses every outcome). Any other 503 (a database briefly locked, a proxy) is not.
    """

    status_code: int | None
    refuses_token: bool = False
    not_configured: bool = False

    @property
    def no_receiver(self) -> bool:
        """Nothing at the URL is the results receiver: it answered 404, 405 or 410 (no such path,
        or a server without the receiver's POST route), so every outcome posted there is lost."""
        return self.status_code in NO_RECEIVER_STATUSES


def probe_results_receiver(
    url: str, *, connect_timeout: float = PROBE_CONNECT_TIMEOUT, deadline: float = PROBE_DEADLINE
) -> ProbeAnswer:
    """Ask our own results receiver whether it accepts a token, before Fuse is given it.

    POSTs an empty JSON body to ``url`` (a ``result_url`` this worker signed, not Fuse's). The
    receiver checks the token before it reads a body: it refuses it with a 403 of its own
    (:class:`ProbeAnswer` ``refuses_token``), or takes it and refuses the empty body (400), storing
    nothing. No redirect is followed; proxies and CA bundles come from the environment, as for any
    ``requests`` call. The whole of it ends within ``deadline`` seconds however the answer trickles
    (the hook's watchdog), and at most :data:`PROBE_READ_BYTES` of the answer are read.

    Nothing is logged, and no failure is raised: a URL holds the token (and so do the exceptions
    that quote it), so every failure to get a whole answer is ``ProbeAnswer(None)``. What the bulk
    operator's check before dialing does with each answer: 400 sends; the receiver's own 403
    (``refuses_token``), its own 503 (``not_configured``) and 404/405/410 (``no_receiver``) fail the
    task before anything is sent; anything else is a warning.
    """
    watchdog = _Watchdog()
    try:
        with requests.Session() as session, watchdog.watch(deadline):
            adapter = _FuseAdapter(watchdog)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _keep_answers_out_of_client_logs()
            headers = {
                **_headers("python-requests", requests.__version__),
                "Content-Type": "application/json",
            }
            response = session.post(
                url,
                data=b"",
                headers=headers,
                timeout=(connect_timeout, deadline),
                allow_redirects=False,
                stream=True,
            )
            try:
                body, complete = _read_answer(response, PROBE_READ_BYTES)
            finally:
                response.close()
            if watchdog.expired:
                return ProbeAnswer(None)  # a body that ends with the connection reads as whole
    except Exception:  # the text of every one of them may quote the URL: none is kept
        return ProbeAnswer(None)
    status = int(response.status_code)
    return ProbeAnswer(
        status,
        refuses_token=status == 403 and complete and _is_receivers_own(body, RECEIVER_REFUSES_TOKEN),
        not_configured=status == 503 and complete and _is_receivers_own(body, RECEIVER_NOT_CONFIGURED),
    )


def _is_receivers_own(body: bytes, detail: str) -> bool:
    """Whether ``body`` is the results receiver's JSON answer ``{"detail": detail}``, and nothing else."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return bool(answer == {"detail": detail})


# --- The hook ----------------------------------------------------------------------------------------


def _check_hook_settings(connect_retries: object, retry_backoff: object, progress_interval: object) -> None:
    """:class:`FuseHook`'s settings, each within its bounds (a sleep of 1e300 s overflows, a
    backoff doubled 1024 times too).

    :raises FuseValidationError: naming the setting and its bounds.
    """
    if not (
        isinstance(connect_retries, int)
        and not isinstance(connect_retries, bool)
        and 0 <= connect_retries <= MAX_CONNECT_RETRIES
    ):
        raise FuseValidationError(
            "connect_retries", f"must be an integer from 0 to {MAX_CONNECT_RETRIES}, got {connect_retries!r}"
        )
    if not (_is_number(retry_backoff) and 0 <= retry_backoff <= MAX_RETRY_BACKOFF):
        raise FuseValidationError(
            "retry_backoff",
            f"must be a number of seconds from 0 to {MAX_RETRY_BACKOFF:g}, got {retry_backoff!r}",
        )
    if not (_is_number(progress_interval) and progress_interval >= 0):
        raise FuseValidationError(
            "progress_interval", f"must be a finite number of seconds, 0 or more, got {progress_interval!r}"
        )


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _header_secrets(settings: ConnectionSettings) -> tuple[str, str]:
    """The Authorization value and its base64 token: masked as soon as they are made."""
    return settings.authorization, settings.authorization.removeprefix("Basic ")


async def _amask_secret(secret: str) -> None:
    """``mask_secret`` without blocking an event loop where this Airflow can (3.2 and later)."""
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # Airflow 3.1
        mask_secret(secret)
        return
    await amask_secret(secret)


class FuseHook(BaseHook):
    """Talk to Plum Fuse's outbound-calling API.

    The ``fuse`` connection: login = the Fuse account's email, password = its developer key,
    host = the API base URL (default ``https://fuse.plumvoice.com/api``). Extras (typed fields of
    the connection form; one left empty, null or ``""``, is not set): ``timeout``
    (seconds, ``[connect, read]`` or ``{"connect": s, "read": s, "total": s}``; ``total`` bounds a
    whole request, default an hour), ``verify`` (false or a CA bundle path), ``proxies`` (as requests
    takes them: http, https, or socks when PySocks is installed), ``allow_http`` (permit plain http
    off loopback). Unknown extras are named in a warning and ignored.

    Every endpoint is synchronous, over one ``requests.Session``; :meth:`aget_call_status` is the
    status read for the triggerer's event loop, over httpx, with the same connection settings,
    answer classification, retry rule, deadline and read cap, and the same rule for an answer's head
    (interim 1xx answers skipped, at most :data:`MAX_ANSWER_HEADERS` fields and
    :data:`MAX_ANSWER_HEAD_BYTES` of them).

    One hook serves one thread at a time (as its ``requests.Session`` does).

    :param fuse_conn_id: the Airflow connection id.
    :param connect_retries: how many more times a request that was certainly not sent is tried
        before :class:`FuseNotSentError` is raised: 0 to :data:`MAX_CONNECT_RETRIES`.
    :param retry_backoff: seconds before the first of those tries, 0 to :data:`MAX_RETRY_BACKOFF`;
        doubled for each next one, up to :data:`MAX_RETRY_DELAY`.
    :param progress_interval: an upload still running after this many seconds logs how much has
        been sent (bytes and percent), and again every as many seconds.
    :raises FuseValidationError: (a ``ValueError``) naming a setting outside these bounds.
    """

    conn_name_attr = "fuse_conn_id"
    default_conn_name = "fuse_default"
    conn_type = "fuse"
    hook_name = "Plum Fuse"

    def __init__(
        self,
        fuse_conn_id: str = default_conn_name,
        *,
        connect_retries: int = 2,
        retry_backoff: float = 1.0,
        progress_interval: float = 10.0,
    ) -> None:
        super().__init__()
        _check_hook_settings(connect_retries, retry_backoff, progress_interval)
        self.fuse_conn_id = fuse_conn_id
        self.connect_retries = connect_retries
        self.retry_backoff = retry_backoff
        self.progress_interval = progress_interval

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The extras' fields of the connection form, for Airflow 3.1 (3.2+ read the provider info's
        ``conn-fields``, built from the same :data:`~airflow_provider_fuse.get_provider_info.CONN_FIELDS`).

        Airflow 3.1's UI stands in for wtforms, which it does not install: a JSON object is typed
        as text there, which the hook reads as the URI form's text (JSON).
        """
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget  # type: ignore[import-not-found,import-untyped,unused-ignore]
        from flask_babel import lazy_gettext  # type: ignore[import-not-found,import-untyped,unused-ignore]
        from wtforms import BooleanField, StringField  # type: ignore[import-not-found,import-untyped,unused-ignore]

        from airflow_provider_fuse.get_provider_info import CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            label, description = lazy_gettext(spec["label"]), spec["description"]
            if "boolean" in spec["schema"]["type"]:
                widgets[name] = BooleanField(
                    label, description=description, default=spec["schema"].get("default")
                )
            else:
                widgets[name] = StringField(label, description=description, widget=BS3TextFieldWidget())
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form, for Airflow 3.1 (3.2+ read the same from the provider info)."""
        from airflow_provider_fuse.get_provider_info import UI_FIELD_BEHAVIOUR

        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The connection, read once and checked; its secrets are masked as soon as they are read."""
        conn = self.get_connection(self.fuse_conn_id)
        if conn.password:
            mask_secret(conn.password)
        settings = self._check(conn)
        for secret in _header_secrets(settings):
            mask_secret(secret)
        return settings

    async def asettings(self) -> ConnectionSettings:
        """:attr:`settings`, read without blocking an event loop (the triggerer's); cached with it.

        Checked, besides, for the async path: the proxy it would use (:meth:`_route`) must be one
        httpx can use in this install.

        :raises FuseValidationError: as :attr:`settings`.
        :raises FuseRequestError: a SOCKS proxy the async path cannot use (socks4, or socks5 without
            ``socksio``), naming what to do; nothing was sent.
        """
        if "settings" not in self.__dict__:
            conn = await self.aget_connection(self.fuse_conn_id)
            if conn.password:
                await _amask_secret(conn.password)
            settings = self._check(conn)
            for secret in _header_secrets(settings):
                await _amask_secret(secret)
            self.__dict__["settings"] = settings
        settings = self.settings
        _check_async_proxy(self._route(settings)[1])
        return settings

    def _check(self, conn: Connection) -> ConnectionSettings:
        """The one reading of a connection, for :attr:`settings` and :meth:`asettings`."""
        settings = ConnectionSettings.from_connection(conn)
        if settings.ignored_extras:
            self.log.warning(
                "Ignoring unknown extras of connection %r: %s (known: %s)",
                self.fuse_conn_id,
                ", ".join(settings.ignored_extras),
                ", ".join(sorted(KNOWN_EXTRAS)),
            )
        return settings

    def scrub(self, text: str, limit: int = 200) -> str:
        """``text`` scrubbed of every form of this connection's credential and of phone numbers
        (:func:`redact`), for a message that leaves the hook (a trigger's event). Reads nothing:
        before the connection was read and checked there is no credential to scrub."""
        return redact(text, limit, secrets=self._secrets_or_none())

    @cached_property
    def session(self) -> requests.Session:
        """One session per hook: basic auth, JSON answers, TLS verification, the provider's User-Agent."""
        settings = self.settings
        session = requests.Session()
        # As bytes, UTF-8: requests would encode text as Latin-1 (failing on other characters), and
        # the header must be exactly :attr:`ConnectionSettings.authorization`, the form scrubbed.
        session.auth = HTTPBasicAuth(settings.email.encode(), settings.developer_key.encode())
        session.headers.update(_headers("python-requests", requests.__version__))
        session.verify = settings.verify
        session.proxies.update(settings.proxies)
        adapter = _FuseAdapter(self._watchdog)
        _keep_answers_out_of_client_logs()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @cached_property
    def _watchdog(self) -> _Watchdog:
        return _Watchdog()

    def get_conn(self) -> requests.Session:
        """The hook's ``requests.Session``."""
        return self.session

    def close(self) -> None:
        """Close the session's connections."""
        if "session" in self.__dict__:
            self.session.close()

    # --- Endpoints -------------------------------------------------------------------------------

    def bulk_queue(
        self,
        application_id: int | str,
        deployment_id: int | str,
        csv: CsvSource,
        *,
        start_timestamp: TimestampLike | None = None,
        end_timestamp: TimestampLike | None = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | None = None,
        result_url: str | None = None,
        is_pci: bool | int | None = None,
    ) -> int:
        """Queue a call to every contact of ``csv`` (``POST /apps/{app}/{dep}/bulk_queue``).

        The file is sent byte for byte, streamed (never read whole into memory), as form field
        ``csv`` with its file name and ``text/csv``; each other field only when given. Fields are
        validated first (:meth:`QueueFields.validate`); the CSV's content is not: run
        :func:`airflow_provider_fuse.preflight.preflight_csv` first.

        :param csv: a path, or a binary file object (sent from its current position).
        :return: ``calls_queued`` from Fuse's answer.
        :raises FuseValidationError: before any request, for an invalid argument or connection
            (:class:`FuseCsvError` for a CSV that cannot be read or is not a regular file).
        :raises FuseRequestError: the request could not be made at all; nothing was sent.
        :raises FuseNotSentError: the request never reached Fuse after all connect retries.
        :raises FuseRejectedError: Fuse answered 4xx; nothing was queued.
        :raises FuseUnknownOutcomeError: Fuse may have queued some or all calls — including a 1xx/3xx,
            a 2xx whose ``calls_queued`` is not a count from 0 to 2**31 - 1, and a request cut at the
            overall deadline after it was sent.
        """
        app = to_positive_id("application_id", application_id)
        dep = to_positive_id("deployment_id", deployment_id)
        fields = QueueFields.validate(
            start_timestamp=start_timestamp,
            end_timestamp=end_timestamp,
            max_attempts=max_attempts,
            reattempt_wait=reattempt_wait,
            result_url=result_url,
            is_pci=is_pci,
        )
        answer = self._request("POST", f"apps/{app}/{dep}/bulk_queue", fields=fields.form_fields(), csv=csv)
        return _calls_queued(answer.fields, answer.status_code, self.settings.secrets)

    def queue_call(
        self,
        application_id: int | str,
        deployment_id: int | str,
        phone_number: str | int,
        *,
        call_parameters: Mapping[str, CallParameterValue] | str | None = None,
        start_timestamp: TimestampLike | None = None,
        end_timestamp: TimestampLike | None = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | None = None,
        result_url: str | None = None,
        is_pci: bool | int | None = None,
    ) -> str:
        """Queue one call (``POST /apps/{app}/{dep}/queue``) and return its call id.

        Sent as multipart/form-data: ``phone_number``, ``call_parameters`` as a JSON object string
        (when given), and the other fields exactly as :meth:`bulk_queue` sends them. Everything is
        validated before any request: ``phone_number`` in one of Fuse's destination formats,
        ``call_parameters`` names to JSON scalars (:func:`to_call_parameters`), the rest as for
        :meth:`bulk_queue`. Plum warns that looping this for many numbers can get every call
        rejected: use :meth:`bulk_queue` for more than a handful.

        A request is sent again only when it certainly never reached Fuse (as for bulk_queue).

        :return: ``call_id`` from Fuse's JSON or XML answer, else the last path segment of the
            answer's ``Link`` header.
        :raises FuseValidationError: before any request, for an invalid argument or connection.
        :raises FuseNotSentError: the request never reached Fuse after all connect retries.
        :raises FuseRejectedError: Fuse answered 4xx; nothing was queued.
        :raises FuseRequestError: the request could not be made at all; nothing was sent.
        :raises FuseUnknownOutcomeError: Fuse may have queued the call — including a 2xx that names
            no call id, or one that cannot be a call id (:class:`FuseInvalidResponseError`).
        """
        app = to_positive_id("application_id", application_id)
        dep = to_positive_id("deployment_id", deployment_id)
        number = to_phone_number(phone_number)
        parameters = None if call_parameters is None else to_call_parameters(call_parameters)
        fields = QueueFields.validate(
            start_timestamp=start_timestamp,
            end_timestamp=end_timestamp,
            max_attempts=max_attempts,
            reattempt_wait=reattempt_wait,
            result_url=result_url,
            is_pci=is_pci,
        )
        form = {"phone_number": number}
        if parameters is not None:
            form["call_parameters"] = json.dumps(parameters, separators=(",", ":"), ensure_ascii=False)
        form.update(fields.form_fields())
        answer = self._request("POST", f"apps/{app}/{dep}/queue", fields=form)
        return _call_id(answer.fields, answer.headers, answer.status_code, self.settings.secrets)

    def get_call_status(self, call_id: str | int) -> CallDetails:
        """The status of one call (``GET /outbound/{call_id}``), typed.

        Reading a status changes nothing in Fuse, so this GET is also tried again after a 5xx, an
        answer that is not Fuse's, or a connection lost or timed out — up to ``connect_retries`` more
        times, with the hook's exponential backoff — besides the connect retries every request gets.

        :return: the call's :class:`CallDetails` (numbers coerced, the phone number unquoted).
        :raises FuseValidationError: before any request, for an empty call id or a bad connection.
        :raises FuseRejectedError: Fuse answered 4xx (404: no such call; 403: another user's call).
        :raises FuseRequestError: the request could not be made at all; nothing was sent.
        :raises FuseNotSentError: Fuse could not be reached after all retries.
        :raises FuseUnknownOutcomeError: still a 5xx, a broken or foreign answer after all retries.
        """
        call = _to_call_id(call_id)
        path = _status_path(call)
        for attempt in range(self.connect_retries + 1):
            try:
                answer = self._request("GET", path)
                return CallDetails.from_answer(
                    answer.fields, call_id=call, status_code=answer.status_code, secrets=self.settings.secrets
                )
            except FuseUnknownOutcomeError as failure:
                delay = self._retry_delay(failure, attempt, self.connect_retries, again="asking again")
                if delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aget_call_status(self, call_id: str | int) -> CallDetails:
        """:meth:`get_call_status` for an event loop (the triggerer's): the same GET, over httpx.

        The same contract, answers, retries and errors: the connection is read with
        :meth:`asettings`, answers are read by :func:`classify_answer` and :class:`CallDetails`,
        failures to get one by :func:`classify_network_error`, and each try is bounded by the
        connection's ``total_timeout`` and :data:`MAX_ANSWER_BYTES`. Nothing blocks the loop.
        """
        call = _to_call_id(call_id)
        path = _status_path(call)
        settings = await self.asettings()
        async with self._async_client(settings) as client:
            for attempt in range(self.connect_retries + 1):
                try:
                    answer = await self._arequest(client, "GET", path)
                    return CallDetails.from_answer(
                        answer.fields, call_id=call, status_code=answer.status_code, secrets=settings.secrets
                    )
                except FuseUnknownOutcomeError as failure:
                    delay = self._retry_delay(failure, attempt, self.connect_retries, again="asking again")
                    if delay is None:
                        raise
                    await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def cancel_calls(self, application_id: int | str, deployment_id: int | str) -> None:
        """Cancel every pending call of a deployment (``DELETE /apps/{app}/{dep}/cancel``).

        Fuse documents no per-call cancel. Its 202 (no body) means done. Sent again only when it
        certainly never reached Fuse, as for :meth:`bulk_queue`.

        :raises FuseValidationError: before any request, for an invalid id or connection.
        :raises FuseNotSentError: the request never reached Fuse after all connect retries.
        :raises FuseRejectedError: Fuse answered 4xx (404: no such deployment); nothing was canceled.
        :raises FuseUnknownOutcomeError: Fuse may or may not have canceled the calls.
        """
        app = to_positive_id("application_id", application_id)
        dep = to_positive_id("deployment_id", deployment_id)
        self._request("DELETE", f"apps/{app}/{dep}/cancel")

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection's URL and credentials without side effects.

        Asks for the status of a call id that cannot exist: 404 (or 400/403) means Fuse took the
        credentials, 401 means it did not.
        """
        try:
            self._request("GET", "outbound/airflow-provider-fuse-connection-test", connect_retries=0)
        except (FuseNotSentError, FuseValidationError) as error:
            # Scrubbed again in case a future message quotes more than it does today.
            return False, redact(str(error), 500, secrets=self._secrets_or_none())
        except FuseRejectedError as error:
            if error.status_code in (400, 403, 404):
                return True, f"Connected to {self.settings.base_url}; Fuse accepted the credentials."
            if isinstance(error, FuseAuthenticationError):
                # The UI tests a copy under a random connection id: naming it would mislead.
                error = error.naming(None)
            return False, redact(str(error), 500, secrets=self.settings.secrets)
        except FuseApiError as error:
            return False, redact(str(error), 500, secrets=self.settings.secrets)
        return True, f"Connected to {self.settings.base_url}; Fuse accepted the credentials."

    def _async_client(self, settings: ConnectionSettings) -> httpx.AsyncClient:
        """An httpx client as :attr:`session` is: credentials, headers, TLS, proxies, timeouts.

        :raises FuseRequestError: a CA bundle or proxy that httpx cannot use; nothing was sent.
        """
        try:
            return self._new_async_client(settings)
        except Exception as error:
            failure = FuseRequestError(f"not sent: the request could not be made ({_cause(error)})")
        raise failure  # outside the except block: no chain that could quote the error's text

    def _new_async_client(self, settings: ConnectionSettings) -> httpx.AsyncClient:
        _keep_answers_out_of_client_logs()
        verify, proxy = self._route(settings)
        connect, read = settings.timeout
        return httpx.AsyncClient(
            # Exactly :attr:`ConnectionSettings.authorization`, the form scrubbed from answers.
            headers={**_headers("httpx", httpx.__version__), "Authorization": settings.authorization},
            verify=_ssl_context(verify),
            proxy=proxy,
            # The environment was read by requests' rules in _route; httpx's own (SSL_CERT_FILE,
            # its NO_PROXY patterns) would make the triggerer disagree with the worker.
            trust_env=False,
            timeout=httpx.Timeout(read, connect=connect, pool=connect),
            follow_redirects=False,
        )

    def _route(self, settings: ConnectionSettings) -> tuple[bool | str, str | None]:
        """The CA bundle and the proxy the sync path's session uses to reach the API base URL, by
        requests' own rules: the connection's ``verify`` and ``proxies`` first; then, as the session
        trusts the environment, ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` when ``verify`` is true,
        and ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` unless ``NO_PROXY`` (or the extras'
        ``no_proxy``) exempts the host. The async client is given exactly these."""
        url = f"{settings.base_url}/"
        merged = self.session.merge_environment_settings(
            url, dict(settings.proxies), None, settings.verify, None
        )
        verify = merged["verify"]
        return (True if verify is None else verify), requests.utils.select_proxy(url, merged["proxies"])

    def _secrets_or_none(self) -> tuple[str, ...]:
        """The credential's forms if the connection was read and checked, else none: never a read
        of its own (from the triggerer's event loop, a sync read is refused or blocks it)."""
        settings: ConnectionSettings | None = self.__dict__.get("settings")
        return settings.secrets if settings is not None else ()

    # --- The one request path --------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        fields: Mapping[str, str] | None = None,
        csv: CsvSource | None = None,
        connect_retries: int | None = None,
    ) -> _Answer:
        """Send one request and return Fuse's 2xx answer: its status, fields and headers.

        A request that was certainly not sent is tried again, up to ``connect_retries`` more times
        with exponential backoff, reopening (or rewinding) the CSV each time; every other failure is
        raised at once, as classified by :func:`classify_answer` / :func:`classify_network_error`.
        The whole of it, retries included, must end within the connection's ``total_timeout``.

        :raises FuseError: only; one that is not an unknown outcome means nothing left the machine.
        """
        settings = self.settings
        url = f"{settings.base_url}/{path}"
        retries = self.connect_retries if connect_retries is None else connect_retries
        _check_csv(csv)
        rewind = _rewinder(csv)
        deadline = time.monotonic() + settings.total_timeout
        for attempt in range(retries + 1):
            try:
                return self._send(method, url, fields, csv, deadline)
            except FuseAuthenticationError as refused:
                raise refused.naming(self.fuse_conn_id) from None
            except FuseNotSentError as failure:
                delay = self._retry_delay(failure, attempt, retries, deadline=deadline, ready=rewind)
                if delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arequest(self, client: httpx.AsyncClient, method: str, path: str) -> _Answer:
        """:meth:`_request` without a body, over ``client``, for an event loop: the same retries of
        a request certainly not sent, within the same overall deadline."""
        settings = await self.asettings()
        url = f"{settings.base_url}/{path}"
        deadline = time.monotonic() + settings.total_timeout
        for attempt in range(self.connect_retries + 1):
            try:
                return await self._asend(client, method, url, deadline)
            except FuseAuthenticationError as refused:
                raise refused.naming(self.fuse_conn_id) from None
            except FuseNotSentError as failure:
                delay = self._retry_delay(failure, attempt, self.connect_retries, deadline=deadline)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(
        self,
        failure: FuseApiError,
        attempt: int,
        retries: int,
        *,
        deadline: float | None = None,
        again: str = "trying again",
        ready: Callable[[], bool] = lambda: True,
    ) -> float | None:
        """The one backoff rule, sync and async: seconds to wait before try ``attempt + 1`` after
        ``failure``, logged; ``None`` to raise it instead.

        ``None`` for a request that cannot be made (:class:`FuseRequestError`), after ``retries``
        more tries, when the wait would end past ``deadline``, or when ``ready()`` (rewinding the
        CSV) fails. The wait is ``retry_backoff`` seconds, doubled for each next try, at most
        :data:`MAX_RETRY_DELAY` (the exponent is bounded too: no overflow, whatever the settings).
        """
        delay = min(float(self.retry_backoff) * 2.0 ** min(attempt, 30), MAX_RETRY_DELAY)
        if (
            isinstance(failure, FuseRequestError)
            or attempt >= retries
            or (deadline is not None and time.monotonic() + delay >= deadline)
            or not ready()
        ):
            return None
        self.log.warning("%s; %s in %.1f s (%d of %d)", failure, again, delay, attempt + 1, retries)
        return delay

    def _send(
        self,
        method: str,
        url: str,
        fields: Mapping[str, str] | None,
        csv: CsvSource | None,
        deadline: float,
    ) -> _Answer:
        """One try: send, read at most :data:`MAX_ANSWER_BYTES` of the answer, classify it."""
        settings = self.settings
        watchdog = self._watchdog
        failure: FuseApiError | None = None
        with ExitStack() as stack:
            try:
                # Nothing can have left before session.request: a session that cannot be built, a
                # body that cannot be opened, a watchdog whose timer thread cannot start is a request
                # not made. Said here, not by _failure: the watchdog may still describe the last request.
                session = self.session
                data, headers = stack.enter_context(self._body(fields, csv))
                stack.enter_context(watchdog.watch(deadline - time.monotonic()))
            except FuseError:
                raise
            except Exception as error:  # the contract: only FuseErrors leave the hook
                failure = FuseRequestError(f"not sent: the request could not be made ({_cause(error)})")
            else:
                try:
                    size = f" ({headers['Content-Length']} bytes)" if data is not None else ""
                    self.log.info("%s %s%s", method, url, size)
                    response = session.request(
                        method,
                        url,
                        data=data,
                        headers=headers,
                        timeout=settings.timeout,
                        # Per request, not only on the session: requests lets REQUESTS_CA_BUNDLE and
                        # HTTPS_PROXY override session-level settings, but not these.
                        verify=settings.verify,
                        proxies=dict(settings.proxies),
                        allow_redirects=False,
                        stream=True,
                    )
                    try:
                        body, complete = _read_answer(response, MAX_ANSWER_BYTES)
                    finally:
                        response.close()
                    if watchdog.expired:
                        # A body that ends with the connection reads as whole when the watchdog cut it.
                        raise _DeadlinePassed
                except FuseError:
                    raise
                except Exception as error:  # the contract: only FuseErrors leave the hook
                    failure = self._failure(error, expired=watchdog.expired, connected=watchdog.connected)
        if failure is not None:
            # Raised outside the except block, with no cause or context: an exception's text may
            # quote the answer (a chunk-length line, a header). The failure names its types.
            raise failure
        answer = classify_answer(response.status_code, body, secrets=settings.secrets, complete=complete)
        return _Answer(response.status_code, answer, dict(response.headers))

    async def _asend(self, client: httpx.AsyncClient, method: str, url: str, deadline: float) -> _Answer:
        """One try, as :meth:`_send`: an overall deadline instead of the watchdog, httpx's trace
        events instead of the watchdog's word on whether the request may have left."""
        settings = self.settings
        sent = _Sent()
        failure: FuseApiError | None = None
        try:
            self.log.info("%s %s", method, url)
            # httpx's read timeout starts again with every chunk: only an overall deadline ends an
            # answer that trickles.
            status_code, headers, body, complete = await asyncio.wait_for(
                _aread_answer(client, method, url, sent.trace), deadline - time.monotonic()
            )
        except asyncio.TimeoutError:
            failure = self._failure(None, expired=True, connected=sent.connected)
        except FuseError:
            raise
        except Exception as error:  # the contract: only FuseErrors leave the hook
            failure = self._failure(error, expired=False, connected=sent.connected)
        if failure is not None:
            raise failure  # outside the except block, as in _send
        answer = classify_answer(status_code, body, secrets=settings.secrets, complete=complete)
        return _Answer(status_code, answer, headers)

    def _failure(self, error: Exception | None, *, expired: bool, connected: bool) -> FuseApiError:
        """What a failure to get an answer means: the one reading for sync and async requests.

        :param error: what the client raised (``None`` when the deadline alone ended the request).
        :param expired: the overall deadline ended the request.
        :param connected: the request may have left (a connection was made for it).
        """
        total = self.settings.total_timeout
        if expired or error is None:
            if connected:
                return FuseConnectionLostError(
                    f"no whole answer within the overall deadline of {total:g} s (extra timeout.total) "
                    "after the request was sent; Fuse may have queued some or all calls"
                )
            return FuseNotSentError(
                f"not sent: could not connect to Fuse within the overall deadline of {total:g} s "
                "(extra timeout.total)"
            )
        if isinstance(
            error, (requests.RequestException, LocationParseError, httpx.HTTPError, httpx.InvalidURL)
        ):
            return classify_network_error(error, connected=connected)
        if not connected:
            # Raised before any connection was made: a missing CA bundle, a proxy scheme urllib3
            # does not know, a file that cannot be read... Trying again cannot help.
            return FuseRequestError(f"not sent: the request could not be made ({_cause(error)})")
        return FuseConnectionLostError(
            f"the request failed after it was sent ({_cause(error)}); Fuse may have queued some or all calls"
        )

    @contextmanager
    def _body(
        self, fields: Mapping[str, str] | None, csv: CsvSource | None
    ) -> Iterator[tuple[MultipartEncoderMonitor | None, dict[str, str]]]:
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
            monitor = MultipartEncoderMonitor(
                encoder, _UploadProgress(self.log, encoder.len, self.progress_interval)
            )
            yield monitor, {"Content-Type": encoder.content_type, "Content-Length": str(encoder.len)}


@dataclass(frozen=True)
class _Answer:
    """A 2xx answer of Fuse: its real status code, its fields, its headers."""

    status_code: int
    fields: dict[str, Any]
    headers: Mapping[str, str]


class _DeadlinePassed(Exception):
    """The watchdog cut the request; :meth:`FuseHook._failure` says what that means."""


def _read_answer(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of a streamed answer: (the bytes, whether that was all of it)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=min(64 * 1024, limit + 1)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], False
    return b"".join(chunks), True


async def _aread_answer(
    client: httpx.AsyncClient, method: str, url: str, trace: Callable[[str, Any], Awaitable[None]]
) -> tuple[int, dict[str, str], bytes, bool]:
    """Send, then read at most :data:`MAX_ANSWER_BYTES` of the answer, as :func:`_read_answer` does:
    (status, headers, the bytes, whether that was all of it). The rest of a bigger answer is never
    read: the connection is closed instead."""
    async with client.stream(method, url, extensions={"trace": trace}) as response:
        if not _head_within_bounds(response.headers.raw, response.extensions.get("reason_phrase", b"")):
            raise _head_refused()  # as the sync path's _FuseHTTPResponse refuses it
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
    :class:`_Watchdog` is told by its connections."""

    def __init__(self) -> None:
        self.connected = False

    async def trace(self, event: str, info: Any) -> None:
        if event.endswith(".send_request_headers.started"):
            # A proxy's tunnel is asked for with a CONNECT of its own, traced as this request's:
            # nothing of the request has left until that tunnel stands.
            request = info.get("request") if isinstance(info, Mapping) else None
            if getattr(request, "method", None) not in (b"CONNECT", "CONNECT"):
                self.connected = True


def _headers(library: str, library_version: str) -> dict[str, str]:
    """The headers every request carries, whichever client sends it. Answers are asked for
    uncompressed: Fuse's are a few hundred bytes, and the read cap then counts the bytes received."""
    return {
        "Accept": "application/json",
        "Accept-Encoding": "identity",
        "User-Agent": f"airflow-provider-fuse/{__version__} {library}/{library_version}",
    }


def _ssl_context(verify: bool | str) -> bool | ssl.SSLContext:
    """A ``verify`` as requests resolved it (:meth:`FuseHook._route`), as httpx takes it: false, or a
    context trusting the CA bundle requests would — the given one (a file or directory, as requests
    reads one), or requests' default (certifi's) for true."""
    if verify is False:
        return False
    if isinstance(verify, bool):
        verify = requests.utils.DEFAULT_CA_BUNDLE_PATH
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def _check_async_proxy(proxy: str | None) -> None:
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
#: 46 MB upload take ~2,800 reads, each re-measuring the encoder's parts: measured 2x slower
#: than curl; at 256 KiB the hook's upload is within ~1.2x of curl's.
UPLOAD_BLOCK_SIZE = 256 * 1024


class _FuseAdapter(HTTPAdapter):
    """The default adapter, sending request bodies in blocks of :data:`UPLOAD_BLOCK_SIZE`, whose
    connections — direct or through a proxy — report their sockets to the hook's :class:`_Watchdog`."""

    def __init__(self, watchdog: _Watchdog) -> None:
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


def _watch_pools(manager: Any, watchdog: _Watchdog) -> None:
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


class _HeadTooLarge(http.client.HTTPException):
    """An answer's head beyond :data:`MAX_ANSWER_HEADERS` or :data:`MAX_ANSWER_HEAD_BYTES` (or an
    interim head beyond :data:`MAX_INTERIM_HEAD_BYTES`): raised while the sync client reads it, so
    that urllib3 drops the connection; :func:`classify_network_error` finds it in the chain."""


class _UnaskedSwitch(http.client.HTTPException):
    """A ``101 Switching Protocols`` the request never asked for (it sends no ``Upgrade``): a broken
    answer, as httpx's h11 holds it on the async path."""


#: The loggers of the HTTP clients' own that can quote an answer: urllib3's warning about a head it
#: could not parse (the head's text, a traceback quoting it, the URL), httpx's line per request (the
#: reason phrase), httpcore's debug trace (every head, and each failure's text: a chunk-size line).
_CLIENT_LOGGERS = (
    "urllib3.connection",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_TRACE_VALUE = re.compile(r"\b(exception|return_value)=(\w*).*", re.DOTALL)


class _NoAnswerText(logging.Filter):
    """Keeps an answer's text out of what the HTTP clients log (:data:`_CLIENT_LOGGERS`).

    Each record keeps its message; an exception is named by its type only, a URL by its scheme and
    host only (a results receiver's URL holds its token), other text is scrubbed of numbers
    (:func:`redact`); a debug trace line loses what follows ``exception=`` (its type kept) or
    ``return_value=``; the traceback is dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_log_safe(arg) for arg in record.args)
        elif isinstance(record.args, Mapping) and record.args:
            record.args = {key: _log_safe(arg) for key, arg in record.args.items()}
        elif isinstance(record.msg, str):  # already formatted (httpcore's trace)
            record.msg = redact(_TRACE_VALUE.sub(r"\1=\2…", record.msg), 500)
        record.exc_info = record.exc_text = None
        return True


def _log_safe(value: object) -> object:
    """A log argument without an answer's text: an exception's type name, a URL's scheme and host,
    any other text without numbers."""
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, httpx.URL):
        value = str(value)
    if isinstance(value, str) and re.match(r"(?i)https?://", value):
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
    if isinstance(value, (str, bytes)):
        return redact(value if isinstance(value, str) else value.decode("latin-1"), 200)
    return value


def _keep_answers_out_of_client_logs() -> None:
    """Put :class:`_NoAnswerText` on each of :data:`_CLIENT_LOGGERS`, once per process."""
    for name in _CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(item, _NoAnswerText) for item in logger.filters):
            logger.addFilter(_NoAnswerText())


class _MalformedHead(http.client.HTTPException):
    """An answer's head that httpx's parser (h11) refuses: a header line without a colon, a space
    before the colon, a NUL or other control character, two different ``Content-Length`` values...
    Raised while the sync client reads it, so that urllib3 drops the connection and reports a broken
    answer (an unknown outcome), as the async path does; it quotes nothing of the head."""


class _HeadParser:
    """The file the sync client reads an answer's head from, handing every line it reads to h11 —
    the parser of the async path — so that the sync path refuses exactly the heads the async one
    refuses. Sizes are not h11's to judge here (:func:`_head_within_bounds` is, on both paths)."""

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
    (:class:`_HeadParser`); the final head held to :data:`MAX_ANSWER_HEADERS` and
    :data:`MAX_ANSWER_HEAD_BYTES`."""

    def begin(self) -> None:
        parser = _HeadParser(self.fp)
        self.fp = parser  # type: ignore[assignment]  # read by readline only, in begin()
        try:
            super().begin()
        except http.client.LineTooLong:  # a status or header line over 64 KiB
            raise _HeadTooLarge from None
        except http.client.HTTPException as error:
            if type(error) is not http.client.HTTPException:  # http.client's "more than 100 headers"
                raise
            raise _HeadTooLarge from None
        finally:
            self.fp = parser.fp
        parser.check()
        if not _head_within_bounds(self.msg.items(), self.reason):
            raise _HeadTooLarge

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if status == 101:
                raise _UnaskedSwitch
            if not 100 <= status < 200:
                return version, status, reason
            self._skip_interim_head()

    def _skip_interim_head(self) -> None:
        size = 0
        while True:
            line = self.fp.readline(MAX_INTERIM_HEAD_BYTES + 1 - size)
            size += len(line)
            if size > MAX_INTERIM_HEAD_BYTES:
                raise _HeadTooLarge
            if line in (b"\r\n", b"\n", b""):  # the end of the head, or of the connection
                return


class _WatchedConnection(_ConnectionBase):
    """A urllib3 connection that hands its socket to the watchdog and says when it is connected,
    and reads answers with :class:`_FuseHTTPResponse`."""

    watchdog: _Watchdog
    response_class = _FuseHTTPResponse

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self.watchdog.adopt(sock)
        return sock

    def connect(self) -> None:
        super().connect()
        self.watchdog.mark_connected()

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is not None:  # a kept-alive connection: already connected
            self.watchdog.adopt(self.sock)
            self.watchdog.mark_connected()
        super().request(*args, **kwargs)


class _Watchdog:
    """Ends the request in flight at its overall deadline by shutting down its sockets.

    Per-read timeouts cannot bound an answer that trickles (each byte resets them), nor a slow
    upload; SIGALRM belongs to Airflow's ``execution_timeout``. So a timer thread shuts the
    connection down, which makes the blocked send or receive fail at once. It works on a duplicate
    of the socket's descriptor: a shutdown ends the connection for every descriptor of it, including
    the TLS socket that later wraps it. ``connected`` says whether the request may have left.
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

    @contextmanager
    def watch(self, seconds: float) -> Iterator[None]:
        """Watch the request made inside: shut it down after ``seconds`` (at once if not positive).

        :raises RuntimeError: the timer thread cannot start; nothing is watched, nothing was sent.
        """
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._watching, self.expired, self.connected, self._sockets = True, False, False, []
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

    def mark_connected(self) -> None:
        """Called by a connection once it is connected: from here on the request may reach Fuse."""
        with self._lock:
            if self._watching:
                self.connected = True

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


def _check_csv(csv: CsvSource | None) -> None:
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


def _rewinder(csv: CsvSource | None) -> Callable[[], bool]:
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
