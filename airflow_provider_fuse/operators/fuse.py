"""FuseBulkQueueOperator: hand an upstream contact CSV to Fuse's ``bulk_queue`` from a DAG.

Imports of requests, requests-toolbelt and the preflight happen in ``execute``: DAG parsing pays
for this module on every parse.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator

from airflow_provider_fuse._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
)
from airflow_provider_fuse.exceptions import (
    FuseApiError,
    FuseError,
    FuseUnknownOutcomeError,
    FuseValidationError,
    nothing_queued,
)
from airflow_provider_fuse.fields import QueueFields, TimestampLike, to_positive_id
from airflow_provider_fuse.masking import (
    mask_personal_data,
    sealed_call_parameters,
    sealed_phone_number,
    sealed_result_url,
    shown_url,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow.sdk import Asset, Context, ObjectStoragePath

    from airflow_provider_fuse.guard import BulkQueueLedger, Fingerprint, QueueCallLedger, StateStore
    from airflow_provider_fuse.hooks.fuse import FuseHook
    from airflow_provider_fuse.preflight import CsvPart, CsvSummary

__all__ = [
    "RESEND_CONF_KEY",
    "FuseBulkQueueOperator",
    "FuseCancelCallsOperator",
    "FuseQueueCallOperator",
    "mask_personal_data",
    "task_failure",
]

ON_UNKNOWN_OUTCOME = ("fail", "retry")
ON_DUPLICATE_DESTINATIONS = ("warn", "fail", "drop")
#: The ``dag_run.conf`` key that allows this run to send a list other than the one already queued.
RESEND_CONF_KEY = "fuse_allow_resend"
#: Optional templated fields: when given, a rendering of ``None`` or nothing is an error, not "unset".
_OPTIONAL_TEMPLATED = ("start_timestamp", "end_timestamp", "max_attempts", "reattempt_wait", "result_url")


class _FuseQueueingOperator(BaseOperator):
    """What the operators that make phones ring share.

    The request fields of Fuse's queueing endpoints and their checks, the stale-run check, and the
    duplicate guard's state store and resend switch. See the subclasses for the parameters.
    """

    #: Once rendered, shown with its userinfo and query values as ``***`` (a token may be there).
    result_url = sealed_result_url()

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
        on_unknown_outcome: Literal["fail", "retry"] = "fail",
        max_run_age: timedelta | None = timedelta(days=1),
        allow_resend: bool = False,
        fuse_conn_id: str = "fuse_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_unknown_outcome not in ON_UNKNOWN_OUTCOME:
            raise ValueError(f"on_unknown_outcome must be 'fail' or 'retry', got {on_unknown_outcome!r}")
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
        self.fuse_conn_id = fuse_conn_id
        self._given = frozenset(name for name in _OPTIONAL_TEMPLATED if getattr(self, name) is not None)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render as Airflow does; the sealed fields (:mod:`airflow_provider_fuse.masking`) know it."""
        from airflow_provider_fuse.masking import RENDERING

        self.__dict__[RENDERING] = True
        try:
            super().render_template_fields(context, jinja_env)
        finally:
            self.__dict__.pop(RENDERING, None)

    def _validated_arguments(self) -> tuple[int, int, QueueFields]:
        """The rendered ids and fields, checked by Fuse's rules (:class:`QueueFields`).

        :raises FuseValidationError: naming the parameter; also for a given template that rendered None.
        """
        for name in self._given:
            if getattr(self, name) is None:
                raise FuseValidationError(name, "rendered None; give a value or leave the argument out")
        application_id = to_positive_id("application_id", self.application_id)
        deployment_id = to_positive_id("deployment_id", self.deployment_id)
        fields = QueueFields.validate(
            start_timestamp=self.start_timestamp,
            end_timestamp=self.end_timestamp,
            max_attempts=self.max_attempts,
            reattempt_wait=self.reattempt_wait,
            result_url=type(self).result_url.value(self),
            is_pci=self.is_pci,
            # Whether the window is still open matters only before sending (:meth:`_ready_to_send`):
            # a clear after success must return what was recorded, even once the window has closed.
            check_open=False,
        )
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
        stale = self._staleness(context)
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
            raise AirflowFailException(f"Nothing was sent to Fuse: {error}") from None

    def _staleness(self, context: Context) -> str:
        """Why this run is too old to dial, or ``""``: it was due longer ago than ``max_run_age``.

        A run is due at its ``run_after`` (when the scheduler could start it: for a manual run, when
        it was triggered), not at the end of its data interval: a manual run of a weekly timetable
        gets an interval that ended days ago and is still today's run. Without ``run_after`` (Airflow
        before 3.0's run model, or a bare context) the data interval's end, then the logical date.
        """
        if self.max_run_age is None:
            return ""
        due, what = _run_due(context)
        if due is None:
            return ""
        age = datetime.now(timezone.utc) - due
        if age <= self.max_run_age:
            return ""
        return f"this run was due ({what}) {_round(age)} ago, more than max_run_age ({self.max_run_age})"

    #: Set just before a request to Fuse leaves (see :meth:`_timed_out`).
    _request_left = False

    def _timed_out(self, *, guarded: bool) -> None:
        """``execution_timeout`` is ending the task: once a request has left, a retry without the
        duplicate guard could dial again, so the task fails without retries (unless unknown outcomes
        may be retried). With the guard, the recorded intent blocks the next try instead.

        :raises AirflowFailException: when a request left, the guard is off and ``on_unknown_outcome``
            is ``"fail"``.
        """
        if self._request_left and not guarded and self.on_unknown_outcome == "fail":
            raise AirflowFailException(
                "execution_timeout ended this task after a request to Fuse had left: Fuse may have queued "
                "the calls. Without the duplicate guard (Airflow >= 3.3) a retry could dial them again, so "
                "this task is not retried. Check the deployment's outbound calls in Fuse."
            ) from None

    @contextmanager
    def _failing_timeouts(self, *, guarded: bool) -> Iterator[None]:
        """Within this block, an ``execution_timeout`` goes through :meth:`_timed_out`."""
        try:
            yield
        except AirflowTaskTimeout:
            self._timed_out(guarded=guarded)
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
            raise AirflowFailException(f"Nothing was sent to Fuse: {error}") from None

    def _state_store(self, context: Context) -> StateStore | None:
        """The task state store the duplicate guard keeps its ledger in, or None (Airflow < 3.3)."""
        store: StateStore | None = context.get("task_state_store")
        if store is None:
            self.log.warning(
                "The duplicate guard needs Airflow >= 3.3 (task_state_store): a retry or clear of this "
                "task cannot know what an earlier try queued. Within this try, an unknown outcome still "
                "fails safe."
            )
            return None
        if _clears_on_success():
            self.log.warning(
                "[state_store] clear_on_success is on: once this task succeeds its record is deleted, and "
                "clearing the task later would send again."
            )
        return store

    def _resend(self, context: Context) -> bool:
        """Whether this try may send something other than what this task instance already queued."""
        if self.allow_resend:
            return True
        conf = getattr(context.get("dag_run"), "conf", None) or {}
        value = conf.get(RESEND_CONF_KEY, False)
        # Only a clear yes: a conf typed in the UI or on the command line may say "false".
        return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


