"""What the campaign view shows: a bulk task's outcomes counted, or one call's status, as HTML and JSON.

The numbers come from two places only: Airflow's own records of the task (its ``fuse_results`` XComs,
:class:`~airflow_provider_fuse.results.campaign.SentList`, and where Airflow keeps a task state store
the duplicate guard's ledger, for the rows of each part) and the results table's counts
(:meth:`~airflow_provider_fuse.results.table.ResultsTable.part_counts` and
:meth:`~airflow_provider_fuse.results.table.ResultsTable.arrivals`, counted by the database). What
reads them, and who may ask, is :mod:`.view_app`; this module knows neither Airflow nor the web.

The outcomes are counted as the results sensor counts them (:func:`~airflow_provider_fuse.results.
campaign.counted_as`): the four named statuses, and ``other`` for every other status, so the page shows
the sensor's numbers. Nothing personal is shown: no phone number, no CSV value, no call parameter. Of
what a callback carries only its status and, for a single call, its events' names reach a page, and
only when they are one of Fuse's words (:func:`shown_word`): ``other`` is broken down by such words;
anything else is only counted. Every value is HTML-escaped.

The page is plain server-rendered HTML with an inline SVG plot: no script, no style sheet to fetch,
no build step. It reloads itself (``<meta http-equiv="refresh">``) while outcomes are missing and the
dialing window is open or ended less than :data:`REFRESH_AFTER_WINDOW` ago; the page shown while the
outcomes cannot be read reloads itself :data:`UNREADABLE_TRIES` times, waiting twice as long each time.
Numbers carry stable ids and ``data-*`` attributes for tests in a browser (docs/results.md lists them).
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow_provider_fuse.calls import NUMBER_FIELDS, TERMINAL_STATUSES, CallStatus
from airflow_provider_fuse.results.campaign import MAX_TIMESTAMP, NAMED_STATUSES, counted_as

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_fuse.results.campaign import SentList
    from airflow_provider_fuse.results.table import PartCount

__all__ = [
    "MAX_BUCKETS",
    "REFRESH_AFTER_WINDOW",
    "REFRESH_SECONDS",
    "SHOWN_WORDS",
    "UNREADABLE_TRIES",
    "CallView",
    "CampaignView",
    "PartRow",
    "Plot",
    "bucket_seconds_for",
    "nothing_to_show",
    "shown_word",
    "unreadable_page",
]

#: Seconds between reloads of a page whose campaign or call may still change.
REFRESH_SECONDS = 15
#: Seconds after the dialing window's end that a campaign's page still reloads itself while outcomes
#: are missing (Fuse reports a call soon after its last attempt); after that, a reload by hand shows
#: those that still arrive, until the tokens expire.
REFRESH_AFTER_WINDOW = 3600
#: How often the page shown while the outcomes cannot be read reloads itself: after
#: :data:`REFRESH_SECONDS`, then twice as long each time.
UNREADABLE_TRIES = 5
#: The most bars the arrivals plot has: the bucket width grows with the campaign's span.
MAX_BUCKETS = 120
#: Bucket widths the plot chooses from (seconds); beyond the last, whole days.
_NICE_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
#: The words a status or an event's name is shown by: Fuse's own (:class:`~airflow_provider_fuse.
#: calls.CallStatus`) and the two other endings a summary names (``no answer``, ``busy``). A callback's
#: fields are free text to its sender, so nothing else is shown as it came: a name or an address would
#: pass any rule of "words only". Anything else is counted, or listed, as ``other``.
SHOWN_WORDS = frozenset({"queued", "dialing", "connected", *NAMED_STATUSES, "no answer", "busy"})
#: A call id shown: Fuse's ids are short tokens of letters, digits, ``-`` and ``_``.
_CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def shown_word(value: object) -> str | None:
    """``value`` as the page may show it — one of :data:`SHOWN_WORDS`, read as the receiver stores a
    status (:class:`~airflow_provider_fuse.calls.CallStatus`: trimmed, lower case, ``cancelled`` is
    ``canceled``; ``no_answer`` is not ``no answer``) — or ``None``: then it is listed as ``other``."""
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        return None
    text = CallStatus(value).value
    return text if text in SHOWN_WORDS else None


def bucket_seconds_for(span: float) -> int:
    """The bucket width for a plot spanning ``span`` seconds: the smallest of a few round widths (1 s
    to a day) that needs at most :data:`MAX_BUCKETS` bars; beyond, whole days."""
    needed = max(1.0, span / MAX_BUCKETS)
    for width in _NICE_WIDTHS:
        if width >= needed:
            return width
    return math.ceil(needed / 86400) * 86400


@dataclass(frozen=True)
class Plot:
    """The outcomes' arrival, bucketed, against the dialing window (all times unix seconds).

    :param start: the first bucket's start; ``bucket_seconds`` wide, ``counts`` in order.
    :param window_start: when dialing could begin (the first list queued, or its ``start_timestamp``).
    :param window_end: the dialing window's end (``end_timestamp``) or, without one, the earliest
        start of the last attempt; ``None`` when unknown.
    :param now: when the page was made.
    """

    start: int
    bucket_seconds: int
    counts: tuple[int, ...]
    window_start: int | None
    window_end: int | None
    now: float

    @classmethod
    def of(
        cls,
        arrivals: Mapping[int, int],
        bucket_seconds: int,
        *,
        window_start: int | None,
        window_end: int | None,
        now: float,
    ) -> Plot:
        """The plot of ``arrivals`` (:meth:`ResultsTable.arrivals
        <airflow_provider_fuse.results.table.ResultsTable.arrivals>`: ``{bucket: count}``), from the
        window's start (or the first arrival) to the later of its end and the last arrival. Every
        arrival is in one bar: the bars add up to the outcomes received."""
        buckets = sorted(arrivals)
        edges = [bucket * bucket_seconds for bucket in buckets[:1] + buckets[-1:]]
        times = [time for time in (window_start, window_end, *edges) if time is not None]
        low = min(times, default=int(now))
        high = max(times, default=low)
        first = low // bucket_seconds
        last = max(first, high // bucket_seconds)
        if last - first >= 4 * MAX_BUCKETS:  # a stray time far off: the bars still add up
            last = first + 4 * MAX_BUCKETS - 1
        counts = [0] * (last - first + 1)
        for bucket, count in arrivals.items():
            counts[min(max(bucket, first), last) - first] += int(count)
        return cls(first * bucket_seconds, bucket_seconds, tuple(counts), window_start, window_end, now)

    @property
    def end(self) -> int:
        """The last bucket's end."""
        return self.start + self.bucket_seconds * len(self.counts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "bucket_seconds": self.bucket_seconds,
            "counts": list(self.counts),
            "window_start": self.window_start,
            "window_end": self.window_end,
        }


