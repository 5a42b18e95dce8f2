"""The campaign contract: what a ``collect_results`` bulk task records for the wait, and how the wait ends.

``FuseBulkQueueOperator(collect_results=True)`` pushes, per map index, a :class:`SentList` under the
XCom key :data:`RESULTS_XCOM_KEY`; ``FuseCampaignResultsSensor`` and its trigger read those records
back (:meth:`SentList.from_xcom` refuses any it cannot trust), sum them into a :class:`Campaign`
(the calls waited for and the deadline), wait until :func:`waiting_is_over`, and turn the counts of
the results table into a :class:`CampaignSummary` (:func:`summarize`). Every rule of that exchange
is here, once; the operator, the sensor, the trigger and :class:`~airflow_provider_fuse.hooks.
results.FuseResultsHook` import it.

No personal data passes through this module: ids, counts and unix seconds only. It imports nothing
beyond the standard library and the token module, so DAG parsing pays nothing for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_fuse.results.tokens import is_campaign_id

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import timedelta

    from airflow_provider_fuse.fields import QueueFields
    from airflow_provider_fuse.guard import CampaignRecord

__all__ = [
    "MAX_COUNT",
    "MAX_TIMESTAMP",
    "NAMED_STATUSES",
    "RESULTS_XCOM_KEY",
    "SUMMARY_KEYS",
    "SUMMARY_XCOM_KEY",
    "Campaign",
    "CampaignSummary",
    "SentList",
    "UnreadableRecord",
    "bulk_campaigns",
    "counted_as",
    "describe",
    "dialing_window_end",
    "is_sent_list",
    "sent_lists",
    "sent_records",
    "summarize",
    "waiting_is_over",
]

#: The XCom key of what ``collect_results=True`` records for the results sensor (:class:`SentList`,
#: no personal data). Pushed before the list is sent (``confirmed`` false, ``calls_queued``
#: ``None``: Fuse has not answered yet), and again once Fuse queued it.
RESULTS_XCOM_KEY = "fuse_results"
#: Under this XCom key the sensor pushes the summary before a threshold fails or skips the task.
SUMMARY_XCOM_KEY = "campaign_results"
#: The statuses named in the summary; any other status is counted under ``other``.
NAMED_STATUSES = ("completed", "failed", "canceled", "rejected")
#: The keys of the summary (:class:`CampaignSummary`): how many calls were queued, how each one that
#: was reported ended (``other``: any status but the four named, e.g. ``no answer`` or ``busy``), and
#: how many were never reported. Every outcome received is in exactly one status field; while no
#: more outcomes arrive than calls were queued, the status fields and ``missing`` add up to
#: ``calls_queued``.
SUMMARY_KEYS = ("calls_queued", *NAMED_STATUSES, "other", "missing")
#: The latest time a :class:`SentList` may hold, in unix seconds: the end of the year 9999 (what a
#: ``datetime`` can show). Milliseconds, or anything later, are refused.
MAX_TIMESTAMP = 253_402_300_799
#: The most calls or rows a :class:`SentList` may count.
MAX_COUNT = 10**9
_TIMES = ("queued_timestamp", "window_end", "start_timestamp", "last_attempt_timestamp")


class CampaignSummary(TypedDict):
    """The counts of one bulk task's outcomes (:data:`SUMMARY_KEYS`): the sensor's XCom. No personal
    data."""

    calls_queued: int
    completed: int
    failed: int
    canceled: int
    rejected: int
    other: int
    missing: int


class UnreadableRecord(ValueError):
    """A value under :data:`RESULTS_XCOM_KEY` that is not a :class:`SentList`: the message names the
    field and the rule it breaks, never the value."""


@dataclass(frozen=True)
class SentList:
    """What one map index of a ``collect_results`` bulk task sent: its XCom :data:`RESULTS_XCOM_KEY`.

    :param campaign: the campaign id every part's results token names.
    :param confirmed: whether Fuse answered how many calls it queued.
    :param calls_queued: Fuse's count; ``None`` while not confirmed.
    :param rows: the rows sent (all parts): the most outcomes the list can get.
    :param queued_timestamp: unix seconds when the list was (last) sent.
    :param window_end: the dialing window's end (``end_timestamp``), if given.
    :param start_timestamp: when dialing may begin, if given.
    :param last_attempt_timestamp: the earliest start of a call's last attempt
        (:func:`dialing_window_end`).
    """

    campaign: str
    confirmed: bool
    calls_queued: int | None
    rows: int
    queued_timestamp: int
    window_end: int | None = None
    start_timestamp: int | None = None
    last_attempt_timestamp: int | None = None

    @classmethod
    def of(cls, record: CampaignRecord, calls_queued: int | None) -> SentList:
        """The record of the campaign ``record`` (the ledger's), with Fuse's count (``None``: not
        confirmed yet)."""
        return cls(
            campaign=record.campaign,
            confirmed=calls_queued is not None,
            calls_queued=calls_queued,
            rows=record.rows,
            queued_timestamp=record.queued_timestamp,
            window_end=record.window_end,
            start_timestamp=record.start_timestamp,
            last_attempt_timestamp=record.last_attempt_timestamp,
        )

    def to_xcom(self) -> dict[str, Any]:
        """The JSON object pushed under :data:`RESULTS_XCOM_KEY`: every field, by name."""
        return dataclasses.asdict(self)

    @classmethod
    def from_xcom(cls, value: object) -> SentList:
        """Read a value pulled from :data:`RESULTS_XCOM_KEY`, trusting none of it.

        A record holds a campaign id (:func:`~airflow_provider_fuse.results.tokens.is_campaign_id`),
        ``confirmed`` (a bool), ``rows`` and ``calls_queued`` (whole numbers from 0 to
        :data:`MAX_COUNT`; ``calls_queued`` may be ``None`` when not confirmed), and times in whole
        unix seconds from 0 to :data:`MAX_TIMESTAMP` (``queued_timestamp`` required, the others
        optional). Other keys are ignored.

        :raises UnreadableRecord: anything else (the field and the rule, never the value).
        """
        if not isinstance(value, dict):
            raise UnreadableRecord("it is not a record (a JSON object)")
        if not is_campaign_id(value.get("campaign")):
            raise UnreadableRecord(
                "its field 'campaign' is not a campaign id (8 to 64 letters, digits, '-' or '_')"
            )
        confirmed = value.get("confirmed")
        if not isinstance(confirmed, bool):
            raise UnreadableRecord("its field 'confirmed' is not true or false")
        for name in ("rows", "calls_queued"):
            number = value.get(name)
            if name == "calls_queued" and number is None and not confirmed:
                continue
            if not _whole(number, MAX_COUNT):
                raise UnreadableRecord(f"its field {name!r} is not a whole number from 0 to {MAX_COUNT}")
        for name in _TIMES:
            number = value.get(name)
            if number is None and name != "queued_timestamp":
                continue
            if not _whole(number, MAX_TIMESTAMP):
                raise UnreadableRecord(
                    f"its field {name!r} is not a time in whole unix seconds from 0 to {MAX_TIMESTAMP} "
                    "(the year 9999)"
                )
        known: dict[str, Any] = {field.name: value.get(field.name) for field in dataclasses.fields(cls)}
        return cls(**known)

    @property
    def expected(self) -> int:
        """The outcomes this list waits for: Fuse's count, or the rows sent when never confirmed."""
        return self.calls_queued if self.confirmed and self.calls_queued is not None else self.rows

    def dialing_ends(self, dialing_timeout: float) -> float:
        """When Fuse stops dialing this list (unix seconds): ``window_end``; without one,
        ``dialing_timeout`` seconds from when dialing could start (queued, or ``start_timestamp`` if
        later), and never before the earliest start of the last attempt (a call reports only once
        its attempts are used up)."""
        if self.window_end is not None:
            return self.window_end
        return max(
            max(self.queued_timestamp, self.start_timestamp or 0) + dialing_timeout,
            self.last_attempt_timestamp or 0,
        )


def is_sent_list(value: object) -> bool:
    """Whether ``value`` is a record :meth:`SentList.from_xcom` reads."""
    try:
        SentList.from_xcom(value)
    except UnreadableRecord:
        return False
    return True


def dialing_window_end(fields: QueueFields, now: float) -> int:
    """When Fuse stops dialing a list sent with ``fields`` at ``now``, as far as the fields say (unix
    seconds).

    ``end_timestamp`` when given; otherwise the earliest start of the last attempt: the start (or
    ``now``, when the start is not given or already past) plus ``max_attempts - 1`` waits of
    ``reattempt_wait``. Fuse may start some calls later than that on a long list, which the token's
    lifetime after the window (``[fuse] results_token_lifetime``, two days by default) covers.
    """
    if fields.end_timestamp is not None:
        return fields.end_timestamp
    start = max(int(now), fields.start_timestamp or 0)
    return start + ((fields.max_attempts or 1) - 1) * (fields.reattempt_wait or 0)


@dataclass(frozen=True)
class Campaign:
    """What one bulk task sent, summed over its map indexes: what the wait waits for.

    :param calls_queued: the calls Fuse queued; for a map index whose count Fuse never confirmed (an
        unknown outcome, checked in Fuse and marked success), the rows it sent.
    :param deadline: unix seconds after which the wait ends with what has arrived.
    :param campaigns: the campaign ids of the map indexes: only their outcomes are counted.
    :param unconfirmed: how many map indexes sent a list whose count Fuse never confirmed.
    :param queued: unix seconds when the first list was sent (the earliest ``queued_timestamp``).
    """

    calls_queued: int
    deadline: float
    campaigns: tuple[str, ...] = ()
    unconfirmed: int = 0
    queued: float = 0.0

    @classmethod
    def of(cls, sent: Sequence[SentList], *, dialing_timeout: timedelta, grace_period: timedelta) -> Campaign:
        """The wait for the lists ``sent`` (at least one): the deadline is the latest
        :meth:`SentList.dialing_ends` plus ``grace_period``."""
        dialing = dialing_timeout.total_seconds()
        return cls(
            calls_queued=sum(one.expected for one in sent),
            deadline=max(one.dialing_ends(dialing) for one in sent) + grace_period.total_seconds(),
            campaigns=tuple(sorted({one.campaign for one in sent})),
            unconfirmed=sum(1 for one in sent if not one.confirmed),
            queued=min(one.queued_timestamp for one in sent),
        )


def sent_records(ti: Any, bulk_task_id: str) -> list[object]:
    """The values the bulk task pushed under :data:`RESULTS_XCOM_KEY` in this run (one per map index
    that pushed one), unread: :meth:`SentList.from_xcom` reads each.

    :param ti: the running task instance (``context["ti"]``) of a task of the same run.
    """
    pulled = ti.xcom_pull(task_ids=[bulk_task_id], key=RESULTS_XCOM_KEY)
    if not isinstance(pulled, (list, tuple)):
        pulled = [pulled]
    return [record for record in pulled if record is not None]


def sent_lists(records: Sequence[object], bulk_task_id: str, *, reader: str) -> list[SentList]:
    """Every record of :func:`sent_records`, read with :meth:`SentList.from_xcom`: the one way the
    results sensor and :class:`~airflow_provider_fuse.hooks.results.FuseResultsHook` read them, so
    that they count the same calls in the same campaigns.

    :param reader: who reads, for the message (``"this sensor"``).
    :raises UnreadableRecord: a record is not a :class:`SentList`. The message names the bulk task,
        which of its records (``record 2 of 3``) and the field and rule it breaks, never a value.
    """
    sent = []
    for number, record in enumerate(records, 1):
        try:
            sent.append(SentList.from_xcom(record))
        except UnreadableRecord as unreadable:
            raise UnreadableRecord(
                f"Task {bulk_task_id!r} of this run left a {RESULTS_XCOM_KEY!r} XCom {reader} cannot "
                f"read: {unreadable} (record {number} of {len(records)}). It is not one this "
                "provider's FuseBulkQueueOperator pushes (or one an earlier version pushed, without a "
                "campaign id). Clear the bulk task: its duplicate guard answers from its ledger "
                "without dialing again."
            ) from None
    return sent


def bulk_campaigns(ti: Any, bulk_task_id: str) -> list[str]:
    """The campaign ids a bulk task sent in this run (one per map index), from its
    :data:`RESULTS_XCOM_KEY` XComs (read by :func:`sent_lists`): what reads of the results table take
    to count this run's outcomes and no other's (a run deleted and triggered again under the same run
    id is another campaign).

    :param ti: the running task instance (``context["ti"]``) of a task of the same run.
    :return: the distinct ids, sorted; empty when the bulk task pushed none.
    :raises UnreadableRecord: a record is not a :class:`SentList` (see :func:`sent_lists`).
    """
    records = sent_records(ti, bulk_task_id)
    return sorted({one.campaign for one in sent_lists(records, bulk_task_id, reader="bulk_campaigns")})


def waiting_is_over(counts: Mapping[str, int], calls_queued: int, deadline: float, now: float) -> bool:
    """Whether the wait for a list's outcomes is over: one has arrived for every call queued, or the
    dialing window and grace period (``deadline``, unix seconds) have passed.

    The one rule for the sensor's pokes and the trigger's polls.
    """
    return int(counts.get("received", 0)) >= calls_queued or now >= deadline


def counted_as(status: str) -> str:
    """The name a stored ``status`` is counted under, by :meth:`ResultsTable.summary
    <airflow_provider_fuse.results.table.ResultsTable.summary>` (the results sensor) and the
    campaign view alike: itself when it is one of :data:`NAMED_STATUSES` exactly as stored (the
    receiver stores :class:`~airflow_provider_fuse.calls.CallStatus`'s lower-case value), else
    ``other``. ``completed_`` or ``Completed`` is ``other``, as a filter on ``status == "completed"``
    of the table's rows sees it."""
    return status if status in NAMED_STATUSES else "other"


def summarize(counts: Mapping[str, int], calls_queued: int) -> CampaignSummary:
    """The summary (:data:`SUMMARY_KEYS`) of ``counts`` (:meth:`ResultsTable.summary
    <airflow_provider_fuse.results.table.ResultsTable.summary>`: by status and ``received``) for
    ``calls_queued`` calls.

    Every outcome received lands in exactly one field: the four named statuses, ``other`` for the
    rest (counted from ``received`` so that no status is lost, whatever the table calls it).
    ``missing`` is ``calls_queued`` minus the outcomes received (never below 0).
    """
    queued = int(calls_queued)
    named = {status: int(counts.get(status, 0)) for status in NAMED_STATUSES}
    received = int(counts.get("received", 0))
    return CampaignSummary(
        calls_queued=queued,
        completed=named["completed"],
        failed=named["failed"],
        canceled=named["canceled"],
        rejected=named["rejected"],
        other=max(0, received - sum(named.values())),
        missing=max(0, queued - received),
    )


def describe(summary: Mapping[str, object]) -> str:
    """``3 queued → 2 completed, 1 failed``: the statuses that occurred, and what is missing."""
    ended = [f"{summary[key]} {key}" for key in SUMMARY_KEYS[1:] if summary[key]]
    return f"{summary['calls_queued']} queued → {', '.join(ended) or 'no outcomes'}"


def _whole(value: object, most: int) -> bool:
    """Whether ``value`` is an ``int`` (not a bool) from 0 to ``most``."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most
