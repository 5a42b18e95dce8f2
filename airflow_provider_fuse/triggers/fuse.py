"""FuseCallStatusTrigger: wait for a call's outcome in the triggerer.

The trigger holds only the connection id, the call id and the poll interval, and awaits
:meth:`FuseHook.aget_call_status <airflow_provider_fuse.hooks.fuse.FuseHook.aget_call_status>`:
the hook reads the connection in the triggerer (the developer key never goes through the
database), speaks HTTP, reads the answers and asks again after a transient failure, exactly as it
does for the sensor's pokes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fuse.exceptions import FuseError
from airflow_provider_fuse.hooks.connection import DEFAULT_CONN_NAME
from airflow_provider_fuse.hooks.fuse import FuseHook, asking_again_can_help
from airflow_provider_fuse.hooks.limits import shown_value
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
      not retryable, 429 excepted), the connection is invalid, the request cannot be made or the
      stored arguments cannot be used (not retryable), or the hook's retries ran out (retryable);
      ``retryable`` is :func:`~airflow_provider_fuse.hooks.fuse.asking_again_can_help`. ``message``
      is scrubbed of every form of the credential and of phone numbers (:meth:`FuseHook.scrub`),
      since it may quote Fuse's answer.

    :param call_id: the call to watch.
    :param fuse_conn_id: the ``fuse`` connection, read in the triggerer.
    :param poll_interval: seconds between polls.
    :param hook_params: settings of the hook it builds (``connect_retries``, ``retry_backoff``), as
        the sensor took them; serialized only when given, so a trigger stored without them loads
        with none.
    :param success_statuses: ignored; accepted so that a trigger deferred by 0.1.0, whose stored
        keyword arguments include it, still loads after an upgrade.

    Building one never raises for the values it is given (a triggerer that cannot build a trigger
    from its stored row fails it with a traceback, or stops altogether): arguments it cannot use —
    ``hook_params`` that is not a mapping, a ``poll_interval`` that is not a finite number of seconds,
    a ``call_id`` that is no text — are kept as given and end :meth:`run` with a non-retryable error
    event naming the argument.
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
        # As given when they cannot be converted: run() says so (see the class docstring).
        self.call_id: Any = _converted(str, call_id)
        self.fuse_conn_id = fuse_conn_id
        self.poll_interval: Any = _converted(float, poll_interval)
        self.hook_params: Any = dict(hook_params) if isinstance(hook_params, Mapping) else hook_params or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments: ids, interval, and the hook's settings when
        given; no credentials."""
        kwargs: dict[str, Any] = {
            "call_id": self.call_id,
            "fuse_conn_id": self.fuse_conn_id,
            "poll_interval": self.poll_interval,
        }
        if self.hook_params:
            kwargs["hook_params"] = (
                dict(self.hook_params) if isinstance(self.hook_params, Mapping) else self.hook_params
            )
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the call ends, or asking fails; yield one event."""
        unusable = self._unusable_argument()
        if unusable is not None:
            yield _event({"status": "error", "message": unusable, "retryable": False})
            return
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

    def _unusable_argument(self) -> str | None:
        """Why a stored argument cannot be used (a row written by another version, or altered), or
        ``None``. Names the argument and what it is, never its text."""
        if not isinstance(self.call_id, str):
            return f"the trigger's call_id cannot be used: it is {shown_value(self.call_id)}, not text"
        if not (
            isinstance(self.poll_interval, float)
            and math.isfinite(self.poll_interval)
            and self.poll_interval >= 0
        ):
            return (
                "the trigger's poll_interval cannot be used: it must be a finite number of seconds, "
                f"0 or more, got {shown_value(self.poll_interval)}"
            )
        if not isinstance(self.hook_params, Mapping):
            return (
                "the trigger's hook_params cannot be used: it must be a dict of FuseHook settings, "
                f"got {shown_value(self.hook_params)}"
            )
        return None


def _converted(kind: type[Any], value: object) -> Any:
    """``kind(value)``, or ``value`` itself when it cannot be converted (for :meth:`run` to refuse)."""
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):  # str() of a huge int; float() of text or one
        return value


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
