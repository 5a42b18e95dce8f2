"""FuseCallStatusSensor: wait for one outbound call's outcome."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_fuse._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    conf,
)
from airflow_provider_fuse.calls import TERMINAL_STATUSES
from airflow_provider_fuse.exceptions import FuseError, FuseValidationError
from airflow_provider_fuse.hooks.connection import DEFAULT_CONN_NAME
from airflow_provider_fuse.links import FuseCallLink
from airflow_provider_fuse.operators.base import checked_hook_params

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow.sdk import Context

    from airflow_provider_fuse.hooks.fuse import FuseHook

__all__ = ["ON_FAILURE_STATUS", "FuseCallStatusSensor"]

ON_FAILURE_STATUS = ("fail", "skip")


class FuseCallStatusSensor(BaseSensorOperator):
    """Wait until a call queued with Fuse has ended; push its ``call_details`` (without the number).

    Asks ``GET /outbound/{call_id}`` every ``poke_interval`` seconds until the status is terminal —
    ``completed``, ``failed`` (dialed, not answered), ``canceled`` or ``rejected``. Then:

    * a status in ``success_statuses`` (default ``{"completed"}``): success; the call's details are
      pushed to XCom (``return_value``) as a plain dict — status, attempts, timestamps, duration,
      events, call id — without the phone number (XCom is stored in Airflow's database);
    * any other terminal status: ``on_failure_status="fail"`` (default) fails the task without
      retries, naming the status; ``"skip"``, or ``soft_fail=True``, skips it. The same dict is
      pushed under the XCom key ``call_details`` first, for a downstream task that runs anyway.

    One method, :meth:`settle`, applies these rules, whichever path saw the call end: a poke, the
    check before deferring, or :meth:`execute_complete` after the trigger fired.

    Failures to ask: a rejection (4xx; 404 no such call, 403 another account's call, 401) or a
    request that cannot be made at all fails without retries in Fuse's words (skips with
    ``soft_fail``), and a 429 fails this try with the task's retries left; 5xx, an answer that is not
    Fuse's and network failures are asked again by the hook a few times (a read is safe to repeat),
    then left to the task's retries. One rule decides, on every path:
    :func:`~airflow_provider_fuse.hooks.fuse.asking_again_can_help`.

    With ``deferrable=True`` the sensor asks once and, if the call has not ended, frees its worker
    slot and waits in the triggerer (:class:`~airflow_provider_fuse.triggers.fuse.FuseCallStatusTrigger`,
    which awaits the hook's status read every ``poke_interval`` seconds). The default follows Airflow's
    ``[operators] default_deferrable``. ``poke_interval``, ``timeout``, ``mode``, ``soft_fail`` work
    as for any sensor.

    :param call_id: the call's id, e.g. ``FuseQueueCallOperator``'s XComArg. (templated)
    :param success_statuses: terminal statuses that count as success.
    :param on_failure_status: ``"fail"`` or ``"skip"`` for the other terminal statuses.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param fuse_conn_id: the ``fuse`` connection to use, as the operators take it. (templated)
    :param hook_params: settings passed to ``FuseHook(...)``, as the operators take them:
        ``connect_retries`` (how many more times a status read is asked again), ``retry_backoff``,
        ``progress_interval`` (see :data:`~airflow_provider_fuse.operators.base.HOOK_PARAMS`).
        Checked when the DAG is parsed; an unknown or invalid setting is a ``ValueError`` naming
        it. With ``deferrable=True`` the trigger's hook gets them too.
    """

    template_fields: Sequence[str] = ("call_id", "fuse_conn_id")
    ui_color = "#ffdead"
    operator_extra_links = (FuseCallLink(),)

    def __init__(
        self,
        *,
        call_id: str,
        success_statuses: Iterable[str] = ("completed",),
        on_failure_status: Literal["fail", "skip"] = "fail",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        fuse_conn_id: str = DEFAULT_CONN_NAME,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        statuses = {success_statuses} if isinstance(success_statuses, str) else set(success_statuses)
        statuses = {str(status).lower() for status in statuses}
        if not statuses or not statuses <= TERMINAL_STATUSES:
            raise ValueError(
                f"success_statuses must be terminal statuses ({', '.join(sorted(TERMINAL_STATUSES))}), "
                f"got {sorted(statuses)}"
            )
        if on_failure_status not in ON_FAILURE_STATUS:
            raise ValueError(f"on_failure_status must be 'fail' or 'skip', got {on_failure_status!r}")
        checked_hook_params(hook_params)
        self.call_id = call_id
        self.success_statuses = frozenset(statuses)
        self.on_failure_status = on_failure_status
        self.deferrable = deferrable
        self.fuse_conn_id = fuse_conn_id
        self.hook_params = hook_params

    @cached_property
    def hook(self) -> FuseHook:
        """The hook, created once per task instance."""
        # Imported here, as the trigger is: parsing a DAG needs neither (nor requests).
        from airflow_provider_fuse.hooks.fuse import FuseHook

        return FuseHook(self.fuse_conn_id, **checked_hook_params(self.hook_params))

    # --- poke mode ------------------------------------------------------------------------------

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Ask Fuse once; done (with the details as XCom) when the call has ended as a success."""
        details = self._ask()
        if details is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self.settle(context, details))

    def _ask(self) -> dict[str, Any] | None:
        """The call's details (as XCom holds them) when it has ended, else ``None``."""
        from airflow_provider_fuse.hooks.fuse import asking_again_can_help

        try:
            details = self.hook.get_call_status(self.call_id)
        except FuseError as error:
            message = f"Cannot ask Fuse: {error}" if isinstance(error, FuseValidationError) else str(error)
            raise self._asking_failed(message, retryable=asking_again_can_help(error)) from error
        self.log.info(
            "Fuse call %s is %s (attempts %s of %s)",
            details.call_id,
            details.status.value,
            details.attempts if details.attempts is not None else "?",
            details.max_attempts if details.max_attempts is not None else "?",
        )
        return details.to_xcom() if details.is_terminal else None

    def settle(self, context: Context, details: dict[str, Any]) -> dict[str, Any]:
        """What an ended call does to the task: the one rule for every path that sees it end.

        :param details: the call's details as XCom holds them (:meth:`CallDetails.to_xcom`).
        :returns: ``details``, when the status is one of ``success_statuses``.
        :raises AirflowSkipException: for another status, with ``on_failure_status="skip"`` or
            ``soft_fail``; ``details`` are pushed under the XCom key ``call_details`` first.
        :raises AirflowFailException: for another status otherwise, after the same push.
        """
        status = details.get("status")
        if status in self.success_statuses:
            self.log.info("Fuse call %s ended %s.", details.get("call_id"), status)
            return details
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="call_details", value=details)
        message = (
            f"Fuse call {details.get('call_id')} ended {status}, not "
            f"{' or '.join(sorted(self.success_statuses))}"
        )
        if self.on_failure_status == "skip" or self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowFailException(message)

    def _asking_failed(self, message: str, *, retryable: bool) -> AirflowException:
        """A failure to read the call's status as a task outcome, the same on every path.

        Retryable failures are left to the task's retries; the others fail it, or skip it with
        ``soft_fail``, as Airflow's own poke loop would.
        """
        if retryable:
            return AirflowException(message)
        if self.soft_fail:
            return AirflowSkipException(message)
        return AirflowFailException(message)

    # --- deferrable mode ------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Poke as usual; or, deferrable, ask once and wait in the triggerer if the call goes on."""
        try:
            return self._execute(context)
        finally:
            if "hook" in self.__dict__:
                self.hook.close()

    def _execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        details = self._ask()
        if details is not None:
            return self.settle(context, details)
        from airflow_provider_fuse.triggers.fuse import FuseCallStatusTrigger

        self.defer(
            trigger=FuseCallStatusTrigger(
                call_id=str(self.call_id).strip(),
                fuse_conn_id=self.fuse_conn_id,
                poll_interval=_seconds(self.poke_interval),
                hook_params=checked_hook_params(self.hook_params),
            ),
            method_name="execute_complete",
            timeout=None if self.timeout is None else timedelta(seconds=_seconds(self.timeout)),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: the call ended (:meth:`settle`), or asking failed."""
        if not event or event.get("status") not in ("terminal", "error"):
            raise AirflowException(f"Unexpected event from FuseCallStatusTrigger: {event!r}")
        if event["status"] == "error":
            message = str(event.get("message") or "asking Fuse for the call's status failed")
            raise self._asking_failed(message, retryable=bool(event.get("retryable")))
        details = dict(event["call_details"])
        self.log.info("Fuse call %s is %s", details.get("call_id"), details.get("status"))
        return self.settle(context, details)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
