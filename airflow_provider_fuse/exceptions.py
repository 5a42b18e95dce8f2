"""Typed errors of the Fuse provider.

Every failure of a request to Fuse falls in exactly one of three outcomes (:class:`Outcome`), and the
exception type says which:

* :class:`FuseNotSentError` — the request certainly never reached Fuse (connection refused, DNS
  failure, connect timeout). Nothing was queued; trying again is safe — except for its
  :class:`FuseRequestError`, a request that could not be made at all, which no retry can help.
* :class:`FuseRejectedError` — Fuse answered 4xx. Nothing was queued. Only a 429 (too many requests)
  can pass on a later try; every other rejection needs a change of input or configuration.
* :class:`FuseUnknownOutcomeError` — the request may have reached Fuse and the answer does not say
  that nothing was queued (a 5xx, a 3xx redirect, an answer that is not Fuse's, a read timeout, a
  connection lost after sending). Fuse may have queued some or all calls: trying again could dial them twice.

Invalid input found before any request is a :class:`FuseValidationError` (or its CSV form,
:class:`FuseCsvError`). No message of these errors contains a phone number or the developer key:
text taken from Fuse's answers is redacted by :func:`~airflow_provider_fuse.masking.redact`
(importable from here too) before it is stored here.

Every error keeps its Airflow meaning wherever it is raised, so a hook called from a plain ``@task``
fails the way the operators would:

* :class:`~airflow.sdk.exceptions.AirflowFailException` (the task fails, its retries are skipped):
  invalid input, an unknown outcome (a retry could dial everyone twice), a request that could not be
  made at all (:class:`FuseRequestError`), and every rejection except 429;
* plain :class:`~airflow.sdk.exceptions.AirflowException` (the task's retries apply): not sent, and
  429 (:class:`FuseTooManyRequestsError`).

:class:`FuseRejectedError` itself is the base of every rejection, 429 included, so it is not an
``AirflowFailException``: a hook raises one of its final classes (see :func:`rejection_class`).
Every error survives a ``pickle`` round trip and Airflow's own exception serialization with its
attributes.
"""

from __future__ import annotations

import enum
from typing import Any

from airflow_provider_fuse._compat import AirflowException, AirflowFailException
from airflow_provider_fuse.masking import redact

__all__ = [
    "MAY_HAVE_QUEUED",
    "REJECTION_BY_STATUS",
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
    "FuseOtherRejectionError",
    "FusePermissionError",
    "FuseRedirectError",
    "FuseRejectedError",
    "FuseRequestError",
    "FuseServerError",
    "FuseTooManyRequestsError",
    "FuseUnknownOutcomeError",
    "FuseValidationError",
    "Outcome",
    "end_sentence",
    "nothing_queued",
    "redact",
    "rejection_class",
    "without_may_have_queued",
]

#: How the hook ends the message of an unknown outcome of a request that queues calls; a task's
#: failure, which says it in the operator's own words, leaves it out (:func:`without_may_have_queued`).
MAY_HAVE_QUEUED = "Fuse may have queued some or all calls"


def end_sentence(text: str) -> str:
    """``text`` ending with one full stop: none is added after ``.``, ``!``, ``?`` or ``…`` (Fuse's
    own text often ends with one already: ``A database error occurred.``)."""
    text = text.rstrip()
    return text if text.endswith((".", "!", "?", "…")) else f"{text}."


def without_may_have_queued(text: str) -> str:
    """``text`` without a closing clause saying :data:`MAY_HAVE_QUEUED`, for a message that says it once
    in its own words."""
    for ending in (f"; {MAY_HAVE_QUEUED}", f". {MAY_HAVE_QUEUED}", MAY_HAVE_QUEUED):
        if text.endswith(ending) and text != ending:
            return text[: -len(ending)].rstrip()
    return text


class Outcome(str, enum.Enum):
    """What a failed request means for the calls it asked Fuse to queue."""

    NOT_SENT = "not sent"
    REJECTED = "rejected"
    UNKNOWN = "unknown outcome"


