"""FuseCampaignResultsSensor: wait for the outcomes of the calls one bulk task queued, and count them."""

from __future__ import annotations

import math
import time
from concurrent.futures import Future, wait
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_fuse._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    conf,
)
from airflow_provider_fuse.links import FuseCampaignLink
from airflow_provider_fuse.results.campaign import MAX_COUNT as MAX_COUNT
from airflow_provider_fuse.results.campaign import MAX_TIMESTAMP as MAX_TIMESTAMP
from airflow_provider_fuse.results.campaign import (
    NAMED_STATUSES,
    RESULTS_XCOM_KEY,
    SUMMARY_KEYS,
    SUMMARY_XCOM_KEY,
    Campaign,
    CampaignSummary,
    UnreadableRecord,
    bulk_campaigns,
    describe,
    sent_lists,
    sent_records,
    summarize,
    waiting_is_over,
)
from airflow_provider_fuse.results.campaign import SentList as SentList
from airflow_provider_fuse.results.diagnosis import NOTHING_STORED_HINT

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context

    from airflow_provider_fuse.results.config import ResultsConfig

__all__ = ["NAMED_STATUSES", "SUMMARY_KEYS", "FuseCampaignResultsSensor", "bulk_campaigns", "summarize"]


class FuseCampaignResultsSensor(BaseSensorOperator):
    """Wait until the outcome of every call a ``FuseBulkQueueOperator(collect_results=True)`` task of
    the same run queued is in the results table, or its dialing window has passed; push the counts.

    The bulk task's XCom ``fuse_results`` says which campaign it sent, how many calls were queued and
    when dialing ends (summed over its map indexes, when it is mapped). The sensor counts that task's
    rows of those campaigns in the results table (the ``[fuse]`` config section:
    ``results_conn_id``, ``results_table``; a run deleted and triggered again under the same run id is
    another campaign, whose rows are not counted) every ``poke_interval`` seconds, until either

    * an outcome has arrived for every call queued, or
    * the deadline has passed: the dialing window's end (``end_timestamp``; without one, the time
      the list was queued — or its ``start_timestamp``, if later — plus ``dialing_timeout``, and no
      earlier than the earliest start of the last attempt, ``max_attempts - 1`` waits of
      ``reattempt_wait`` after the start) plus ``grace_period``. Calls with no outcome by then are
      counted as ``missing``.

    Its XCom (``return_value``) is a summary without personal data::

        {"calls_queued": 3, "completed": 2, "failed": 1, "canceled": 0, "rejected": 0, "other": 0,
         "missing": 0}

    ``other`` counts outcomes of any other status (``no answer``, ``busy``, ...). When outcomes are
    missing, the log says why when the sensor can tell (the receiver refuses this worker's signing
    key, or cannot be reached from here; Fuse never confirmed the count).

    A downstream task reads the rows themselves from the table
    (:meth:`ResultsTable.rows <airflow_provider_fuse.results.table.ResultsTable.rows>`).

    With ``min_completed_ratio``, fewer completed calls than that share of the calls queued fails the
    task without retries, naming the counts (or skips it with ``soft_fail``); the summary is pushed
    first under the XCom key ``campaign_results``. One method, :meth:`settle`, applies this, whichever
    path ended the wait: a poke, the check before deferring, or :meth:`execute_complete`.

    The bulk task pushes ``fuse_results`` before it sends its list, so after an unknown outcome that
    was checked in Fuse and marked success the sensor still waits: for up to the rows sent, as Fuse's
    count was never confirmed.

    Failures: the bulk task left no ``fuse_results`` XCom (it did not run with
    ``collect_results=True``, or no try of it recorded a campaign; whether Fuse dialed is not known
    here), left one it cannot read (a field out of range: times are whole unix seconds up to the
    year 9999, counts whole numbers up to 10**9; the message names the task and the field), or a
    ``[fuse]`` option is unusable: fails without retries. The table cannot be read (a database
    error): left to the task's retries. A count is waited for at most ``count_timeout``: in poke
    mode a database that does not answer is logged and the poke says "not yet" until the deadline,
    then the task fails with retries.

    With ``deferrable=True`` the sensor counts once and, if the wait goes on, frees its worker slot
    and waits in the triggerer
    (:class:`~airflow_provider_fuse.triggers.campaign_results.FuseCampaignResultsTrigger`). The
    default follows Airflow's ``[operators] default_deferrable``. ``poke_interval``, ``timeout``,
    ``mode`` and ``soft_fail`` work as for any sensor; ``timeout`` (a sensor's default is seven days)
    should be longer than the dialing window.

    :param bulk_task_id: the ``FuseBulkQueueOperator(collect_results=True)`` task of this run. (templated)
    :param grace_period: how long after the dialing window outcomes are still waited for; default
        30 minutes.
    :param dialing_timeout: how long dialing is expected to take when the bulk task had no
        ``end_timestamp``; default 12 hours.
    :param min_completed_ratio: the least share (0 to 1) of calls queued that must have completed;
        default ``None``, no threshold. A list that queued no calls meets any threshold.
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param poke_interval: seconds between counts; default 60.
    :param count_timeout: how long one count of the results table is waited for; default 30 seconds.
    """

    template_fields: Sequence[str] = ("bulk_task_id",)
    ui_color = "#ffdead"
    operator_extra_links = (FuseCampaignLink(),)

    def __init__(
        self,
        *,
        bulk_task_id: str,
        grace_period: timedelta = timedelta(minutes=30),
        dialing_timeout: timedelta = timedelta(hours=12),
        min_completed_ratio: float | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float | timedelta = 60,
        count_timeout: timedelta = timedelta(seconds=30),
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        if not isinstance(bulk_task_id, str) or not bulk_task_id.strip():
            raise ValueError(f"bulk_task_id must name a task, got {bulk_task_id!r}")
        if not isinstance(count_timeout, timedelta) or count_timeout <= timedelta(0):
            raise ValueError(f"count_timeout must be a positive timedelta, got {count_timeout!r}")
        for name, value in (("grace_period", grace_period), ("dialing_timeout", dialing_timeout)):
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise ValueError(f"{name} must be a timedelta of zero or more, got {value!r}")
        if min_completed_ratio is not None and (
            isinstance(min_completed_ratio, bool)
            or not isinstance(min_completed_ratio, (int, float))
            or not 0 <= min_completed_ratio <= 1
        ):
            raise ValueError(
                f"min_completed_ratio must be a number from 0 to 1, or None, got {min_completed_ratio!r}"
            )
        self.bulk_task_id = bulk_task_id
        self.grace_period = grace_period
        self.dialing_timeout = dialing_timeout
        self.min_completed_ratio = min_completed_ratio
        self.deferrable = deferrable
        self.count_timeout = count_timeout
        # A count still running (a database that did not answer in time): waited for again by the
        # next poke, never started twice. Not serialized: a new process starts afresh.
        self._pending: Future[dict[str, int]] | None = None
        # Pokes in a row that found no outcome, and when the receiver was last asked why (poke mode:
        # one process for the whole wait). Not serialized either.
        self._empty_pokes = 0
        self._diagnosed_at: float | None = None

    # --- what is waited for ---------------------------------------------------------------------

    def campaign(self, context: Context) -> Campaign:
        """The campaigns the bulk task sent, the calls queued and the deadline, from its
        ``fuse_results`` XComs (one per map index).

        :raises AirflowFailException: the bulk task left none (or something that is not one).
        """
        records = sent_records(context["ti"], self.bulk_task_id)
        if not records:
            # Whether Fuse dialed is not known here: a task that failed after sending (an unknown
            # outcome) and whose record was lost looks the same as one that never sent.
            raise AirflowFailException(
                f"Task {self.bulk_task_id!r} of this run left no {RESULTS_XCOM_KEY!r} XCom to wait for. "
                "Either it is not a FuseBulkQueueOperator with collect_results=True, or no try of it "
                "recorded a campaign (it stopped before sending, or its record was lost). Its log says "
                "whether it sent anything. Check the outbound calls of its deployment in Fuse before "
                "clearing it: its duplicate guard answers from its ledger without dialing again."
            )
        try:
            sent = sent_lists(records, self.bulk_task_id, reader="this sensor")
        except UnreadableRecord as unreadable:
            raise AirflowFailException(str(unreadable)) from None
        return Campaign.of(sent, dialing_timeout=self.dialing_timeout, grace_period=self.grace_period)

    @staticmethod
    def _config() -> ResultsConfig:
        from airflow_provider_fuse.results.config import (
            ResultsConfig,
            ResultsConfigError,
            ResultsConfigUnreadable,
        )

        try:
            return ResultsConfig.load()
        except ResultsConfigUnreadable as error:
            # A failed _cmd or an unreachable secrets backend may pass: left to the retries.
            raise AirflowException(f"Cannot read the call outcomes: {error}") from None
        except ResultsConfigError as error:
            raise AirflowFailException(f"Cannot read the call outcomes: {error}") from None

    def _count(self, context: Context, config: ResultsConfig, campaign: Campaign) -> dict[str, int] | None:
        """The bulk task's outcomes in its campaigns, by status (:meth:`ResultsTable.summary`), or
        ``None`` when the database answered nothing within ``count_timeout``.

        The count runs in a daemon thread of its own and is waited for at most ``count_timeout``: a
        locked or frozen database never holds the worker longer. A count still running is waited for
        again by the next call, never started beside it.

        :raises AirflowException: the table cannot be read (retryable; names the connection and the
            kind of failure, never a value read).
        """
        from airflow_provider_fuse.results.counting import DaemonThreadExecutor
        from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable

        ti = context["ti"]
        if self._pending is None:
            table = ResultsTable(config.conn_id, config.table)

            def count() -> dict[str, int]:
                try:
                    return dict(table.summary(ti.dag_id, ti.run_id, self.bulk_task_id, campaign.campaigns))
                finally:
                    table.close()

            self._pending = DaemonThreadExecutor("fuse-campaign-results").submit(count)
        pending = self._pending
        wait([pending], timeout=self.count_timeout.total_seconds())
        if not pending.done():
            return None
        self._pending = None
        try:
            return pending.result()
        except ResultsStoreError as error:
            raise AirflowException(f"Cannot read the call outcomes: {error}") from None

    def _no_count(self, campaign: Campaign) -> bool:
        """A count that did not come in time: ``False`` (poke again) before the deadline, after it a
        retryable failure."""
        seconds = self.count_timeout.total_seconds()
        if time.time() >= campaign.deadline:
            raise AirflowException(
                f"Cannot read the call outcomes: the results database answered no count within {seconds:g} s "
                "after the deadline"
            )
        self.log.warning(
            "Fuse results of %s: the results database did not answer a count within %g s; trying again "
            "at the next poke.",
            self.bulk_task_id,
            seconds,
        )
        return False

    # --- poke mode ------------------------------------------------------------------------------

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Count once; done (with the summary as XCom) when the wait is over."""
        campaign = self.campaign(context)
        counts = self._count(context, self._config(), campaign)
        if counts is None:
            return self._no_count(campaign)
        if not waiting_is_over(counts, campaign.calls_queued, campaign.deadline, time.time()):
            self._log_progress(counts, campaign, context)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self.settle(context, counts, campaign.calls_queued))

    def _log_progress(
        self, counts: Mapping[str, int], campaign: Campaign, context: Context | None = None
    ) -> None:
        """The poke's line; while no outcome has arrived after a few pokes, with the reason the
        receiver check finds (:meth:`_due_for_diagnosis`: at most once per ten minutes)."""
        received = int(counts.get("received", 0))
        why = ""
        if context is not None and self._due_for_diagnosis(received, campaign, time.time()):
            why = _receiver_check(context, self.bulk_task_id, campaign)
        if why:
            self.log.warning(
                "Fuse results of %s: %d of %d calls in; waiting until %s at the latest. None so far: %s.",
                self.bulk_task_id,
                received,
                campaign.calls_queued,
                _iso(campaign.deadline),
                why,
            )
            return
        self.log.info(
            "Fuse results of %s: %d of %d calls in; waiting until %s at the latest.",
            self.bulk_task_id,
            received,
            campaign.calls_queued,
            _iso(campaign.deadline),
        )

    def _due_for_diagnosis(self, received: int, campaign: Campaign, now: float) -> bool:
        """Whether this poke asks the receiver why no outcome has arrived: none has, of calls queued,
        and :data:`~airflow_provider_fuse.results.diagnosis.DIAGNOSE_AFTER_POLLS` pokes in a
        row found none; then at most once per ``DIAGNOSE_EVERY`` seconds. In reschedule mode, where
        each poke is a new process that remembers nothing, the pokes are told by time instead: that
        many poke intervals after the list was sent, the first poke of each ``DIAGNOSE_EVERY`` slot
        of the clock."""
        from airflow_provider_fuse.results.diagnosis import DIAGNOSE_AFTER_POLLS, DIAGNOSE_EVERY

        if received or campaign.calls_queued <= 0:
            self._empty_pokes = 0
            return False
        self._empty_pokes += 1
        interval = max(_seconds(self.poke_interval), 1.0)
        if self.reschedule:
            return now - campaign.queued >= DIAGNOSE_AFTER_POLLS * interval and math.floor(
                now / DIAGNOSE_EVERY
            ) != math.floor((now - interval) / DIAGNOSE_EVERY)
        if self._empty_pokes < DIAGNOSE_AFTER_POLLS:
            return False
        if self._diagnosed_at is not None and now - self._diagnosed_at < DIAGNOSE_EVERY:
            return False
        self._diagnosed_at = now
        return True

    # --- the one rule -----------------------------------------------------------------------------

    def settle(self, context: Context, counts: Mapping[str, int], calls_queued: int) -> CampaignSummary:
        """What the counts at the end of the wait do to the task: the one rule for every path.

        :param counts: the bulk task's outcomes by status (:meth:`ResultsTable.summary`).
        :param calls_queued: the calls it queued.
        :returns: the summary (:data:`SUMMARY_KEYS`), when no threshold is missed.
        :raises AirflowFailException: fewer completed calls than ``min_completed_ratio`` of the calls
            queued (skips instead with ``soft_fail``); the summary is pushed under
            ``campaign_results`` first.
        """
        summary = summarize(counts, calls_queued)
        described = describe(summary)
        self.log.info("Fuse results of %s: %s", self.bulk_task_id, described)
        if summary["calls_queued"] and int(counts.get("received", 0)) <= 0:
            self._push_summary(context, summary)
            raise self._fails(
                f"No call outcome arrived for any of the {summary['calls_queued']} calls {self.bulk_task_id} "
                f"queued, by the end of the dialing window and grace period: "
                f"{self._why_missing(context, summary)} {NOTHING_STORED_HINT}."
            )
        if summary["missing"]:
            self.log.warning(
                "%d of %d calls have no outcome after the dialing window and grace period: %s",
                summary["missing"],
                summary["calls_queued"],
                self._why_missing(context, summary),
            )
        ratio, queued = self.min_completed_ratio, summary["calls_queued"]
        if ratio is not None and queued and summary["completed"] < ratio * queued:
            self._push_summary(context, summary)
            message = (
                f"{summary['completed']} of {summary['calls_queued']} calls completed, fewer than "
                f"min_completed_ratio={ratio:g}: {described}"
            )
            raise self._fails(message)
        return summary

    @staticmethod
    def _push_summary(context: Context, summary: CampaignSummary) -> None:
        """Push the summary under ``campaign_results``, before the task fails or skips."""
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=SUMMARY_XCOM_KEY, value=dict(summary))

    def _why_missing(self, context: Context, summary: CampaignSummary) -> str:
        """Why outcomes are missing, as far as this worker can tell (best effort, never raises)."""
        reasons = []
        try:
            campaign = self.campaign(context)
        except Exception:
            campaign = None
        if campaign is not None and campaign.unconfirmed:
            reasons.append(
                f"Fuse never confirmed how many calls it queued for {campaign.unconfirmed} of the bulk "
                "task's lists (an unknown outcome, marked success): the rows sent were waited for, and "
                "Fuse may have queued fewer"
            )
        if campaign is not None and summary["missing"] == summary["calls_queued"]:
            receiver = _receiver_check(context, self.bulk_task_id, campaign)
            if receiver:
                reasons.append(receiver)
        if not reasons:
            reasons.append(
                "Fuse did not report them, or could not reach the receiver at [fuse] results_base_url "
                "(the receiver's log names the refusals: a 403 is a signing key that differs between "
                "the workers and the receiver)"
            )
        return "; ".join(reasons) + "."

    def _fails(self, message: str) -> AirflowException:
        """A failure that retrying cannot help: skips with ``soft_fail``, else fails without retries."""
        if self.soft_fail:
            return AirflowSkipException(message)
        return AirflowFailException(message)

    # --- deferrable mode --------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Poke as usual; or, deferrable, count once and wait in the triggerer if the wait goes on."""
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_fuse.triggers.campaign_results import FuseCampaignResultsTrigger

        campaign = self.campaign(context)
        config = self._config()
        counts = self._count(context, config, campaign)
        # No count in time: the triggerer counts instead (its waits are bounded too).
        if counts is not None:
            if waiting_is_over(counts, campaign.calls_queued, campaign.deadline, time.time()):
                return self.settle(context, counts, campaign.calls_queued)
            self._log_progress(counts, campaign, context)
        ti = context["ti"]
        self.defer(
            trigger=FuseCampaignResultsTrigger(
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                bulk_task_id=self.bulk_task_id,
                campaigns=list(campaign.campaigns),
                calls_queued=campaign.calls_queued,
                deadline=campaign.deadline,
                results_conn_id=config.conn_id,
                results_table=config.table,
                poll_interval=_seconds(self.poke_interval),
                count_timeout=self.count_timeout.total_seconds(),
            ),
            method_name="execute_complete",
            timeout=None if self.timeout is None else timedelta(seconds=_seconds(self.timeout)),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> CampaignSummary:
        """Resume after the trigger fired: the wait is over (:meth:`settle`), or counting failed."""
        if not event or event.get("status") not in ("done", "error"):
            raise AirflowException(f"Unexpected event from FuseCampaignResultsTrigger: {event!r}")
        if event["status"] == "error":
            message = f"Cannot read the call outcomes: {event.get('message') or 'the trigger failed'}"
            if event.get("retryable"):
                raise AirflowException(message)
            raise self._fails(message)
        return self.settle(context, dict(event["counts"]), int(event["calls_queued"]))


def _receiver_check(context: Context, bulk_task_id: str, campaign: Campaign) -> str:
    """Ask the receiver, with a token this worker signs for the bulk task's campaign, whether it
    accepts it (:func:`~airflow_provider_fuse.results.diagnosis.receiver_diagnosis`, the
    trigger's too): the reason no outcome arrived, or ``""`` when none is found. Never raises."""
    from airflow_provider_fuse.results.diagnosis import receiver_diagnosis

    if not campaign.campaigns:
        return ""
    try:
        ti = context["ti"]
        dag_id, run_id = str(ti.dag_id), str(ti.run_id)
    except Exception:
        return ""
    return receiver_diagnosis(dag_id, run_id, bulk_task_id, campaign.campaigns[0])


def _iso(seconds: float) -> str:
    from datetime import datetime, timezone

    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):  # past the year 9999, or not finite
        return f"{seconds:.0f} unix seconds" if math.isfinite(seconds) else str(seconds)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
