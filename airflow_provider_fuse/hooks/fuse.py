"""FuseHook: Plum Fuse's outbound-calling API over HTTP, for Airflow.

The hook owns everything HTTP: the connection's base URL and credentials, one ``requests.Session``,
the multipart upload, reading Fuse's JSON or XML answers, and deciding — in :func:`classify_answer`
and :func:`classify_network_error`, nowhere else — which of the three outcomes of
:mod:`airflow_provider_fuse.exceptions` a failure is in.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret
from requests.adapters import HTTPAdapter
from requests_toolbelt.multipart.encoder import MultipartEncoder, MultipartEncoderMonitor

from airflow_provider_fuse import __version__
from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.exceptions import (
    REJECTION_BY_STATUS,
    FuseApiError,
    FuseConnectionLostError,
    FuseInvalidResponseError,
    FuseNotSentError,
    FuseRejectedError,
    FuseServerError,
    FuseUnknownOutcomeError,
    FuseValidationError,
    redact,
)
from airflow_provider_fuse.fields import (
    CallParameterValue,
    QueueFields,
    TimestampLike,
    to_call_parameters,
    to_phone_number,
    to_positive_id,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["DEFAULT_BASE_URL", "CallDetails", "CallStatus", "ConnectionSettings", "CsvSource", "FuseHook"]

DEFAULT_BASE_URL = "https://fuse.plumvoice.com/api"
#: (connect, read) seconds. The read timeout is generous: Fuse answers a bulk upload only once it
#: has taken the whole list.
DEFAULT_TIMEOUT = (10.0, 300.0)
KNOWN_EXTRAS = frozenset({"timeout", "verify", "proxies", "allow_http"})

#: A contact CSV: a path, or a binary file object (sent from its current position).
CsvSource = str | os.PathLike[str] | IO[bytes]


@dataclass(frozen=True)
class ConnectionSettings:
    """What a ``fuse`` connection says, checked: where Fuse is, who we are, how to reach it."""

    base_url: str
    email: str
    developer_key: str = field(repr=False)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    verify: bool | str = True
    proxies: Mapping[str, str] = field(default_factory=dict)
    ignored_extras: tuple[str, ...] = ()

    @classmethod
    def from_connection(cls, conn: Connection) -> ConnectionSettings:
        """Read and check a ``fuse`` connection.

        login = account email, password = developer key, host = API base URL (see :func:`base_url`),
        extras ``timeout``, ``verify``, ``proxies``, ``allow_http``; other extras are reported in
        ``ignored_extras`` and never used.

        :raises FuseValidationError: naming the connection field that is missing or wrong.
        """
        extras = conn.extra_dejson if conn.extra else {}
        if not isinstance(extras, dict):
            raise FuseValidationError("extra", "the connection's extra must be a JSON object")
        url = base_url(conn.host, conn.port, conn.schema)
        _refuse_clear_text(url, allow_http=_to_bool("allow_http", extras.get("allow_http", False)))
        if not conn.login:
            raise FuseValidationError("login", "the connection needs the Fuse account email as its login")
        if not conn.password:
            raise FuseValidationError(
                "password", "the connection needs the Fuse developer key as its password"
            )
        return cls(
            base_url=url,
            email=conn.login,
            developer_key=conn.password,
            timeout=_timeout(extras.get("timeout")),
            verify=_verify(extras.get("verify", True)),
            proxies=_proxies(extras.get("proxies")),
            ignored_extras=tuple(sorted(set(extras) - KNOWN_EXTRAS)),
        )

    @property
    def authorization(self) -> str:
        """The value of the Authorization header these credentials make (a secret)."""
        token = base64.b64encode(f"{self.email}:{self.developer_key}".encode()).decode("ascii")
        return f"Basic {token}"


def base_url(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """Form the API base URL from a connection's host, port and schema.

    Empty host → Fuse's public API. A host without a scheme gets ``https://``. A host without a
    path gets ``/<schema>`` when the schema is set, else ``/api``. A host without a port gets
    ``port`` when it is set. A host with a path is taken as it is.

    :raises FuseValidationError: when the host is not an http(s) URL.
    """
    text = (host or "").strip()
    if not text:
        return DEFAULT_BASE_URL
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise FuseValidationError(
            "host", "the API base URL must be an http(s) URL such as " + DEFAULT_BASE_URL
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    if not path:
        path = "/" + schema.strip("/") if schema and schema.strip("/") else "/api"
    return urlunsplit((scheme, netloc, path, "", ""))


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


def _timeout(value: object) -> tuple[float, float]:
    value = _from_text(value)
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return (float(value), float(value))
    if isinstance(value, Mapping):
        value = [value.get("connect", DEFAULT_TIMEOUT[0]), value.get("read", DEFAULT_TIMEOUT[1])]
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(item, (int, float)) and not isinstance(item, bool) and item > 0 for item in value)
    ):
        return (float(value[0]), float(value[1]))
    raise FuseValidationError(
        "extra.timeout", 'must be seconds, [connect, read] or {"connect": s, "read": s}, all positive'
    )


def _verify(value: object) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str) and value:
        return value
    raise FuseValidationError("extra.verify", "must be true, false, or the path of a CA bundle")


def _proxies(value: object) -> dict[str, str]:
    value = _from_text(value)
    if value is None:
        return {}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise FuseValidationError("extra.proxies", 'must be an object such as {"https": "http://proxy:3128"}')


# --- Answers -----------------------------------------------------------------------------------------


def parse_answer(body: bytes) -> dict[str, Any] | None:
    """Read one of Fuse's answers: JSON, or XML ``<result>...</result>``.

    :return: the answer's fields (nested XML elements become dicts, repeated ones lists), or
        ``None`` when the body is neither (an HTML proxy page, an empty body).
    """
    text = body.strip()
    if text.startswith(b"{"):
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    if text.startswith(b"<?xml") or text.startswith(b"<result"):
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError:
            return None
        if root.tag != "result":
            return None
        fields = _xml_value(root)
        return fields if isinstance(fields, dict) else {}
    return None


def _xml_value(element: ElementTree.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    value: dict[str, Any] = {}
    for child in children:
        item = _xml_value(child)
        if child.tag in value:
            existing = value[child.tag]
            value[child.tag] = [*existing, item] if isinstance(existing, list) else [existing, item]
        else:
            value[child.tag] = item
    return value


def _excerpt(body: bytes) -> str:
    if not body.strip():
        return "(empty body)"
    return redact(body.decode("utf-8", errors="replace"))


def classify_answer(status_code: int, body: bytes) -> dict[str, Any]:
    """Return the fields of a 2xx Fuse answer, or raise the failure this answer means.

    * 2xx → the answer's fields (``{}`` for an empty body, as the 202 of ``cancel``);
    * 4xx → a :class:`FuseRejectedError` subtype with Fuse's error text, if any;
    * 5xx → :class:`FuseServerError` (unknown outcome);
    * a 2xx whose body is not Fuse's, or any other status → an error naming status and an excerpt.

    Text taken from the body is redacted (no runs of 7+ digits) and cut short.
    """
    answer = parse_answer(body)
    if 200 <= status_code < 300:
        if answer is None and body.strip():
            raise FuseInvalidResponseError(f"an answer that is not Fuse's: {_excerpt(body)}", status_code)
        return answer or {}
    error = answer.get("error") if answer else None
    text = redact(str(error)) if error else f"no Fuse error text; body: {_excerpt(body)}"
    if 400 <= status_code < 500:
        raise REJECTION_BY_STATUS.get(status_code, FuseRejectedError)(text, status_code)
    if status_code >= 500:
        raise FuseServerError(text, status_code)
    # 1xx/3xx: not an answer of Fuse's endpoint (redirects are not followed, a POST must not
    # silently become a GET); nothing was processed there.
    raise FuseRejectedError(f"{text} (check the connection's API base URL)", status_code)


def classify_network_error(error: requests.RequestException) -> FuseApiError:
    """Map a failure to get any answer onto the outcome it means.

    Not sent: connection refused, DNS failure, connect timeout, a refused TLS certificate, or a
    failure to connect through the proxy — the request never reached Fuse. Everything else (read
    timeout, a connection reset or closed after the request went out, any other TLS failure, a
    broken answer — and, conservatively, errors that are not about the network at all) is an
    unknown outcome.
    """
    from urllib3.exceptions import MaxRetryError, NewConnectionError

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


def _certificate_refused(error: BaseException) -> bool:
    """Whether a certificate verification failure is anywhere in ``error``'s chain of causes."""
    import ssl

    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError) or type(item).__name__ == "CertificateError":
            return True
        pending.extend([*item.args, item.__cause__, item.__context__, getattr(item, "reason", None)])
    return False