@dataclass(frozen=True)
class PartRow:
    """One part of one map index: its rows sent (``None`` where Airflow keeps no ledger), the calls
    Fuse queued for it (``None`` when unknown), and its outcomes received, by status."""

    map_index: int
    part: int
    rows: int | None
    calls_queued: int | None
    by_outcome: dict[str, int]

    @property
    def received(self) -> int:
        return sum(self.by_outcome.values())

    @property
    def missing(self) -> int | None:
        """The outcomes still missing: the calls queued (or rows sent) less those received, never
        below 0; ``None`` when neither is known."""
        expected = self.calls_queued if self.calls_queued is not None else self.rows
        return None if expected is None else max(0, expected - self.received)

    def as_dict(self) -> dict[str, Any]:
        return {
            "map_index": self.map_index,
            "part": self.part,
            "rows": self.rows,
            "calls_queued": self.calls_queued,
            "received": self.received,
            "missing": self.missing,
            "by_outcome": dict(self.by_outcome),
        }


@dataclass(frozen=True)
class CampaignView:
    """One bulk task's campaign in one run: every map index and part.

    :param sent: each map index's :class:`SentList` (its ``fuse_results`` XCom).
    :param parts: each map index's parts from the ledger: ``(rows, calls_queued)`` per part index, or
        ``None`` for a part not sent; a map index without a ledger is absent.
    :param counts: :meth:`ResultsTable.part_counts
        <airflow_provider_fuse.results.table.ResultsTable.part_counts>` of the task's campaigns.
    :param plot: the arrivals.
    :param token_lifetime: ``[fuse] results_token_lifetime``: outcomes are taken until this long
        after the dialing window.
    """

    dag_id: str
    run_id: str
    task_id: str
    sent: Mapping[int, SentList]
    parts: Mapping[int, Sequence[tuple[int | None, int | None] | None]]
    counts: Sequence[PartCount]
    plot: Plot
    token_lifetime: int

    @property
    def calls_queued(self) -> int:
        """The calls Fuse queued (the rows sent, for a list whose count Fuse never confirmed)."""
        return sum(one.expected for one in self.sent.values())

    @property
    def rows(self) -> int:
        return sum(one.rows for one in self.sent.values())

    @property
    def by_outcome(self) -> dict[str, int]:
        """The outcomes received by status, as the results sensor counts them
        (:func:`~airflow_provider_fuse.results.campaign.counted_as`): the four named statuses and
        ``other``, each present (0 when none)."""
        counted = dict.fromkeys((*NAMED_STATUSES, "other"), 0)
        for one in self.counts:
            counted[counted_as(one.status)] += one.count
        return counted

    @property
    def other_words(self) -> dict[str, int]:
        """The outcomes counted as ``other`` whose status is one of Fuse's words (:func:`shown_word`:
        ``no answer``, ``busy``, ...), by that word; the rest of ``other`` is not named."""
        found: dict[str, int] = {}
        for one in self.counts:
            word = shown_word(one.status)
            if counted_as(one.status) == "other" and word is not None and word not in NAMED_STATUSES:
                found[word] = found.get(word, 0) + one.count
        return dict(sorted(found.items()))

    @property
    def received(self) -> int:
        return sum(one.count for one in self.counts)

    @property
    def missing(self) -> int:
        return max(0, self.calls_queued - self.received)

    @property
    def part_rows(self) -> list[PartRow]:
        """Every part sent (from the ledger) and every part holding an outcome, by map index and part."""
        found: dict[tuple[int, int], dict[str, int]] = {}
        for one in self.counts:
            outcomes = found.setdefault((one.map_index, one.part), {})
            name = counted_as(one.status)
            outcomes[name] = outcomes.get(name, 0) + one.count
        for map_index in self.sent:
            entries = self.parts.get(map_index)
            if entries is None:
                found.setdefault((map_index, 0), {})
            for index, entry in enumerate(entries or ()):
                if entry is not None:
                    found.setdefault((map_index, index), {})
        rows = []
        for map_index, index in sorted(found):
            entries = self.parts.get(map_index)
            entry = entries[index] if entries is not None and index < len(entries) else None
            sent, queued = entry if entry is not None else (None, None)
            listed = self.sent.get(map_index)
            if entries is None and index == 0 and listed is not None and self._single_part(map_index):
                sent, queued = listed.rows, listed.calls_queued
            rows.append(PartRow(map_index, index, sent, queued, found[(map_index, index)]))
        return rows

    def _single_part(self, map_index: int) -> bool:
        """Without a ledger (Airflow before 3.3), whether the map index's outcomes are all in part 0:
        its list's rows are then shown on part 0 (a list of several parts whose later parts hold no
        outcome yet cannot be told apart from a list sent whole)."""
        return all(one.part == 0 for one in self.counts if one.map_index == map_index)

    @property
    def receiving_until(self) -> float | None:
        """Until when outcomes are taken (unix seconds): the window's end plus the token lifetime."""
        ends = [
            one.window_end or one.last_attempt_timestamp or one.queued_timestamp for one in self.sent.values()
        ]
        return max(ends) + self.token_lifetime if ends else None

    @property
    def refreshing(self) -> bool:
        """Whether the page reloads itself: outcomes are missing, can still arrive, and the dialing
        window is open or ended less than :data:`REFRESH_AFTER_WINDOW` ago."""
        until = self.receiving_until
        ends = [
            one.window_end or one.last_attempt_timestamp or one.queued_timestamp for one in self.sent.values()
        ]
        return (
            self.missing > 0
            and until is not None
            and self.plot.now < min(until, max(ends) + REFRESH_AFTER_WINDOW)
        )

    def as_dict(self) -> dict[str, Any]:
        """The page's numbers as JSON: counts, ids and unix seconds only."""
        return {
            "kind": "campaign",
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_indexes": sorted(self.sent),
            "rows": self.rows,
            "calls_queued": self.calls_queued,
            "unconfirmed": sum(1 for one in self.sent.values() if not one.confirmed),
            "received": self.received,
            "missing": self.missing,
            "by_outcome": self.by_outcome,
            "other_words": self.other_words,
            "parts": [row.as_dict() for row in self.part_rows],
            "arrivals": self.plot.as_dict(),
            "refreshing": self.refreshing,
        }

    def html(self, reload: str | None = None) -> str:
        """The page; ``reload``: the relative URL it reloads itself at (the same, by default)."""
        outcomes = "".join(
            _number(f"fuse-outcome-{_slug(name)}", name, count, outcome=name)
            for name, count in self.by_outcome.items()
            if count or name in NAMED_STATUSES
        ) + "".join(
            _number(f"fuse-other-{_slug(word)}", f"of which {word}", count, outcome=word)
            for word, count in self.other_words.items()
        )
        totals = (
            _number("fuse-rows", "rows sent", self.rows)
            + _number("fuse-calls-queued", "calls queued", self.calls_queued)
            + _number("fuse-received", "outcomes received", self.received)
            + _number("fuse-missing", "still missing", self.missing)
        )
        unconfirmed = sum(1 for one in self.sent.values() if not one.confirmed)
        note = (
            f"<p id='fuse-unconfirmed'>{_lists(unconfirmed)} sent whose count Fuse never confirmed: "
            "their rows sent are counted as queued.</p>"
            if unconfirmed
            else ""
        )
        until = self.receiving_until
        if self.missing and not self.refreshing and until is not None and self.plot.now < until:
            note += (
                "<p id='fuse-not-reloading'>The dialing window ended a while ago: this page no longer "
                "reloads itself. Reload it to see outcomes that still arrive.</p>"
            )
        reloads = f" · reloads every {REFRESH_SECONDS} s while outcomes can arrive" if self.refreshing else ""
        part_rows = "".join(_part_row(row) for row in self.part_rows) or (
            "<tr><td colspan='6'>No part was recorded.</td></tr>"
        )
        body = (
            f"<h1>Fuse campaign <code>{_e(self.task_id)}</code></h1>"
            f"<p class='ids'>DAG <code>{_e(self.dag_id)}</code> · run <code>{_e(self.run_id)}</code> · "
            f"{_lists(len(self.sent))} · made {_when(self.plot.now)}{reloads}</p>"
            f"<dl class='totals'>{totals}</dl>{note}"
            f"<h2>Outcomes</h2><dl class='outcomes'>{outcomes}</dl>"
            "<h2>Arrivals against the dialing window</h2>"
            f"<p class='legend'>{_window_legend(self.plot)}</p>"
            f"{_plot_svg(self.plot, self.received)}"
            "<h2>Parts</h2><table id='fuse-parts'><thead><tr><th>map index</th><th>part</th>"
            "<th>rows sent</th><th>calls queued</th><th>received</th><th>missing</th></tr></thead>"
            f"<tbody>{part_rows}</tbody></table>"
        )
        return _page(f"Fuse campaign {self.task_id}", body, refreshing=self.refreshing, target=reload)


