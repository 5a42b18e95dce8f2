"""FuseHook: Plum Fuse's outbound-calling API over HTTP, for Airflow.

The hook owns everything HTTP, in the modules beside this one, each answering one question:

* :mod:`~airflow_provider_fuse.hooks.connection` and :mod:`~airflow_provider_fuse.hooks.settings`:
  what is the ``fuse`` connection (its type, default id and form), and what does a stored one say
  (its fields and extras, checked)?
* :mod:`~airflow_provider_fuse.hooks.limits`: how much is read, how long is waited, which settings
  are taken (standard library only: the operators check ``hook_params`` with it when a DAG is
  parsed)?
* :mod:`~airflow_provider_fuse.hooks.classify`: which of the three outcomes of
  :mod:`airflow_provider_fuse.exceptions` is an answer, or a failure to get one, in?
* :mod:`~airflow_provider_fuse.hooks.requests_client` and
  :mod:`~airflow_provider_fuse.hooks.httpx_client`: one try of a request, sync (one
  ``requests.Session`` per hook) or async (httpx, for the triggerer); what those clients may log
  is :mod:`~airflow_provider_fuse.hooks.client_logs`'s rule.

:class:`FuseHook` holds the endpoints, the connection read once (:attr:`FuseHook.settings`,
:meth:`FuseHook.asettings`) and the one request path of each kind, with the one retry rule both
share. :func:`probe_results_receiver` asks this provider's own results receiver, not Fuse
(:mod:`~airflow_provider_fuse.hooks.receiver_probe`). Every public name of those modules a DAG
or a plugin used from here still imports from here.

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
import json
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from airflow_provider_fuse.answers import parse_answer
from airflow_provider_fuse.calls import CallDetails, CallStatus
from airflow_provider_fuse.exceptions import (
    FuseApiError,
    FuseAuthenticationError,
    FuseNotSentError,
    FuseRejectedError,
    FuseRequestError,
    FuseUnknownOutcomeError,
    FuseValidationError,
)
from airflow_provider_fuse.exceptions import FuseConnectionLostError as FuseConnectionLostError
from airflow_provider_fuse.exceptions import FuseCsvError as FuseCsvError
from airflow_provider_fuse.exceptions import FuseError as FuseError
from airflow_provider_fuse.exceptions import FuseInvalidResponseError as FuseInvalidResponseError
from airflow_provider_fuse.exceptions import FuseRedirectError as FuseRedirectError
from airflow_provider_fuse.exceptions import FuseServerError as FuseServerError
from airflow_provider_fuse.exceptions import Outcome as Outcome
from airflow_provider_fuse.exceptions import rejection_class as rejection_class
from airflow_provider_fuse.fields import (
    CallParameterValue,
    QueueFields,
    TimestampLike,
    to_call_parameters,
    to_phone_number,
    to_positive_id,
)
from airflow_provider_fuse.hooks import httpx_client, requests_client
from airflow_provider_fuse.hooks.classify import (
    Answer,
    asking_again_can_help,
    calls_queued,
    classify_answer,
    classify_network_error,
    queued_call_id,
)
from airflow_provider_fuse.hooks.connection import (
    CONN_TYPE,
    DEFAULT_BASE_URL,
    DEFAULT_CONN_NAME,
    HOOK_NAME,
    KNOWN_EXTRAS,
    connection_form_widgets,
    ui_field_behaviour,
)
from airflow_provider_fuse.hooks.limits import (
    DEFAULT_TIMEOUT,
    DEFAULT_TOTAL_TIMEOUT,
    MAX_ANSWER_BYTES,
    MAX_ANSWER_HEAD_BYTES,
    MAX_ANSWER_HEADERS,
    MAX_CALL_ID_CHARS,
    MAX_CALLS_QUEUED,
    MAX_CONNECT_RETRIES,
    MAX_INTERIM_HEAD_BYTES,
    MAX_RETRY_BACKOFF,
    MAX_RETRY_DELAY,
    MAX_TIMEOUT,
    PROBE_CONNECT_TIMEOUT,
    PROBE_DEADLINE,
    PROBE_READ_BYTES,
    PROGRESS_INTERVAL_RULE,
    UPLOAD_BLOCK_SIZE,
    is_connect_retries,
    is_progress_interval,
    is_retry_backoff,
    shown_value,
)
from airflow_provider_fuse.hooks.receiver_probe import (
    NO_RECEIVER_STATUSES,
    RECEIVER_NOT_CONFIGURED,
    RECEIVER_REFUSES_TOKEN,
    RECEIVER_SETUP_HINT,
    ProbeAnswer,
    probe_results_receiver,
)
from airflow_provider_fuse.hooks.requests_client import CsvSource, Watchdog, check_csv, rewinder
from airflow_provider_fuse.hooks.settings import ConnectionSettings, base_url
from airflow_provider_fuse.masking import redact
from airflow_provider_fuse.results.tokens import NOT_CONFIGURED_DETAIL as NOT_CONFIGURED_DETAIL
from airflow_provider_fuse.results.tokens import REFUSED_DETAIL as REFUSED_DETAIL

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import httpx
    from airflow.sdk import Connection

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "KNOWN_EXTRAS",
    "MAX_ANSWER_BYTES",
    "MAX_ANSWER_HEADERS",
    "MAX_ANSWER_HEAD_BYTES",
    "MAX_CALLS_QUEUED",
    "MAX_CALL_ID_CHARS",
    "MAX_CONNECT_RETRIES",
    "MAX_INTERIM_HEAD_BYTES",
    "MAX_RETRY_BACKOFF",
    "MAX_RETRY_DELAY",
    "MAX_TIMEOUT",
    "NO_RECEIVER_STATUSES",
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_DEADLINE",
    "PROBE_READ_BYTES",
    "RECEIVER_NOT_CONFIGURED",
    "RECEIVER_REFUSES_TOKEN",
    "RECEIVER_SETUP_HINT",
    "UPLOAD_BLOCK_SIZE",
    "CallDetails",
    "CallStatus",
    "ConnectionSettings",
    "CsvSource",
    "FuseHook",
    "ProbeAnswer",
    "asking_again_can_help",
    "base_url",
    "classify_answer",
    "classify_network_error",
    "parse_answer",
    "probe_results_receiver",
]


def _check_hook_settings(connect_retries: object, retry_backoff: object, progress_interval: object) -> None:
    """:class:`FuseHook`'s settings, each within its bounds (a sleep of 1e300 s overflows, a
    backoff doubled 1024 times too).

    :raises FuseValidationError: naming the setting and its bounds.
    """
    if not is_connect_retries(connect_retries):
        raise FuseValidationError(
            "connect_retries",
            f"must be an integer from 0 to {MAX_CONNECT_RETRIES}, got {shown_value(connect_retries)}",
        )
    if not is_retry_backoff(retry_backoff):
        raise FuseValidationError(
            "retry_backoff",
            f"must be a number of seconds from 0 to {MAX_RETRY_BACKOFF:g}, got {shown_value(retry_backoff)}",
        )
    if not is_progress_interval(progress_interval):
        raise FuseValidationError(
            "progress_interval", f"must be {PROGRESS_INTERVAL_RULE}, got {shown_value(progress_interval)}"
        )


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
        been sent (bytes and percent), and again every as many seconds; finite, more than 0.
    :raises FuseValidationError: (a ``ValueError``) naming a setting outside these bounds.
    """

    conn_name_attr = "fuse_conn_id"
    default_conn_name = DEFAULT_CONN_NAME
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

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
        """The extras' fields of the connection form, for Airflow 3.1
        (:func:`~airflow_provider_fuse.hooks.connection.connection_form_widgets`)."""
        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form, for Airflow 3.1 (3.2+ read the same from the provider info)."""
        return ui_field_behaviour()

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
        httpx_client.check_async_proxy(self._route(settings)[1])
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
        return requests_client.new_session(self.settings, self._watchdog)

    @cached_property
    def _watchdog(self) -> Watchdog:
        return Watchdog()

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
        return calls_queued(answer.fields, answer.status_code, self.settings.secrets)

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
        return queued_call_id(answer.fields, answer.headers, answer.status_code, self.settings.secrets)

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
        """An httpx client as :attr:`session` is, given the CA bundle and proxy of :meth:`_route`.

        :raises FuseRequestError: a CA bundle or proxy that httpx cannot use; nothing was sent.
        """
        return httpx_client.new_client(settings, *self._route(settings))

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
    ) -> Answer:
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
        check_csv(csv)
        rewind = rewinder(csv)
        deadline = time.monotonic() + settings.total_timeout
        for attempt in range(retries + 1):
            try:
                return requests_client.send(
                    lambda: self.session,
                    self._watchdog,
                    settings,
                    method,
                    url,
                    fields=fields,
                    csv=csv,
                    deadline=deadline,
                    log=self.log,
                    progress_interval=self.progress_interval,
                )
            except FuseAuthenticationError as refused:
                raise refused.naming(self.fuse_conn_id) from None
            except FuseNotSentError as failure:
                delay = self._retry_delay(failure, attempt, retries, deadline=deadline, ready=rewind)
                if delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arequest(self, client: httpx.AsyncClient, method: str, path: str) -> Answer:
        """:meth:`_request` without a body, over ``client``, for an event loop: the same retries of
        a request certainly not sent, within the same overall deadline."""
        settings = await self.asettings()
        url = f"{settings.base_url}/{path}"
        deadline = time.monotonic() + settings.total_timeout
        for attempt in range(self.connect_retries + 1):
            try:
                return await httpx_client.send(client, settings, method, url, deadline=deadline, log=self.log)
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


def _to_call_id(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or value.strip() == "None":
        raise FuseValidationError("call_id", f"must be Fuse's call id (a non-empty string), got {value!r}")
    return value.strip()


def _status_path(call_id: str) -> str:
    return f"outbound/{quote(call_id, safe='')}"
