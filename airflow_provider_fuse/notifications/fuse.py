"""FuseNotifier: phone a person through Fuse's ``queue`` endpoint when something in Airflow needs them."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_fuse.exceptions import FuseApiError, FuseValidationError, nothing_queued
from airflow_provider_fuse.hooks.connection import DEFAULT_CONN_NAME
from airflow_provider_fuse.masking import mask_personal_data, mask_url
from airflow_provider_fuse.notifications.occurrences import EVENTS, QUESTION_EVENTS, CallRecords, Occurrence
from airflow_provider_fuse.operators.queueing import QUEUE_TEMPLATE_FIELDS, request_fields

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_fuse.fields import CallParameterValue, QueueFields, TimestampLike
    from airflow_provider_fuse.hooks.fuse import FuseHook

__all__ = ["FuseNotifier", "send_fuse_notification"]

#: How long the request to Fuse may take by default: well within the DAG processor's limit for a
#: file's callbacks (``[dag_processor] dag_file_processor_timeout``, 50 seconds by default).
DEFAULT_TIMEOUT = 30.0
#: The longest Variable or connection value read as a number to call: no destination in Fuse's formats
#: is longer, and a longer value is refused before anything registers it with the secret masker.
MAX_DESTINATION_CHARS = 256


class FuseNotifier(BaseNotifier):
    """Place one call with Fuse's ``queue`` endpoint about what just happened in Airflow.

    Usable wherever Airflow takes a notifier:

    * a task's or a DAG's ``on_failure_callback`` / ``on_retry_callback`` (also through ``default_args``);
    * a deadline alert: ``DeadlineAlert(..., callback=AsyncCallback(FuseNotifier, kwargs={...}))``
      (runs in the triggerer) or ``SyncCallback`` (runs on an executor);
    * a human-in-the-loop notifier — ``notifiers=[...]`` of the standard provider's HITL operators,
      (with ``event="approval_requested"``), or ``Ask(notifiers=[...])`` of this provider's operators,
      whose questions say which they are (``approval_requested``, or ``decision_requested`` for an
      unknown outcome).

    The number to call is never in DAG code: it is read, when the notifier runs, from the Airflow
    Variable ``destination_variable`` or the password of the connection ``destination_conn_id``
    (exactly one of them), in one of Fuse's formats (``6175551234``, ``16175551234``,
    ``tel:+16175551234``, optionally ``;ani=...``/``;postd=...``). It is registered with Airflow's
    secret masker the moment it is read, and appears in no log line, exception or XCom.

    The Fuse application reads what happened from the call parameters ``airflow_event``
    (``failure``, ``retry``, ``approval_requested``, ``decision_requested`` or ``deadline_missed``),
    ``airflow_dag_id``,
    ``airflow_task_id``, ``airflow_run_id``, ``airflow_map_index`` and ``airflow_try_number`` (None
    where the path does not say, e.g. no task for a deadline), besides those of ``call_parameters``.
    The values of ``call_parameters`` are registered with the secret masker, except those equal to
    one of the notifier's own (a DAG or task id rendered into one is not personal data).

    One occurrence, one call: a task instance's try and its event (or a run's missed deadline) is
    called about once, however many callback paths reach this notifier — the task's own callback,
    ``default_args``, the DAG's ``on_failure_callback``, the same notifier listed twice. The record
    of each call is an Airflow Variable (:mod:`~airflow_provider_fuse.notifications.occurrences`
    says what is covered, and what is not atomic). When Fuse certainly queued nothing (not sent,
    rejected), the record is withdrawn, so a later path tries again; after an unknown outcome it
    stays, as a second call could ring twice.

    A failure of Fuse is logged (without the number) and never raised: a failure callback must not
    hide the task's own failure, nor a notifier fail the task that asks for approval. The request to
    Fuse ends within ``timeout`` seconds, whatever the connection allows: a callback is not held
    up by a slow Fuse. A
    misconfiguration is raised, naming the parameter, before anything is recorded or sent: a
    missing Variable or connection, a value that is not a phone number, invalid ids or fields.

    :param application_id: the outbound deployment's application id, a positive integer. (templated)
    :param deployment_id: the outbound deployment's deployment id, a positive integer. (templated)
    :param destination_variable: the Airflow Variable that holds the number to call. (templated)
    :param destination_conn_id: an Airflow connection (any type) whose password holds the number to
        call. (templated)
    :param event: what happened, as the Fuse application is told; by default ``deadline_missed`` for
        a deadline alert, ``retry`` for a task instance up for retry, the question's own for
        ``Ask(notifiers=...)``, else ``failure``. Give ``"approval_requested"`` for a notifier of the
        standard provider's HITL operators.
    :param call_parameters: further call variables, names to strings, numbers, bools or None; a name
        starting ``airflow_`` is the notifier's own and refused. (templated: each value is rendered)
    :param start_timestamp: when dialing may begin; as the queue operator takes it. (templated)
    :param end_timestamp: when to stop attempting the call. (templated)
    :param max_attempts: attempts, 1–10. (templated)
    :param reattempt_wait: seconds between attempts, 60–86400; required when max_attempts > 1.
        (templated)
    :param result_url: absolute http(s) URL that receives the call's ``call_details`` when it ends.
        (templated)
    :param is_pci: run the connected call in Fuse's HIPAA/PCI environment.
    :param fuse_conn_id: the ``fuse`` connection to place the call with. (templated)
    :param timeout: seconds the request to Fuse may take in all, retries included; the connection's
        own timeouts apply when shorter. Finite, more than 0; by default :data:`DEFAULT_TIMEOUT`.
    :raises ValueError: at construction, for both or neither of ``destination_variable`` and
        ``destination_conn_id``, an unknown ``event``, a call parameter named ``airflow_...``, or a
        ``timeout`` that is not a finite number of seconds more than 0.
    """

    template_fields: Sequence[str] = (
        "application_id",
        "deployment_id",
        "destination_variable",
        "destination_conn_id",
        "call_parameters",
        *QUEUE_TEMPLATE_FIELDS,
        "fuse_conn_id",
    )

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        destination_variable: str | None = None,
        destination_conn_id: str | None = None,
        event: str | None = None,
        call_parameters: dict[str, Any] | str | None = None,
        start_timestamp: TimestampLike | None = None,
        end_timestamp: TimestampLike | None = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | None = None,
        result_url: str | None = None,
        is_pci: bool = False,
        fuse_conn_id: str = DEFAULT_CONN_NAME,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        # kwargs: ``context``, which Airflow hands a notifier class run as a deadline alert.
        super().__init__(**kwargs)
        if (destination_variable is None) == (destination_conn_id is None):
            raise ValueError(
                "Give exactly one of destination_variable (an Airflow Variable holding the number to call) "
                "and destination_conn_id (a connection whose password holds it)"
            )
        if event is not None and event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)} or None, got {event!r}")
        if isinstance(call_parameters, dict):
            _check_own_names(call_parameters)
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ValueError(f"timeout must be a finite number of seconds more than 0, got {timeout!r}")
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.destination_variable = destination_variable
        self.destination_conn_id = destination_conn_id
        self.event = event
        self.call_parameters = call_parameters
        self.start_timestamp = start_timestamp
        self.end_timestamp = end_timestamp
        self.max_attempts = max_attempts
        self.reattempt_wait = reattempt_wait
        self.result_url = result_url
        self.is_pci = is_pci
        self.fuse_conn_id = fuse_conn_id
        self.timeout = float(timeout)

    def notify(self, context: Context) -> None:
        """Place the call about what ``context`` says happened, unless another path already did.

        Called synchronously with a deadline's context, this runs on an executor (``SyncCallback``),
        whose supervisor takes no Variable write: the record is read, not written. A question to a
        person (``approval_requested``) is recorded in this process only: a task asks once per run
        of its process, and may ask again, about something else, in the same try once resumed.

        :raises FuseValidationError: for a misconfiguration (see the class), before anything is
            recorded or sent.
        """
        shared = Occurrence.of(context, self.event).event not in QUESTION_EVENTS
        self._call(context, CallRecords(shared=shared, writable="deadline" not in context))

    async def async_notify(self, context: Context) -> None:
        """:meth:`notify` for the triggerer, where deadline alerts given as ``AsyncCallback`` run: in a
        worker thread (the hook's request is synchronous) that asgiref knows to be the event loop's,
        so each read of a Variable or connection and each secret registered is sent to the
        triggerer's supervisor from the event loop, in turn with the triggers' own."""
        from asgiref.sync import sync_to_async

        # A plain thread (asyncio.to_thread) would reach the supervisor through a loop of its own,
        # concurrently with the triggerer's: Airflow 3.1 then reads answers out of order and exits.
        await sync_to_async(self._call, thread_sensitive=False)(context, CallRecords())

    def _call(self, context: Context, records: CallRecords) -> None:
        from airflow_provider_fuse.hooks.fuse import FuseHook

        occurrence = Occurrence.of(context, self.event)
        application_id, deployment_id, fields, parameters = self._request(occurrence)
        phone_number = self._destination()
        hook = FuseHook(self.fuse_conn_id)
        try:
            _bound(hook, self.timeout)  # a missing or broken connection fails here, before any record
            if not records.claim(occurrence):
                self.log.info(
                    "Not calling about the %s: another callback path already did.", occurrence.describe()
                )
                return
            try:
                call_id = hook.queue_call(
                    application_id,
                    deployment_id,
                    phone_number,
                    call_parameters=parameters,
                    **request_fields(fields),
                )
            except FuseApiError as error:
                if nothing_queued(error):
                    records.release(occurrence)
                else:
                    self._mark_run(context, occurrence, records)
                self.log.error("Fuse did not confirm the call about the %s: %s", occurrence.describe(), error)
                return
            except FuseValidationError:
                records.release(occurrence)  # found before any request
                raise
        finally:
            hook.close()
        self._mark_run(context, occurrence, records)
        self.log.info(
            "Fuse queued call %s about the %s (application %s / deployment %s).",
            call_id,
            occurrence.describe(),
            application_id,
            deployment_id,
        )

    @staticmethod
    def _mark_run(context: Context, occurrence: Occurrence, records: CallRecords) -> None:
        """After a task's failure was called about, mark its run: a DAG callback of the run that is
        handed no failed task instance (:meth:`Occurrence.of`) then does not call again."""
        if occurrence.event == "failure" and occurrence.task_id is not None:
            run = Occurrence.run_of(context)
            if run.run_instance is not None:
                records.mark(run)

    def _request(self, occurrence: Occurrence) -> tuple[int, int, QueueFields, dict[str, CallParameterValue]]:
        """The rendered ids, fields and call parameters, checked as the queue operator checks them."""
        from airflow_provider_fuse.fields import QueueFields, to_call_parameters, to_positive_id

        application_id = to_positive_id("application_id", self.application_id)
        deployment_id = to_positive_id("deployment_id", self.deployment_id)
        mask_url(self.result_url)
        fields = QueueFields.validate(
            start_timestamp=self.start_timestamp,
            end_timestamp=self.end_timestamp,
            max_attempts=self.max_attempts,
            reattempt_wait=self.reattempt_wait,
            result_url=self.result_url,
            is_pci=self.is_pci,
        )
        given = {} if self.call_parameters is None else to_call_parameters(self.call_parameters)
        _check_own_names(given)
        own = occurrence.call_parameters()
        known = {str(value) for value in own.values() if value is not None}
        mask_personal_data(None, {name: value for name, value in given.items() if str(value) not in known})
        return application_id, deployment_id, fields, {**given, **own}

    def _destination(self) -> str:
        """The number to call, masked as soon as it is read.

        :raises FuseValidationError: naming ``destination_variable`` / ``destination_conn_id``: the
            Variable or connection does not exist, or holds no number in one of Fuse's formats.
        """
        from airflow_provider_fuse.fields import to_phone_number

        if self.destination_variable is not None:
            parameter, source = "destination_variable", f"the Variable {self.destination_variable!r}"
            value = _variable(self.destination_variable)
        else:
            parameter = "destination_conn_id"
            source = f"the password of connection {self.destination_conn_id!r}"
            value = _connection_password(str(self.destination_conn_id))
        if value is None:
            raise FuseValidationError(parameter, f"{source} does not exist: store the number to call there")
        if len(value) > MAX_DESTINATION_CHARS:
            raise FuseValidationError(
                parameter, f"{source} holds more than {MAX_DESTINATION_CHARS} characters: no phone number"
            )
        try:
            number = to_phone_number(value)
        except FuseValidationError as error:
            raise FuseValidationError(parameter, f"{source} {error.message}") from None
        mask_personal_data(number, None)  # only a number: a refused value is never shown anyway
        return number


def _bound(hook: FuseHook, seconds: float) -> None:
    """Read the hook's connection, and hold its requests to ``seconds`` in all."""
    settings = hook.settings
    connect, read = settings.timeout
    hook.__dict__["settings"] = dataclasses.replace(
        settings,
        timeout=(min(connect, seconds), min(read, seconds)),
        total_timeout=min(settings.total_timeout, seconds),
    )


def _check_own_names(parameters: dict[str, Any]) -> None:
    own = sorted(name for name in parameters if isinstance(name, str) and name.startswith("airflow_"))
    if own:
        raise FuseValidationError(
            "call_parameters", f"{', '.join(own)}: names starting airflow_ are the notifier's own"
        )


def _variable(key: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(key, default=None)
    return None if value is None else str(value)


def _connection_password(conn_id: str) -> str | None:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException
    from airflow.sdk import BaseHook

    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return connection.password or None


#: The name Airflow's notifier providers give their notifier as a function.
send_fuse_notification = FuseNotifier
