"""What the HTTP clients may log: nothing of an answer's text, nothing of a results receiver's token.

urllib3, httpx and httpcore log on their own loggers; some of their lines quote an answer (a head
urllib3 could not parse, a reason phrase, a debug trace of every head), some a request's URL or
target (urllib3's line per request at DEBUG: a results receiver's path holds its token).
:func:`keep_answers_out_of_client_logs` puts a filter on each of them that keeps the lines and drops
that text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from airflow_provider_fuse.masking import redact

__all__ = ["keep_answers_out_of_client_logs"]

#: The loggers of the HTTP clients' own that can quote an answer or a request's URL: urllib3's
#: warning about a head it could not parse (the head's text, a traceback quoting it, the URL), its
#: line per request at DEBUG and per retry (the request's target: path and query), httpx's line per
#: request (the reason phrase), httpcore's debug trace (every head, and each failure's text: a
#: chunk-size line).
_CLIENT_LOGGERS = (
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
_TRACE_VALUE = re.compile(r"\b(exception|return_value)=(\w*).*", re.DOTALL)


class _NoAnswerText(logging.Filter):
    """Keeps an answer's text out of what the HTTP clients log (:data:`_CLIENT_LOGGERS`).

    Each record keeps its message; an exception is named by its type only, a URL by its scheme and
    host only and a request's target (``/...``) not at all (a results receiver's path holds its
    token), other text is scrubbed of numbers
    (:func:`redact`); a debug trace line loses what follows ``exception=`` (its type kept) or
    ``return_value=``; the traceback is dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_log_safe(arg) for arg in record.args)
        elif isinstance(record.args, Mapping) and record.args:
            record.args = {key: _log_safe(arg) for key, arg in record.args.items()}
        elif isinstance(record.msg, str):  # already formatted (httpcore's trace)
            record.msg = redact(_TRACE_VALUE.sub(r"\1=\2…", record.msg), 500)
        record.exc_info = record.exc_text = None
        return True


def _log_safe(value: object) -> object:
    """A log argument without an answer's text or a request's path: an exception's type name, a URL's
    scheme and host, ``/…`` for a request's target, any other text (bytes read as UTF-8) without
    numbers."""
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, httpx.URL):
        value = str(value)
    if isinstance(value, str) and re.match(r"(?i)https?://", value):
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
    if isinstance(value, str) and value.startswith("/"):
        return "/…"
    if isinstance(value, bytes):
        # As UTF-8, what a client reads them as (latin-1 would turn UTF-8 digits of another script
        # into letters); a byte that is not UTF-8 stays readable to redact as ``\xHH``.
        value = value.decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        return redact(value, 200)
    return value


def keep_answers_out_of_client_logs() -> None:
    """Put :class:`_NoAnswerText` on each of :data:`_CLIENT_LOGGERS`, once per process."""
    for name in _CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(item, _NoAnswerText) for item in logger.filters):
            logger.addFilter(_NoAnswerText())
