"""The bounds of everything the hook reads or waits for, and of the settings it takes.

Standard library only: the operators check ``hook_params`` against these when a DAG is parsed,
which must not import an HTTP client.
"""

from __future__ import annotations

import math
import re
from typing import TypeGuard

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "MAX_ANSWER_BYTES",
    "MAX_ANSWER_HEADERS",
    "MAX_ANSWER_HEAD_BYTES",
    "MAX_CALLS_QUEUED",
    "MAX_CALL_ID_CHARS",
    "MAX_CONNECT_RETRIES",
    "MAX_INTERIM_HEAD_BYTES",
    "MAX_RETRY_BACKOFF",
    "MAX_RETRY_DELAY",
    "MAX_TIMEOUT",
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_DEADLINE",
    "PROBE_READ_BYTES",
    "PROGRESS_INTERVAL_RULE",
    "UPLOAD_BLOCK_SIZE",
    "is_connect_retries",
    "is_finite_number",
    "is_progress_interval",
    "is_retry_backoff",
    "shown_value",
]

#: (connect, read) seconds. The read timeout is generous: Fuse answers a bulk upload only once it
#: has taken the whole list.
DEFAULT_TIMEOUT = (10.0, 300.0)
#: Seconds one request may take from start to the end of its answer, connect retries included: an
#: hour, so that no upload a worker can reasonably send is cut short, yet a trickling answer (which
#: per-read timeouts never end) cannot hold the worker for ever.
DEFAULT_TOTAL_TIMEOUT = 3600.0
#: The longest any timeout may be: a day (beyond it, sockets and timers overflow).
MAX_TIMEOUT = 86400.0
#: The most bytes read of an answer. Fuse's answers are a few hundred bytes; the rest of a bigger one
#: is never read (a 2xx that big is not Fuse's answer, a 4xx/5xx is classified by its status).
MAX_ANSWER_BYTES = 1 << 20
#: The most header fields of an answer that is read, on both paths: below http.client's own bound
#: (100 lines, the blank one that ends the head included), which the sync path cannot raise. Fuse's
#: answers have about ten; proxies add a few.
MAX_ANSWER_HEADERS = 96
#: The most bytes of an answer's header fields (``name: value`` and a line end each, as parsed) that
#: are read: below both clients' own bounds (a 64 KiB line for http.client, a 100 KiB head for
#: httpx's h11), so both refuse the same heads.
MAX_ANSWER_HEAD_BYTES = 64 * 1024
#: The most bytes of an interim (1xx) answer's head that the sync path skips: httpx's own bound
#: (httpcore's ``MAX_INCOMPLETE_EVENT_SIZE``); interim answers are never read, only skipped.
MAX_INTERIM_HEAD_BYTES = 100 * 1024
#: The most characters of a call id (from an answer) that is taken as one.
MAX_CALL_ID_CHARS = 256
#: The most ``connect_retries`` a hook takes: more tries of a request that was not sent do not help.
MAX_CONNECT_RETRIES = 10
#: The most seconds of ``retry_backoff``, the first wait before a retry.
MAX_RETRY_BACKOFF = 300.0
#: The longest single wait between two tries, however far the backoff has doubled.
MAX_RETRY_DELAY = 3600.0
#: Beyond this, a ``calls_queued`` count is not Fuse's (it is a 32-bit count of the rows sent).
MAX_CALLS_QUEUED = 2**31
#: Bytes urllib3 reads from the multipart encoder per send. Its default (16 KiB) makes a large
#: upload take thousands of reads, each re-measuring the encoder's parts (docs/performance.md).
UPLOAD_BLOCK_SIZE = 256 * 1024

#: Seconds :func:`~airflow_provider_fuse.hooks.fuse.probe_results_receiver` waits to connect to the
#: receiver.
PROBE_CONNECT_TIMEOUT = 5.0
#: Seconds the probe takes at most, from the first byte sent to the last read.
PROBE_DEADLINE = 10.0
#: The most bytes of the receiver's answer the probe reads: its answers to the probe are a few dozen
#: bytes.
PROBE_READ_BYTES = 4 * 1024


def is_finite_number(value: object) -> TypeGuard[float]:
    """An int or float (not a bool) that is finite."""
    if isinstance(value, bool):
        return False
    # Every int is finite; math.isfinite would convert it to a float, which one past 1e308 overflows.
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def is_connect_retries(value: object) -> TypeGuard[int]:
    """A ``connect_retries`` the hook takes: an integer (not a bool) from 0 to :data:`MAX_CONNECT_RETRIES`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_CONNECT_RETRIES


def is_retry_backoff(value: object) -> TypeGuard[float]:
    """A ``retry_backoff`` the hook takes: finite seconds from 0 to :data:`MAX_RETRY_BACKOFF`."""
    return is_finite_number(value) and 0 <= value <= MAX_RETRY_BACKOFF


#: What a ``progress_interval`` must be, as a refusal names it.
PROGRESS_INTERVAL_RULE = "a finite number of seconds, more than 0"


def is_progress_interval(value: object) -> TypeGuard[float]:
    """A ``progress_interval`` the hook takes: finite seconds, more than 0. (At 0 every block sent
    would log a line, even of an upload that ends at once.)"""
    return is_finite_number(value) and value > 0


#: The most digits in a row of a refused setting that an error shows: a longer number is described
#: by that bound (a template may render a phone number into any field).
_SHOWN_DIGITS = 6
_LONG_DIGIT_RUN = re.compile(rf"[0-9]{{{_SHOWN_DIGITS + 1},}}")


def shown_value(value: object) -> str:
    """A refused setting's value as an error names it: a bool, or a number with at most six digits in
    a row, is itself; a longer number is "a number of more than 6 digits" (never its digits, and
    never ``str()`` of an int, which refuses one of more than 4,300); a string is its length, never
    its text; anything else is its type."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        if -(10**_SHOWN_DIGITS) < value < 10**_SHOWN_DIGITS:  # compared, never converted
            return str(value)
        return f"a number of more than {_SHOWN_DIGITS} digits"
    if isinstance(value, float):
        text = repr(value)
        return f"a number of more than {_SHOWN_DIGITS} digits" if _LONG_DIGIT_RUN.search(text) else text
    if isinstance(value, str):
        return (
            f"a string of {len(value)} character{'' if len(value) == 1 else 's'}"
            if value
            else "an empty string"
        )
    return type(value).__name__