class FuseBulkQueueOperator(_FuseQueueingOperator):
    """Queue a call to every contact of a CSV with Fuse's ``bulk_queue``; push ``calls_queued``.

    Before any request the operator validates every argument and runs the CSV preflight (UTF-8,
    a header with a ``destination`` column, every row's destination in one of Fuse's formats, and
    destinations that repeat). Invalid input fails the task without retries, naming the parameter
    or the row numbers — never a phone number. What is checked and sent is a private copy of the CSV
    taken once (:mod:`airflow_provider_fuse.snapshot`). A CSV with a header and no rows skips the task,
    and so does a run that was due longer ago than ``max_run_age``. On success it returns the total
    ``calls_queued`` (pushed to XCom as ``return_value``); nothing after Fuse's 200 fails the task.

    What each failure does to the task:

    * Fuse rejected the request (4xx): fails without retries, ``Fuse API answered <code>: <text>``;
      a 429 is the exception and is left to the task's retries.
    * The request never reached Fuse (connection refused, DNS, connect timeout), after the hook's
      own connect retries: an ordinary failure, so the task's retries apply; a request that cannot
      be made at all (an invalid URL, an unusable proxy) fails without retries.
    * Unknown outcome (3xx, 5xx, an answer that is not Fuse's, a timeout or lost connection after
      sending): fails without retries by default, because Fuse may have queued the calls and a retry
      could dial every contact twice; ``on_unknown_outcome="retry"`` leaves it to the task's retries.

    Across tries (Airflow >= 3.3) the duplicate guard (:mod:`airflow_provider_fuse.guard`) records in
    the task state store what was sent and queued, so a retry or a clear of the task instance never
    sends a part of the list Fuse already queued: a list queued whole is answered with the recorded
    count before the CSV is read; otherwise sending resumes after the last part queued.

    :param application_id: the outbound deployment's application id, a positive integer. (templated)
    :param deployment_id: the outbound deployment's deployment id, a positive integer. (templated)
    :param csv_path: the contact CSV: a local path (e.g. an upstream task's XComArg, or
        ``"{{ ti.xcom_pull('export') }}"``), an object storage URI (``s3://conn_id@bucket/key.csv``,
        ``gs://…``, ``file://…``, any fsspec filesystem Airflow knows), an ``ObjectStoragePath``, or an
        Asset whose URI names the CSV. A remote object is read once into a temporary file, which is
        removed whatever happens. (templated)
    :param start_timestamp: when dialing may begin: unix seconds, a numeric string, an aware
        datetime or an ISO-8601 string with an offset (``"{{ data_interval_end }}"``). Default: now.
        (templated)
    :param end_timestamp: when to stop attempting calls; same forms; must be after the start and
        not already past. (templated)
    :param max_attempts: attempts per contact, 1–10. (templated)
    :param reattempt_wait: seconds between attempts, 60–86400; required when max_attempts > 1.
        (templated)
    :param result_url: absolute http(s) URL that receives each call's ``call_details`` when the
        call ends. (templated)
    :param is_pci: run connected calls in Fuse's HIPAA/PCI secure environment (bool or 0/1). When
        false (the default) no ``is_pci`` field is sent: Fuse's default, the normal environment.
    :param on_unknown_outcome: ``"fail"`` (default) or ``"retry"``; see above.
    :param chunk_size: rows per request; default ``None``, the whole list in one request. Each chunk
        is sent as a CSV of its own, with the header; the result is the total.
    :param on_duplicate_destinations: what to do when rows repeat a destination (the same number,
        in any of Fuse's formats): ``"warn"`` (default: log how many), ``"fail"``, or ``"drop"``
        (send the list without the repeats; the first row of each number is kept).
    :param max_run_age: skip, instead of dialing, when the run was due (its ``run_after``) longer ago
        than this (catch-up and backfills must not call people from an old list); a retry that finds
        parts already queued fails instead. Default one day; ``None`` disables the check.
    :param dry_run: run every check and the preflight, log what would be sent, return the number of
        rows that would be sent, and send nothing.
    :param allow_resend: let a try send a list whose fingerprint (content or parameters) differs
        from the one this task instance already queued. The same list is never sent twice. A run
        triggered with ``{"fuse_allow_resend": true}`` in its conf allows it too.
    :param fuse_conn_id: the ``fuse`` connection to use.
    """

    template_fields: Sequence[str] = (
        "application_id",
        "deployment_id",
        "csv_path",
        "start_timestamp",
        "end_timestamp",
        "max_attempts",
        "reattempt_wait",
        "result_url",
    )
    ui_color = "#f4a460"

    def __init__(
        self,
        *,
        csv_path: str | os.PathLike[str] | ObjectStoragePath | Asset,
        chunk_size: int | None = None,
        on_duplicate_destinations: Literal["warn", "fail", "drop"] = "warn",
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_duplicate_destinations not in ON_DUPLICATE_DESTINATIONS:
            raise ValueError(
                "on_duplicate_destinations must be 'warn', 'fail' or 'drop', "
                f"got {on_duplicate_destinations!r}"
            )
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
        self.csv_path = csv_path
        self.chunk_size = chunk_size
        self.on_duplicate_destinations = on_duplicate_destinations
        # Not ``self.dry_run``: BaseOperator.dry_run() is Airflow's own method (render templates only).
        self.preflight_only = dry_run

    # --- execute ---------------------------------------------------------------------------------

    def execute(self, context: Context) -> int:
        """Answer from the ledger, or check, preflight and send the list (or what is left of it).

        :return: ``calls_queued`` in total (what earlier tries of this task instance queued included).
        """
        from airflow_provider_fuse.guard import GuardError

        try:
            application_id, deployment_id, fields = self._validated_arguments()
        except FuseValidationError as error:
            raise AirflowFailException(f"Nothing was sent to Fuse: {error}") from None
        where = _where(application_id, deployment_id)
        parameters = self._parameters(application_id, deployment_id, fields)
        ledger = None if self.preflight_only else self._ledger(context, where)
        resend = self._resend(context)
        # A retry or clear after success is answered from the ledger first: the CSV may be gone by now.
        if ledger is not None:
            try:
                recorded = ledger.answer(
                    parameters, retry_unknown=self.on_unknown_outcome == "retry", resend=resend
                )
            except GuardError as error:
                raise AirflowFailException(self._guard_message(error, where)) from None
            if recorded is not None:
                self.log.info(
                    "Nothing sent: an earlier try of this task instance already queued its list (%d calls, "
                    "recorded in the task state store); the CSV was not read, so a change to it is not "
                    "seen. To send a changed list as well, set allow_resend=True or trigger the run with "
                    '{"%s": true}.',
                    recorded,
                    RESEND_CONF_KEY,
                )
                return recorded
        # With nothing recorded, a stale run or a closed window stops here, before the CSV is read;
        # otherwise only once the plan says something is left to send.
        ready = ledger is None or ledger.record is None
        if ready:
            self._ready_to_send(context, fields)
        # What earlier tries queued ("" when nothing): a list that cannot be read or is now empty must
        # not hide it.
        earlier = ledger.record if ledger is not None else None
        queued_before = f"{earlier.calls_queued()} calls" if earlier is not None and earlier.queued else ""

        # Everything written on the way (the snapshot of the CSV, chunks) lives here and is removed
        # whatever happens; a failure to remove it must not fail a task whose list was queued.
        with (
            self._failing_timeouts(guarded=ledger is not None),
            tempfile.TemporaryDirectory(prefix="fuse-bulk-queue-", ignore_cleanup_errors=True) as workdir,
        ):
            try:
                path = self._snapshot(workdir)
                summary = self._preflight(path)
            except FuseValidationError as error:
                raise AirflowFailException(self._unreadable(error, queued_before, resend)) from None
            if summary.rows == 0 and queued_before:
                raise AirflowFailException(
                    "Nothing was sent to Fuse: the CSV now has no contacts, and an earlier try of this "
                    f"task instance queued {queued_before}. Check the campaign in Fuse."
                )
            if summary.rows == 0:
                raise AirflowSkipException("The CSV has a header and no contacts: nothing to queue.")
            self._check_duplicates(summary)
            parts = self._parts(path, summary, workdir)
            rows = sum(part.rows for part in parts)
            if self.preflight_only:
                self._check_connection()
                self._log_dry_run(rows, parts, where, fields)
                return rows
            fingerprint = self._fingerprint(summary, parameters)
            calls_queued, sent = self._send(
                parts, ledger, fingerprint, context, (application_id, deployment_id), fields, ready
            )
            self._best_effort(
                "the summary log line", lambda: self._log_summary(sent, calls_queued, where, fields)
            )
        return calls_queued

    @staticmethod
    def _unreadable(error: FuseValidationError, queued_before: str, resend: bool) -> str:
        """The message for a list that cannot be used, naming what earlier tries queued, if anything."""
        message = f"Nothing was sent to Fuse: {error}"
        if not queued_before:
            return message
        return (
            f"{message.rstrip('.')}. The list is needed to compare it with the {queued_before} an "
            "earlier try of this task instance queued" + (" (allow_resend is set)." if resend else ".")
        )

    def _parameters(self, application_id: int, deployment_id: int, fields: QueueFields) -> dict[str, Any]:
        """Everything besides the CSV that shapes the requests: what the fingerprint's parameters cover."""
        return {
            "application_id": application_id,
            "deployment_id": deployment_id,
            "fields": fields.form_fields(),
            "chunk_size": self.chunk_size,
            "on_duplicate_destinations": self.on_duplicate_destinations,
        }

    def _send(
        self,
        parts: list[CsvPart],
        ledger: BulkQueueLedger | None,
        fingerprint: Fingerprint,
        context: Context,
        ids: tuple[int, int],
        fields: QueueFields,
        ready: bool,
    ) -> tuple[int, int]:
        """Send each part not yet queued, recording intent and result.

        ``ready``: the pre-send checks (:meth:`_ready_to_send`) already passed.

        :return: the total calls queued (earlier tries' parts included) and the rows sent by this try.
        """
        from airflow_provider_fuse.guard import GuardError, Plan

        where = _where(*ids)
        try:
            plan = (
                ledger.plan(
                    fingerprint,
                    len(parts),
                    retry_unknown=self.on_unknown_outcome == "retry",
                    resend=self._resend(context),
                )
                if ledger
                else Plan(start=0, calls_queued=0, resumed=False)
            )
        except GuardError as error:
            raise AirflowFailException(self._guard_message(error, where)) from None
        if plan.start == len(parts):
            self.log.info(
                "Nothing sent: an earlier try of this task instance already queued this list (%d calls, "
                "recorded in the task state store).",
                plan.calls_queued,
            )
            return plan.calls_queued, 0
        if not ready:
            queued_before = (
                f"parts 1-{plan.start} of {len(parts)} ({plan.calls_queued} calls)" if plan.start else ""
            )
            self._ready_to_send(context, fields, queued_before)
        if plan.resumed:
            self.log.info(
                "Resuming at part %d of %d: earlier tries already queued %d calls for the parts before it.",
                plan.start + 1,
                len(parts),
                plan.calls_queued,
            )

        from airflow_provider_fuse.hooks.fuse import FuseHook

        hook = FuseHook(self.fuse_conn_id)
        total, sent = plan.calls_queued, 0
        try:
            # The connection is read and checked before any intent is recorded: a missing or broken
            # connection must not leave an intent behind for a request that never left.
            self._read_connection(hook)
            for index in range(plan.start, len(parts)):
                part = parts[index]
                if ledger:
                    ledger.sending(index, part.rows)
                self._request_left = True
                try:
                    queued = hook.bulk_queue(*ids, part.path, **_request_fields(fields))
                except FuseError as error:
                    if ledger and nothing_queued(error):
                        ledger.not_queued(index)
                    raise self._task_failure(
                        error,
                        where,
                        part_index=index,
                        parts=parts,
                        queued_before=total,
                        guarded=ledger is not None,
                    ) from error
                # From Fuse's 200 on, nothing may fail the task: a retry would dial these contacts again.
                if ledger:
                    self._best_effort(
                        f"recording part {index + 1} as queued in the task state store (a later try of this "
                        "task will refuse to send until that part is checked in Fuse)",
                        partial(ledger.queued, index, queued),
                    )
                total += queued
                sent += part.rows
                if len(parts) > 1:
                    self._best_effort(
                        "a progress log line",
                        partial(
                            self.log.info,
                            "Part %d of %d: %d rows (%s), %d calls queued",
                            index + 1,
                            len(parts),
                            part.rows,
                            _rows_of(part),
                            queued,
                        ),
                    )
        finally:
            self._best_effort("closing the connection to Fuse", hook.close)
        return total, sent

    def _log_summary(self, sent: int, calls_queued: int, where: str, fields: QueueFields) -> None:
        self.log.info(
            "Fuse bulk_queue: %d rows sent, %d calls queued, %s, window %s",
            sent,
            calls_queued,
            where,
            fields.describe_window(),
        )
        if calls_queued < sent:
            self.log.warning(
                "Fuse queued %d calls for %d rows sent: %d rows were not queued. Check the deployment's "
                "outbound calls in Fuse.",
                calls_queued,
                sent,
                sent - calls_queued,
            )
        elif calls_queued > sent and sent:
            self.log.warning(
                "Fuse says it queued %d calls for %d rows sent: more calls than rows. Check the deployment's "
                "outbound calls in Fuse.",
                calls_queued,
                sent,
            )

    # --- checks ----------------------------------------------------------------------------------

    def _snapshot(self, workdir: str) -> str:
        """Copy the CSV artifact into ``workdir`` and return the copy's path: what is checked and sent.

        The preflight, the fingerprint, the parts and the upload all read this private copy, so
        whatever happens to the artifact afterwards (appended to, rewritten, replaced, moved,
        deleted) exactly the checked bytes are sent. A local file is read through one descriptor
        and must not change while it is copied; only regular files are read. An object storage URI,
        an ``ObjectStoragePath`` or an Asset naming the CSV is resolved here, at execute time.

        :raises FuseCsvError: the artifact is missing, not a regular file, unreadable, or changed
            while it was copied.
        """
        source: Any = self.csv_path
        directory = os.path.join(workdir, "source")
        os.mkdir(directory, 0o700)
        if _is_remote_source(source):
            from airflow.sdk import Asset, ObjectStoragePath

            if isinstance(source, Asset):
                source = source.uri
            if isinstance(source, str):
                source = ObjectStoragePath(source.strip())
            if source.protocol not in ("file", "local"):
                return self._spool(source, directory)
            source = str(source.path)
        if isinstance(source, os.PathLike):
            source = os.fspath(source)
        if not isinstance(source, str) or not source.strip() or source.strip() == "None":
            raise FuseValidationError("csv_path", f"must be the path of the contact CSV, got {source!r}")
        from airflow_provider_fuse.snapshot import copy_regular_file

        copy = os.path.join(directory, os.path.basename(source) or "contacts.csv")
        copy_regular_file(source, copy)
        return copy

    def _spool(self, source: Any, directory: str) -> str:
        """Copy a remote object into ``directory`` in blocks (memory stays flat); return the local path."""
        import shutil

        from airflow_provider_fuse.exceptions import FuseCsvError

        local = os.path.join(directory, source.name or "contacts.csv")
        self.log.info("Reading %s into a temporary file for the preflight and the upload", source)
        try:
            with source.open("rb") as remote, open(local, "wb") as copy:
                shutil.copyfileobj(remote, copy, 1 << 20)
        except FileNotFoundError:
            raise FuseCsvError(f"no such object: {source}") from None
        except IsADirectoryError:
            raise FuseCsvError(f"is a directory, not a CSV object: {source}") from None
        return local

    def _preflight(self, path: str) -> CsvSummary:
        from airflow_provider_fuse.preflight import preflight_csv

        summary = preflight_csv(path)
        self.log.info(
            "CSV preflight passed: %d contacts, %d columns, %d bytes",
            summary.rows,
            summary.columns,
            summary.size,
        )
        if summary.has_bom:
            self.log.warning("The CSV starts with a UTF-8 byte-order mark; it is sent as it is.")
        if summary.destination_column != 1:
            self.log.warning(
                "'destination' is column %d, not the first; Plum's older documentation wants it first.",
                summary.destination_column,
            )
        return summary

    def _check_duplicates(self, summary: CsvSummary) -> None:
        if not summary.duplicate_rows:
            return
        rows = ", ".join(str(number) for number in summary.duplicate_row_numbers)
        more = "" if summary.duplicate_rows <= len(summary.duplicate_row_numbers) else ", …"
        described = (
            f"{summary.duplicate_rows} of {summary.rows} rows repeat the destination of an earlier row "
            f"(rows {rows}{more}; the header is row 1)"
        )
        if self.on_duplicate_destinations == "fail":
            raise AirflowFailException(
                f"Nothing was sent to Fuse: {described}; on_duplicate_destinations='fail'."
            )
        if self.on_duplicate_destinations == "drop":
            self.log.warning("%s: dropping them, the first row of each number is sent.", described)
        else:
            self.log.warning("%s: each would be called once per row.", described)

    def _parts(self, path: str, summary: CsvSummary, workdir: str) -> list[CsvPart]:
        """The files to send: the CSV itself, or parts written into ``workdir`` (chunks, repeats dropped)."""
        from airflow_provider_fuse.preflight import CsvPart, write_csv_parts

        drop = self.on_duplicate_destinations == "drop" and summary.duplicate_rows > 0
        if self.chunk_size is None and not drop:
            return [CsvPart(path=path, rows=summary.rows, first_row=2, last_row=summary.rows + 1)]
        return write_csv_parts(path, workdir, chunk_size=self.chunk_size, drop_duplicate_destinations=drop)

    def _check_connection(self) -> None:
        """Read and check the ``fuse`` connection as a real run would, without any request."""
        from airflow_provider_fuse.hooks.fuse import FuseHook

        self._read_connection(FuseHook(self.fuse_conn_id))

    def _log_dry_run(self, rows: int, parts: list[CsvPart], where: str, fields: QueueFields) -> None:
        shown: dict[str, object] = {
            name: value for name, value in fields.form_fields().items() if name != "is_pci"
        }
        if "result_url" in shown:
            shown["result_url"] = shown_url(shown["result_url"])
        sent = ", ".join(f"{name}={value}" for name, value in shown.items())
        if fields.is_pci:
            sent = f"{sent}, is_pci=1" if sent else "is_pci=1"
        self.log.info(
            "Dry run, nothing sent: would queue %d rows in %d request(s) to %s, window %s, fields: %s",
            rows,
            len(parts),
            where,
            fields.describe_window(),
            sent or "(none)",
        )

    # --- the duplicate guard ---------------------------------------------------------------------

    def _ledger(self, context: Context, where: str) -> BulkQueueLedger | None:
        """This task instance's ledger, read from its state store; ``None`` without one (Airflow < 3.3)."""
        from airflow_provider_fuse.guard import BulkQueueLedger, GuardError

        store = self._state_store(context)
        if store is None:
            return None
        try:
            return BulkQueueLedger(store)
        except GuardError as error:
            raise AirflowFailException(self._guard_message(error, where)) from None

    @staticmethod
    def _fingerprint(summary: CsvSummary, parameters: dict[str, Any]) -> Fingerprint:
        from airflow_provider_fuse.guard import Fingerprint

        return Fingerprint.of(summary.sha256, **parameters)

    def _guard_message(self, error: Exception, where: str) -> str:
        from airflow_provider_fuse.guard import ListChanged, UnknownOutcomeRecorded

        if isinstance(error, UnknownOutcomeRecorded):
            return (
                f"Not sending: the outcome of an earlier try is unknown: {error}. Fuse may have queued those "
                f"calls. Check the pending outbound calls of {where} in Fuse. If they are there, mark "
                "this task success. If not, delete this task instance's state-store key "
                "'airflow_provider_fuse.bulk_queue' (REST API: DELETE "
                ".../taskInstances/{task_id}/state-store/{key}) and clear the task, or set "
                "on_unknown_outcome='retry'."
            )
        if isinstance(error, ListChanged):
            return (
                f"Not sending: {error}. Sending the new list could call people twice. If it is meant to be "
                f"sent in addition to what {where} already has, set allow_resend=True or trigger the run "
                f'with {{"{RESEND_CONF_KEY}": true}}.'
            )
        return f"Not sending: {error}."

    # --- outcomes --------------------------------------------------------------------------------

    def _task_failure(
        self,
        error: FuseError,
        where: str,
        *,
        part_index: int = 0,
        parts: list[CsvPart] | None = None,
        queued_before: int = 0,
        guarded: bool = False,
    ) -> AirflowException:
        """A Fuse failure of the bulk upload as a task outcome: :func:`task_failure`, plus parts.

        A failed part is named with the rows of the original file it holds: Fuse's own text (a row
        number, say) counts within the part it was sent.
        """
        count = len(parts or ())
        part = ""
        if parts and count > 1:
            sent = parts[part_index]
            part = (
                f" (part {part_index + 1} of {count}: {_rows_of(sent)} of the file; row numbers in Fuse's "
                f"text count within this part, whose first data row is the file's row {sent.first_row})"
            )
        outcome = task_failure(
            error,
            unknown_outcome=(
                f"Fuse may have queued some or all of the calls. Check the pending outbound calls of {where} "
                "in Fuse before running this task again: a retry could dial every contact twice."
            ),
            on_unknown_outcome=self.on_unknown_outcome,
            part=part,
        )
        if part_index > 0 and not guarded:
            # Without the guard a retry would start again at part 1 and re-send what Fuse queued.
            return AirflowFailException(
                f"{outcome}. Parts 1-{part_index} were queued ({queued_before} calls); without the "
                "duplicate guard (Airflow >= 3.3) a retry would send them again, so this task is not retried."
            )
        if isinstance(error, FuseValidationError) and queued_before:
            # e.g. the window closed during the upload: this part was not sent, earlier ones were.
            return AirflowFailException(
                f"Part {part_index + 1} of {count} was not sent: {error}. The parts before it were queued "
                f"({queued_before} calls)."
            )
        return outcome


def task_failure(
    error: FuseError,
    *,
    unknown_outcome: str,
    on_unknown_outcome: Literal["fail", "retry"] = "fail",
    part: str = "",
) -> AirflowException:
    """The one place where a Fuse failure becomes a task outcome, for every operator.

    * invalid input (nothing sent) → :class:`AirflowFailException`, no retries;
    * unknown outcome → fails without retries, saying ``unknown_outcome`` (what may have happened and
      what to check), unless ``on_unknown_outcome="retry"`` leaves it to the task's retries;
    * a retryable failure (not sent, 429) → :class:`AirflowException`: the task's retries apply;
    * any other rejection → :class:`AirflowFailException` in Fuse's words.

    :param part: a suffix naming the part of a chunked upload, e.g. ``" (part 2 of 3)"``.
    """
    if isinstance(error, FuseValidationError):
        return AirflowFailException(f"Nothing was sent to Fuse: {error}")
    if isinstance(error, FuseUnknownOutcomeError):
        message = f"Unknown outcome{part}: {error}. {unknown_outcome}"
        if on_unknown_outcome == "retry":
            return AirflowException(message + " (on_unknown_outcome='retry': retrying)")
        return AirflowFailException(message)
    if isinstance(error, FuseApiError) and error.retryable:
        return AirflowException(f"{error}{part}")
    return AirflowFailException(f"{error}{part}" if part else str(error))


def _is_remote_source(source: object) -> bool:
    """Whether ``csv_path`` names an object storage path or an Asset rather than a local path."""
    if isinstance(source, str):
        return "://" in source
    # Checked by name so that parsing a DAG with a local path never imports the object-storage stack.
    return any(cls.__name__ in ("ObjectStoragePath", "Asset") for cls in type(source).__mro__)


def _where(application_id: int, deployment_id: int) -> str:
    """The deployment a message is about, as every message names it."""
    return f"application {application_id} / deployment {deployment_id}"


def _request_fields(fields: QueueFields) -> dict[str, Any]:
    """The request fields as the hook's queueing methods take them."""
    return {
        "start_timestamp": fields.start_timestamp,
        "end_timestamp": fields.end_timestamp,
        "max_attempts": fields.max_attempts,
        "reattempt_wait": fields.reattempt_wait,
        "result_url": fields.result_url,
        # The default (False) sends no is_pci field at all: Fuse's own default.
        "is_pci": fields.is_pci or None,
    }


def _rows_of(part: CsvPart) -> str:
    """The rows of the original file a part holds (the header is row 1)."""
    if part.rows == part.last_row - part.first_row + 1:
        return f"rows {part.first_row}-{part.last_row}"
    return f"{part.rows} rows between rows {part.first_row} and {part.last_row}"


def _run_due(context: Context) -> tuple[datetime | None, str]:
    """When the run was due: its ``run_after``, else its data interval's end, else its logical date."""
    run_after = getattr(context.get("dag_run"), "run_after", None)
    for value, what in (
        (run_after, "run_after"),
        (context.get("data_interval_end"), "data_interval_end"),
        (context.get("logical_date"), "logical_date"),
    ):
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value, what
    return None, ""


def _round(age: timedelta) -> timedelta:
    return timedelta(seconds=int(age.total_seconds()))


def _clears_on_success() -> bool:
    from airflow_provider_fuse._compat import conf

    return bool(conf.getboolean("state_store", "clear_on_success", fallback=False))


# --- queue: one call, and cancel ---------------------------------------------------------------------


class FuseQueueCallOperator(_FuseQueueingOperator):
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
        JSON object. (templated: each value is rendered)
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
    :param max_run_age: skip, instead of calling, when the run was due (its ``run_after``) longer ago
        than this (default one day; ``None`` disables): catch-up runs do not make yesterday's calls.
    :param allow_resend: let a try queue a call whose number, parameters or fields differ from the
        call this task instance already queued (also ``{"fuse_allow_resend": true}`` in the run's conf).
    :param fuse_conn_id: the ``fuse`` connection to use.
    """

    template_fields: Sequence[str] = (
        "application_id",
        "deployment_id",
        "phone_number",
        "call_parameters",
        "start_timestamp",
        "end_timestamp",
        "max_attempts",
        "reattempt_wait",
        "result_url",
    )
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
        from airflow_provider_fuse.fields import to_call_parameters, to_phone_number
        from airflow_provider_fuse.guard import GuardError

        try:
            application_id, deployment_id, fields = self._validated_arguments()
            phone_number = to_phone_number(type(self).phone_number.value(self))
            given = type(self).call_parameters.value(self)
            parameters = None if given is None else to_call_parameters(given)
        except FuseValidationError as error:
            raise AirflowFailException(f"Nothing was sent to Fuse: {error}") from None
        # Also masked here for a direct execute() without rendering; registering twice is harmless.
        mask_personal_data(phone_number, parameters)
        ti = context.get("ti")
        if getattr(ti, "map_index", -1) not in (-1, None):
            self.log.warning(
                "This task is mapped: Plum warns that queuing many single calls can get every call "
                "rejected. Use FuseBulkQueueOperator for a list."
            )
        where = _where(application_id, deployment_id)

        ledger = self._ledger(context, application_id, deployment_id, phone_number, parameters, fields)
        if ledger is not None:
            try:
                recorded = ledger.plan(
                    retry_unknown=self.on_unknown_outcome == "retry", resend=self._resend(context)
                )
            except GuardError as error:
                raise AirflowFailException(_call_guard_message(error, where)) from None
            if recorded is not None:
                self.log.info(
                    "Not calling again: an earlier try of this task instance already queued this call "
                    "(call id %s, recorded in the task state store).",
                    recorded,
                )
                return recorded
        # A stale run or a closed window blocks a new call, not the answer a clear gets above.
        self._ready_to_send(context, fields)

        from airflow_provider_fuse.hooks.fuse import FuseHook

        with self._failing_timeouts(guarded=ledger is not None):
            hook = FuseHook(self.fuse_conn_id)
            try:
                self._read_connection(hook)
                if ledger is not None:
                    ledger.sending()
                self._request_left = True
                call_id = hook.queue_call(
                    application_id,
                    deployment_id,
                    phone_number,
                    call_parameters=parameters,
                    **_request_fields(fields),
                )
            except FuseError as error:
                if ledger is not None and nothing_queued(error):
                    ledger.not_queued()
                raise task_failure(
                    error,
                    unknown_outcome=(
                        f"Fuse may have queued the call. Check the outbound calls of {where} in Fuse before "
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
                    "Fuse queued call %s: %s, window %s", call_id, where, fields.describe_window()
                ),
            )
        return call_id

    def _ledger(
        self,
        context: Context,
        application_id: int,
        deployment_id: int,
        phone_number: str,
        parameters: dict[str, Any] | None,
        fields: QueueFields,
    ) -> QueueCallLedger | None:
        from airflow_provider_fuse.guard import Fingerprint, GuardError, QueueCallLedger

        store = self._state_store(context)
        if store is None:
            return None
        fingerprint = Fingerprint.of_call(
            phone_number,
            parameters,
            application_id=application_id,
            deployment_id=deployment_id,
            fields=fields.form_fields(),
        )
        try:
            return QueueCallLedger(store, fingerprint)
        except GuardError as error:
            where = _where(application_id, deployment_id)
            raise AirflowFailException(_call_guard_message(error, where)) from None


class FuseCancelCallsOperator(BaseOperator):
    """Cancel every pending call of a deployment: the emergency stop of a campaign.

    Sends ``DELETE /apps/{application_id}/{deployment_id}/cancel``; Fuse's 202 means done. Fuse
    documents no per-call cancel: this stops every call of the deployment that has not ended — those
    queued by :class:`FuseBulkQueueOperator`, :class:`FuseQueueCallOperator`, or anyone else. Whether
    a call already ringing or connected counts as pending is not documented.

    A rejection (4xx: 404 no such deployment, 401, 403, ...) fails the task without retries in Fuse's
    words; 429 and "not sent" are left to the task's retries. An unknown outcome (5xx, a lost answer)
    is retried by default: canceling twice is harmless, and a stop that gives up is worse.

    :param application_id: the outbound deployment's application id. (templated)
    :param deployment_id: the outbound deployment's deployment id. (templated)
    :param on_unknown_outcome: ``"retry"`` (default) or ``"fail"``.
    :param fuse_conn_id: the ``fuse`` connection to use.
    """

    template_fields: Sequence[str] = ("application_id", "deployment_id")
    ui_color = "#e9967a"

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        on_unknown_outcome: Literal["fail", "retry"] = "retry",
        fuse_conn_id: str = "fuse_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_unknown_outcome not in ON_UNKNOWN_OUTCOME:
            raise ValueError(f"on_unknown_outcome must be 'fail' or 'retry', got {on_unknown_outcome!r}")
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.on_unknown_outcome = on_unknown_outcome
        self.fuse_conn_id = fuse_conn_id

    def execute(self, context: Context) -> None:
        """Validate the ids and cancel the deployment's pending calls."""
        try:
            application_id = to_positive_id("application_id", self.application_id)
            deployment_id = to_positive_id("deployment_id", self.deployment_id)
        except FuseValidationError as error:
            raise AirflowFailException(f"Nothing was sent to Fuse: {error}") from None
        where = _where(application_id, deployment_id)

        from airflow_provider_fuse.hooks.fuse import FuseHook

        hook = FuseHook(self.fuse_conn_id)
        try:
            hook.cancel_calls(application_id, deployment_id)
        except FuseError as error:
            raise task_failure(
                error,
                unknown_outcome=(
                    f"Fuse may or may not have canceled the pending calls of {where}; canceling again is "
                    "harmless. Check the deployment's outbound calls in Fuse."
                ),
                on_unknown_outcome=self.on_unknown_outcome,
            ) from error
        finally:
            hook.close()
        self.log.info("Fuse canceled the pending calls of %s.", where)


def _call_guard_message(error: Exception, where: str) -> str:
    from airflow_provider_fuse.guard import UnknownOutcomeRecorded

    if isinstance(error, UnknownOutcomeRecorded):
        return (
            f"Not calling: the outcome of an earlier try is unknown: {error}. Fuse may have queued the call. "
            f"Check the outbound calls of {where} in Fuse. If it is there, mark this task success. If not, "
            "delete this task instance's state-store key 'airflow_provider_fuse.queue_call' and clear the "
            "task, or set on_unknown_outcome='retry'."
        )
    return (
        f"Not calling: {error}. If the new call is meant to be made in addition, set allow_resend=True or "
        f'trigger the run with {{"{RESEND_CONF_KEY}": true}}.'
    )