def _cause(error: BaseException) -> str:
    names = [type(error).__name__]
    inner: object = error.args[0] if error.args else None
    while isinstance(inner, BaseException):
        names.append(type(inner).__name__)
        inner = inner.args[1] if len(inner.args) > 1 else None
    return " ← ".join(names)


def _call_id(answer: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """The call id of a ``queue`` answer: ``call_id`` in the body, else the ``Link`` URI's last segment."""
    value = answer.get("call_id")
    if value is not None and not isinstance(value, (dict, list, bool)) and str(value).strip():
        return str(value).strip()
    link = next((text for name, text in headers.items() if name.lower() == "link"), None)
    if not link:
        return None
    # "<https://.../outbound/123>; rel=..." or a bare URI; several links: the first.
    uri = link.split(",", 1)[0].split(";", 1)[0].strip().strip("<>").strip()
    segment = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
    return unquote(segment) or None


def _to_call_id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or value.strip() == "None":
        raise FuseValidationError("call_id", f"must be Fuse's call id (a non-empty string), got {value!r}")
    return value.strip()


# --- The hook ----------------------------------------------------------------------------------------


class FuseHook(BaseHook):
    """Talk to Plum Fuse's outbound-calling API.

    The ``fuse`` connection: login = the Fuse account's email, password = its developer key,
    host = the API base URL (default ``https://fuse.plumvoice.com/api``). Extras: ``timeout``
    (seconds, ``[connect, read]`` or ``{"connect": s, "read": s}``), ``verify`` (false or a CA bundle
    path), ``proxies`` (as requests takes them), ``allow_http`` (permit plain http off loopback).
    Unknown extras are named in a warning and ignored.

    :param fuse_conn_id: the Airflow connection id.
    :param connect_retries: how many more times a request that was certainly not sent is tried
        before :class:`FuseNotSentError` is raised.
    :param retry_backoff: seconds before the first of those tries; doubled for each next one.
    :param progress_interval: an upload still running after this many seconds logs how much has
        been sent (bytes and percent), and again every as many seconds.
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
        self.fuse_conn_id = fuse_conn_id
        self.connect_retries = connect_retries
        self.retry_backoff = retry_backoff
        self.progress_interval = progress_interval

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
        settings = ConnectionSettings.from_connection(conn)
        mask_secret(settings.authorization)
        mask_secret(settings.authorization.removeprefix("Basic "))
        if settings.ignored_extras:
            self.log.warning(
                "Ignoring unknown extras of connection %r: %s (known: %s)",
                self.fuse_conn_id,
                ", ".join(settings.ignored_extras),
                ", ".join(sorted(KNOWN_EXTRAS)),
            )
        return settings

    @cached_property
    def session(self) -> requests.Session:
        """One session per hook: basic auth, JSON answers, TLS verification, the provider's User-Agent."""
        settings = self.settings
        session = requests.Session()
        session.auth = (settings.email, settings.developer_key)
        session.headers.update(
            {
                "Accept": "application/json",
                "User-Agent": f"airflow-provider-fuse/{__version__} python-requests/{requests.__version__}",
            }
        )
        session.verify = settings.verify
        session.proxies.update(settings.proxies)
        adapter = _UploadAdapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

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
        :raises FuseValidationError: before any request, for an invalid argument or connection.
        :raises FuseNotSentError: the request never reached Fuse after all connect retries.
        :raises FuseRejectedError: Fuse answered 4xx; nothing was queued.
        :raises FuseUnknownOutcomeError: Fuse may have queued some or all calls.
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
        calls_queued = answer.get("calls_queued")
        try:
            return int(str(calls_queued).strip())
        except ValueError:
            raise FuseInvalidResponseError(
                f"a success answer without a calls_queued count: {redact(json.dumps(answer))}", 200
            ) from None

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
        :raises FuseUnknownOutcomeError: Fuse may have queued the call — including a 200 that names
            no call id (:class:`FuseInvalidResponseError`).
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
        headers: dict[str, str] = {}
        answer = self._request("POST", f"apps/{app}/{dep}/queue", fields=form, response_headers=headers)
        call_id = _call_id(answer, headers)
        if call_id is None:
            raise FuseInvalidResponseError(
                "a success answer that names no call_id (neither in the body nor in a Link header); "
                f"Fuse may have queued the call: {redact(json.dumps(answer, default=str))}",
                200,
            )
        return call_id

    def get_call_status(self, call_id: str | int) -> CallDetails:
        """The status of one call (``GET /outbound/{call_id}``), typed.

        Reading a status changes nothing in Fuse, so this GET is also tried again after a 5xx, an
        answer that is not Fuse's, or a connection lost or timed out — up to ``connect_retries`` more
        times, with the hook's exponential backoff — besides the connect retries every request gets.

        :return: the call's :class:`CallDetails` (numbers coerced, the phone number unquoted).
        :raises FuseValidationError: before any request, for an empty call id or a bad connection.
        :raises FuseRejectedError: Fuse answered 4xx (404: no such call; 403: another user's call).
        :raises FuseNotSentError: Fuse could not be reached after all retries.
        :raises FuseUnknownOutcomeError: still a 5xx, a broken or foreign answer after all retries.
        """
        call = _to_call_id(call_id)
        path = f"outbound/{quote(call, safe='')}"
        for attempt in range(self.connect_retries + 1):
            try:
                answer = self._request("GET", path)
                return CallDetails.from_answer(answer, call_id=call)
            except FuseUnknownOutcomeError as failure:
                if attempt >= self.connect_retries:
                    raise
                delay = self.retry_backoff * 2**attempt
                self.log.warning(
                    "%s; asking again in %.1f s (%d of %d)", failure, delay, attempt + 1, self.connect_retries
                )
                time.sleep(delay)
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
            return False, str(error)
        except FuseRejectedError as error:
            if error.status_code in (400, 403, 404):
                return True, f"Connected to {self.settings.base_url}; Fuse accepted the credentials."
            return False, str(error)
        except FuseApiError as error:
            return False, str(error)
        return True, f"Connected to {self.settings.base_url}; Fuse accepted the credentials."

    # --- The one request path --------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        fields: Mapping[str, str] | None = None,
        csv: CsvSource | None = None,
        connect_retries: int | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the fields of Fuse's 2xx answer.

        A request that was certainly not sent is tried again, up to ``connect_retries`` more times
        with exponential backoff, reopening (or rewinding) the CSV each time; every other failure is
        raised at once, as classified by :func:`classify_answer` / :func:`classify_network_error`.
        When ``response_headers`` is given, the 2xx answer's headers are copied into it.
        """
        url = f"{self.settings.base_url}/{path}"
        retries = self.connect_retries if connect_retries is None else connect_retries
        rewind = _rewinder(csv)
        for attempt in range(retries + 1):
            try:
                with self._body(fields, csv) as (data, headers):
                    size = f" ({headers['Content-Length']} bytes)" if data is not None else ""
                    self.log.info("%s %s%s", method, url, size)
                    response = self.session.request(
                        method,
                        url,
                        data=data,
                        headers=headers,
                        timeout=self.settings.timeout,
                        # Per request, not only on the session: requests lets REQUESTS_CA_BUNDLE and
                        # HTTPS_PROXY override session-level settings, but not these.
                        verify=self.settings.verify,
                        proxies=dict(self.settings.proxies),
                        allow_redirects=False,
                    )
            except requests.RequestException as error:
                failure = classify_network_error(error)
                if not isinstance(failure, FuseNotSentError) or attempt >= retries or not rewind():
                    raise failure from error
                delay = self.retry_backoff * 2**attempt
                self.log.warning(
                    "%s; trying again in %.1f s (%d of %d)", failure, delay, attempt + 1, retries
                )
                time.sleep(delay)
                continue
            answer = classify_answer(response.status_code, response.content)
            if response_headers is not None:
                response_headers.update(response.headers)
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

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
            encoder = MultipartEncoder(fields=parts)
            monitor = MultipartEncoderMonitor(
                encoder, _UploadProgress(self.log, encoder.len, self.progress_interval)
            )
            yield monitor, {"Content-Type": encoder.content_type, "Content-Length": str(encoder.len)}


#: Bytes urllib3 reads from the multipart encoder per send. Its default (16 KiB) makes a
#: 46 MB upload take ~2,800 reads, each re-measuring the encoder's parts: measured 2x slower
#: than curl; at 256 KiB the hook's upload is within ~1.2x of curl's.
UPLOAD_BLOCK_SIZE = 256 * 1024


class _UploadAdapter(HTTPAdapter):
    """The default adapter, sending request bodies in blocks of :data:`UPLOAD_BLOCK_SIZE`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blocksize", UPLOAD_BLOCK_SIZE)
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        kwargs.setdefault("blocksize", UPLOAD_BLOCK_SIZE)
        return super().proxy_manager_for(proxy, **kwargs)


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


@contextmanager
def _open_csv(csv: CsvSource | None) -> Iterator[tuple[IO[bytes] | None, str]]:
    if csv is None:
        yield None, ""
    elif isinstance(csv, (str, os.PathLike)):
        with open(csv, "rb") as file:
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
    except (OSError, ValueError):
        start = None
    if start is None:
        return lambda: False

    def rewind() -> bool:
        csv.seek(start)
        return True

    return rewind