def _unpickle(cls: type[FuseError], args: tuple[Any, ...], state: dict[str, Any]) -> FuseError:
    """Rebuild a pickled error without calling its ``__init__`` (whose signature is its own)."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class FuseError(AirflowException):
    """Base class of every error raised by this provider.

    An :class:`~airflow.sdk.exceptions.AirflowException`: raised in a task, the task's retries apply
    unless the subclass is also an :class:`~airflow.sdk.exceptions.AirflowFailException`.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce calls cls(*self.args), which fits none of the __init__ signatures
        # here; executors and supervisors pickle exceptions, so rebuild from args and attributes.
        return _unpickle, (type(self), self.args, self.__dict__.copy())

    def serialize(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        """Airflow's own form (class path, args, kwargs): ``cls(*args, **kwargs)`` rebuilds the error.

        Airflow stores an ``AirflowException`` this way (in a deferred task's ``next_kwargs``, for
        one); its default, ``(str(self),)``, fits none of the ``__init__`` signatures here.
        """
        return self._class_path(), self.args, {}

    @classmethod
    def _class_path(cls) -> str:
        return f"{cls.__module__}.{cls.__name__}"


class FuseValidationError(FuseError, AirflowFailException, ValueError):
    """An argument is invalid; found before any request, so nothing was sent. Fails the task.

    :param parameter: the name of the offending parameter, as the operator or hook takes it.
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message

    def serialize(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return self._class_path(), (self.parameter, self.message), {}


class FuseCsvError(FuseValidationError):
    """The contact CSV fails the preflight; nothing was sent.

    :param bad_rows: how many data rows are invalid (0 when the file as a whole is unusable).
    :param row_numbers: the first few invalid row numbers (the header is row 1).
    """

    def __init__(self, message: str, *, bad_rows: int = 0, row_numbers: tuple[int, ...] = ()) -> None:
        super().__init__("csv", message)
        self.bad_rows = bad_rows
        self.row_numbers = row_numbers

    def serialize(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        kwargs = {"bad_rows": self.bad_rows, "row_numbers": self.row_numbers}
        return self._class_path(), (self.message,), kwargs


class FuseApiError(FuseError):
    """A request to Fuse failed.

    :param status_code: the HTTP status Fuse answered, or ``None`` when no answer came.
    :param error: Fuse's own error text (redacted), or a description of what went wrong.
    :param outcome: which of the three :class:`Outcome` classes the failure is in.
    :param retryable: whether a later try of the same request can succeed without risk.
    """

    outcome: Outcome = Outcome.UNKNOWN
    retryable: bool = False
    # Airflow's own class attribute is the HTTP status its REST API would answer; here it is Fuse's.
    status_code: int | None  # type: ignore[assignment]

    def __init__(self, error: str, status_code: int | None = None) -> None:
        self.status_code = status_code
        self.error = error
        super().__init__(self._message())

    def serialize(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return self._class_path(), (self.error, self.status_code), {}

    def _message(self) -> str:
        if self.status_code is None:
            return self.error
        return f"Fuse API answered {self.status_code}: {self.error}"


class FuseNotSentError(FuseApiError):
    """The request never reached Fuse: nothing was queued, trying again is safe (task retries apply)."""

    outcome = Outcome.NOT_SENT
    retryable = True


class FuseRequestError(FuseNotSentError, AirflowFailException):
    """The request could not be made at all (an invalid URL or port, an unsupported proxy scheme, an
    unreadable file): nothing was sent, and trying again cannot help. Fails the task."""

    retryable = False


class FuseRejectedError(FuseApiError):
    """Fuse answered 4xx: nothing was queued.

    The base of every rejection, so ``except FuseRejectedError`` catches them all; it is not an
    ``AirflowFailException`` because 429 is one too. Raise a final class: :func:`rejection_class`.
    """

    outcome = Outcome.REJECTED


class FuseBadRequestError(FuseRejectedError, AirflowFailException):
    """400: the data was improperly formatted or invalid. Fails the task."""


class FuseAuthenticationError(FuseRejectedError, AirflowFailException):
    """401: the account email or developer key is wrong, or the account is inactive. Fails the task.

    Its message says what to check: the connection (``conn_id``, when the hook that was refused set
    it with :meth:`naming`) and its fields, by the connection form's labels.

    :param conn_id: the Airflow connection whose credentials Fuse refused, when known.
    """

    def __init__(self, error: str, status_code: int | None = 401, conn_id: str | None = None) -> None:
        self.conn_id = conn_id
        super().__init__(error, status_code)

    def serialize(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        return self._class_path(), (self.error, self.status_code, self.conn_id), {}

    def _message(self) -> str:
        where = f"the connection {self.conn_id!r}" if self.conn_id else "the fuse connection"
        return (
            f"{end_sentence(super()._message())} Fuse refused the credentials of {where}: check its "
            "Developer key (the password; made in Fuse under My Account) and its Account email (the "
            "login), and that the Fuse account is active"
        )

    def naming(self, conn_id: str | None) -> FuseAuthenticationError:
        """The same refusal, naming the connection ``conn_id`` (``None``: no connection id)."""
        return type(self)(self.error, self.status_code, conn_id)


class FusePermissionError(FuseRejectedError, AirflowFailException):
    """403: the account may not do this. Fails the task."""


class FuseNotFoundError(FuseRejectedError, AirflowFailException):
    """404: no such deployment (or call). Fails the task."""


class FuseMethodNotAllowedError(FuseRejectedError, AirflowFailException):
    """405: the endpoint does not take this HTTP method. Fails the task."""


class FuseDeletedError(FuseRejectedError, AirflowFailException):
    """409: the user, deployment or application was deleted. Fails the task."""


class FuseOtherRejectionError(FuseRejectedError, AirflowFailException):
    """Any other 4xx (Fuse documents none): nothing was queued, and the same request would be
    rejected again. Fails the task."""


class FuseTooManyRequestsError(FuseRejectedError):
    """429: nothing was queued and a later try may pass (task retries apply)."""

    retryable = True


class FuseUnknownOutcomeError(FuseApiError, AirflowFailException):
    """Fuse may have queued some or all of the calls; trying again could dial them twice. Fails the
    task: only a person who has checked Fuse's pending calls should run it again."""

    outcome = Outcome.UNKNOWN


class FuseServerError(FuseUnknownOutcomeError):
    """5xx: Fuse (or a proxy before it) failed while handling the request."""


class FuseInvalidResponseError(FuseUnknownOutcomeError):
    """The answer is not one of Fuse's (an HTML proxy page, an empty body, a 200 without a count).

    :param field: the field of the answer that is not what Fuse documents, when one is to blame
        (``call_details.attempts``, ``call_details.events[].timestamp``): its name, never its value.
    """

    def __init__(self, error: str, status_code: int | None = None, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(error, status_code)

    def serialize(self) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        classpath, args, kwargs = super().serialize()
        return classpath, args, kwargs if self.field is None else {**kwargs, "field": self.field}


class FuseConnectionLostError(FuseUnknownOutcomeError):
    """The connection broke or timed out after the request was sent, before a whole answer came."""


class FuseRedirectError(FuseUnknownOutcomeError):
    """3xx: a redirect is not "nothing queued": a POST answered 303 is often one that was processed."""


def nothing_queued(error: FuseError) -> bool:
    """Whether ``error`` proves that Fuse queued nothing: invalid input, a rejection, or not sent."""
    if isinstance(error, FuseValidationError):
        return True
    return isinstance(error, FuseApiError) and error.outcome is not Outcome.UNKNOWN


#: The rejection type of each 4xx status Fuse documents; other 4xx are FuseOtherRejectionError.
REJECTION_BY_STATUS: dict[int, type[FuseRejectedError]] = {
    400: FuseBadRequestError,
    401: FuseAuthenticationError,
    403: FusePermissionError,
    404: FuseNotFoundError,
    405: FuseMethodNotAllowedError,
    409: FuseDeletedError,
    429: FuseTooManyRequestsError,
}


def rejection_class(status_code: int) -> type[FuseRejectedError]:
    """The final rejection type to raise for a 4xx ``status_code``.

    :raises ValueError: ``status_code`` is not a 4xx: only a 4xx proves that nothing was queued.
    """
    if not 400 <= status_code <= 499:
        raise ValueError(f"status_code: {status_code} is not a rejection (4xx)")
    return REJECTION_BY_STATUS.get(status_code, FuseOtherRejectionError)
