"""What happened, and has someone already been phoned about it?

An :class:`Occurrence` is one thing a :class:`~airflow_provider_fuse.notifications.fuse.FuseNotifier`
phones about: a task instance's try that failed, went up for retry or asked a person for input, a
DAG run's deadline that was missed, or a DAG run that failed when its callback was handed no task
instance that failed. It is read from whatever context the calling path hands over (a task's, a
DAG's, a deadline's) and named by one key, whichever path it came through. The key holds the task
instance's id (new for every try, and for a run deleted and created again under the same run id),
the deadline's id, or for a run the time it was created for and how often it was cleared: a record
of an earlier run never answers for a later one.

:class:`CallRecords` says whether an occurrence was already called about. The record lives in an
Airflow Variable (key :data:`RECORD_PREFIX` + a digest of the occurrence), the one store Airflow 3
lets the task process, the DAG processor and the triggerer all read *and* write. An executor-run
deadline callback (``SyncCallback``) can read it but not write it (its supervisor takes no Variable
write, and leaves one unanswered), so there the record is read and kept in memory only. Airflow
offers no atomic
compare-and-set on Variables, so a claim is written, left to settle, and read back: of two paths
that claim at the same moment, the one whose write landed last calls. Two claims whose read, write
and read back interleave within the settle time can still both call; the paths of one failure run
one after another (the DAG-level callback is scheduled only once the task's own callbacks have
returned), so that needs two paths running at once. Within one process, claims are also kept in
memory, so a notifier listed twice calls once even where no Variable can be written; a question to
a person is kept there only (a task may ask again, about something else, in the same try).

A task's failure that was called about also marks its run (:meth:`Occurrence.run_of`): a DAG's
callback handed no failed task instance (Airflow 3.1 hands the one whose task id sorts last, whatever
its state) is the run's occurrence, and finds that mark.

A record holds no phone number: the event, the DAG, task, run, map index and try, and when. Records
are not deleted by the notifier (no path knows it is the last); once their runs are over they answer
for nothing and may be deleted (docs/notifications.md shows how).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["EVENTS", "RECORD_PREFIX", "CallRecords", "Event", "Occurrence"]

log = logging.getLogger(__name__)

#: What happened, in the words a Fuse application reads (the ``airflow_event`` call parameter).
Event = Literal["failure", "retry", "approval_requested", "decision_requested", "deadline_missed"]
EVENTS: tuple[str, ...] = ("failure", "retry", "approval_requested", "decision_requested", "deadline_missed")
#: The events of a question to a person: asked in the asking process (see :class:`CallRecords`).
QUESTION_EVENTS = ("approval_requested", "decision_requested")
#: What a question of this provider's operators (``decisions.QUESTION_KEY`` in the context) is called.
_QUESTION_EVENTS = {"approval": "approval_requested", "unknown_outcome": "decision_requested"}

#: The key of every record starts with this; the rest is a digest of the occurrence.
RECORD_PREFIX = "fuse_notifier_called_"
_RECORD_DESCRIPTION = (
    "FuseNotifier placed (or is placing) one call about this occurrence; other callback paths of the "
    "same occurrence do not call again. Holds no phone number; safe to delete once the run is over."
)
#: The states of a task instance whose try has ended in a way a notifier is told of.
_ENDED_STATES = ("failed", "up_for_retry")
#: How long a claim is left before it is read back (see the module's docstring).
SETTLE_SECONDS = 1.0
# Claims made in this process, newest last; bounded, a DAG processor lives long.
_MAX_REMEMBERED = 4096


def _item(source: object, name: str) -> Any:
    """``source[name]`` of a mapping (a deadline's context is JSON) or ``source.name`` of an object."""
    if isinstance(source, dict):
        return source.get(name)
    return getattr(source, name, None)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _state(ti: object) -> str:
    state = _item(ti, "state")
    return str(getattr(state, "value", state) or "")


def _dag_and_run(context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The DAG id and run id, from whichever of the task instance, the DAG and the run says them."""
    ti, dag_run = context.get("ti"), context.get("dag_run")
    dag_id = _item(ti, "dag_id") or _item(context.get("dag"), "dag_id") or _item(dag_run, "dag_id")
    # A deadline's dag_run is Airflow's REST answer (DAGRunResponse), which names it dag_run_id.
    run_id = (
        _item(ti, "run_id")
        or context.get("run_id")
        or _item(dag_run, "run_id")
        or _item(dag_run, "dag_run_id")
    )
    return _text(dag_id), _text(run_id)


def _run_instance(dag_run: object) -> str | None:
    """Which run of a run id: the time it was created for and how often it was cleared, the same in
    every path's ``dag_run``; ``None`` without one."""
    run_after = _item(dag_run, "run_after")
    if run_after is None:
        return None
    if isinstance(run_after, datetime):
        run_after = run_after.astimezone(timezone.utc).isoformat()
    return f"{run_after}#{_item(dag_run, 'clear_number') or 0}"


def _failed_task(context: Mapping[str, Any]) -> str | None:
    """The id of a task of the context's run that failed (the first by task id), as the task instance
    handed over can ask Airflow; ``None`` when it cannot say."""
    ti = context.get("ti")
    ask = getattr(ti, "get_task_states", None)
    dag_id, run_id = _item(ti, "dag_id"), _item(ti, "run_id")
    if not callable(ask) or dag_id is None or run_id is None:
        return None
    try:
        states = ask(dag_id=dag_id, run_ids=[run_id]).get(run_id) or {}
    except Exception as error:
        log.warning("Cannot ask which task of run %s failed (%s).", run_id, type(error).__name__)
        return None
    failed = sorted(
        str(name) for name, state in states.items() if str(getattr(state, "value", state)) == "failed"
    )
    if not failed:
        return None
    # Airflow names a mapped task instance ``<task_id>_<map_index>``.
    task_ids = set(getattr(context.get("dag"), "task_ids", ()) or ())
    task_id, _, index = failed[0].rpartition("_")
    return task_id if failed[0] not in task_ids and task_id in task_ids and index.isdigit() else failed[0]


@dataclass(frozen=True)
class Occurrence:
    """One thing to phone about, as read from a callback's context.

    ``ti_id`` is the task instance's id; ``run_instance`` says which run of ``run_id`` (set for an
    occurrence of a run alone). ``failed_task`` names, for a run's failure, a task that failed,
    when one could be found; it is told to Fuse but is no part of the key.
    """

    event: str
    dag_id: str | None
    run_id: str | None
    task_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    deadline_id: str | None = None
    ti_id: str | None = None
    run_instance: str | None = None
    failed_task: str | None = field(default=None, compare=False)

    @classmethod
    def of(cls, context: Mapping[str, Any], event: str | None = None) -> Occurrence:
        """Read the occurrence from ``context``; ``event`` overrides the inferred one.

        Inferred: a question of this provider's operators (the context names it, see
        :data:`airflow_provider_fuse.decisions.QUESTION_KEY`) is ``approval_requested`` or
        ``decision_requested`` (an unknown outcome); a deadline's context (it has ``deadline``) is
        ``deadline_missed``; a task instance in ``up_for_retry`` is ``retry``; anything else is ``failure``.

        A DAG's callback (its context has ``reason``) is about the task instance it is handed only
        when that one's try ended (``failed`` or ``up_for_retry``, try 1 or later); else it is the
        run's failure (:meth:`run_of`).
        """
        ti = context.get("ti")
        if "reason" in context and not (_state(ti) in _ENDED_STATES and (_item(ti, "try_number") or 0) >= 1):
            return cls.run_of(context, event or "failure", failed_task=_failed_task(context))
        deadline = context.get("deadline")
        if event is None:
            event = _QUESTION_EVENTS.get(str(context.get("fuse_question")))
        if event is None:
            event = "deadline_missed" if deadline else "retry" if _state(ti) == "up_for_retry" else "failure"
        dag_id, run_id = _dag_and_run(context)
        map_index = _item(ti, "map_index")
        try_number = _item(ti, "try_number")
        return cls(
            event=event,
            dag_id=dag_id,
            run_id=run_id,
            task_id=_text(_item(ti, "task_id")),
            map_index=map_index if isinstance(map_index, int) else None,
            try_number=try_number if isinstance(try_number, int) else None,
            deadline_id=_text(_item(deadline, "id")),
            ti_id=_text(_item(ti, "id")),
        )

    @classmethod
    def run_of(
        cls, context: Mapping[str, Any], event: str = "failure", failed_task: str | None = None
    ) -> Occurrence:
        """The occurrence of the run of ``context`` alone: no task, ``run_instance`` from its ``dag_run``."""
        dag_id, run_id = _dag_and_run(context)
        return cls(
            event=event,
            dag_id=dag_id,
            run_id=run_id,
            run_instance=_run_instance(context.get("dag_run")),
            failed_task=failed_task,
        )

    @property
    def key(self) -> str:
        """The Variable key of this occurrence's record: the same for every path it comes through."""
        identity = {each.name: getattr(self, each.name) for each in fields(self) if each.compare}
        text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return RECORD_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:40]

    def call_parameters(self) -> dict[str, str | int | None]:
        """What a Fuse application reads about the occurrence, as call parameters."""
        return {
            "airflow_event": self.event,
            "airflow_dag_id": self.dag_id,
            "airflow_task_id": self.task_id if self.task_id is not None else self.failed_task,
            "airflow_run_id": self.run_id,
            "airflow_map_index": self.map_index,
            "airflow_try_number": self.try_number,
        }

    def describe(self) -> str:
        """A short description for log lines (no personal data in it)."""
        if self.task_id is None:
            failed = "" if self.failed_task is None else f" (task {self.failed_task} failed)"
            return f"{self.event} of DAG {self.dag_id} run {self.run_id}{failed}"
        mapped = "" if self.map_index in (None, -1) else f"[{self.map_index}]"
        return (
            f"{self.event} of task {self.dag_id}.{self.task_id}{mapped} try {self.try_number} "
            f"of run {self.run_id}"
        )


class CallRecords:
    """Whether an occurrence was already called about (see the module's docstring for where and how).

    :meth:`claim` before placing the call; :meth:`release` when Fuse certainly queued nothing, so
    another path of the same occurrence may try again.

    :param shared: whether records are shared through Airflow Variables at all; when not, they are
        kept in this process's memory only.
    :param writable: whether this process may write Airflow Variables; when not, records are read
        and kept in this process's memory only.
    """

    _claimed: OrderedDict[str, None] = OrderedDict()
    _lock = threading.Lock()

    def __init__(self, *, shared: bool = True, writable: bool = True) -> None:
        self.shared = shared
        self.writable = shared and writable

    def claim(self, occurrence: Occurrence) -> bool:
        """Record that this path calls about ``occurrence``; ``False`` when another path already did.

        A store that cannot be read or written does not stop the call (a warning says what it
        means): missing a call is worse than a second one.
        """
        key = occurrence.key
        with self._lock:
            if key in self._claimed:
                return False
            self._claimed[key] = None
            while len(self._claimed) > _MAX_REMEMBERED:
                self._claimed.popitem(last=False)
        if not self.shared:
            return True
        try:
            if self._read(key) is not None:
                return False
        except Exception as error:
            log.warning(
                "Cannot read whether another callback path already called about the %s (%s): calling.",
                occurrence.describe(),
                type(error).__name__,
            )
            return True
        if not self.writable:
            return True
        token = uuid.uuid4().hex
        try:
            self._write(key, _record(occurrence, token))
        except Exception as error:
            log.warning(
                "Cannot record the call about the %s in an Airflow Variable (%s): another callback path "
                "of it, in another process, may call again.",
                occurrence.describe(),
                type(error).__name__,
            )
            return True
        time.sleep(SETTLE_SECONDS)
        try:
            settled = self._read(key)
        except Exception:
            return True
        return settled is None or _token(settled) == token

    def mark(self, occurrence: Occurrence) -> None:
        """Record ``occurrence`` as called about, without claiming it (nothing read back): how a
        task's failure that was called about tells a DAG's callback of its run."""
        if not self.writable:
            return
        try:
            self._write(occurrence.key, _record(occurrence, uuid.uuid4().hex))
        except Exception as error:
            log.warning(
                "Cannot record the call about the %s (%s): a DAG callback of the run may call again.",
                occurrence.describe(),
                type(error).__name__,
            )

    def release(self, occurrence: Occurrence) -> None:
        """Forget the claim on ``occurrence`` (Fuse queued nothing): a later path may call."""
        key = occurrence.key
        with self._lock:
            self._claimed.pop(key, None)
        if not self.writable:
            return
        try:
            self._delete(key)
        except Exception as error:
            log.warning(
                "Cannot remove the record of the call about the %s (%s): no other callback path will try.",
                occurrence.describe(),
                type(error).__name__,
            )

    # The store: Airflow Variables, through the task SDK (each process's own channel to the API server).

    def _read(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    def _write(self, key: str, value: str) -> None:
        from airflow.sdk import Variable

        Variable.set(key, value, description=_RECORD_DESCRIPTION)

    def _delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(key)


def _record(occurrence: Occurrence, token: str) -> str:
    claimed_at = datetime.now(timezone.utc).isoformat()
    return json.dumps({"token": token, "occurrence": asdict(occurrence), "claimed_at": claimed_at})


def _token(record: str) -> str | None:
    try:
        value = json.loads(record)
    except ValueError:
        return None
    token = value.get("token") if isinstance(value, dict) else None
    return token if isinstance(token, str) else None
