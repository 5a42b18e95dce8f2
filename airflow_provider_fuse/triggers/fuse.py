"""FuseCallStatusTrigger: wait for a call's outcome in the triggerer.

The trigger holds only the connection id, the call id and the poll interval, and awaits
:meth:`FuseHook.aget_call_status <airflow_provider_fuse.hooks.fuse.FuseHook.aget_call_status>`:
the hook reads the connection in the triggerer (the developer key never goes through the
database), speaks HTTP, reads the answers and asks again after a transient failure, exactly as it
does for the sensor's pokes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fuse.exceptions import FuseError
from airflow_provider_fuse.hooks.connection import DEFAULT_CONN_NAME
from airflow_provider_fuse.hooks.fuse import FuseHook, asking_again_can_help
from airflow_provider_fuse.triggers.campaign_results import FuseCampaignResultsTrigger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

# asking_again_can_help is the hook's rule, importable from here too; FuseCampaignResultsTrigger
# serializes as ...triggers.campaign_results and is importable from here too.
__all__ = ["FuseCallStatusTrigger", "FuseCampaignResultsTrigger", "asking_again_can_help"]


class FuseCallStatusTrigger(BaseTrigger):
    """Fire once the call has a terminal status (completed, failed, canceled, rejected).

    Polls every ``poll_interval`` seconds with :meth:`FuseHook.aget_call_status`, which asks again
    after a 5xx, an answer that is not Fuse's, a network failure or no whole answer within the
    connection's ``total_timeout`` (the hook's ``connect_retries``, with its backoff), and never
    after a request that cannot be made at all.

    Events carry only what the sensor reads, and never the phone number or a credential (an event
    is stored in Airflow's database):

    * ``{"status": "terminal", "call_details": {...}}`` — the call ended; ``call_details`` is
      :meth:`CallDetails.to_xcom`. What its status does to the task is the sensor's decision
      (:meth:`~airflow_provider_fuse.sensors.fuse.FuseCallStatusSensor.settle`), not the trigger's.
    * ``{"status": "error", "message": str, "retryable": bool}`` — Fuse rejected the question (4xx:
      not retryable, 429 excepted), the connection is invalid or the request cannot be made (not
      retryable), or the hook's retries ran out (retryable); ``retryable`` is
      :func:`~airflow_provider_fuse.hooks.fuse.asking_again_can_help`. ``message`` is scrubbed of
      every form of the credential and of phone numbers (:meth:`FuseHook.scrub`), since it may quote
      Fuse's answer.

    :param call_id: the call to watch.
    :param fuse_conn_id: the ``fuse`` connection, read in the triggerer.
    :param poll_interval: seconds between polls.
    :param hook_params: settings of the hook it builds (``connect_retries``, ``retry_backoff``), as
        the sensor took them; serialized only when given, so a trigger stored without them loads
        with none.
    :param success_statuses: ignored; accepted so that a trigger deferred by 0.1.0, whose stored
        keyword arguments include it, still loads after an upgrade.
    """

    def __init__(
        self,
        *,
        call_id: str,
        fuse_conn_id: str = DEFAULT_CONN_NAME,
        poll_interval: float = 60.0,
        success_statuses: Iterable[str] | None = None,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.call_id = str(call_id)
        self.fuse_conn_id = fuse_conn_id
        self.poll_interval = float(poll_interval)
        self.hook_params = dict(hook_params or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments: ids, interval, and the hook's settings when
        given; no credentials."""
        kwargs: dict[str, Any] = {
            "call_id": self.call_id,
            "fuse_conn_id": self.fuse_conn_id,
            "poll_interval": self.poll_interval,
        }
        if self.hook_params:
            kwargs["hook_params"] = dict(self.hook_params)
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the call ends, or asking fails; yield one event."""
        try:
            hook = FuseHook(self.fuse_conn_id, **self.hook_params)
        except (FuseError, TypeError) as error:  # settings the hook refuses (or does not know)
            message = f"the trigger's hook_params cannot be used ({error})"
            yield _event({"status": "error", "message": message, "retryable": False})
            return
        while True:
            try:
                details = await hook.aget_call_status(self.call_id)
            except FuseError as error:
                yield _event(
                    {
                        "status": "error",
                        "message": hook.scrub(str(error)),
                        "retryable": asking_again_can_help(error),
                    }
                )
                return
            self.log.info("Fuse call %s is %s", self.call_id, details.status.value)
            if details.is_terminal:
                yield _event({"status": "terminal", "call_details": details.to_xcom()})
                return
            await asyncio.sleep(self.poll_interval)


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
