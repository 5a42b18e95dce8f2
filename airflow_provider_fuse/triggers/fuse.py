"""FuseCallStatusTrigger: wait for a call's outcome in the triggerer, polling Fuse asynchronously.

The trigger holds only the connection id, the call id and the poll interval; it reads the
connection in the triggerer (the developer key never goes through the database) and polls
``GET /outbound/{call_id}`` with httpx. Answers are read by the hook's own
:func:`~airflow_provider_fuse.hooks.fuse.classify_answer` and by
:class:`~airflow_provider_fuse.calls.CallDetails`: one reading of Fuse's answers. As in the hook,
each read must end within the connection's ``total_timeout`` and takes at most
:data:`~airflow_provider_fuse.hooks.fuse.MAX_ANSWER_BYTES` of an answer: the triggerer is shared, and
a trickling or huge answer must not hold it or fill its memory.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fuse import __version__
from airflow_provider_fuse.calls import CallDetails
from airflow_provider_fuse.exceptions import (
    FuseApiError,
    FuseConnectionLostError,
    FuseError,
    FuseNotSentError,
    FuseRequestError,
    FuseUnknownOutcomeError,
    Outcome,
    redact,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

__all__ = ["FuseCallStatusTrigger", "asking_again_can_help"]


class FuseCallStatusTrigger(BaseTrigger):
    """Fire once the call has a terminal status (completed, failed, canceled, rejected).

    Polls every ``poll_interval`` seconds. A 5xx, an answer that is not Fuse's, a network failure, or
    no whole answer within the connection's ``total_timeout`` is asked again (``RETRIES`` times,
    backoff from ``RETRY_BACKOFF`` seconds, doubling): reading a status changes nothing in Fuse. A
    request that cannot be made at all is not asked again (:func:`asking_again_can_help`).

    Events carry only what the sensor reads, and never the phone number or a credential (an event
    is stored in Airflow's database):

    * ``{"status": "terminal", "call_details": {...}}`` — the call ended; ``call_details`` is
      :meth:`CallDetails.to_xcom`. What its status does to the task is the sensor's decision
      (:meth:`~airflow_provider_fuse.sensors.fuse.FuseCallStatusSensor.settle`), not the trigger's.
    * ``{"status": "error", "message": str, "retryable": bool}`` — Fuse rejected the question (4xx:
      not retryable, 429 excepted), the connection is invalid or the request cannot be made (not
      retryable), or the retries ran out (retryable); ``retryable`` is :func:`asking_again_can_help`.
      ``message`` is scrubbed of the developer key, the ``Authorization`` value and its token, and
      of phone numbers, since it may quote Fuse's answer.

    :param call_id: the call to watch.
    :param fuse_conn_id: the ``fuse`` connection, read in the triggerer.
    :param poll_interval: seconds between polls.
    :param success_statuses: ignored; accepted so that a trigger deferred by 0.1.0, whose stored
        keyword arguments include it, still loads after an upgrade.
    """

    RETRIES = 3
    RETRY_BACKOFF = 1.0

    def __init__(
        self,
        *,
        call_id: str,
        fuse_conn_id: str = "fuse_default",
        poll_interval: float = 60.0,
        success_statuses: Iterable[str] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.call_id = str(call_id)
        self.fuse_conn_id = fuse_conn_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments: ids and interval; no credentials."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "call_id": self.call_id,
                "fuse_conn_id": self.fuse_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the call ends; yield one event."""
        try:
            settings = await self._settings()
        except FuseError as error:
            yield _event({"status": "error", "message": redact(str(error)), "retryable": False})
            return
        secrets = _secrets(settings)
        url = f"{settings.base_url}/outbound/{quote(self.call_id, safe='')}"
        async with _client(settings) as client:
            while True:
                try:
                    details = await self._poll(client, url, secrets, settings.total_timeout)
                except FuseApiError as error:
                    message = redact(str(error), secrets=secrets)
                    retryable = asking_again_can_help(error)
                    yield _event({"status": "error", "message": message, "retryable": retryable})
                    return
                self.log.info("Fuse call %s is %s", self.call_id, details.status.value)
                if details.is_terminal:
                    yield _event({"status": "terminal", "call_details": details.to_xcom()})
                    return
                await asyncio.sleep(self.poll_interval)

    async def _settings(self) -> Any:
        from airflow.sdk import BaseHook

        from airflow_provider_fuse.hooks.fuse import ConnectionSettings

        # Async-safe: the task SDK reads the connection (and masks its password) without blocking
        # the triggerer's event loop.
        conn = await BaseHook.aget_connection(self.fuse_conn_id)
        settings = ConnectionSettings.from_connection(conn)
        await _amask(settings.developer_key)
        await _amask(settings.authorization)
        await _amask(settings.authorization.removeprefix("Basic "))
        return settings

    async def _poll(
        self, client: Any, url: str, secrets: tuple[str, ...], total_timeout: float
    ) -> CallDetails:
        """One status read, asked again after a transient failure; raises the last failure.

        :param secrets: the credential's forms, scrubbed from the failures this logs.
        :param total_timeout: the seconds each GET may take, from sending to the end of its answer.
        """
        from airflow_provider_fuse.hooks.fuse import classify_answer

        for attempt in range(self.RETRIES + 1):
            try:
                try:
                    # httpx's read timeout starts again with every chunk: only an overall deadline
                    # ends an answer that trickles.
                    status_code, body, complete = await asyncio.wait_for(
                        _read_answer(client, url), total_timeout
                    )
                except asyncio.TimeoutError:
                    raise FuseConnectionLostError(
                        f"no whole answer from Fuse within the overall deadline of {total_timeout:g} s "
                        "(extra timeout.total)"
                    ) from None
                except Exception as error:
                    raise _network_failure(error) from error
                # The answer's own text is scrubbed where it is read, before anything cuts it short.
                answer = classify_answer(status_code, body, secrets=secrets, complete=complete)
                return CallDetails.from_answer(
                    answer, call_id=self.call_id, status_code=status_code, secrets=secrets
                )
            except (FuseNotSentError, FuseUnknownOutcomeError) as failure:
                if attempt >= self.RETRIES or not asking_again_can_help(failure):
                    raise
                delay = self.RETRY_BACKOFF * 2**attempt
                self.log.warning(
                    "%s; asking again in %.1f s (%d of %d)",
                    redact(str(failure), secrets=secrets),
                    delay,
                    attempt + 1,
                    self.RETRIES,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def asking_again_can_help(error: FuseError) -> bool:
    """Whether asking Fuse for a call's status again, later, can get an answer.

    The one rule for the sensor, the trigger's own re-asking and its error events. Yes for a failure
    its class calls retryable (not sent, 429), and for an unknown outcome: a status read changes
    nothing in Fuse, so the risk that makes an unknown outcome final for a queueing POST is not
    there. No for invalid input, a rejection other than 429, and a request that cannot be made at
    all (:class:`FuseRequestError`): the same read would fail the same way.
    """
    if not isinstance(error, FuseApiError):
        return False
    return error.retryable or error.outcome is Outcome.UNKNOWN


async def _read_answer(client: Any, url: str) -> tuple[int, bytes, bool]:
    """GET ``url``; its status, at most :data:`MAX_ANSWER_BYTES` of its body, and whether that was all.

    The rest of a bigger answer is never read: the connection is closed instead.
    """
    from airflow_provider_fuse.hooks.fuse import MAX_ANSWER_BYTES

    async with client.stream("GET", url) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                return response.status_code, bytes(body[:MAX_ANSWER_BYTES]), False
        return response.status_code, bytes(body), True


def _secrets(settings: Any) -> tuple[str, ...]:
    """Every form of the credential an answer could echo (the connection's own list)."""
    return tuple(settings.secrets)


def _client(settings: Any) -> Any:
    """An httpx client with the connection's credentials, timeouts, TLS and proxy settings."""
    import httpx

    verify: bool | ssl.SSLContext = settings.verify
    if isinstance(settings.verify, str):
        verify = ssl.create_default_context(cafile=settings.verify)
    mounts = {
        (
            "all://" if scheme == "all" else scheme if "://" in scheme else f"{scheme}://"
        ): httpx.AsyncHTTPTransport(proxy=proxy, verify=verify)
        for scheme, proxy in settings.proxies.items()
    }
    connect, read = settings.timeout
    return httpx.AsyncClient(
        auth=(settings.email, settings.developer_key),
        headers={
            "Accept": "application/json",
            "User-Agent": f"airflow-provider-fuse/{__version__} httpx/{httpx.__version__}",
        },
        verify=verify,
        timeout=httpx.Timeout(read, connect=connect),
        follow_redirects=False,
        mounts=mounts or None,
    )


def _network_failure(error: Exception) -> FuseApiError:
    """httpx's failures to get an answer, in the outcome classes of the hook."""
    import httpx

    if isinstance(error, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        # Refused before any connection is opened; the same GET would be refused again.
        return FuseRequestError(f"not sent: the request could not be made ({type(error).__name__})")
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)):
        return FuseNotSentError(f"not sent: could not connect to Fuse ({type(error).__name__})")
    if isinstance(error, httpx.TransportError):
        return FuseConnectionLostError(f"no whole answer from Fuse ({type(error).__name__})")
    raise error


async def _amask(secret: str) -> None:
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # Airflow 3.1
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
        return
    await amask_secret(secret)


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
