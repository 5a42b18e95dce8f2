"""One outbound call in Fuse's own words: its status and its ``call_details``.

``GET /outbound/{call_id}`` answers ``{"call_details": {...}}``. The documented sample sends numbers
as strings (``"attempts": "1"``) and the phone number wrapped in its own quotes (``"'6173720293'"``);
:meth:`CallDetails.from_answer` coerces both, from JSON or from XML, so callers get typed values.
Nothing here knows HTTP or Airflow.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse.exceptions import FuseInvalidResponseError
from airflow_provider_fuse.masking import redact, shape

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["NUMBER_FIELDS", "TERMINAL_STATUSES", "CallDetails", "CallEvent", "CallStatus"]


class CallStatus(str, enum.Enum):
    """The status of an outbound call: ``queued → dialing → connected → completed``, or an end.

    Terminal: ``completed``, ``failed`` (dialed, not answered), ``canceled``, ``rejected``. A status
    Fuse sends that is not listed here is kept as it is (a pseudo-member, never terminal), so a new
    intermediate status does not break a running wait.
    """

    QUEUED = "queued"
    DIALING = "dialing"
    CONNECTED = "connected"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        """Whether the call has ended: completed, failed, canceled or rejected."""
        return self.value in TERMINAL_STATUSES

    @classmethod
    def _missing_(cls, value: object) -> CallStatus | None:
        if not isinstance(value, str) or not value.strip():
            return None
        text = value.strip().lower()
        text = "canceled" if text == "cancelled" else text
        for member in cls:
            if member.value == text:
                return member
        pseudo = str.__new__(cls, text)
        pseudo._name_ = text.upper()
        pseudo._value_ = text
        return pseudo

    def __str__(self) -> str:
        return self.value


#: The statuses after which a call changes no more.
TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled", "rejected"})

#: The numbers of a ``call_details``, by Fuse's names, in the order Fuse lists them: the one list of
#: them (the int fields of :class:`CallDetails`); timestamps are unix seconds, ``duration`` seconds.
NUMBER_FIELDS = (
    "attempts",
    "max_attempts",
    "reattempt_wait",
    "queued_timestamp",
    "start_timestamp",
    "end_timestamp",
    "duration",
)
#: The numbers of :data:`NUMBER_FIELDS` that count (attempts, seconds): never negative.
COUNT_FIELDS = frozenset({"attempts", "max_attempts", "reattempt_wait", "duration"})
# A number as Fuse writes it in text: ASCII digits (int() would take other scripts' and "1_000"),
# an optional sign and fraction.
_NUMBER_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]*)?")
# The most characters of a status or an event's name kept: Fuse's are single words.
_WORD_CHARS = 40


@dataclass(frozen=True)
class CallEvent:
    """One entry of a call's ``events``: what happened (queued, dialing, connected, ...) and when."""

    event: str
    timestamp: int | None


