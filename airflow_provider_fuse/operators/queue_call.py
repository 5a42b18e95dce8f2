"""FuseQueueCallOperator: queue one outbound call with Fuse's ``queue`` endpoint from a DAG."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_fuse.exceptions import FuseError, FuseValidationError, nothing_queued
from airflow_provider_fuse.masking import mask_personal_data, sealed_call_parameters, sealed_phone_number
from airflow_provider_fuse.operators.base import where
from airflow_provider_fuse.operators.queueing import (
    QUEUE_TEMPLATE_FIELDS,
    BaseFuseQueueingOperator,
    request_fields,
)
from airflow_provider_fuse.operators.reruns import guard_refusal
from airflow_provider_fuse.operators.task_failures import nothing_sent, task_failure

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_fuse import decisions
    from airflow_provider_fuse.fields import QueueFields
    from airflow_provider_fuse.guard import Fingerprint, QueueCallLedger

__all__ = ["FuseQueueCallOperator"]


class FuseQueueCallOperator(BaseFuseQueueingOperator):
    """Queue one outbound call with Fuse's ``queue`` endpoint; push its call id.

    For one urgent call, not for a list: Plum warns that looping ``queue`` over many numbers "can
    cause DDoS, which will result in all calls failing". Do not map or loop this operator over a
    contact list — put the list in a CSV and use :class:`FuseBulkQueueOperator`.

    Before any request every argument is validated (``phone_number`` in one of Fuse's destination
    formats, ``call_parameters`` names to JSON scalars, the other fields as for the bulk operator);
    invalid input fails the task without retries and sends nothing. On success the call id is
    returned (XCom ``return_value``): hand it to
    :class:`~airflow_provider_fuse.sensors.fuse.FuseCallStatusSensor` to wait for the call's outcome.

    The rendered phone number and every parameter value are personal data: right after rendering
    they are registered with Airflow's secret masker, so task logs and the rendered-template view show
    them as ``***``. Airflow's masker skips values shorter than 5 characters (``[logging]
    min_length_masked_secret``), and in the rendered-template view only strings are masked: pass
    personal numbers as strings.

    Failures map onto task outcomes exactly as for the bulk operator: a rejection (4xx) fails without
    retries in Fuse's words (429 excepted), "not sent" is left to the task's retries (a request that
    cannot be made fails without them), an unknown
    outcome fails without retries unless ``on_unknown_outcome="retry"``. Across tries (Airflow >= 3.3)
    the duplicate guard records the intent before the request and the call id after it (task state
    store key ``airflow_provider_fuse.queue_call``): a retry or clear after success returns the
    recorded call id without calling again; an intent without a result (the outcome is unknown)
    blocks the next try unless ``on_unknown_outcome="retry"``.

    :param application_id: the outbound deployment's application id, a positive integer. (templated)
    :param deployment_id: the outbound deployment's deployment id, a positive integer. (templated)
    :param phone_number: the number to call: ``6175551234``, ``16175551234`` or ``tel:+16175551234``,
        optionally followed by ``;ani=<caller id>`` and/or ``;postd=<DTMF digits>``. (templated)
    :param call_parameters: the call's variables, names to strings, numbers, bools or None; sent as a
        JSON object, and shown as JSON in the rendered-template view. (templated: each value is rendered)
    :param start_timestamp: when dialing may begin; same forms as for the bulk operator. (templated)
    :param end_timestamp: when to stop attempting the call. (templated)
    :param max_attempts: attempts, 1–10. (templated)
    :param reattempt_wait: seconds between attempts, 60–86400; required when max_attempts > 1.
        (templated)
    :param result_url: absolute http(s) URL that receives the call's ``call_details`` when it ends.
        (templated)
    :param is_pci: run the connected call in Fuse's HIPAA/PCI environment; when false (default) no
        ``is_pci`` field is sent.
    :param on_unknown_outcome: ``"fail"`` (default) or ``"retry"``.
    :param approval: ask a person in Airflow's Required Actions before the call is queued
        (:mod:`airflow_provider_fuse.decisions`): the question names the deployment, the window, the
        fields and the call parameters' names, never the number or a value; *Approve* queues exactly
        the call shown (one changed since fails the task, nothing queued); *Reject*, or no answer in
        time, queues nothing. Default ``False``.
    :param on_reject: ``"skip"`` (default) or ``"fail"``: what a Reject does to the task.
    :param ask: who may answer, how long to wait, who is told
        (:class:`~airflow_provider_fuse.decisions.Ask`); only with ``approval``.
    :param max_run_age: skip, instead of calling, when the run was due (its ``run_after``) longer ago
        than this (default one day; ``None`` disables): catch-up runs do not make yesterday's calls.
    :param allow_resend: let a try queue a call whose number, parameters or fields differ from the
        call this task instance already queued (also ``{"fuse_allow_resend": true}`` in the run's conf).
    :param fuse_conn_id: the ``fuse`` connection to use; read before anything is recorded or sent.
        (templated)
    :param hook_params: settings of the :class:`~airflow_provider_fuse.hooks.fuse.FuseHook` the
        operator builds: ``connect_retries``, ``retry_backoff``, ``progress_interval``. Checked when
        the DAG is parsed; an unknown or invalid setting is a ``ValueError`` naming it.
    """

    template_fields: Sequence[str] = (
        "application_id",
        "deployment_id",
        "phone_number",
        "call_parameters",
        *QUEUE_TEMPLATE_FIELDS,
        "fuse_conn_id",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"call_parameters": "json"}
    ui_color = "#f4a460"

    #: Once rendered, shown as ``***``; the number itself is held apart for ``execute``.
    phone_number = sealed_phone_number()
    #: Once rendered, each value shown as ``***`` (however short); the names stay readable.
    call_parameters = sealed_call_parameters()

    def __init__(
        self,
        *,
        phone_number: str,
        call_parameters: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.phone_number = phone_number
        self.call_parameters = call_parameters

    def execute(self, context: Context) -> str:
        """Validate, consult the duplicate guard, queue the call, and return its call id."""
        return self._run(context)

    def _run(self, context: Context, approved: tuple[decisions.Answer, dict[str, str]] | None = None) -> str:
        """One go at the call: from the start, or resumed with an approval (see ``execute_approved``)."""
        from airflow_provider_fuse.fields import to_call_parameters, to_phone_number
        from airflow_provider_fuse.guard import QUEUE_CALL_KEY, Fingerprint, GuardError

        self._approved = approved

        try:
            application_id, deployment_id, fields = self._validated_arguments()
            phone_number = to_phone_number(type(self).phone_number.value(self))
            given = type(self).call_parameters.value(self)
            parameters = None if given is None else to_call_parameters(given)
        except FuseValidationError as error:
            raise nothing_sent(error) from None
        # Also masked here for a direct execute() without rendering; registering twice is harmless.
        mask_personal_data(phone_number, parameters)
        ti = context.get("ti")
        if getattr(ti, "map_index", -1) not in (-1, None):
            self.log.warning(
                "This task is mapped: Plum warns that queuing many single calls can get every call "
                "rejected. Use FuseBulkQueueOperator for a list."
            )
        at = where(application_id, deployment_id)

        fingerprint = Fingerprint.of_call(
            phone_number,
            parameters,
            application_id=application_id,
            deployment_id=deployment_id,
            fields=fields.form_fields(),
        )
        ledger = self._ledger(context, fingerprint, at)
        if ledger is not None:
            try:
                recorded = ledger.plan(
                    retry_unknown=self.on_unknown_outcome == "retry", resend=self._resend(context)
                )
            except GuardError as error:
                raise guard_refusal(error, at, QUEUE_CALL_KEY) from None
            if recorded is not None:
                self.log.info(
                    "Not calling again: an earlier try of this task instance already queued this call "
                    "(call id %s, recorded in the task state store).",
                    recorded,
                )
                return recorded
        # A stale run or a closed window blocks a new call, not the answer a clear gets above.
        self._ready_to_send(context, fields)
        self._approval(
            context, ledger, fingerprint, partial(self._approval_text, context, at, fields, parameters)
        )

        with self._failing_timeouts(guarded=ledger is not None):
            hook = self._hook()
            try:
                # The connection is read and checked before the intent is recorded: a missing or
                # broken connection must not leave an intent behind for a request that never left.
                self._read_connection(hook)
                if ledger is not None:
                    ledger.sending()
                self._request_left = True
                call_id = hook.queue_call(
                    application_id,
                    deployment_id,
                    phone_number,
                    call_parameters=parameters,
                    **request_fields(fields),
                )
            except FuseError as error:
                if ledger is not None and nothing_queued(error):
                    ledger.not_queued()
                raise task_failure(
                    error,
                    unknown_outcome=(
                        f"Fuse may have queued the call. Check the outbound calls of {at} in Fuse before "
                        "running this task again: a retry could call the person twice."
                    ),
                    on_unknown_outcome=self.on_unknown_outcome,
                ) from error
            finally:
                self._best_effort("closing the connection to Fuse", hook.close)
            # From Fuse's 200 on, nothing may fail the task: a retry would call the person again.
            if ledger is not None:
                self._best_effort(
                    "recording the call id in the task state store (a later try of this task will refuse to "
                    "call until the call is checked in Fuse)",
                    lambda: ledger.queued(call_id),
                )
            self._best_effort(
                "the summary log line",
                lambda: self.log.info(
                    "Fuse queued call %s: %s, window %s", call_id, at, fields.describe_window()
                ),
            )
        return call_id

    def _approval_text(
        self, context: Context, at: str, fields: QueueFields, parameters: dict[str, Any] | None
    ) -> tuple[str, str]:
        """The approval question: the deployment, the window, the fields, the names of the call
        parameters — never the number or a parameter's value."""
        from airflow_provider_fuse.operators import questions

        return questions.call_approval_text(
            questions.CallShown(
                task=questions.task_name(context.get("ti")),
                at=at,
                window=fields.describe_window(),
                fields=", ".join(
                    f"{name}={value}" for name, value in fields.form_fields().items() if name != "result_url"
                )
                or "(none)",
                parameter_names=tuple(sorted(parameters or ())),
                timeout=self.ask.timeout,
            )
        )

    def _ledger(self, context: Context, fingerprint: Fingerprint, at: str) -> QueueCallLedger | None:
        """This task instance's ledger for this call; ``None`` without a state store (Airflow < 3.3)."""
        from airflow_provider_fuse.guard import QUEUE_CALL_KEY, GuardError, QueueCallLedger

        store = self._state_store(context)
        if store is None:
            return None
        try:
            return QueueCallLedger(store, fingerprint)
        except GuardError as error:
            raise guard_refusal(error, at, QUEUE_CALL_KEY) from None
