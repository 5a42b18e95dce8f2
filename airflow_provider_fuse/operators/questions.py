"""The texts of the questions a bulk upload asks a person (:mod:`airflow_provider_fuse.decisions`).

Each is built from what the operator knows about the list — counts, row ranges, the deployment, the
window, the options — never from a CSV value: the subject and the Markdown body are stored in
Airflow's database and shown to everyone who may read the DAG's human-in-the-loop tasks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from airflow_provider_fuse.decisions import NOT_QUEUED, QUEUED, STOP

if TYPE_CHECKING:
    from datetime import timedelta

__all__ = [
    "CallShown",
    "ListShown",
    "PartUnknown",
    "approval_text",
    "call_approval_text",
    "task_name",
    "unknown_outcome_text",
]


def task_name(ti: object) -> str:
    """The task instance a question is about, as a person finds it: its DAG, task, map index and run.

    Ids are shown as code; a character that would end the code span or the line is replaced, so a
    run id cannot add Markdown (a link, say) to a question.
    """

    def code(value: object) -> str:
        return "`" + re.sub(r"[`\r\n|\\]", "?", str(value)) + "`"

    map_index = getattr(ti, "map_index", None)
    mapped = f" [{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
    dag_id, task_id, run_id = (getattr(ti, name, "?") for name in ("dag_id", "task_id", "run_id"))
    return f"Task {code(dag_id)}.{code(task_id)}{mapped} (run {code(run_id)})"


@dataclass(frozen=True)
class ListShown:
    """What an approval shows of a list.

    :param task: ``dag_id.task_id`` (and the map index, when mapped) and the run id.
    :param at: the deployment, as every message names it.
    :param rows: rows that would be sent.
    :param requests: requests that would be made.
    :param csv_rows: data rows of the CSV.
    :param size: the CSV's size in bytes.
    :param window: the dialing window, described.
    :param fields: the other request fields, described (``"(none)"`` when none).
    :param repeats: rows repeating an earlier row's destination, and what the policy does with them.
    :param chunking: how the list is cut into requests.
    :param results: where the calls' outcomes go.
    :param plan: the calling-hours and suppression plan lines (empty without them).
    :param timeout: how long the question waits.
    :param resumed: calls earlier tries of this task instance already queued (0 when none).
    """

    task: str
    at: str
    rows: int
    requests: int
    csv_rows: int
    size: int
    window: str
    fields: str
    repeats: str
    chunking: str
    results: str
    plan: tuple[str, ...]
    timeout: timedelta
    resumed: int = 0


def approval_text(shown: ListShown) -> tuple[str, str]:
    """The approval question's subject and Markdown body."""
    subject = f"Approve calling list: {shown.rows:,} rows to {shown.at}"
    lines = [
        f"{shown.task} asks to queue **{_count(shown.rows, 'call')}** with Fuse, in "
        f"{_count(shown.requests, 'request')} to **{shown.at}**.",
        "",
        "| | |",
        "|---|---|",
        f"| Dialing window | {_window(shown.window)} |",
        f"| Request fields | {shown.fields} |",
        f"| Rows | {shown.rows:,} to send, of {shown.csv_rows:,} in the CSV ({shown.size:,} bytes) |",
        f"| Repeated destinations | {shown.repeats} |",
        f"| Requests | {shown.chunking} |",
        f"| Outcomes | {shown.results} |",
    ]
    if shown.resumed:
        lines.append(f"| Already queued | {shown.resumed:,} calls, by earlier tries of this task |")
    if shown.plan:
        lines += ["", "Calling hours and suppression:", "", *(f"- {line.strip()}" for line in shown.plan)]
    lines += [
        "",
        "**Approve** sends exactly this list: if the CSV changes before the answer, nothing is sent and "
        "the task fails saying so. **Reject** sends nothing. No answer within "
        f"{_duration(shown.timeout)} is a Reject.",
    ]
    return subject, "\n".join(lines)


@dataclass(frozen=True)
class CallShown:
    """What an approval shows of a single call: never its number or a call parameter's value.

    :param task: as :attr:`ListShown.task`.
    :param at: the deployment.
    :param window: the dialing window, described.
    :param fields: the other request fields, described.
    :param parameter_names: the names of the call parameters.
    :param timeout: how long the question waits.
    """

    task: str
    at: str
    window: str
    fields: str
    parameter_names: tuple[str, ...]
    timeout: timedelta