@dataclass(frozen=True)
class CallDetails:
    """A call's ``call_details``, typed.

    Timestamps are unix seconds; absent or empty values are ``None``. ``phone_number`` is the number
    dialled, without the quotes Fuse wraps it in: personal data, left out of :meth:`as_dict` unless
    asked for. The status and the events' names are Fuse's words, redacted (:func:`redact`: a
    number of 7 or more digits in them is ``[redacted]``), as they reach XCom.
    """

    status: CallStatus
    attempts: int | None = None
    max_attempts: int | None = None
    reattempt_wait: int | None = None
    queued_timestamp: int | None = None
    start_timestamp: int | None = None
    end_timestamp: int | None = None
    duration: int | None = None
    events: tuple[CallEvent, ...] = ()
    phone_number: str | None = None
    call_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the call has ended."""
        return self.status.is_terminal

    @classmethod
    def from_answer(
        cls,
        answer: dict[str, Any],
        call_id: str | None = None,
        *,
        status_code: int = 200,
        secrets: Iterable[str] = (),
    ) -> CallDetails:
        """Read the ``call_details`` of one of Fuse's answers (JSON or XML, as ``parse_answer`` gives it).

        :param status_code: the answer's status, carried by the errors raised.
        :param secrets: every form of the connection's credential: never named in an error, which
            describes what the answer holds (its keys, a value's kind) and quotes none of it.
        :raises FuseInvalidResponseError: no ``call_details`` object, no status, or a value that is
            not a number of ASCII digits where one is documented, or a negative count (attempts,
            seconds) (then its ``field`` names it, and so does the message:
            ``call_details.attempts``, ``call_details.events[].timestamp``).
        """
        secrets = tuple(secrets)
        details = answer.get("call_details")
        if not isinstance(details, dict):
            raise FuseInvalidResponseError(
                f"a success answer without call_details: {shape(answer, secrets=secrets)}",
                status_code,
            )
        status = details.get("status")
        if not isinstance(status, str) or not status.strip():
            raise FuseInvalidResponseError("call_details without a status", status_code)

        numbers = {name: _number(details, name, status_code, secrets) for name in NUMBER_FIELDS}
        return cls(
            status=CallStatus(redact(status, _WORD_CHARS, secrets=secrets)),
            **numbers,
            events=_events(details.get("events"), status_code, secrets),
            phone_number=_phone(details.get("phone_number")),
            call_id=call_id,
        )

    def as_dict(self, *, include_phone_number: bool = False) -> dict[str, Any]:
        """A plain, JSON-serialisable dict (the status as its string); no phone number unless asked."""
        value: dict[str, Any] = {
            "call_id": self.call_id,
            "status": self.status.value,
            **{name: getattr(self, name) for name in NUMBER_FIELDS},
            "events": [{"event": item.event, "timestamp": item.timestamp} for item in self.events],
        }
        if include_phone_number:
            value["phone_number"] = self.phone_number
        return value

    def to_xcom(self) -> dict[str, Any]:
        """What the sensor pushes to XCom: :meth:`as_dict` without the phone number."""
        return self.as_dict(include_phone_number=False)


def _number(
    details: dict[str, Any], name: str, status_code: int, secrets: tuple[str, ...], *, field: str = ""
) -> int | None:
    """``details[name]`` as an int (``None`` when absent or empty): a JSON number, or text of ASCII
    digits; never negative for a count (:data:`COUNT_FIELDS`).

    :param field: the field's path for the error and its message (default ``call_details.<name>``).
    """
    field = field or f"call_details.{name}"
    value = details.get(name)
    if value is None or isinstance(value, bool):
        return None
    given: float | None = None
    number: int | None = None
    try:
        if isinstance(value, (int, float)):
            given = value
        elif isinstance(value, str):
            text = value.strip().strip("'\"")
            if not text:
                return None
            if _NUMBER_TEXT.fullmatch(text):
                given = float(text) if "." in text else int(text)
        # An infinite or NaN float (JSON 1e999) is not a number of Fuse's either.
        number = None if given is None else int(given)
    except (ValueError, OverflowError):
        pass
    if number is not None and given is not None and given < 0 and name in COUNT_FIELDS:
        raise FuseInvalidResponseError(f"{field} is a negative count", status_code, field=field)
    if number is not None:
        return number
    # Raised outside the except block: the conversion error quotes the text unscrubbed.
    raise FuseInvalidResponseError(
        f"{field} is not a number: {shape(value, secrets=secrets)}", status_code, field=field
    )


def _events(value: object, status_code: int, secrets: tuple[str, ...]) -> tuple[CallEvent, ...]:
    # JSON: a list of {event, timestamp}. XML: <events><event><event>..</event><timestamp>..</timestamp>
    # </event>...</events>, which parse_answer reads as {"event": {...}} or {"event": [{...}, ...]}.
    if isinstance(value, dict):
        value = value.get("event", [])
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return ()
    events = []
    for item in value:
        if isinstance(item, dict):
            timestamp = _number(
                item, "timestamp", status_code, secrets, field="call_details.events[].timestamp"
            )
            name = redact(str(item.get("event") or ""), _WORD_CHARS, secrets=secrets)
            events.append(CallEvent(name, timestamp))
        elif isinstance(item, str) and item:
            events.append(CallEvent(redact(item, _WORD_CHARS, secrets=secrets), None))
    return tuple(events)


def _phone(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text or None