@dataclass(frozen=True)
class CallView:
    """One call queued with ``FuseQueueCallOperator``: its id and, once a ``FuseCallStatusSensor``
    saw it end, its ``call_details`` as the sensor's XCom holds them (no phone number there)."""

    dag_id: str
    run_id: str
    task_id: str
    call_id: str | None
    details: Mapping[str, Any] | None
    now: float

    @property
    def status(self) -> str | None:
        if self.details is None:
            return None
        return shown_word(self.details.get("status")) or "other"

    @property
    def refreshing(self) -> bool:
        """Whether the call may still change: no ending status seen yet."""
        return self.status not in TERMINAL_STATUSES

    @property
    def shown_call_id(self) -> str | None:
        value = self.call_id
        if value is None and self.details is not None:
            value = self.details.get("call_id")
        return value if isinstance(value, str) and _CALL_ID.fullmatch(value) else None

    def numbers(self) -> dict[str, int | None]:
        """The numbers of ``call_details`` (attempts, times, duration): whole numbers or ``None``."""
        details = self.details or {}
        return {name: _whole(details.get(name)) for name in NUMBER_FIELDS}

    def events(self) -> list[dict[str, Any]]:
        """The call's events: a status word (or ``other``) and a time, in the order Fuse gave them."""
        given = (self.details or {}).get("events")
        events = given if isinstance(given, list) else []
        return [
            {
                "event": shown_word(item.get("event")) or "other",
                "timestamp": _whole(item.get("timestamp")),
            }
            for item in events[:100]
            if isinstance(item, dict)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "call",
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "call_id": self.shown_call_id,
            "status": self.status,
            **self.numbers(),
            "events": self.events(),
            "refreshing": self.refreshing,
        }

    def html(self, reload: str | None = None) -> str:
        """The page; ``reload``: the relative URL it reloads itself at (the same, by default)."""
        numbers = self.numbers()
        shown = "".join(
            f"<dt>{_e(name.replace('_', ' '))}</dt><dd id='fuse-call-{_slug(name)}' "
            f"data-value='{'' if value is None else value}'>"
            f"{_when(value) if name.endswith('timestamp') else _e('—' if value is None else value)}</dd>"
            for name, value in numbers.items()
        )
        events = "".join(
            f"<tr data-event='{_e(event['event'])}' data-timestamp='{event['timestamp'] or ''}'>"
            f"<td>{_e(event['event'])}</td><td>{_when(event['timestamp'])}</td></tr>"
            for event in self.events()
        )
        status = self.status or "not ended yet"
        body = (
            f"<h1>Fuse call <code id='fuse-call-id'>{_e(self.shown_call_id or '—')}</code></h1>"
            f"<p class='ids'>DAG <code>{_e(self.dag_id)}</code> · run <code>{_e(self.run_id)}</code> · "
            f"task <code>{_e(self.task_id)}</code> · made {_when(self.now)}</p>"
            "<dl class='totals'><dt>status</dt>"
            f"<dd id='fuse-call-status' data-status='{_e(self.status or '')}'>"
            f"{_e(status)}</dd>{shown}</dl>"
            "<h2>Events</h2><table id='fuse-call-events'><thead><tr><th>event</th><th>time</th></tr></thead>"
            f"<tbody>{events or '<tr><td colspan=2>None yet.</td></tr>'}</tbody></table>"
        )
        title = f"Fuse call {self.shown_call_id or ''}".strip()
        return _page(title, body, refreshing=self.refreshing, target=reload)


