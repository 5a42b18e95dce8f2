"""FuseBulkQueueOperator: hand an upstream contact CSV to Fuse's ``bulk_queue`` from a DAG.

Imports of requests, requests-toolbelt and the preflight happen in ``execute``: DAG parsing pays
for this module on every parse.
"""

from __future__ import annotations

import errno
import tempfile
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_fuse import decisions
from airflow_provider_fuse._compat import AirflowException, AirflowFailException, AirflowSkipException
from airflow_provider_fuse.exceptions import (
    FuseError,
    FuseUnknownOutcomeError,
    FuseValidationError,
    nothing_queued,
    without_may_have_queued,
)
from airflow_provider_fuse.links import FuseCampaignLink
from airflow_provider_fuse.masking import sealed_suppression_list
from airflow_provider_fuse.masking import shown_url as shown_url  # importable from here, as it was
from airflow_provider_fuse.operators import contact_list, dialing_plan
from airflow_provider_fuse.operators.base import where
from airflow_provider_fuse.operators.queueing import (
    QUEUE_TEMPLATE_FIELDS,
    BaseFuseQueueingOperator,
    request_fields,
    shown_fields,
)
from airflow_provider_fuse.operators.reruns import RESEND_CONF_KEY, guard_refusal
from airflow_provider_fuse.operators.task_failures import (
    ON_UNKNOWN_OUTCOME,
    bulk_queue_failure,
    nothing_sent,
    rows_between,
    rows_of,
)
from airflow_provider_fuse.results.campaign import RESULTS_XCOM_KEY, SentList, dialing_window_end

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    from airflow.sdk import Asset, Context, ObjectStoragePath

    from airflow_provider_fuse.calling_hours import Window
    from airflow_provider_fuse.fields import QueueFields
    from airflow_provider_fuse.guard import BulkQueueLedger, CampaignRecord, Fingerprint, Plan, Record
    from airflow_provider_fuse.hooks.fuse import ProbeAnswer
    from airflow_provider_fuse.preflight import CsvPart
    from airflow_provider_fuse.results.config import ResultsConfig
    from airflow_provider_fuse.suppression import SuppressionList, SuppressionSource

__all__ = [
    "PLAN_XCOM_KEY",
    "RESULTS_XCOM_KEY",
    "FuseBulkQueueOperator",
    "dialing_window_end",
    "probe_receiver",
]

#: The XCom of the rows the plan left out, counts only: ``{"suppressed", "unplaceable", "outside_hours"}``.
PLAN_XCOM_KEY = "fuse_plan"


