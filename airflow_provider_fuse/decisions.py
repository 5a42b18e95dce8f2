"""A person decides where a machine cannot: the questions a Fuse task asks in Airflow's Required Actions.

Two decisions of a calling campaign belong to a person: whether a list may be dialed at all
(*approval*), and, after Fuse's answer to a request was lost, whether Fuse queued it (*an unknown
outcome*). A task asks them through Airflow's human-in-the-loop machinery (the standard provider's,
Airflow >= 3.1): the question is written for the task instance with its subject, Markdown body and
options; on Airflow 3.3 the task then waits in the ``awaiting_input`` state, on 3.1/3.2 it defers to
the standard provider's ``HITLTrigger`` on the triggerer. Nothing is held by a worker while it waits:
what the task needs to go on travels with the question (``kwargs``), and the answer comes back as the
event of the method it resumes in. It is given in the UI (Browse → Required Actions, or the task
instance's tab) or through the REST API (``PATCH …/taskInstances/{task_id}/{map_index}/hitlDetails``).

Airflow keeps **one question per task instance, for all its tries**: its question row follows the task
instance through retries and clears, and writing a question again keeps the first one's subject, body
and options (only the answer is cleared). So a task instance can ask one question in its life, or the
very same question again; :func:`ask` reads back what Airflow keeps and refuses (:class:`QuestionTaken`)
rather than let a person answer a question other than the one the task means.

:class:`Ask` says who may answer, how long to wait and who is told; the texts of the questions are
the operators' (they know the list); no phone number or CSV value is ever part of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_fuse._compat import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, BaseOperator, Context

__all__ = [
    "APPROVAL",
    "APPROVE",
    "NOT_QUEUED",
    "QUESTION_KEY",
    "QUEUED",
    "REJECT",
    "STOP",
    "UNKNOWN_OUTCOME",
    "Answer",
    "Ask",
    "Question",
    "QuestionTaken",
    "answer_of",
    "ask",
]

APPROVE = "Approve"
REJECT = "Reject"
QUEUED = "Fuse queued it"
NOT_QUEUED = "Fuse did not queue it"
STOP = "Stop"


#: The longest a question may wait (``Ask(timeout=...)``).
MAX_TIMEOUT = timedelta(days=366)
#: How long the notifiers of a question may take, together, before the task waits without them.
NOTIFIERS_TIMEOUT = 60.0

#: The key of the context a question's notifiers are called with that names the question
#: (``"approval"`` or ``"unknown_outcome"``): a notifier tells a question from a failure by it.
QUESTION_KEY = "fuse_question"


@dataclass(frozen=True)
class Question:
    """One kind of question: its options, and the one taken when nobody answers in time."""

    name: str
    options: tuple[str, ...]
    default: str


#: Whether the list may be dialed: no answer in time is a reject.
APPROVAL = Question("approval", (APPROVE, REJECT), REJECT)
#: Whether Fuse queued a part whose answer was lost: no answer in time is a stop.
UNKNOWN_OUTCOME = Question("unknown_outcome", (QUEUED, NOT_QUEUED, STOP), STOP)


@dataclass(frozen=True)
class Ask:
    """Who is asked, how long the task waits, and who is told that a question waits.

    :param assigned_users: who may answer, as the standard provider's HITL operators take them:
        ``[{"id": "<user id>", "name": "<user name>"}]`` (an auth manager's user ids); ``None`` (the
        default): anyone allowed to answer the DAG's human-in-the-loop tasks.
    :param timeout: how long to wait for an answer, a ``timedelta`` above 0 and at most
        :data:`MAX_TIMEOUT` (default 24 hours); no answer by then takes the safe choice: *Reject* for
        an approval, *Stop* for an unknown outcome. Airflow checks for expired questions every
        ``[scheduler] trigger_timeout_check_interval`` (15 s by default; the triggerer polls every 5 s
        on 3.1/3.2): a timeout of seconds ends that much later.
    :param notifiers: notifiers called with the task's context when a question is asked, plus
        :data:`QUESTION_KEY` naming the question (e.g. a
        :class:`~airflow_provider_fuse.notifications.fuse.FuseNotifier` that phones the approver; it
        reads the key). A notifier that fails is logged by its error's type, and one still running
        after :data:`NOTIFIERS_TIMEOUT` seconds (or a quarter of the task's ``execution_timeout``, if
        shorter) is left behind; the question stands either way.
    :raises ValueError: any of them malformed.
    """

    assigned_users: Sequence[dict[str, str]] | None = None
    timeout: timedelta = timedelta(hours=24)
    notifiers: Sequence[BaseNotifier] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.timeout, timedelta) or not timedelta(0) < self.timeout <= MAX_TIMEOUT:
            raise ValueError(
                f"Ask(timeout=...) must be a timedelta above 0 and at most {MAX_TIMEOUT.days} days, "
                f"got {self.timeout!r}"
            )
        users = self.assigned_users
        if users is not None:
            if isinstance(users, dict) or not isinstance(users, Sequence) or not users:
                raise ValueError(
                    'Ask(assigned_users=...) must be a non-empty list of {"id": ..., "name": ...} or None'
                )
            for user in users:
                if (
                    not isinstance(user, dict)
                    or set(user) != {"id", "name"}
                    or not all(isinstance(value, str) and value for value in user.values())
                ):
                    raise ValueError(
                        'each of Ask(assigned_users=...) must be {"id": "<user id>", "name": "<user name>"}'
                    )
            object.__setattr__(self, "assigned_users", tuple(dict(user) for user in users))
        notifiers = self.notifiers
        if not isinstance(notifiers, Sequence) or isinstance(notifiers, str):
            notifiers = (notifiers,)
        if not all(callable(notifier) for notifier in notifiers):
            raise ValueError("Ask(notifiers=...) must be notifiers (BaseNotifier instances)")
        object.__setattr__(self, "notifiers", tuple(notifiers))


@dataclass(frozen=True)
class Answer:
    """What a person chose (or the default, when nobody answered in time).

    :param chosen: one of the question's options.
    :param by: the user who answered, ``'<name>' (id '<id>')``; ``None`` when the timeout chose.
    :param at: when (UTC).
    """

    chosen: str
    by: str | None
    at: datetime

    @property
    def timed_out(self) -> bool:
        return self.by is None

    def who(self) -> str:
        """For a log line or a record: the user, or that nobody answered in time."""
        return self.by or "nobody (the timeout chose)"

    def when(self) -> str:
        """For a log line: when, to the minute (UTC)."""
        return self.at.strftime("%Y-%m-%d %H:%M UTC")


def ask(
    operator: BaseOperator,
    context: Context,
    question: Question,
    how: Ask,
    *,
    subject: str,
    body: str,
    method_name: str,
    kwargs: dict[str, Any],
) -> NoReturn:
    """Write ``question`` for this task instance, tell ``how.notifiers``, and wait for the answer.

    The task resumes in ``operator.<method_name>(context, event=..., **kwargs)``; read the event with
    :func:`answer_of`. ``kwargs`` must be JSON-serializable and hold no personal data: Airflow stores
    them in its database while the task waits.
    """
    from airflow.sdk.timezone import utcnow

    ti = context["task_instance"]
    users = [dict(user) for user in how.assigned_users] if how.assigned_users else []
    meant = {
        "subject": subject,
        "body": body,
        "options": list(question.options),
        "defaults": [question.default],
        "assigned_users": users,
    }
    kept = _write_question(ti.id, meant)
    if kept != meant:
        raise QuestionTaken(
            "this task instance already asked another question in an earlier try "
            f"({kept.get('subject')!r}), and Airflow keeps a task instance's first question for all its "
            "tries: it would show that one instead"
        )
    operator.log.info(
        "Waiting for an answer in Required Actions (%s), until %s UTC; no answer by then is %r.",
        question.name.replace("_", " "),
        (utcnow() + how.timeout).strftime("%Y-%m-%d %H:%M"),
        question.default,
    )
    _tell(operator, how.notifiers, {**context, QUESTION_KEY: question.name})
    try:  # Airflow >= 3.3: the task waits in awaiting_input, no trigger
        from airflow.sdk.exceptions import TaskAwaitingInput
    except ImportError:  # Airflow < 3.3: the standard provider's trigger waits on the triggerer
        pass
    else:
        raise TaskAwaitingInput(method_name=method_name, kwargs=kwargs, timeout=how.timeout)
    from airflow.providers.standard.triggers.hitl import HITLTrigger

    operator.defer(
        trigger=HITLTrigger(
            ti_id=ti.id,
            options=list(question.options),
            defaults=[question.default],
            params={},
            multiple=False,
            timeout_datetime=utcnow() + how.timeout,
        ),
        method_name=method_name,
        kwargs=kwargs,
    )
    raise AssertionError("defer() returned")  # pragma: no cover


class QuestionTaken(AirflowFailException):
    """Airflow keeps another question for this task instance (see the module docstring): asking this
    one would show a person the other one's text. Nothing was asked."""


