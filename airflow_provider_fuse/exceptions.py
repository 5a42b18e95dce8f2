"""Typed errors of the Fuse provider.

Every failure of a request to Fuse falls in exactly one of three outcomes (:class:`Outcome`), and the
exception type says which:

* :class:`FuseNotSentError` — the request certainly never reached Fuse (connection refused, DNS
  failure, connect timeout). Nothing was queued; trying again is safe.
* :class:`FuseRejectedError` — Fuse answered 4xx. Nothing was queued. Only a 429 (too many requests)
  can pass on a later try; every other rejection needs a change of input or configuration.
* :class:`FuseUnknownOutcomeError` — the request may have reached Fuse and the answer does not say
  that nothing was queued (a 5xx, an answer that is not Fuse's, a read timeout, a connection lost
  after sending). Fuse may have queued some or all calls: trying again could dial them twice.

Invalid input found before any request is a :class:`FuseValidationError` (or its CSV form,
:class:`FuseCsvError`). No message of these errors contains a phone number or the developer key:
text taken from Fuse's answers is redacted by :func:`redact` before it is stored here.
"""

from __future__ import annotations

import enum
import re

__all__ = [
    "FuseApiError",
    "FuseAuthenticationError",
    "FuseBadRequestError",
    "FuseConnectionLostError",
    "FuseCsvError",
    "FuseDeletedError",
    "FuseError",
    "FuseInvalidResponseError",
    "FuseMethodNotAllowedError",
    "FuseNotFoundError",
    "FuseNotSentError",
    "FusePermissionError",
    "FuseRejectedError",
    "FuseServerError",
    "FuseTooManyRequestsError",
    "FuseUnknownOutcomeError",
    "FuseValidationError",
    "Outcome",
    "nothing_queued",
    "redact",
]

# Seven or more digits, allowing single separators between them ("617-555-1234" as well as
# "6175551234"): long enough to catch any phone number Fuse may echo, short enough to leave
# status codes and small counts readable.
_DIGIT_RUN = re.compile(r"\d(?:[ .\-]?\d){6,}")
_EXCERPT_CHARS = 200


def redact(text: str, limit: int = _EXCERPT_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters with every run of 7+ digits replaced.

    Used on anything taken from an answer of Fuse before it reaches a log line or an exception.
    """
    # Redact first: a cut through a number would leave its first digits readable.
    text = _DIGIT_RUN.sub("[redacted]", " ".join(text.split()))
    return text[:limit] + "…" if len(text) > limit else text


class Outcome(str, enum.Enum):
    """What a failed request means for the calls it asked Fuse to queue."""

    NOT_SENT = "not sent"
    REJECTED = "rejected"
    UNKNOWN = "unknown outcome"


class FuseError(Exception):
    """Base class of every error raised by this provider."""


class FuseValidationError(FuseError, ValueError):
    """An argument is invalid; found before any request, so nothing was sent.

    :param parameter: the name of the offending parameter, as the operator or hook takes it.
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class FuseCsvError(FuseValidationError):
    """The contact CSV fails the preflight; nothing was sent.

    :param bad_rows: how many data rows are invalid (0 when the file as a whole is unusable).
    :param row_numbers: the first few invalid row numbers (the header is row 1).
    """

    def __init__(self, message: str, *, bad_rows: int = 0, row_numbers: tuple[int, ...] = ()) -> None:
        super().__init__("csv", message)
        self.bad_rows = bad_rows
        self.row_numbers = row_numbers


class FuseApiError(FuseError):
    """A request to Fuse failed.

    :param status_code: the HTTP status Fuse answered, or ``None`` when no answer came.
    :param error: Fuse's own error text (redacted), or a description of what went wrong.
    :param outcome: which of the three :class:`Outcome` classes the failure is in.
    :param retryable: whether a later try of the same request can succeed without risk.
    """

    outcome: Outcome = Outcome.UNKNOWN
    retryable: bool = False

    def __init__(self, error: str, status_code: int | None = None) -> None:
        self.status_code = status_code
        self.error = error
        super().__init__(self._message())

    def _message(self) -> str:
        if self.status_code is None:
            return self.error
        return f"Fuse API answered {self.status_code}: {self.error}"


class FuseNotSentError(FuseApiError):
    """The request never reached Fuse: nothing was queued, trying again is safe."""

    outcome = Outcome.NOT_SENT
    retryable = True


class FuseRejectedError(FuseApiError):
    """Fuse answered 4xx: nothing was queued."""

    outcome = Outcome.REJECTED


class FuseBadRequestError(FuseRejectedError):
    """400: the data was improperly formatted or invalid."""


class FuseAuthenticationError(FuseRejectedError):
    """401: the account email or developer key is wrong, or the account is inactive."""


class FusePermissionError(FuseRejectedError):
    """403: the account may not do this."""


class FuseNotFoundError(FuseRejectedError):
    """404: no such deployment (or call)."""


class FuseMethodNotAllowedError(FuseRejectedError):
    """405: the endpoint does not take this HTTP method."""


class FuseDeletedError(FuseRejectedError):
    """409: the user, deployment or application was deleted."""


class FuseTooManyRequestsError(FuseRejectedError):
    """429: nothing was queued and a later try may pass."""

    retryable = True


class FuseUnknownOutcomeError(FuseApiError):
    """Fuse may have queued some or all of the calls; trying again could dial them twice."""

    outcome = Outcome.UNKNOWN


class FuseServerError(FuseUnknownOutcomeError):
    """5xx: Fuse (or a proxy before it) failed while handling the request."""


class FuseInvalidResponseError(FuseUnknownOutcomeError):
    """The answer is not one of Fuse's (an HTML proxy page, an empty body, a 200 without a count)."""


class FuseConnectionLostError(FuseUnknownOutcomeError):
    """The connection broke or timed out after the request was sent, before a whole answer came."""


def nothing_queued(error: FuseError) -> bool:
    """Whether ``error`` proves that Fuse queued nothing: invalid input, a rejection, or not sent."""
    if isinstance(error, FuseValidationError):
        return True
    return isinstance(error, FuseApiError) and error.outcome is not Outcome.UNKNOWN


#: The rejection type of each 4xx status Fuse documents; other 4xx are plain FuseRejectedError.
REJECTION_BY_STATUS: dict[int, type[FuseRejectedError]] = {
    400: FuseBadRequestError,
    401: FuseAuthenticationError,
    403: FusePermissionError,
    404: FuseNotFoundError,
    405: FuseMethodNotAllowedError,
    409: FuseDeletedError,
    429: FuseTooManyRequestsError,
}
