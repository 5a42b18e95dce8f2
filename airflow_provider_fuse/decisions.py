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

Airflow keeps one question per task instance try: a try that already asked (an approval) cannot ask
another; the next try, with a task instance id of its own, can.

:class:`Ask` says who may answer, how long to wait and who is told; the texts of the questions are
the operators' (they know the list); no phone number or CSV value is ever part of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    "answer_of",
    "ask",
]

APPROVE = "Approve"
REJECT = "Reject"
QUEUED = "Fuse queued it"
NOT_QUEUED = "Fuse did not queue it"
STOP = "Stop"


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
    :param timeout: how long to wait for an answer, a positive ``timedelta`` (default 24 hours); no
        answer by then takes the safe choice: *Reject* for an approval, *Stop* for an unknown outcome.
    :param notifiers: notifiers called with the task's context when a question is asked, plus
        :data:`QUESTION_KEY` naming the question (e.g. a
        :class:`~airflow_provider_fuse.notifications.fuse.FuseNotifier` that phones the approver; it
        reads the key). A notifier that fails is logged by its error's type; the question stands.
    :raises ValueError: any of them malformed.
    """

    assigned_users: Sequence[dict[str, str]] | None = None
    timeout: timedelta = timedelta(hours=24)
    notifiers: Sequence[BaseNotifier] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.timeout, timedelta) or self.timeout <= timedelta(0):
            raise ValueError(f"Ask(timeout=...) must be a positive timedelta, got {self.timeout!r}")
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
    :param by: the user who answered, ``"<name> (id <id>)"``; ``None`` when the timeout chose.
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
    from airflow.sdk.execution_time.hitl import upsert_hitl_detail
    from airflow.sdk.timezone import utcnow

    ti = context["task_instance"]
    upsert_hitl_detail(
        ti_id=ti.id,
        options=list(question.options),
        subject=subject,
        body=body,
        defaults=[question.default],
        multiple=False,
        params={},
        assigned_users=[dict(user) for user in how.assigned_users] if how.assigned_users else None,  # type: ignore[misc]
    )
    operator.log.info(
        "Waiting for an answer in Required Actions (%s), until %s UTC; no answer by then is %r.",
        question.name.replace("_", " "),
        (utcnow() + how.timeout).strftime("%Y-%m-%d %H:%M"),
        question.default,
    )
    told = {**context, QUESTION_KEY: question.name}
    for notifier in how.notifiers:
        try:
            notifier(told)
        except Exception as error:  # a notifier failing must not lose the question
            operator.log.warning("A notifier of the question failed: %s", type(error).__name__)
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


def answer_of(question: Question, event: dict[str, Any]) -> Answer:
    """The answer in the event a task resumed with.

    :raises AirflowFailException: the event says the question failed (Airflow's words), or holds an
        option the question does not have.
    """
    from airflow.sdk.timezone import utcnow

    if "error" in event:
        raise AirflowFailException(
            f"The {question.name.replace('_', ' ')} question ended without an answer: "
            f"{event.get('error_type', 'error')}: {event['error']}"
        )
    chosen = list(event.get("chosen_options") or [])
    if len(chosen) != 1 or chosen[0] not in question.options:
        raise AirflowFailException(
            f"The {question.name.replace('_', ' ')} question was answered with {chosen!r}, not one of "
            f"{list(question.options)!r}: nothing more was sent."
        )
    user = event.get("responded_by_user")
    by = None
    if user and not event.get("timedout"):
        by = f"{user.get('name')} (id {user.get('id')})" if isinstance(user, dict) else str(user)
    at = event.get("responded_at")
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return Answer(chosen=chosen[0], by=by, at=at if isinstance(at, datetime) else utcnow())
