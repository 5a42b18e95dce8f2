"""What the operators that make phones ring share: Fuse's request fields and the checks before sending.

:class:`FuseBulkQueueOperator <airflow_provider_fuse.operators.bulk_queue.FuseBulkQueueOperator>` and
:class:`FuseQueueCallOperator <airflow_provider_fuse.operators.queue_call.FuseQueueCallOperator>`
take the same fields of Fuse's queueing endpoints, check them the same way, refuse a stale run or a
closed window the same way, and keep what they sent in the duplicate guard's ledger (:mod:`.reruns`).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_fuse import decisions
from airflow_provider_fuse._compat import AirflowFailException, AirflowSkipException, AirflowTaskTimeout
from airflow_provider_fuse.decisions import Ask
from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.fields import QUEUE_FIELD_NAMES, QueueFields, TimestampLike, to_positive_id
from airflow_provider_fuse.masking import sealed_result_url
from airflow_provider_fuse.operators.base import BaseFuseOperator
from airflow_provider_fuse.operators.reruns import resend_allowed, state_store
from airflow_provider_fuse.operators.staleness import staleness
from airflow_provider_fuse.operators.task_failures import ON_UNKNOWN_OUTCOME, nothing_sent, timed_out

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.sdk import Context

    from airflow_provider_fuse.guard import BulkQueueLedger, Fingerprint, QueueCallLedger, StateStore
    from airflow_provider_fuse.hooks.fuse import FuseHook

__all__ = ["QUEUE_TEMPLATE_FIELDS", "BaseFuseQueueingOperator", "request_fields"]

#: The queueing fields a DAG may template: every one of :data:`QUEUE_FIELD_NAMES` but ``is_pci``, a
#: plain bool. When one is given, a rendering of ``None`` is an error, not "unset".
QUEUE_TEMPLATE_FIELDS = tuple(name for name in QUEUE_FIELD_NAMES if name != "is_pci")


class BaseFuseQueueingOperator(BaseFuseOperator):
    """What the operators that make phones ring share.

    The request fields of Fuse's queueing endpoints and their checks, the stale-run check, and the
    duplicate guard's state store and resend switch. See the subclasses for the parameters.
    """

    #: Once rendered, shown with its userinfo and query values as ``***`` (a token may be there).
    result_url = sealed_result_url()
    #: What ``on_unknown_outcome`` may say for this operator.
    unknown_outcome_choices: tuple[str, ...] = ON_UNKNOWN_OUTCOME

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        start_timestamp: TimestampLike | None = None,
        end_timestamp: TimestampLike | None = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | None = None,
        result_url: str | None = None,
        is_pci: bool | int = False,
        on_unknown_outcome: Literal["fail", "retry", "ask"] = "fail",
        max_run_age: timedelta | None = timedelta(days=1),
        allow_resend: bool = False,
        approval: bool = False,
        on_reject: Literal["skip", "fail"] = "skip",
        ask: Ask | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(approval, bool):
            raise ValueError(f"approval must be True or False, got {approval!r}")
        if on_reject not in ("skip", "fail"):
            raise ValueError(f"on_reject must be 'skip' or 'fail', got {on_reject!r}")
        if ask is not None and not isinstance(ask, Ask):
            raise ValueError(f"ask must be an airflow_provider_fuse.decisions.Ask or None, got {ask!r}")
        if ask is not None and not approval and on_unknown_outcome != "ask":
            raise ValueError(
                "ask says who answers the questions of approval=True"
                + (" and on_unknown_outcome='ask'" if "ask" in self.unknown_outcome_choices else "")
                + ": give one of them too, or leave ask out"
            )
        self.approval = approval
        self.on_reject = on_reject
        self.ask = ask or Ask()
        # The approval this try resumed with (execute_approved): Airflow keeps one question per try.
        self._approved: tuple[decisions.Answer, dict[str, str]] | None = None
        if on_unknown_outcome not in self.unknown_outcome_choices:
            choices = " or ".join(repr(choice) for choice in self.unknown_outcome_choices)
            raise ValueError(f"on_unknown_outcome must be {choices}, got {on_unknown_outcome!r}")
        if max_run_age is not None and not isinstance(max_run_age, timedelta):
            raise ValueError(f"max_run_age must be a timedelta or None, got {max_run_age!r}")
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.start_timestamp = start_timestamp
        self.end_timestamp = end_timestamp
        self.max_attempts = max_attempts
        self.reattempt_wait = reattempt_wait
        self.result_url = result_url
        self.is_pci = is_pci
        self.on_unknown_outcome = on_unknown_outcome
        self.max_run_age = max_run_age
        self.allow_resend = allow_resend
        self._given = frozenset(name for name in QUEUE_TEMPLATE_FIELDS if getattr(self, name) is not None)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render as Airflow does; the sealed fields (:mod:`airflow_provider_fuse.masking`) know it."""
        from airflow_provider_fuse.masking import RENDERING

        self.__dict__[RENDERING] = True
        try:
            super().render_template_fields(context, jinja_env)
        finally:
            self.__dict__.pop(RENDERING, None)

    def _validated_arguments(self) -> tuple[int, int, QueueFields]:
        """The rendered ids and fields, checked by Fuse's rules (:class:`QueueFields`), and the
        rendered connection id and hook settings (:meth:`_connection_arguments`).

        :raises FuseValidationError: naming the parameter; also for a given template that rendered None.
        """
        self._connection_arguments()
        for name in self._given:
            if getattr(self, name) is None:
                raise FuseValidationError(name, "rendered None; give a value or leave the argument out")
        application_id = to_positive_id("application_id", self.application_id)
        deployment_id = to_positive_id("deployment_id", self.deployment_id)
        given = {name: getattr(self, name) for name in QUEUE_FIELD_NAMES}
        given["result_url"] = type(self).result_url.value(self)  # the rendered value, not its view
        # Whether the window is still open matters only before sending (:meth:`_ready_to_send`): a
        # clear after success must return what was recorded, even once the window has closed.
        fields = QueueFields.validate(**given, check_open=False)
        return application_id, deployment_id, fields

    def _ready_to_send(self, context: Context, fields: QueueFields, queued_before: str = "") -> None:
        """The checks that matter only when something is about to be sent.

        :param queued_before: what earlier tries of this task instance already queued, described
            (``""`` when nothing): a stale run that finds calls queued fails instead of skipping, so
            a half-sent campaign is never hidden behind a skipped task.
        :raises AirflowSkipException: for a stale run with nothing queued before (see ``max_run_age``).
        :raises AirflowFailException: for a stale run with calls queued before, and when the dialing
            window has already closed.
        """
        stale = staleness(context, self.max_run_age)
        if stale and queued_before:
            raise AirflowFailException(
                f"Not sending the rest of the list: {stale}. Earlier tries of this task instance already "
                f"queued {queued_before}; the rest is not dialed from an old run. Check the campaign in Fuse."
            )
        if stale:
            self.log.warning(
                "Not dialing: %s. Catch-up and backfill runs do not call people from an old list.", stale
            )
            raise AirflowSkipException(f"Stale run: {stale}")
        try:
            fields.check_open()
        except FuseValidationError as error:
            raise nothing_sent(error) from None

    #: Set just before a request to Fuse leaves (see :func:`~.task_failures.timed_out`).
    _request_left = False

    @contextmanager
    def _failing_timeouts(self, *, guarded: bool) -> Iterator[None]:
        """Within this block, an ``execution_timeout`` goes through :func:`~.task_failures.timed_out`."""
        try:
            yield
        except AirflowTaskTimeout:
            failure = timed_out(
                request_left=self._request_left, guarded=guarded, on_unknown_outcome=self.on_unknown_outcome
            )
            if failure is not None:
                raise failure from None
            raise

    def _best_effort(self, what: str, action: Callable[[], object]) -> None:
        """Run ``action``, whose failure must not fail the task (it follows Fuse's 200, or cleans up):
        a failure is logged with its type, never raised."""
        try:
            action()
        except Exception as error:
            # The type only: a message could carry anything.
            self.log.warning("%s failed (%s); the task goes on.", what.capitalize(), type(error).__name__)

    @staticmethod
    def _read_connection(hook: FuseHook) -> None:
        """Read and check the hook's connection: a broken one fails the task before anything is recorded."""
        try:
            hook.settings  # noqa: B018 (reading it is the check)
        except FuseValidationError as error:
            raise nothing_sent(error) from None

    def execute_approved(self, context: Context, event: dict[str, Any], approved: dict[str, str]) -> Any:
        """Resumed with the answer to the approval question: send what was shown, if it is unchanged.

        :param approved: the fingerprint of what the question showed, sealed
            (:meth:`~airflow_provider_fuse.guard.Fingerprint.to_travel`).
        :raises AirflowSkipException: Reject (or no answer in time), with ``on_reject="skip"``.
        :raises AirflowFailException: the same with ``on_reject="fail"``.
        """
        answer = decisions.answer_of(decisions.APPROVAL, event)
        if answer.chosen == decisions.REJECT:
            message = f"Nothing was sent to Fuse: it was rejected by {answer.who()} at {answer.when()}."
            self.log.warning("%s", message)
            if self.on_reject == "fail":
                raise AirflowFailException(message)
            raise AirflowSkipException(message)
        self.log.info("Approved by %s at %s.", answer.who(), answer.when())
        return self._run(context, approved=(answer, approved))

    def _run(self, context: Context, approved: tuple[decisions.Answer, dict[str, str]] | None = None) -> Any:
        """One go at what the operator sends: from the start, or resumed with an approval."""
        raise NotImplementedError

    def _approval(
        self,
        context: Context,
        ledger: BulkQueueLedger | QueueCallLedger | None,
        fingerprint: Fingerprint,
        question: Callable[[], tuple[str, str]],
    ) -> None:
        """Before the first request (with ``approval``): ask, or check that what is about to be sent is
        what was approved. Not asked again when the ledger records an approval of this very fingerprint
        (a retry or a clear). Call after the ledger planned the try.

        :param question: the subject and Markdown body of the question (no personal data).
        :raises AirflowFailException: what is about to be sent changed since it was approved.
        """
        if not self.approval:
            return
        if self._approved is not None:
            answer, approved = self._approved
            if not fingerprint.same_as(approved):
                raise AirflowFailException(
                    "Nothing was sent to Fuse: what is about to be sent changed between the approval "
                    "question and its answer (the CSV or number, the request parameters or the "
                    f"suppression list), so {answer.who()} approved something else. Clear the task to ask "
                    "about it as it is now."
                )
            if ledger is not None:
                ledger.approved(answer.by, answer.at.isoformat())
            return
        recorded = ledger.record.approval(fingerprint) if ledger is not None and ledger.record else None
        if recorded is not None:
            self.log.info(
                "Not asking again: %s approved this very %s at %s (recorded in the task state store).",
                recorded["by"] or "nobody",
                "list" if ledger is not None and ledger.key.endswith("bulk_queue") else "call",
                recorded["at"],
            )
            return
        subject, body = question()
        decisions.ask(
            self,
            context,
            decisions.APPROVAL,
            self.ask,
            subject=subject,
            body=body,
            method_name="execute_approved",
            kwargs={"approved": fingerprint.to_travel()},
        )

    def _state_store(self, context: Context) -> StateStore | None:
        """The task state store the duplicate guard keeps its ledger in, or None (Airflow < 3.3)."""
        return state_store(context, self.log)

    def _resend(self, context: Context) -> bool:
        """Whether this try may send something other than what this task instance already queued."""
        return resend_allowed(self.allow_resend, context)


def request_fields(fields: QueueFields) -> dict[str, Any]:
    """The request fields as the hook's queueing methods take them."""
    # The operators' default is_pci (False) sends no is_pci field at all: Fuse's own default.
    return {**fields.arguments(), "is_pci": fields.is_pci or None}
