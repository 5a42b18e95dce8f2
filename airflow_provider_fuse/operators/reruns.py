"""What a retry or a clear of my task sends: the Airflow side of the duplicate guard.

The ledger itself, and what it remembers, is :mod:`airflow_provider_fuse.guard`. This module finds
the task state store it lives in, reads the resend switch (the operator's ``allow_resend`` or the
run's conf), and turns a refusal of the ledger into the message that fails the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_fuse._compat import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_fuse.guard import StateStore
    from airflow_provider_fuse.operators.base import Log

__all__ = ["RESEND_CONF_KEY", "guard_refusal", "resend_allowed", "state_store"]

#: The ``dag_run.conf`` key that allows this run to send a list other than the one already queued.
RESEND_CONF_KEY = "fuse_allow_resend"


def state_store(context: Context, log: Log) -> StateStore | None:
    """The task state store the duplicate guard keeps its ledger in, or None (Airflow < 3.3).

    Warns, in ``log``, when the guard is off, and when ``[state_store] clear_on_success`` would
    delete the record a later clear needs.
    """
    store: StateStore | None = context.get("task_state_store")
    if store is None:
        log.warning(
            "The duplicate guard needs Airflow >= 3.3 (task_state_store): a retry or clear of this "
            "task cannot know what an earlier try queued. Within this try, an unknown outcome still "
            "fails safe."
        )
        return None
    if _clears_on_success():
        log.warning(
            "[state_store] clear_on_success is on: once this task succeeds its record is deleted, and "
            "clearing the task later would send again."
        )
    return store


def resend_allowed(allow_resend: bool, context: Context) -> bool:
    """Whether this try may send something other than what this task instance already queued:
    ``allow_resend``, or a clear yes under :data:`RESEND_CONF_KEY` in the run's conf."""
    if allow_resend:
        return True
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    value = conf.get(RESEND_CONF_KEY, False)
    # Only a clear yes: a conf typed in the UI or on the command line may say "false".
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


def guard_refusal(error: Exception, where: str, key: str) -> AirflowFailException:
    """The ledger under state-store ``key`` refused this try (``error``, a ``GuardError``): the task
    fails without retries, saying what to check in Fuse and how to go on."""
    from airflow_provider_fuse.guard import (
        AlreadyQueued,
        ListChanged,
        SuppressionListChanged,
        UnknownOutcomeRecorded,
    )

    delete_key = (
        f"delete this task instance's state-store key '{key}' (REST API: DELETE "
        f".../taskInstances/{{task_id}}/state-store/{key}) and clear the task"
    )
    if isinstance(error, UnknownOutcomeRecorded):
        return AirflowFailException(
            f"Not sending: the outcome of an earlier try is unknown: {error}. Fuse may have queued what "
            f"was sent. Check the outbound calls of {where} in Fuse. If they are there, mark this task "
            f"success. If not, {delete_key}, or set on_unknown_outcome='retry'."
        )
    if isinstance(error, AlreadyQueued):
        # A resend was asked for already: it never sends what this task instance queued before.
        return AirflowFailException(
            f"Not sending: {error}. A resend (allow_resend) never sends again what this task "
            f"instance queued in {where}. To dial it again on purpose, {delete_key} (see "
            "docs/safety.md): the ledger then forgets everything this task instance queued."
        )
    if isinstance(error, SuppressionListChanged):
        return AirflowFailException(
            f"Not sending: {error}. The calls already queued are not stopped by a retry or a clear: a "
            "number added to the suppression list since may still be called. To stop them, cancel them "
            f"in Fuse: FuseCancelCallsOperator cancels every pending call of {where} (Fuse has no "
            "per-call cancel). allow_resend=True would send the WHOLE list again: every row not "
            "suppressed would be called a second time."
        )
    if isinstance(error, ListChanged):
        return AirflowFailException(
            f"Not sending: {error}. Sending it could call people twice. If it is meant to be sent in "
            f"addition to what {where} already has, set allow_resend=True or trigger the run with "
            f'{{"{RESEND_CONF_KEY}": true}}.'
        )
    return AirflowFailException(f"Not sending: {error}.")


def _clears_on_success() -> bool:
    from airflow_provider_fuse._compat import conf

    return bool(conf.getboolean("state_store", "clear_on_success", fallback=False))