def call_approval_text(shown: CallShown) -> tuple[str, str]:
    """The single call's approval question: subject and Markdown body."""
    names = ", ".join(f"`{name}`" for name in shown.parameter_names) or "(none)"
    body = "\n".join(
        [
            f"{shown.task} asks to queue **one call** with Fuse, to **{shown.at}**.",
            "",
            "| | |",
            "|---|---|",
            f"| Dialing window | {_window(shown.window)} |",
            f"| Request fields | {shown.fields} |",
            f"| Call parameters | {names} (their values are not shown) |",
            "",
            "**Approve** queues exactly this call: if the number, the parameters or the fields change "
            "before the answer, nothing is queued and the task fails saying so. **Reject** queues nothing. "
            f"No answer within {_duration(shown.timeout)} is a Reject.",
        ]
    )
    return f"Approve one call to {shown.at}", body


@dataclass(frozen=True)
class PartUnknown:
    """What an unknown-outcome question says of the part Fuse may have queued.

    :param task: as :attr:`ListShown.task`.
    :param at: the deployment.
    :param index: the part's index (0-based).
    :param parts: parts in the list.
    :param rows: the part's rows.
    :param rows_of: the rows of the file it holds, described (``""`` when not known).
    :param sent_at: when its request left (unix seconds; ``None`` when not recorded).
    :param queued_parts: parts known queued, and their calls.
    :param queued_calls: calls those parts queued.
    :param timeout: how long the question waits.
    """

    task: str
    at: str
    index: int
    parts: int
    rows: int
    rows_of: str
    sent_at: float | None
    queued_parts: int
    queued_calls: int
    timeout: timedelta


def unknown_outcome_text(part: PartUnknown) -> tuple[str, str]:
    """The unknown-outcome question's subject and Markdown body."""
    name = f"part {part.index + 1} of {part.parts}" if part.parts > 1 else "the list"
    subject = f"Unknown outcome: did Fuse queue {name} ({_count(part.rows, 'row')}) for {part.at}?"
    when = (
        "at an unrecorded time"
        if part.sent_at is None
        else datetime.fromtimestamp(part.sent_at, timezone.utc).strftime("at %Y-%m-%d %H:%M UTC")
    )
    held = f" ({part.rows_of} of the file)" if part.rows_of else ""
    later = part.parts - part.index - 1
    lines = [
        f"{part.task} sent {name} — **{_count(part.rows, 'row')}**{held} — to **{part.at}** {when}, "
        "and never learned whether Fuse queued it: Fuse's answer did not say (a lost connection or a "
        "timeout after sending, a 5xx or an answer that was not Fuse's, or a worker that died while "
        "sending; the task's log says which).",
        "",
        f"- Known queued: {_count(part.queued_parts, 'part')}, {_count(part.queued_calls, 'call')}. These "
        "are never sent again.",
        f"- Not sent yet: {_count(later, 'part')} after it."
        if part.parts > 1
        else "- Nothing else is left to send.",
        "",
        "Look for these calls in Fuse (the deployment's pending outbound calls, or the outcomes your "
        "result_url received), then answer:",
        "",
        f"- **{QUEUED}**: the part is recorded as queued (its rows counted as its calls: Fuse's own count "
        "never arrived)" + (", and the parts after it are sent." if later else "; the task succeeds."),
        f"- **{NOT_QUEUED}**: the part is sent again"
        + (", then the parts after it." if later else ".")
        + " Parts known queued are not.",
        f"- **{STOP}**: the task fails and nothing more is sent.",
        "",
        f"No answer within {_duration(part.timeout)} is a {STOP}.",
    ]
    return subject, "\n".join(lines)


def _count(number: int, noun: str) -> str:
    """``1 request``, ``3 requests``."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _window(window: str) -> str:
    """The dialing window as a person reads it (``now → open`` is a window with no end given)."""
    start, _, end = window.partition(" → ")
    start = "as soon as queued" if start == "now" else f"from {start}"
    end = "no end time given" if end == "open" else f"until {end}"
    return f"{start}, {end}"


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