def nothing_to_show(dag_id: str, run_id: str, task_id: str) -> str:
    """The page for a task instance that recorded no Fuse campaign or call (the tab is on every one)."""
    body = (
        "<h1>No Fuse campaign here</h1>"
        f"<p id='fuse-nothing'>Task <code>{_e(task_id)}</code> of run <code>{_e(run_id)}</code> of DAG "
        f"<code>{_e(dag_id)}</code> recorded no Fuse campaign or call: this view shows the tasks of "
        "FuseBulkQueueOperator(collect_results=True), FuseCampaignResultsSensor, FuseQueueCallOperator "
        "and FuseCallStatusSensor.</p>"
    )
    return _page("Fuse", body, refreshing=False)


def unreadable_page(message: str, *, retry: int = 0, map_index: int | None = None) -> str:
    """The page while the results table or ``[fuse]`` cannot be read, with ``message`` (a text for
    anyone who may read the DAG: no host, no database's words). Try ``retry`` (from 0) reloads itself
    after ``REFRESH_SECONDS * 2**retry`` seconds, as try ``retry + 1`` (``?retry=``, keeping
    ``map_index``), until :data:`UNREADABLE_TRIES` tries; then it says to reload by hand."""
    retry = max(0, retry)
    again = retry < UNREADABLE_TRIES
    tail = "" if again else " This page no longer reloads itself: reload it later."
    body = f"<h1>The outcomes cannot be read now</h1><p id='fuse-unreadable'>{_e(message + tail)}</p>"
    query = {"map_index": map_index} if map_index is not None else {}
    target = "?" + urlencode({**query, "retry": retry + 1})
    return _page("Fuse", body, refreshing=again, delay=REFRESH_SECONDS * 2**retry, target=target)