def _write_question(ti_id: Any, meant: dict[str, Any]) -> dict[str, Any]:
    """Write the question for task instance ``ti_id``; :return: what Airflow keeps, in ``meant``'s form."""
    from airflow.sdk.api.datamodels._generated import HITLUser
    from airflow.sdk.execution_time.comms import CreateHITLDetailPayload
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    kept = SUPERVISOR_COMMS.send(
        msg=CreateHITLDetailPayload(
            ti_id=ti_id,
            subject=meant["subject"],
            body=meant["body"],
            options=meant["options"],
            defaults=meant["defaults"],
            multiple=False,
            params={},
            assigned_users=[HITLUser(id=user["id"], name=user["name"]) for user in meant["assigned_users"]],
        )
    )
    return {
        "subject": getattr(kept, "subject", None),
        "body": getattr(kept, "body", None),
        "options": list(getattr(kept, "options", None) or []),
        "defaults": list(getattr(kept, "defaults", None) or []),
        "assigned_users": [
            {"id": user.id, "name": user.name} for user in getattr(kept, "assigned_users", None) or []
        ],
    }


def _tell(operator: BaseOperator, notifiers: Sequence[Any], context: dict[str, Any]) -> None:
    """Call each notifier with ``context`` in a thread of its own; those still running after
    :data:`NOTIFIERS_TIMEOUT` seconds (together) are left behind, logged. A failure is logged by type."""
    import threading
    import time

    def run(notifier: Any) -> None:
        try:
            notifier(context)
        except Exception as error:  # a notifier failing must not lose the question
            operator.log.warning("A notifier of the question failed: %s", type(error).__name__)

    # Within the task's own execution_timeout too: a quarter of it, so the question is still asked.
    limit = NOTIFIERS_TIMEOUT
    if operator.execution_timeout is not None:
        limit = min(limit, operator.execution_timeout.total_seconds() / 4)
    deadline = time.monotonic() + limit
    threads = [threading.Thread(target=run, args=(notifier,), daemon=True) for notifier in notifiers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        operator.log.warning(
            "A notifier of the question was still running after %.0f s: the task waits without it.",
            limit,
        )


def answer_of(question: Question, event: dict[str, Any]) -> Answer:
    """The answer in the event a task resumed with.

    :raises AirflowFailException: the event says the question failed (Airflow's words), or holds an
        option the question does not have.
    """
    from airflow.sdk.timezone import utcnow

    from airflow_provider_fuse.masking import redact

    name = question.name.replace("_", " ")
    if "error" in event:
        raise AirflowFailException(
            f"The {name} question ended without an answer: "
            f"{redact(str(event.get('error_type', 'error')))}: {redact(str(event['error']))}"
        )
    chosen = list(event.get("chosen_options") or [])
    if len(chosen) != 1 or chosen[0] not in question.options:
        raise AirflowFailException(
            f"The {name} question was answered with {redact(repr(chosen))}, not one of "
            f"{list(question.options)!r}: nothing more was sent."
        )
    user = event.get("responded_by_user")
    by = None
    if user and not event.get("timedout"):
        if isinstance(user, dict):
            by = f"{str(user.get('name'))!r} (id {str(user.get('id'))!r})"
        else:
            by = repr(str(user))
    at = event.get("responded_at")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            at = None
    if not isinstance(at, datetime):
        at = utcnow()
    elif at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return Answer(chosen=chosen[0], by=by, at=at)