class FuseBulkQueueOperator(BaseFuseQueueingOperator):
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

    With ``collect_results=True`` each call's outcome comes back into the results table (the
    ``[fuse]`` config section, :mod:`airflow_provider_fuse.results`): every part sent gets a
    ``result_url`` of its own, ``<results_base_url>/fuse/results/<token>``, whose signed token names
    this task instance, the part and its rows, and expires ``results_token_lifetime`` seconds after
    the dialing window (:func:`dialing_window_end`). Before anything is recorded or sent, the signing
    key, ``results_base_url`` and the results table's connection are checked: any of them unusable
    fails the task without retries, naming the option. Tokens and the key are registered with the
    secret masker; they are never logged, rendered or pushed to XCom. Each token also names the
    campaign: an id made when the task instance first sends its list and kept in the duplicate
    guard's ledger, so a retry, a resumed upload or a clear keeps it while a run deleted and
    triggered again under the same run id gets a new one (on Airflow < 3.3, with no ledger, every try
    that sends is a new campaign). Before dialing, the operator POSTs an empty body to the first
    part's own ``result_url`` (:func:`probe_receiver`): a receiver that could store no outcome (it
    refuses the token, says it is not configured, is not at that URL, or the URL is a loopback
    address where nothing listens) fails the task before any call is made; one out of this
    worker's reach, or any other answer (a proxy's 403 too), is a warning.

    The XCom ``fuse_results`` records what
    :class:`~airflow_provider_fuse.sensors.campaign_results.FuseCampaignResultsSensor` needs — no
    personal data: ``{"campaign", "confirmed", "calls_queued", "rows", "window_end",
    "queued_timestamp", "start_timestamp", "last_attempt_timestamp"}``. It is pushed before the list
    is sent (``confirmed: false``, ``calls_queued: null``), so that after an unknown outcome, checked
    in Fuse and marked success, the sensor still waits (for up to ``rows`` outcomes); again, still
    unconfirmed, when a part's window closed while the parts before it were sent (its rows are not
    waited for: it is not sent); again on success with Fuse's count; and when a retry or clear is
    answered from the ledger, with the campaign and the times of the send it recorded. A try that
    sends nothing and fails (the ledger refuses it after an unknown outcome, or a check stops it)
    pushes what earlier tries sent, as the ledger recorded it: its XComs were cleared when it
    started, and a mark success may follow.

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
        call ends; not with ``collect_results``. (templated)
    :param collect_results: give each part a signed ``result_url`` of the results receiver, so call
        outcomes land in the results table (see above); giving ``result_url`` too is a ``ValueError``
        when the DAG is parsed. Default ``False``.
    :param is_pci: run connected calls in Fuse's HIPAA/PCI secure environment (bool or 0/1). When
        false (the default) no ``is_pci`` field is sent: Fuse's default, the normal environment.
    :param on_unknown_outcome: ``"fail"`` (default) or ``"retry"``; see above.
    :param chunk_size: rows per request; default ``None``, the whole list in one request. Each chunk
        is sent as a CSV of its own, with the header; the result is the total.
    :param on_duplicate_destinations: what to do when rows repeat a destination (the same number,
        in any of Fuse's formats): ``"warn"`` (default: log how many), ``"fail"``, or ``"drop"``
        (send the list without the repeats; the first row of each number is kept).
    :param calling_hours: ``("HH:MM", "HH:MM")``, local times (24-hour clock, the end excluded): each
        row is called only within these hours in every time zone its number may ring in; rows are
        grouped by zone and each group sent in parts of its own with its window
        (:mod:`~airflow_provider_fuse.operators.dialing_plan`). Default ``None``: no local hours.
    :param on_unknown_time_zone: with ``calling_hours``, a row whose number gives no time zone:
        ``"fail"`` (default, before sending), ``"skip"`` (left out, counted) or ``"country"`` (within the
        hours of every zone of its country). Any other than ``"fail"`` without ``calling_hours`` is a
        ``ValueError`` when the DAG is parsed.
    :param suppression_list: numbers never to call: a CSV path or object-storage path, an
        ``ObjectStoragePath``, a list of numbers, or a
        :class:`~airflow_provider_fuse.suppression.SuppressionQuery`. Rows dialing one of them are
        left out, counted; a list that cannot be read fails the task before anything is sent. Once
        rendered, a list shows as its count of numbers. (templated)
    :param max_run_age: skip, instead of dialing, when the run was due (its ``run_after``) longer ago
        than this (catch-up and backfills must not call people from an old list); a retry that finds
        parts already queued fails instead. Default one day; ``None`` disables the check.
    :param dry_run: run every check and the preflight, log what would be sent, return the number of
        rows that would be sent (not those suppressed, with no time zone, or outside calling hours),
        and send nothing.
    :param allow_resend: let a try send a list whose fingerprint (content or parameters) differs
        from the one this task instance already queued. The same list is never sent twice. A run
        triggered with ``{"fuse_allow_resend": true}`` in its conf allows it too.
    :param fuse_conn_id: the ``fuse`` connection to use; read before anything is recorded or sent.
        (templated)
    :param hook_params: settings of the :class:`~airflow_provider_fuse.hooks.fuse.FuseHook` the
        operator builds: ``connect_retries``, ``retry_backoff``, ``progress_interval``. Checked when
        the DAG is parsed; an unknown or invalid setting is a ``ValueError`` naming it.
    """

    template_fields: Sequence[str] = (
        "application_id",
        "deployment_id",
        "csv_path",
        *QUEUE_TEMPLATE_FIELDS,
        "fuse_conn_id",
        "suppression_list",
    )
    ui_color = "#f4a460"
    operator_extra_links = (FuseCampaignLink(),)

    #: Once rendered, a list of numbers shows as its count, a path as itself (see masking). Checked
    #: on every assignment outside rendering: in ``__init__`` or later in the DAG file.
    suppression_list = sealed_suppression_list(dialing_plan.check_suppression_source)
    unknown_outcome_choices = (*ON_UNKNOWN_OUTCOME, "ask")

    def __init__(
        self,
        *,
        csv_path: str | os.PathLike[str] | ObjectStoragePath | Asset,
        chunk_size: int | None = None,
        on_duplicate_destinations: Literal["warn", "fail", "drop"] = "warn",
        dry_run: bool = False,
        collect_results: bool = False,
        calling_hours: tuple[str, str] | None = None,
        on_unknown_time_zone: Literal["fail", "skip", "country"] = "fail",
        suppression_list: SuppressionSource | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.calling_hours = calling_hours
        self.on_unknown_time_zone = on_unknown_time_zone
        self._check_time_zone_policy()
        self.suppression_list = suppression_list
        if not isinstance(collect_results, bool):
            raise ValueError(f"collect_results must be True or False, got {collect_results!r}")
        if collect_results and "result_url" in self._given:
            raise ValueError(
                "collect_results=True builds a signed result_url for each part itself: give "
                "result_url or collect_results, not both"
            )
        if on_duplicate_destinations not in contact_list.ON_DUPLICATE_DESTINATIONS:
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
        self.collect_results = collect_results

    # Properties, so that a value assigned after construction (in the DAG file) is checked as well.
    @property
    def calling_hours(self) -> tuple[str, str] | None:
        """``("HH:MM", "HH:MM")`` or ``None``: checked and kept in one form on every assignment."""
        return self._calling_hours

    @calling_hours.setter
    def calling_hours(self, value: object) -> None:
        self._calling_hours = dialing_plan.checked_calling_hours(value)

    @property
    def on_unknown_time_zone(self) -> Literal["fail", "skip", "country"]:
        """One of :data:`~.dialing_plan.ON_UNKNOWN_TIME_ZONE`: checked on every assignment."""
        return self._on_unknown_time_zone

    @on_unknown_time_zone.setter
    def on_unknown_time_zone(self, value: Literal["fail", "skip", "country"]) -> None:
        dialing_plan.check_on_unknown_time_zone(value)
        self._on_unknown_time_zone = value

    def _check_time_zone_policy(self) -> None:
        """:raises ValueError: ``on_unknown_time_zone`` other than ``"fail"`` without ``calling_hours``
        (checked in ``__init__`` and again at execute, after any later assignment)."""
        if self.on_unknown_time_zone != "fail" and self.calling_hours is None:
            raise ValueError(
                f"on_unknown_time_zone={self.on_unknown_time_zone!r} applies only with calling_hours (it "
                "decides the calling hours of a number with no time zone): give calling_hours too, or "
                "leave on_unknown_time_zone out"
            )

    @property
    def _suppression_given(self) -> bool:
        """Whether a suppression list was given (in ``__init__`` or assigned later): if so, a value
        that renders ``None`` fails the task rather than sending without the list."""
        return bool(type(self).suppression_list.was_given(self))

    def execute(self, context: Context) -> int:
        """Answer from the ledger, or check, preflight and send the list (or what is left of it).

        :return: ``calls_queued`` in total (what earlier tries of this task instance queued included).
        """
        return self._run(context)

    def execute_decided(
        self,
        context: Context,
        event: dict[str, Any],
        part: int,
        rows: int = 0,
        queued: list[list[int]] | None = None,
        sent_list: dict[str, str] | None = None,
    ) -> int:
        """Resumed with a person's answer about a part whose outcome was unknown.

        :param part: the part's index.
        :param rows: without the duplicate guard (Airflow < 3.3), the part's rows.
        :param queued: without the duplicate guard (Airflow < 3.3), the parts this try queued before it,
            ``[[index, calls_queued], ...]``; with the guard, the ledger knows them.
        :param sent_list: without the guard, the fingerprint of the list being sent, sealed: the list
            read again must be the same.
        """
        answer = decisions.answer_of(decisions.UNKNOWN_OUTCOME, event)
        self.log.info(
            "Part %d: %r, answered by %s at %s.", part + 1, answer.chosen, answer.who(), answer.when()
        )
        return self._run(context, settled=_Settled(part, answer, rows, queued, sent_list))

    def _run(
        self,
        context: Context,
        approved: tuple[decisions.Answer, dict[str, str]] | None = None,
        settled: _Settled | None = None,
    ) -> int:
        """One go at the list: from the start, or resumed with a person's answer (an approval, see
        :meth:`execute_approved`, or an answer about an unknown outcome)."""
        # A person's answer this try resumed with: Airflow keeps one question per try, so it asks no other.
        self._approved = approved
        self._settled = settled
        self._asked = approved is not None or settled is not None
        # Without the duplicate guard, where an answered unknown outcome resumes the list.
        self._resume: Plan | None = None
        # With it, the record the answer settled: what is sent next must be that list.
        self._settled_record: Record | None = None
        # The campaign this try sends under, once set (collect_results): pushed with the count.
        self._campaign: CampaignRecord | None = None
        # The ledger as this try read it: what earlier tries sent, for a try that fails before sending.
        self._read_ledger: BulkQueueLedger | None = None
        # The plan of this try (calling hours, suppression list), once made: what it left out.
        self._planned: dialing_plan.Router | None = None
        # The suppression list as this try read it (once: before the ledger answers, or for the plan).
        self._suppression_read: SuppressionList | None = None
        try:
            return self._execute(context)
        except Exception:
            # A try stopped before sending (the guard refused it, or a check failed) starts with its
            # XComs wiped: what earlier tries sent must still reach the sensor (a mark success follows).
            if self.collect_results and self._campaign is None and self._read_ledger is not None:
                self._push_what_was_sent(context, self._read_ledger)
            raise

    def _execute(self, context: Context) -> int:
        from airflow_provider_fuse.guard import LEDGER_KEY, GuardError, UnknownOutcomeRecorded

        try:
            self._check_time_zone_policy()  # again: either may have been assigned after __init__
        except ValueError as error:
            raise nothing_sent(error) from None
        try:
            application_id, deployment_id, fields = self._validated_arguments()
        except FuseValidationError as error:
            raise nothing_sent(error) from None
        at = where(application_id, deployment_id)
        parameters = self._parameters(application_id, deployment_id, fields)
        ledger = None if self.preflight_only else self._ledger(context, at)
        self._read_ledger = ledger
        if not self.preflight_only:
            self._check_questions(guarded=ledger is not None)
        resend = self._resend(context)
        # What earlier tries queued ("" when nothing): a list that cannot be read or is now empty must
        # not hide it.
        earlier = ledger.record if ledger is not None else None
        queued_before = f"{earlier.calls_queued()} calls" if earlier is not None and earlier.queued else ""
        # A retry or clear after success is answered from the ledger first: the CSV may be gone by now.
        # The suppression list is read before it answers: a number added to it since is a changed list,
        # and nothing is confirmed without it.
        if self._settled is not None:
            self._settle(ledger, at)
            earlier = ledger.record if ledger is not None else None
            if earlier is not None and earlier.queued:
                queued_before = f"{earlier.calls_queued()} calls"
            if self._resume is not None:
                queued_before = f"{self._resume.calls_queued} calls"
        if ledger is not None:
            suppression = self._suppression(queued_before, resend) if earlier is not None else None
            try:
                recorded = ledger.answer(
                    parameters,
                    suppression_list=None if suppression is None else suppression.sha256,
                    # A part answered "did not queue" is still recorded unknown until the list is checked.
                    retry_unknown=self.on_unknown_outcome == "retry" or self._settled is not None,
                    resend=resend,
                )
            except UnknownOutcomeRecorded as error:
                if self.on_unknown_outcome == "ask" and not self._asked:
                    self._ask_recorded(context, ledger, at)
                raise guard_refusal(error, at, LEDGER_KEY) from None
            except GuardError as error:
                raise guard_refusal(error, at, LEDGER_KEY) from None
            if recorded is not None and self._settled is not None:
                self.log.info(
                    "Nothing more to send: with part %d recorded as queued on the answer of %s, the whole "
                    "list is queued (%d calls; that part's rows are counted as its calls: Fuse's own count "
                    "never arrived).",
                    self._settled.part + 1,
                    self._settled.answer.who(),
                    recorded,
                )
            elif recorded is not None:
                self.log.info(
                    "Nothing sent: an earlier try of this task instance already queued its list (%d calls, "
                    "recorded in the task state store); the CSV was not read, so a change to it is not "
                    "seen%s. To send a changed list as well, set allow_resend=True or trigger the run with "
                    '{"%s": true}.',
                    recorded,
                    "" if suppression is None else " (the suppression list was read: it is unchanged)",
                    RESEND_CONF_KEY,
                )
            if recorded is not None:
                # The calls are queued: the sensor needs the record, and nothing else is checked here
                # (a results database down now must not fail a task whose list Fuse already has).
                if self.collect_results:
                    self._push_results(context, self._recorded_campaign(ledger, fields, recorded), recorded)
                return recorded
        # With nothing recorded, a stale run or a closed window stops here, before the CSV is read;
        # otherwise only once the plan says something is left to send.
        ready = (ledger is None and self._resume is None) or (ledger is not None and ledger.record is None)
        if ready:
            self._ready_to_send(context, fields)
        # Before anything is sent: where the outcomes go.
        results = self._results(context, queued_before) if self.collect_results else None

        # Everything written on the way (the snapshot of the CSV, chunks) lives here and is removed
        # whatever happens; a failure to remove it must not fail a task whose list was queued.
        with (
            self._failing_timeouts(guarded=ledger is not None),
            tempfile.TemporaryDirectory(prefix="fuse-bulk-queue-", ignore_cleanup_errors=True) as workdir,
        ):
            try:
                path = contact_list.snapshot(self.csv_path, workdir, self.log)
                summary = contact_list.preflight(path, self.log)
            except FuseValidationError as error:
                raise AirflowFailException(self._unreadable(error, queued_before, resend)) from None
            if summary.rows == 0 and queued_before:
                raise AirflowFailException(
                    "Nothing was sent to Fuse: the CSV now has no contacts, and an earlier try of this "
                    f"task instance queued {queued_before}. Check the campaign in Fuse."
                )
            if summary.rows == 0:
                raise AirflowSkipException("The CSV has a header and no contacts: nothing to queue.")
            self._summary = summary
            contact_list.check_duplicates(summary, self.on_duplicate_destinations, self.log)
            router = self._router(queued_before, resend)
            try:
                parts = contact_list.parts(
                    path,
                    summary,
                    workdir,
                    chunk_size=self.chunk_size,
                    on_duplicate_destinations=self.on_duplicate_destinations,
                    route=router,
                )
            except OSError as error:
                raise _parts_not_written(error) from None
            if router is not None:
                self._check_plan(router, parts, summary.rows, queued_before)
            rows = sum(part.rows for part in parts)
            if self.preflight_only:
                self._read_connection(self._hook())
                rows = self._log_dry_run(rows, parts, at, fields, results)
                self._push_plan(context)
                return rows
            content = summary.sha256
            if router is not None:
                content = dialing_plan.plan_content(content, router.suppression, parts)
            fingerprint = self._fingerprint(content, parameters)
            if router is not None and router.suppression is not None:
                fingerprint = fingerprint.with_suppression_list(router.suppression.sha256)
            calls_queued, sent, queued_now = self._send(
                parts,
                ledger,
                fingerprint,
                context,
                (application_id, deployment_id),
                fields,
                ready,
                results,
            )
            self._best_effort(
                "the summary log line", lambda: self._log_summary(sent, queued_now, calls_queued, at, fields)
            )
            self._push_plan(context)
        if results is not None:
            campaign = self._campaign or self._recorded_campaign(ledger, fields, calls_queued)
            self._push_results(context, campaign, calls_queued)
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
        """Everything besides the CSV that shapes the requests: what the fingerprint's parameters cover.

        Not the connection: the ids name the deployment, and a ledger must still answer a clear
        after the connection id renders differently (or a ledger an earlier version wrote).
        """
        return {
            "application_id": application_id,
            "deployment_id": deployment_id,
            "fields": fields.form_fields(),
            "chunk_size": self.chunk_size,
            "on_duplicate_destinations": self.on_duplicate_destinations,
            # Each try signs new tokens (and so new URLs): only whether outcomes are collected is part
            # of the list's identity. Absent when off, so that earlier ledgers still match.
            **({"collect_results": True} if self.collect_results else {}),
            # Likewise the plan's settings, absent when off. The suppression list's content is in the
            # fingerprint's content (plan_content): a ledger answers a clear before the list is read.
            **(
                {"calling_hours": list(self.calling_hours), "on_unknown_time_zone": self.on_unknown_time_zone}
                if self.calling_hours is not None
                else {}
            ),
            **({"suppression_list": True} if self._suppression_given else {}),
        }

    # --- calling hours and the suppression list ------------------------------------------------------

    def _router(self, queued_before: str, resend: bool) -> dialing_plan.Router | None:
        """The route of each row (:class:`~.dialing_plan.Router`), with the suppression list read; ``None``
        when neither calling hours nor a suppression list is given (the parts are today's chunks).

        :raises AirflowFailException: the suppression list cannot be read: nothing is sent without it.
        """
        if self.calling_hours is None and not self._suppression_given:
            return None
        hours = None
        if self.calling_hours is not None:
            from airflow_provider_fuse.calling_hours import CallingHours

            hours = CallingHours.parse(self.calling_hours)
        suppression = self._suppression(queued_before, resend)
        self._planned = dialing_plan.Router(hours, self.on_unknown_time_zone, suppression)
        return self._planned

    def _suppression(self, queued_before: str, resend: bool) -> SuppressionList | None:
        """The suppression list, read once a try (``None`` when none is given).

        :raises AirflowFailException: it cannot be read (or rendered ``None``): nothing is sent, and
            nothing earlier tries queued is confirmed, without it.
        """
        if not self._suppression_given:
            return None
        if self._suppression_read is None:
            from airflow_provider_fuse.suppression import read_suppression_list

            source = type(self).suppression_list.value(self)  # the rendered value, not its view
            try:
                if source is None:
                    raise FuseValidationError(
                        "suppression_list", "rendered None; nothing is sent without the suppression list"
                    )
                self._suppression_read = read_suppression_list(source)
            except FuseValidationError as error:
                raise AirflowFailException(self._unreadable(error, queued_before, resend)) from None
        return self._suppression_read

    def _check_plan(
        self, router: dialing_plan.Router, parts: list[CsvPart], rows: int, queued_before: str
    ) -> None:
        """Before anything is sent: rows with no time zone fail the task (``on_unknown_time_zone``),
        the rows left out are logged (counts only), and a list with no row left is not sent.

        :raises AirflowFailException: unplaceable rows under ``"fail"``; or no row left after earlier
            tries queued calls.
        :raises AirflowSkipException: no row left (every one suppressed or unplaceable).
        """
        try:
            router.check()
        except FuseValidationError as error:
            raise nothing_sent(error) from None
        removals = router.removals
        if removals.suppressed:
            # What a suppression list is for: not a warning.
            self.log.info(
                "Left out of the list: %d of %d rows on the suppression list.", removals.suppressed, rows
            )
        if removals.unplaceable:
            self.log.warning(
                "Left out of the list: %d of %d rows with no time zone found (on_unknown_time_zone=%r).",
                removals.unplaceable,
                rows,
                self.on_unknown_time_zone,
            )
        if parts:
            return
        if queued_before:
            raise AirflowFailException(
                f"Nothing was sent to Fuse: no row of the CSV is left to call ({removals.describe()}), and "
                f"an earlier try of this task instance queued {queued_before}. Check the campaign in Fuse."
            )
        raise AirflowSkipException(
            f"No row of the CSV is left to call ({removals.describe()}): nothing to queue."
        )

    def _windows(self, parts: list[CsvPart], fields: QueueFields) -> list[Window | None] | None:
        """Each part's window now (:func:`~.dialing_plan.part_windows`); ``None`` without calling hours
        (every part is sent with the user's window)."""
        if self.calling_hours is None:
            return None
        from airflow_provider_fuse.calling_hours import CallingHours

        return dialing_plan.part_windows(parts, CallingHours.parse(self.calling_hours), fields, time.time())

    def _within_hours(
        self, parts: list[CsvPart], left: list[int], windows: list[Window | None] | None
    ) -> list[int]:
        """The parts of ``left`` that have a window; the others are counted and logged, not sent."""
        if windows is None:
            return left
        closed = [index for index in left if windows[index] is None]
        if closed:
            self._outside_hours(
                closed, parts, "their zones' calling hours leave no window before end_timestamp"
            )
        return [index for index in left if windows[index] is not None]

    def _outside_hours(self, indexes: list[int], parts: list[CsvPart], why: str) -> None:
        """Count the rows of parts not sent for want of a window, and say which (row numbers only)."""
        rows = sum(parts[index].rows for index in indexes)
        if self._planned is not None:
            self._planned.removals.outside_hours += rows
        self.log.warning(
            "Not sending %d of %d parts (%d rows: %s): %s. They are counted, not sent.",
            len(indexes),
            len(parts),
            rows,
            "; ".join(f"part {index + 1}, {rows_of(parts[index])}" for index in indexes[:5]),
            why,
        )

    @staticmethod
    def _campaign_window(
        fields: QueueFields,
        windows: list[Window | None] | None,
        sendable: list[int],
        ledger: BulkQueueLedger | None,
        queued: tuple[int, ...],
    ) -> QueueFields:
        """The window of the whole list, for the results sensor and the tokens: from the earliest
        start to the latest end of the parts this try sends and those earlier tries queued (the
        windows the ledger recorded with them)."""
        if windows is None:
            return fields
        spans = [(window.start, window.end) for index in sendable if (window := windows[index]) is not None]
        record = ledger.record if ledger is not None else None
        for index in queued:
            entry = (record.entries[index] if record is not None else None) or {}
            start, end = entry.get("start_timestamp"), entry.get("end_timestamp")
            if isinstance(start, int) and isinstance(end, int):
                spans.append((start, end))
        if not spans:
            return fields
        return replace(
            fields,
            start_timestamp=min(start for start, _ in spans),
            end_timestamp=max(end for _, end in spans),
        )

    def _send(
        self,
        parts: list[CsvPart],
        ledger: BulkQueueLedger | None,
        fingerprint: Fingerprint,
        context: Context,
        ids: tuple[int, int],
        fields: QueueFields,
        ready: bool,
        results: _Results | None = None,
    ) -> tuple[int, int, int]:
        """Send each part not yet queued, recording intent and result.

        ``ready``: the pre-send checks (:meth:`_ready_to_send`) already passed. ``results``: where the
        outcomes go, with ``collect_results``: the campaign is set (:attr:`_campaign`), kept in the
        ledger, pushed to XCom unconfirmed and the receiver checked before the first request.

        :return: the total calls queued (earlier tries' parts included), the rows sent by this try, and
            the calls this try's requests queued.
        """
        from airflow_provider_fuse.guard import LEDGER_KEY, GuardError

        at = where(*ids)
        result_url: Callable[[int, int], str] | None = None
        self._check_settled_list(ledger, fingerprint)
        self._clear_settled_part(ledger, at)
        if results is not None and ledger is not None:
            self._refuse_a_second_list_with_results(ledger, fingerprint, len(parts))
        try:
            plan = (
                ledger.plan(
                    fingerprint,
                    len(parts),
                    retry_unknown=self.on_unknown_outcome == "retry",
                    resend=self._resend(context),
                )
                if ledger
                else self._resumed_plan(fingerprint)
            )
        except GuardError as error:
            raise guard_refusal(error, at, LEDGER_KEY) from None
        if plan.start == len(parts):
            self.log.info(
                "Nothing sent: an earlier try of this task instance already queued this list (%d calls, "
                "recorded in the task state store).",
                plan.calls_queued,
            )
            return plan.calls_queued, 0, 0
        if not ready:
            queued_before = ""
            if plan.queued:
                which = (
                    f"parts 1-{plan.start}"
                    if plan.queued == tuple(range(plan.start))
                    else f"{len(plan.queued)} parts"
                )
                queued_before = f"{which} of {len(parts)} ({plan.calls_queued} calls)"
            self._ready_to_send(context, fields, queued_before)
        left = [index for index in range(plan.start, len(parts)) if index not in plan.queued]
        windows = self._windows(parts, fields)
        sendable = self._within_hours(parts, left, windows)
        if not sendable:
            return plan.calls_queued, 0, 0
        if ledger is not None and not plan.queued:
            self._warn_resend(ledger, sum(parts[index].rows for index in sendable), at)
        if self.approval:
            self._approval(
                context,
                ledger,
                fingerprint,
                partial(self._approval_text, context, parts, sendable, plan, fields, at, results),
            )
        if plan.resumed:
            self.log.info(
                "Resuming at part %d of %d: earlier tries already queued %d calls for %d parts.",
                plan.start + 1,
                len(parts),
                plan.calls_queued,
                len(plan.queued),
            )

        hook = self._hook()
        total, sent = plan.calls_queued, 0
        # Parts known queued and their calls: what an unknown-outcome question says, and carries.
        known = {index: self._calls_of(ledger, plan, index) for index in plan.queued}
        try:
            # The connection is read and checked before any intent is recorded: a missing or broken
            # connection must not leave an intent behind for a request that never left.
            self._read_connection(hook)
            if results is not None:
                rows = sum(parts[index].rows for index in (*plan.queued, *sendable))
                campaign_fields = self._campaign_window(fields, windows, sendable, ledger, plan.queued)
                result_url = self._start_campaign(
                    context, results, ledger, parts, plan.start, campaign_fields, rows
                )
            # The parts the campaign counts that this try still sends; a part whose window closed is
            # taken out of it, and the corrected record pushed before the next request.
            sending, recount = list(sendable), False
            for index in sendable:
                part = parts[index]
                window = None if windows is None else windows[index]
                if window is not None and window.end <= time.time():
                    # Closed while the parts before it were sent: not sent now, counted.
                    self._outside_hours(
                        [index], parts, "its window closed while the parts before it were sent"
                    )
                    sending.remove(index)
                    recount = self._campaign is not None
                    continue
                if recount:
                    self._recount_campaign(context, ledger, parts, fields, windows, sending, plan.queued)
                    recount = False
                sent_fields = request_fields(dialing_plan.part_fields(fields, window))
                if result_url is not None:
                    sent_fields["result_url"] = result_url(index, part.rows)
                if ledger:
                    ledger.sending(index, part.rows, window=window, span=(part.first_row, part.last_row))
                self._request_left = True
                try:
                    queued = hook.bulk_queue(*ids, part.path, **sent_fields)
                except FuseError as error:
                    if ledger and nothing_queued(error):
                        ledger.not_queued(index)
                    if isinstance(error, FuseUnknownOutcomeError) and self.on_unknown_outcome == "ask":
                        self._ask_unknown(context, ledger, fingerprint, parts, index, known, error, at)
                    raise bulk_queue_failure(
                        error,
                        at,
                        on_unknown_outcome=self.on_unknown_outcome,
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
                known[index] = queued
                if len(parts) > 1:
                    self._best_effort(
                        "a progress log line",
                        partial(
                            self.log.info,
                            "Part %d of %d: %d rows (%s), %d calls queued%s",
                            index + 1,
                            len(parts),
                            part.rows,
                            rows_of(part),
                            queued,
                            "" if window is None else f", {dialing_plan.describe_window(part.group, window)}",
                        ),
                    )
            if recount:
                self._recount_campaign(
                    context, ledger, parts, fields, windows, sending, plan.queued, push=False
                )
        finally:
            self._best_effort("closing the connection to Fuse", hook.close)
        return total, sent, total - plan.calls_queued

    # A person decides (airflow_provider_fuse.decisions): approving the list, settling an unknown outcome.

    def _approval_text(
        self,
        context: Context,
        parts: list[CsvPart],
        sendable: list[int],
        plan: Plan,
        fields: QueueFields,
        at: str,
        results: _Results | None,
    ) -> tuple[str, str]:
        """The approval question about the parts this try would send (see :meth:`_approval`)."""
        from airflow_provider_fuse.operators import questions

        summary = self._summary
        chunking = (
            "the whole list in one request"
            if len(parts) == 1
            else f"{len(sendable):,} request{'' if len(sendable) == 1 else 's'}"
            + ("" if self.chunk_size is None else f" of up to {self.chunk_size:,} rows")
        )
        if results is not None:
            outcomes = f"{results.shown_url()} (collect_results: kept in the results table)"
        else:
            outcomes = "sent to the given result_url" if fields.result_url else "not collected"
        plan_lines: tuple[str, ...] = ()
        if self._planned is not None:
            windows = self._windows(parts, fields)
            plan_lines = tuple(dialing_plan.describe_plan(parts, windows, self._planned.removals))
        return questions.approval_text(
            questions.ListShown(
                task=questions.task_name(context.get("ti")),
                at=at,
                rows=sum(parts[index].rows for index in sendable),
                requests=len(sendable),
                csv_rows=summary.rows,
                size=summary.size,
                window=fields.describe_window(),
                fields=shown_fields(fields, None if results is None else results.shown_url()) or "(none)",
                repeats=contact_list.describe_repeats(summary, self.on_duplicate_destinations),
                chunking=chunking,
                results=outcomes,
                plan=plan_lines,
                timeout=self.ask.timeout,
                resumed=plan.calls_queued,
            )
        )

    def _ask_unknown(
        self,
        context: Context,
        ledger: BulkQueueLedger | None,
        fingerprint: Fingerprint,
        parts: list[CsvPart],
        index: int,
        known: dict[int, int],
        error: FuseUnknownOutcomeError,
        at: str,
    ) -> None:
        """On an unknown outcome with ``on_unknown_outcome="ask"``: ask whether Fuse queued the part.

        Returns (the unknown outcome then fails the task as with ``"fail"``) when it cannot ask: this try
        resumed with another answer, or Airflow keeps another question for this task instance.
        """
        self.log.warning(
            "Unknown outcome (part %d of %d): %s",
            index + 1,
            len(parts),
            f"{without_may_have_queued(str(error)).rstrip('.')}.",
        )
        if self._asked:
            self._cannot_ask("this try already asked a question")
            return
        kwargs: dict[str, Any] = {"part": index, "sent_list": fingerprint.to_travel()}
        if ledger is not None:
            entries = [ledger.entry(number) for number in range(len(parts))]
            subject, body = self._unknown_outcome_text(context, at, index, entries)
        else:
            part = parts[index]
            entry = {"rows": part.rows, "first_row": part.first_row, "last_row": part.last_row}
            entries = [
                {"state": "queued", "calls_queued": known[number]} if number in known else None
                for number in range(len(parts))
            ]
            entries[index] = {**entry, "state": "sending", "sent_at": int(time.time())}
            subject, body = self._unknown_outcome_text(context, at, index, entries)
            kwargs.update(rows=part.rows, queued=[[done, calls] for done, calls in sorted(known.items())])
        self._ask_about(context, subject, body, kwargs)

    def _unknown_outcome_text(
        self, context: Context, at: str, index: int, entries: list[dict[str, Any] | None]
    ) -> tuple[str, str]:
        """The question about part ``index``, from the parts as recorded: the same question whichever
        try asks it (Airflow shows a task instance's first question to all its tries)."""
        from airflow_provider_fuse.operators import questions

        entry = entries[index] or {}
        queued = [item for item in entries if item and item.get("state") == "queued"]
        rows = int(entry.get("rows") or 0)
        span = (entry.get("first_row"), entry.get("last_row"))
        return questions.unknown_outcome_text(
            questions.PartUnknown(
                task=questions.task_name(context.get("ti")),
                at=at,
                index=index,
                parts=len(entries),
                rows=rows,
                rows_of=rows_between(rows, *span) if None not in span else "",  # type: ignore[arg-type]
                sent_at=entry.get("sent_at"),
                queued_parts=len(queued),
                queued_calls=sum(int(item.get("calls_queued") or 0) for item in queued),
                timeout=self.ask.timeout,
            )
        )

    def _ask_about(self, context: Context, subject: str, body: str, kwargs: dict[str, Any]) -> None:
        """Ask the unknown-outcome question; return (the task then fails as with ``"fail"``) when Airflow
        keeps another question for this task instance."""
        try:
            decisions.ask(
                self,
                context,
                decisions.UNKNOWN_OUTCOME,
                self.ask,
                subject=subject,
                body=body,
                method_name="execute_decided",
                kwargs=kwargs,
            )
        except decisions.QuestionTaken as error:
            self._cannot_ask(str(error))

    def _cannot_ask(self, why: str) -> None:
        self.log.warning(
            "on_unknown_outcome='ask' cannot ask about this unknown outcome: %s. The task fails as with "
            "'fail'; follow docs/safety.md, 'After an unknown outcome'.",
            why,
        )

    def _ask_recorded(self, context: Context, ledger: BulkQueueLedger, at: str) -> None:
        """A try that finds an unknown outcome recorded by an earlier one asks about it (before the CSV
        is read: the ledger knows the part)."""
        record = ledger.record
        assert record is not None
        index = record.sending[0]
        subject, body = self._unknown_outcome_text(context, at, index, record.entries)
        self._ask_about(context, subject, body, {"part": index})

    def _settle(self, ledger: BulkQueueLedger | None, at: str) -> None:
        """Apply the answer this try resumed with: to the ledger, or (without one) to where sending resumes.

        :raises AirflowFailException: the answer was Stop.
        """
        from airflow_provider_fuse.guard import LEDGER_KEY, GuardError, Plan

        settled = self._settled
        assert settled is not None
        chosen = settled.answer.chosen
        if ledger is not None and chosen != decisions.NOT_QUEUED:
            # "Queued" and "Stop" only keep the part from being sent again: recorded at once. "Did not
            # queue" lets it be sent again: recorded once the list read again is the one it was about
            # (see _clear_settled_part), so a try that fails before that leaves the part unknown.
            what: Literal["queued", "stop"] = "queued" if chosen == decisions.QUEUED else "stop"
            try:
                ledger.settle(settled.part, what, settled.answer.by, settled.answer.at.isoformat())
            except GuardError as error:
                raise guard_refusal(error, at, LEDGER_KEY) from None
        if chosen == decisions.STOP:
            raise AirflowFailException(
                f"Stopped by {settled.answer.who()}: part {settled.part + 1}'s outcome stays unknown and "
                f"nothing more was sent to {at}. Check the campaign in Fuse: if the calls are there, mark "
                "this task success; a clear asks the question again (docs/safety.md, 'After an unknown "
                "outcome')."
            )
        if ledger is not None:
            # What is sent next must be the list the question was about (as the ledger recorded it).
            self._settled_record = ledger.record
            return
        done = {int(index): int(calls) for index, calls in settled.queued or []}
        if chosen == decisions.QUEUED:
            done[settled.part] = settled.rows  # Fuse's own count never arrived
        self._resume = Plan(
            start=settled.part, calls_queued=sum(done.values()), resumed=True, queued=tuple(sorted(done))
        )

    def _check_settled_list(self, ledger: BulkQueueLedger | None, fingerprint: Fingerprint) -> None:
        """After an answer about an unknown outcome: the list read again must be the one it was about.

        :raises AirflowFailException: it changed (nothing more is sent).
        """
        settled = self._settled
        if settled is None:
            return
        if ledger is not None:
            record = self._settled_record
            same = record is None or not record.changes(fingerprint)
            if same and settled.sent_list is not None:
                same = fingerprint.same_as(settled.sent_list)
        else:
            same = settled.sent_list is not None and fingerprint.same_as(settled.sent_list)
        if not same:
            raise AirflowFailException(
                f"Nothing more was sent to Fuse: the list changed while the question about part "
                f"{settled.part + 1} waited for its answer (the CSV, the request parameters or the "
                "suppression list). Check the campaign in Fuse; clear the task to send the list as it is now."
            )

    def _clear_settled_part(self, ledger: BulkQueueLedger | None, at: str) -> None:
        """Record "Fuse did not queue it" in the ledger, now that the list is the one it was about: the
        part is cleared, and sent again."""
        from airflow_provider_fuse.guard import LEDGER_KEY, GuardError

        settled = self._settled
        if ledger is None or settled is None or settled.answer.chosen != decisions.NOT_QUEUED:
            return
        try:
            ledger.settle(settled.part, "not_queued", settled.answer.by, settled.answer.at.isoformat())
        except GuardError as error:
            raise guard_refusal(error, at, LEDGER_KEY) from None

    def _resumed_plan(self, fingerprint: Fingerprint) -> Plan:
        """Without the duplicate guard: where this try starts (part 1, or where an answer resumes it)."""
        from airflow_provider_fuse.guard import Plan

        if self._resume is None:
            return Plan(start=0, calls_queued=0, resumed=False)
        return self._resume

    def _calls_of(self, ledger: BulkQueueLedger | None, plan: Plan, index: int) -> int:
        """The calls a part known queued before this try's requests holds, as recorded."""
        if ledger is not None and ledger.record is not None:
            return ledger.record.calls_queued([index])
        settled = self._settled
        for done, calls in (settled.queued or []) if settled is not None else []:
            if int(done) == index:
                return int(calls)
        return 0

    def _recount_campaign(
        self,
        context: Context,
        ledger: BulkQueueLedger | None,
        parts: list[CsvPart],
        fields: QueueFields,
        windows: list[Window | None] | None,
        sending: list[int],
        queued: tuple[int, ...],
        *,
        push: bool = True,
    ) -> None:
        """Take the parts no longer sent out of the campaign (:attr:`_campaign`): its rows and window
        become those of ``sending`` (sent or still to send by this try) and ``queued`` (by earlier
        tries), so that the results sensor waits for no outcome of a part that was never sent. Kept
        in the ledger (written with the next record of a part) and, with ``push``, pushed again
        unconfirmed: the record an unknown outcome of the next part leaves behind must be right."""
        if self._campaign is None:
            return
        rows = sum(parts[index].rows for index in (*queued, *sending))
        window = self._campaign_window(fields, windows, sending, ledger, queued)
        campaign = self._campaign
        self._campaign = _campaign_record(campaign.campaign, rows, window, campaign.queued_timestamp)
        if ledger is not None:
            ledger.set_campaign(self._campaign)
        if push:
            self._push_results(context, self._campaign, None)

    def _warn_resend(self, ledger: BulkQueueLedger, rows: int, at: str) -> None:
        """Warn, when earlier tries queued calls of another list and this try sends its list whole
        (a resend allowed): those contacts are called again, and the calls queued are not stopped."""
        record = ledger.record
        if record is None or not record.queued:
            return
        entries = [record.entries[index] or {} for index in record.queued]
        earlier_rows = sum(int(entry.get("rows") or 0) for entry in entries)
        self.log.warning(
            "Resending: earlier tries of this task instance queued %d calls for %d rows (%d of %d parts) "
            "of another list, and allow_resend sends this list whole: all of it is sent again (%d rows), "
            "so every row not suppressed that was queued before gets a second call. The calls queued "
            "before are not stopped; FuseCancelCallsOperator cancels every pending call of %s.",
            record.calls_queued(),
            earlier_rows,
            len(record.queued),
            len(record.entries),
            rows,
            at,
        )

    def _start_campaign(
        self,
        context: Context,
        results: _Results,
        ledger: BulkQueueLedger | None,
        parts: list[CsvPart],
        start: int,
        fields: QueueFields,
        rows: int,
    ) -> Callable[[int, int], str]:
        """Before the first request of this try: the campaign (the ledger's, or a new one), kept in
        the ledger (written with the first intent), checked at the receiver, and pushed to XCom as
        not yet confirmed. ``fields``: the window of the whole list (:meth:`_campaign_window`);
        ``rows``: the rows of the parts sent or to send. :return: the ``result_url`` of part ``index``
        of ``rows`` rows."""
        now = time.time()
        recorded = ledger.campaign if ledger is not None else None
        campaign = _campaign_record(recorded.campaign if recorded is not None else None, rows, fields, now)
        result_url = results.signer(fields, now, campaign.campaign)
        # Every part's token before the first request: one longer than the receiver accepts is
        # refused here, naming the id to shorten, not by the receiver (its 403 blames the key).
        urls = results.sign_all(result_url, parts, start)
        self._check_receiver(urls[0], results, start)
        if ledger is not None:
            ledger.set_campaign(campaign)
        self._campaign = campaign
        self._push_results(context, campaign, None)
        return result_url

    def _check_receiver(self, url: str, results: _Results, start: int) -> None:
        """The check before dialing (:func:`probe_receiver`): fails the task now, without retries,
        when the receiver could store no outcome: it refuses this task's token (its own 403), says
        it is not configured (its own 503), nothing at the URL is the receiver (404, 405, 410), or
        the URL's host is loopback and refuses the connection (no one can reach it: Fuse never
        reaches a loopback address, and a sandbox on this machine sees the one this worker does).
        Anything else (no answer from here, a refusal elsewhere, another 5xx, a proxy's 403) is a
        warning: this worker may not see the receiver the way Fuse does."""
        from urllib.parse import urlsplit

        from airflow_provider_fuse.hooks.connection import is_loopback
        from airflow_provider_fuse.hooks.fuse import RECEIVER_SETUP_HINT

        answer = probe_receiver(url)
        status = answer.status_code
        shown = results.shown_url()
        stopped = _stopped(start)
        if answer.refuses_token:
            raise AirflowFailException(
                f"{stopped}: the results receiver at {shown} refused this task's results token (403), "
                "so it would refuse every call outcome. Its [fuse] results_signing_key differs from this "
                "worker's. Give the api-server (or fuse-results serve) and the workers the same key, "
                "restart the receiver, and clear this task."
            )
        if answer.no_receiver:
            raise AirflowFailException(
                f"{stopped}: nothing at {shown} is the Fuse results receiver (it answered {status} to the "
                "check before dialing), so every call outcome Fuse posts there would be lost. "
                f"{RECEIVER_SETUP_HINT}. Then clear this task."
            )
        if answer.not_configured:
            raise AirflowFailException(
                f"{stopped}: the results receiver at {shown} answered that it is not configured (503), "
                "so it would refuse every call outcome. Its log names the option. "
                f"{RECEIVER_SETUP_HINT}. Then clear this task."
            )
        if answer.connection_refused and is_loopback(urlsplit(url).hostname or ""):
            raise AirflowFailException(
                f"{stopped}: nothing listens at {shown} (the connection was refused), a loopback "
                "address that only this machine can reach, so every call outcome posted there would be "
                "lost. Check that the api-server (or fuse-results serve) is running, and that the port "
                "it listens on is the one in [fuse] results_base_url. Then clear this task."
            )
        if answer.connection_refused:
            self.log.warning(
                "Nothing listens at %s as seen from this worker (the connection was refused); sending "
                "anyway (Fuse, not this worker, must reach it). Check [fuse] results_base_url (host and "
                "port) and that the api-server is up.",
                shown,
            )
        elif status is None:
            self.log.warning(
                "Could not reach the results receiver at %s from this worker to check its signing key "
                "(no answer, or none whole within 10 s); sending anyway (Fuse, not this worker, must "
                "reach it).",
                shown,
            )
        elif status == 503:
            self.log.warning(
                "The results receiver at %s answered 503 (not its own 'not configured' answer: a "
                "results database busy or out of reach now, [fuse] options it cannot read now, or a "
                "proxy); sending anyway. Fuse retries a 503; check the receiver's log.",
                shown,
            )
        elif status == 403:
            self.log.warning(
                "A 403 that is not the results receiver's own answered at %s (a proxy, or another server "
                "at that path?): outcomes may not be stored. Check [fuse] results_base_url and the proxies "
                "between Fuse and the receiver; sending anyway.",
                shown,
            )
        elif status != 400:
            self.log.warning(
                "The results receiver at %s answered %d to the check of its signing key (expected 400 "
                "for an empty body): outcomes may not be stored. Check [fuse] results_base_url.",
                shown,
                status,
            )

    @staticmethod
    def _refuse_a_second_list_with_results(
        ledger: BulkQueueLedger, fingerprint: Fingerprint, parts: int
    ) -> None:
        """With ``collect_results``, refuse to send a list other than the one this task instance
        already queued (``allow_resend``), before anything is recorded or sent.

        Its tokens would name the same parts of the same task instance: the receiver could not tell
        its outcomes from the first list's (Fuse sends no call id), would refuse them as the parts
        filled, and the sensor would count the first list's outcomes as the second's.
        """
        record = ledger.record
        if record is None or not record.queued:
            return
        if not record.changes(fingerprint) and len(record.entries) == parts:
            return  # the same list: resuming it, or answering from the ledger
        earlier = record.earlier(fingerprint)
        if earlier is not None and earlier["complete"]:
            return  # a list queued before: the plan answers with its count and sends nothing
        raise AirflowFailException(
            "Nothing more was sent to Fuse: this task instance already queued "
            f"{record.calls_queued()} calls of another list, and with collect_results=True the "
            "outcomes of a second list could not be told from the first's (Fuse's callbacks carry no "
            "call id, and both lists' parts would share their results tokens). Send the changed list "
            "from a new DAG run."
        )

    def _log_summary(self, sent: int, queued: int, total: int, at: str, fields: QueueFields) -> None:
        """The summary line; a warning when this try's requests queued more or fewer calls than the
        rows they sent (``total`` includes what earlier tries queued, so it is not compared)."""
        earlier = f" ({total} in all, with earlier tries)" if total != queued else ""
        window = fields.describe_window()
        if self.calling_hours is not None:
            window = f"{window}, each part within calling hours {'-'.join(self.calling_hours)} local time"
        left_out = "" if self._planned is None else f"; not sent: {self._planned.removals.describe()}"
        self.log.info(
            "Fuse bulk_queue: %d rows sent, %d calls queued%s, %s, window %s%s",
            sent,
            queued,
            earlier,
            at,
            window,
            left_out,
        )
        if queued < sent:
            self.log.warning(
                "Fuse queued %d calls for %d rows sent: %d rows were not queued. Check the deployment's "
                "outbound calls in Fuse.",
                queued,
                sent,
                sent - queued,
            )
        elif queued > sent and sent:
            self.log.warning(
                "Fuse says it queued %d calls for %d rows sent: more calls than rows. Check the deployment's "
                "outbound calls in Fuse.",
                queued,
                sent,
            )

    def _log_dry_run(
        self, rows: int, parts: list[CsvPart], at: str, fields: QueueFields, results: _Results | None
    ) -> int:
        """Log what would be sent; :return: the rows it would send (those of parts with a window)."""
        sent = shown_fields(fields, None if results is None else results.shown_url())
        requests = len(parts)
        plan: list[str] = []
        if self._planned is not None:
            windows = self._windows(parts, fields)
            if windows is not None:
                self._within_hours(parts, list(range(len(parts))), windows)
                rows = sum(part.rows for part, window in zip(parts, windows, strict=True) if window)
                requests = sum(1 for window in windows if window)
            plan = dialing_plan.describe_plan(parts, windows, self._planned.removals)
        self.log.info(
            "Dry run, nothing sent: would queue %d rows in %d request(s) to %s, window %s, fields: %s%s",
            rows,
            requests,
            at,
            fields.describe_window(),
            sent or "(none)",
            "".join(f"\n  {line}" for line in plan),
        )
        return rows

    def _ledger(self, context: Context, at: str) -> BulkQueueLedger | None:
        """This task instance's ledger, read from its state store; ``None`` without one (Airflow < 3.3)."""
        from airflow_provider_fuse.guard import LEDGER_KEY, BulkQueueLedger, GuardError

        store = self._state_store(context)
        if store is None:
            return None
        try:
            return BulkQueueLedger(store)
        except GuardError as error:
            raise guard_refusal(error, at, LEDGER_KEY) from None

    @staticmethod
    def _fingerprint(sha256: str, parameters: dict[str, Any]) -> Fingerprint:
        from airflow_provider_fuse.guard import Fingerprint

        return Fingerprint.of(sha256, **parameters)

    # --- collect_results ----------------------------------------------------------------------------

    def _results(self, context: Context, queued_before: str = "") -> _Results:
        """Check where outcomes will go, before anything is sent: the ``[fuse]`` options and the
        results table (created when missing), so that a results setup that does not work stops the
        task before dialing, not the receiver after the calls were made.

        :param queued_before: what earlier tries of this task instance queued (``""`` when nothing),
            for the message.
        :raises AirflowFailException: (no retries) an option missing or unusable, named, never its
            value; or a results connection that is not defined or not a SQL database.
        :raises AirflowException: the results database cannot be reached now: the task's retries apply.
        """
        from airflow.sdk.log import mask_secret

        from airflow_provider_fuse.results.config import (
            ResultsConfig,
            ResultsConfigError,
            ResultsConfigUnreadable,
        )
        from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable

        stopped = (
            f"Nothing more was sent to Fuse (earlier tries of this task instance queued {queued_before})"
            if queued_before
            else "Nothing was sent to Fuse"
        )
        try:
            config = ResultsConfig.load()
            if config.signing_key:
                mask_secret(config.signing_key)
            key = config.require_signing_key()
            config.result_url(_HIDDEN)  # the check of results_base_url
        except ResultsConfigUnreadable as error:
            # A failed _cmd or an unreachable secrets backend may pass: nothing sent, left to the retries.
            raise AirflowException(f"{stopped}: {error}") from None
        except ResultsConfigError as error:
            raise AirflowFailException(f"{stopped}: {error}") from None
        try:
            ResultsTable.ready(config.conn_id, config.table).close()
        except ResultsStoreError as error:
            # Names the connection and the kind of failure, scrubbed: never a secret.
            message = (
                f"{stopped}: the results table ([fuse] results_conn_id, results_table) cannot be "
                f"used: {error}"
            )
            raise (AirflowException if error.retryable else AirflowFailException)(message) from None
        task = None if self.preflight_only else _task_identity(context)
        return _Results(config, key, task)

    def _recorded_campaign(
        self, ledger: BulkQueueLedger | None, fields: QueueFields, calls_queued: int
    ) -> CampaignRecord:
        """The campaign the ledger recorded when the list was sent (its times, not now's); for a
        ledger written before campaigns existed, a new one, whose outcomes are counted from now on."""
        if ledger is not None and ledger.campaign is not None:
            return ledger.campaign
        return _campaign_record(None, calls_queued, fields, time.time())

    def _push_what_was_sent(self, context: Context, ledger: BulkQueueLedger) -> None:
        """Push :data:`RESULTS_XCOM_KEY` for what earlier tries of this task instance sent, as the ledger
        recorded it, when this try sends nothing: the ledger's campaign (the times of its send) and the
        rows of the parts that may have been queued; confirmed, with Fuse's count, when every one of
        them was queued; unconfirmed when one's outcome is unknown. Nothing when the ledger records no
        campaign or no part sent. Never raises."""
        record, campaign = ledger.record, ledger.campaign
        if record is None or campaign is None:
            return
        try:
            sent = [entry for entry in record.entries if entry is not None]
            rows = [entry.get("rows") for entry in sent]
            counts = [count for count in rows if isinstance(count, int) and not isinstance(count, bool)]
            if counts and len(counts) == len(rows) and min(counts) >= 0:
                campaign = replace(campaign, rows=sum(counts))
            calls_queued = None if record.sending else record.calls_queued()
        except Exception as error:  # the type only: the task fails with the refusal, not this
            self.log.warning("Reading what earlier tries sent failed (%s).", type(error).__name__)
            return
        if sent:
            self._push_results(context, campaign, calls_queued)

    def _push_plan(self, context: Context) -> None:
        """Push :data:`PLAN_XCOM_KEY`, the rows the plan left out (counts only), when there is a plan
        (``calling_hours`` or ``suppression_list``). A failure is logged, never raised."""
        ti = context.get("ti")
        if ti is None or self._planned is None:
            return
        removals = self._planned.removals
        value = {
            "suppressed": removals.suppressed,
            "unplaceable": removals.unplaceable,
            "outside_hours": removals.outside_hours,
        }
        self._best_effort(
            f"pushing the {PLAN_XCOM_KEY} XCom", partial(ti.xcom_push, key=PLAN_XCOM_KEY, value=value)
        )

    def _push_results(self, context: Context, campaign: CampaignRecord, calls_queued: int | None) -> None:
        """Push :data:`RESULTS_XCOM_KEY`: ``campaign`` and Fuse's count (``None``: not confirmed yet).
        A failure is logged, never raised (before sending: the sensor is all that misses it; after:
        Fuse has queued the calls)."""
        ti = context.get("ti")
        if ti is None:
            return
        value = SentList.of(campaign, calls_queued).to_xcom()
        self._best_effort(
            f"pushing the {RESULTS_XCOM_KEY} XCom (the results sensor needs it)",
            partial(ti.xcom_push, key=RESULTS_XCOM_KEY, value=value),
        )


_HIDDEN = "***"


def probe_receiver(url: str) -> ProbeAnswer:
    """Ask our own results receiver whether it accepts a token, before Fuse is given it: the hook's
    :func:`~airflow_provider_fuse.hooks.fuse.probe_results_receiver` (all HTTP lives in the hook),
    bounded overall (10 s) and in what it reads (4 KiB); a 403 is a refusal of the token only when
    it is the receiver's own answer. Never raises, never logs the URL (it holds the token)."""
    from airflow_provider_fuse.hooks.fuse import probe_results_receiver

    return probe_results_receiver(url)


def _campaign_record(campaign: str | None, rows: int, fields: QueueFields, now: float) -> CampaignRecord:
    """The campaign of a list of ``rows`` rows sent with ``fields`` at ``now``: ``campaign``, or a new
    id when ``None``, and the times of its dialing window (:func:`dialing_window_end`)."""
    from airflow_provider_fuse.guard import CampaignRecord
    from airflow_provider_fuse.results.tokens import new_campaign

    return CampaignRecord(
        campaign=campaign if campaign is not None else new_campaign(),
        rows=rows,
        queued_timestamp=int(now),
        window_end=fields.end_timestamp,
        start_timestamp=fields.start_timestamp,
        last_attempt_timestamp=dialing_window_end(fields, now),
    )


def _task_identity(context: Context) -> tuple[str, str, str, int]:
    """``(dag_id, run_id, task_id, map_index)`` of the running task instance: what a token names."""
    ti = context.get("ti")
    names = tuple(str(getattr(ti, name, None) or "") for name in ("dag_id", "run_id", "task_id"))
    if not all(names):
        raise nothing_sent(
            FuseValidationError(
                "collect_results", "needs the running task instance (its dag, run and task ids) to sign"
            )
        )
    dag_id, run_id, task_id = names
    return dag_id, run_id, task_id, _map_index(getattr(ti, "map_index", None))


def _stopped(start: int) -> str:
    """How a failure before the request of part ``start`` begins: nothing (more) was sent."""
    if start:
        return (
            "Nothing more was sent to Fuse (earlier tries of this task instance queued the parts before "
            f"part {start + 1})"
        )
    return "Nothing was sent to Fuse"


def _map_index(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else -1


@dataclass(frozen=True)
class _Settled:
    """The answer about an unknown outcome a try resumed with (see ``execute_decided``)."""

    part: int
    answer: decisions.Answer
    rows: int
    queued: list[list[int]] | None
    sent_list: dict[str, str] | None


@dataclass(frozen=True)
class _Results:
    """Where Fuse POSTs the outcomes of this task instance's list: the config, the key (held in memory
    only), and the task instance tokens name (``None`` in a dry run, which signs nothing)."""

    config: ResultsConfig
    key: str = field(repr=False)
    task: tuple[str, str, str, int] | None

    def shown_url(self) -> str:
        """The result URL as it may be shown: ``<results_base_url>/fuse/results/***``."""
        return self.config.result_url(_HIDDEN)

    def signer(self, fields: QueueFields, now: float, campaign: str) -> Callable[[int, int], str]:
        """The ``result_url`` of each part of this try, its token naming ``campaign``: tokens expire
        ``token_lifetime`` seconds after the dialing window (:func:`dialing_window_end`, from ``now``)."""
        from airflow.sdk.log import mask_secret

        from airflow_provider_fuse.results.tokens import UploadPart, sign

        if self.task is None:
            raise RuntimeError("a dry run signs no result URLs")
        dag_id, run_id, task_id, map_index = self.task
        expires = dialing_window_end(fields, now) + self.config.token_lifetime

        def result_url(index: int, rows: int) -> str:
            part = UploadPart(
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                map_index=map_index,
                campaign=campaign,
                part=index,
                rows=rows,
                expires=expires,
            )
            token = sign(part, self.key)
            mask_secret(token)
            return self.config.result_url(token)

        return result_url

    @staticmethod
    def sign_all(result_url: Callable[[int, int], str], parts: list[CsvPart], start: int) -> list[str]:
        """The ``result_url`` of every part from ``start`` on, before any is sent.

        :raises AirflowFailException: a token would be longer than the receiver accepts (the dag,
            run or task id too long): named, nothing sent, no retries (the ids stay as they are).
        """
        from airflow_provider_fuse.results.tokens import TokenTooLong

        try:
            return [result_url(index, parts[index].rows) for index in range(start, len(parts))]
        except TokenTooLong as error:
            raise AirflowFailException(f"{_stopped(start)}: {error}") from None


def _parts_not_written(error: OSError) -> AirflowException:
    """The task failure for parts of the list that could not be written to the temporary directory
    (nothing sent). Named by the error's code, never by its file or a row. A full disk or quota may
    have room on a retry (the task's retries apply); anything else (a file limit, a permission)
    would fail the same way again, so the task fails without retries."""
    code = errno.errorcode.get(error.errno or 0, type(error).__name__)
    message = (
        "Nothing was sent to Fuse: the list's parts could not be written to the temporary directory "
        f"({code}: {error.strerror or 'no detail'})"
    )
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return AirflowException(f"{message}; the task's retries apply, once there is room.")
    return AirflowFailException(f"{message}. Check the worker's temporary directory and its limits.")