# --- HTML ------------------------------------------------------------------------------------------

_STYLE = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1rem;color:#1a202c}"
    "code{font-size:90%}.ids{color:#4a5568}"
    "dl{display:grid;grid-template-columns:max-content max-content;gap:.2rem 1rem}dt{color:#4a5568}"
    "dd{margin:0;font-weight:600;text-align:right}"
    "table{border-collapse:collapse}"
    "td,th{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #e2e8f0}"
    "svg{max-width:100%;height:auto}"
)


def _page(
    title: str, body: str, *, refreshing: bool, delay: int = REFRESH_SECONDS, target: str | None = None
) -> str:
    """A page; ``refreshing``: it reloads itself after ``delay`` seconds (``target``: at that
    relative URL, else the same)."""
    to = "" if target is None else f";url={target}"
    refresh = f"<meta http-equiv='refresh' content='{int(delay)}{_e(to)}'>" if refreshing else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'>{refresh}<title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head>"
        f"<body data-refreshing='{str(refreshing).lower()}'>{body}</body></html>"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _slug(name: str) -> str:
    return name.replace(" ", "-").replace("_", "-")


def _number(element_id: str, label: str, count: int, *, outcome: str | None = None) -> str:
    data = f" data-outcome='{_e(outcome)}'" if outcome is not None else ""
    return (
        f"<dt>{_e(label)}</dt><dd id='{_e(element_id)}' data-count='{int(count)}'{data}>{int(count):,}</dd>"
    )


