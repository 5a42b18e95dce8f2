"""What a Fuse failure does to my task: the one mapping of the provider's errors onto task outcomes.

The hook decides which class a failure is in (:mod:`airflow_provider_fuse.exceptions`); this module
decides what each class does to the task instance, for every operator:

* invalid input, nothing sent → :class:`AirflowFailException`, no retries;
* an unknown outcome (Fuse may have queued) → fails without retries, saying what to check in Fuse,
  unless ``on_unknown_outcome="retry"`` leaves it to the task's retries;
* a retryable failure (not sent, 429) → :class:`AirflowException`: the task's retries apply;
* any other rejection → :class:`AirflowFailException` in Fuse's words;
* ``execution_timeout`` after a request left, with no duplicate guard → fails without retries.

The part of a chunked upload and what the duplicate guard refuses are named here too
(:func:`bulk_queue_failure`; the guard's refusals are in :mod:`.reruns`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from airflow_provider_fuse._compat import AirflowException, AirflowFailException
from airflow_provider_fuse.exceptions import (
    FuseApiError,
    FuseUnknownOutcomeError,
    FuseValidationError,
    end_sentence,
    without_may_have_queued,
)

if TYPE_CHECKING:
    from airflow_provider_fuse.exceptions import FuseError
    from airflow_provider_fuse.preflight import CsvPart

__all__ = [
    "NEXT_STEPS",
    "ON_UNKNOWN_OUTCOME",
    "bulk_queue_failure",
    "nothing_sent",
    "rows_of",
    "task_failure",
    "timed_out",
]

#: What ``on_unknown_outcome`` may say.
ON_UNKNOWN_OUTCOME = ("fail", "retry")

#: What a person does after an unknown outcome, ending every such failure of a task.
NEXT_STEPS = (
    "Next steps: look for these calls in Fuse (the deployment's outbound calls, or the outcomes your "
    "result_url received), then follow docs/safety.md, 'After an unknown outcome', for what to do when "
    "they are there and when they are not."
)


def nothing_sent(error: ValueError) -> AirflowFailException:
    """Invalid input found before any request: the task fails without retries, naming the parameter
    (a :class:`FuseValidationError`) or the config option (``ResultsConfigError``)."""
    return AirflowFailException(f"Nothing was sent to Fuse: {error}")


def task_failure(
    error: FuseError,
    *,
    unknown_outcome: str,
    on_unknown_outcome: Literal["fail", "retry", "ask"] = "fail",
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
        return nothing_sent(error)
    if isinstance(error, FuseUnknownOutcomeError):
        # What happened, then what it may mean in the operator's words (said once), then what to do.
        what = end_sentence(without_may_have_queued(str(error)))
        message = f"Unknown outcome{part}: {what} {end_sentence(unknown_outcome)}"
        if on_unknown_outcome == "retry":
            return AirflowException(message + " (on_unknown_outcome='retry': retrying)")
        return AirflowFailException(f"{message} {NEXT_STEPS}")
    if isinstance(error, FuseApiError) and error.retryable:
        return AirflowException(f"{error}{part}")
    return AirflowFailException(f"{error}{part}" if part else str(error))


def bulk_queue_failure(
    error: FuseError,
    where: str,
    *,
    on_unknown_outcome: Literal["fail", "retry", "ask"],
    part_index: int = 0,
    parts: list[CsvPart] | None = None,
    queued_before: int = 0,
    guarded: bool = False,
) -> AirflowException:
    """A Fuse failure of a bulk upload as a task outcome: :func:`task_failure`, plus parts.

    A failed part is named with the rows of the original file it holds: Fuse's own text (a row
    number, say) counts within the part it was sent. A failure after earlier parts were queued fails
    without retries when there is no duplicate guard: a retry would start again at part 1.

    :param queued_before: calls queued for the parts before ``part_index``.
    :param guarded: whether the duplicate guard records this task's parts (Airflow >= 3.3).
    """
    count = len(parts or ())
    part = ""
    if parts and count > 1:
        sent = parts[part_index]
        part = (
            f" (part {part_index + 1} of {count}: {rows_of(sent)} of the file; row numbers in Fuse's "
            f"text count within this part, whose first data row is the file's row {sent.first_row})"
        )
    outcome = task_failure(
        error,
        unknown_outcome=(
            f"Fuse may have queued some or all of the calls. Check the pending outbound calls of {where} "
            "in Fuse before running this task again: a retry could dial every contact twice."
        ),
        on_unknown_outcome=on_unknown_outcome,
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


def timed_out(*, request_left: bool, guarded: bool, on_unknown_outcome: str) -> AirflowFailException | None:
    """What ``execution_timeout`` ending the task does, or ``None`` to let Airflow's timeout stand.

    Once a request has left, a retry without the duplicate guard could dial again, so the task fails
    without retries (unless unknown outcomes may be retried). With the guard, the recorded intent
    blocks the next try instead.
    """
    if request_left and not guarded and on_unknown_outcome != "retry":
        return AirflowFailException(
            "execution_timeout ended this task after a request to Fuse had left: Fuse may have queued "
            "the calls. Without the duplicate guard (Airflow >= 3.3) a retry could dial them again, so "
            "this task is not retried. Check the deployment's outbound calls in Fuse."
        )
    return None


def rows_of(part: CsvPart) -> str:
    """The rows of the original file a part holds (the header is row 1)."""
    if part.rows == part.last_row - part.first_row + 1:
        return f"rows {part.first_row}-{part.last_row}"
    return f"{part.rows} rows between rows {part.first_row} and {part.last_row}"