def _part_row(row: PartRow) -> str:
    def cell(value: int | None) -> str:
        return "—" if value is None else f"{value:,}"

    data = (
        f"data-map-index='{row.map_index}' data-part='{row.part}' "
        f"data-rows='{'' if row.rows is None else row.rows}' data-received='{row.received}' "
        f"data-missing='{'' if row.missing is None else row.missing}'"
    )
    return (
        f"<tr {data}><td>{row.map_index}</td><td>{row.part}</td><td>{cell(row.rows)}</td>"
        f"<td>{cell(row.calls_queued)}</td><td>{row.received:,}</td><td>{cell(row.missing)}</td></tr>"
    )


def _when(seconds: object) -> str:
    """Unix seconds as ``2026-11-29 02:00:00 UTC`` (``—`` for none or a time no calendar shows)."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 <= seconds <= MAX_TIMESTAMP
    ):
        return "—"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP = 720, 220, 48, 28, 12


def _lists(count: int) -> str:
    """How many lists (map indexes of the task) a page counts, as the people running a campaign say it."""
    return "1 list" if count == 1 else f"{count:,} lists (map indexes)"


def _window_legend(plot: Plot) -> str:
    """What the plot's shading is, in words (a window with no start or end given is not drawn wide)."""
    if plot.window_start is None:
        return f"Outcomes received per {plot.bucket_seconds:,} s. No dialing window was recorded."
    end = "no end time given" if plot.window_end is None else f"until {_e(_when(plot.window_end))}"
    return (
        f"Outcomes received per {plot.bucket_seconds:,} s (bars); the dialing window shaded: from "
        f"{_e(_when(plot.window_start))}, {end}; now marked by the dashed line."
    )


def _plot_svg(plot: Plot, received: int) -> str:
    """The arrivals as bars (one per bucket), the dialing window shaded, ``now`` marked: inline SVG."""
    inner_width = _WIDTH - _LEFT - 8
    inner_height = _HEIGHT - _TOP - _BOTTOM
    span = max(1, plot.end - plot.start)
    peak = max(plot.counts, default=0) or 1

    def x(time: float) -> float:
        return _LEFT + (min(max(time, plot.start), plot.end) - plot.start) / span * inner_width

    parts = [
        f"<svg id='fuse-arrivals' xmlns='http://www.w3.org/2000/svg' width='{_WIDTH}' height='{_HEIGHT}' "
        f"viewBox='0 0 {_WIDTH} {_HEIGHT}' role='img' data-total='{received}' "
        f"data-bucket-seconds='{plot.bucket_seconds}' data-start='{plot.start}'>"
        f"<title>Outcomes received per {plot.bucket_seconds} s against the dialing window</title>"
    ]
    if plot.window_start is not None:
        end = plot.window_end if plot.window_end is not None else plot.end
        parts.append(
            f"<rect id='fuse-window' x='{x(plot.window_start):.1f}' y='{_TOP}' "
            f"width='{max(1.0, x(end) - x(plot.window_start)):.1f}' height='{inner_height}' fill='#bee3f8' "
            f"data-start='{plot.window_start}' "
            f"data-end='{'' if plot.window_end is None else plot.window_end}'>"
            "<title>dialing window</title></rect>"
        )
    bar = inner_width / max(1, len(plot.counts))
    for index, count in enumerate(plot.counts):
        if not count:
            continue
        height = count / peak * inner_height
        left = _LEFT + index * bar
        start = plot.start + index * plot.bucket_seconds
        parts.append(
            f"<rect class='bar' x='{left:.1f}' y='{_TOP + inner_height - height:.1f}' "
            f"width='{max(1.0, bar - 1):.1f}' height='{height:.1f}' fill='#3182ce' "
            f"data-bucket-start='{start}' data-count='{count}'>"
            f"<title>{count:,} from {_when(start)}</title></rect>"
        )
    if plot.start <= plot.now <= plot.end:
        parts.append(
            f"<line id='fuse-now' x1='{x(plot.now):.1f}' x2='{x(plot.now):.1f}' y1='{_TOP}' "
            f"y2='{_TOP + inner_height}' stroke='#e53e3e' stroke-dasharray='4 3'><title>now</title></line>"
        )
    base = _TOP + inner_height
    parts.append(
        f"<line x1='{_LEFT}' x2='{_WIDTH - 8}' y1='{base}' y2='{base}' stroke='#4a5568'/>"
        f"<text x='{_LEFT - 4}' y='{_TOP + 10}' text-anchor='end' font-size='11'>{peak:,}</text>"
        f"<text x='{_LEFT - 4}' y='{base}' text-anchor='end' font-size='11'>0</text>"
        f"<text x='{_LEFT}' y='{_HEIGHT - 8}' font-size='11'>{_when(plot.start)}</text>"
        f"<text x='{_WIDTH - 8}' y='{_HEIGHT - 8}' text-anchor='end' font-size='11'>{_when(plot.end)}</text>"
        "</svg>"
    )
    return "".join(parts)
