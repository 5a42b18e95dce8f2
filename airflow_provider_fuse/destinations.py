"""Fuse's destination formats: what a phone number of one call may look like, and the number it dials.

The one grammar of the provider (docs/destinations.md): the preflight reads a CSV's ``destination``
column with it, :func:`~airflow_provider_fuse.fields.to_phone_number` a single call's
``phone_number``, and the results table joins a callback to its row by :func:`destination_number`.
Nothing here knows CSV, HTTP or Airflow.
"""

from __future__ import annotations

import re

__all__ = [
    "ACCEPTED_FORMS",
    "DESTINATION",
    "DESTINATION_FORMAT",
    "KEYED_DESTINATION_FORMAT",
    "destination_number",
]

#: The name of the phone-number column ("CSV Upload: destination" in Fuse's Outbound Parameters).
DESTINATION = "destination"

# ASCII digits only, spelled [0-9]: in a str pattern \d is any Unicode digit (Arabic-Indic, fullwidth...).
_NUMBER = r"[0-9]{10}|1[0-9]{10}|tel:\+[1-9][0-9]{7,14}"
_ANI = r";ani=\+?[0-9]{10,15}"
_POSTD = r";postd=[0-9*#]+"
_OPTIONS = rf"(?:{_ANI}(?:{_POSTD})?|{_POSTD}(?:{_ANI})?)?"
#: Fuse's documented destination formats (docs/destinations.md): 10 digits, 11 digits starting with
#: 1, or ``tel:+`` and an E.164 number (8 to 15 digits, the first not 0); then optionally ``;ani=``
#: (caller id: 10 to 15 digits, ``+`` allowed) and ``;postd=`` (DTMF digits, ``*`` and ``#`` sent
#: after connect), each at most once, in either order.
DESTINATION_FORMAT = re.compile(rf"(?:{_NUMBER}){_OPTIONS}")

# _NUMBER again, its digits after a North American country code, or of any other E.164 number, captured.
_KEYED_NUMBER = r"(?:1|tel:\+1)?([0-9]{10})|tel:\+([1-9][0-9]{7,14})"
#: :data:`DESTINATION_FORMAT` with the digits of the number dialled captured: group 1 holds a North
#: American number's 10 digits after its country code, group 2 any other E.164 number. It matches
#: exactly the strings :data:`DESTINATION_FORMAT` matches (tests/test_destinations.py proves it
#: through the preflight), so one match both checks a destination and gives its number.
KEYED_DESTINATION_FORMAT = re.compile(rf"(?:{_KEYED_NUMBER}){_OPTIONS}")

#: :data:`DESTINATION_FORMAT` in words, for an error about a destination that does not match it.
ACCEPTED_FORMS = (
    "10 digits, 11 digits starting with 1, or tel:+ and 8 to 15 digits, optionally followed by "
    ";ani=<caller id> and/or ;postd=<digits> (ASCII digits; no spaces, dashes or brackets; "
    "docs/destinations.md)"
)


#: The E.164 number 1 followed by ten zeros: a North American number is this plus its ten digits.
_NANP = 10**10


def destination_number(destination: str) -> int:
    """The number a valid destination dials, as an integer of its E.164 digits.

    ``6175551234``, ``16175551234`` and ``tel:+16175551234;ani=8009957586`` all give 16175551234:
    a 10-digit destination is a North American number without its country code 1. Two destinations
    are "the same number" (a repeat) when this gives the same integer.

    :raises ValueError: when ``destination`` is not in :data:`DESTINATION_FORMAT` (the value is not
        repeated in the message).
    """
    # The two plain North American forms, most of any list, without the regex: the same answer.
    if destination.isdigit() and destination.isascii():
        if len(destination) == 10:
            return _NANP + int(destination)
        if len(destination) == 11 and destination[0] == "1":
            return int(destination)
    match = KEYED_DESTINATION_FORMAT.fullmatch(destination)
    if match is None:
        raise ValueError("not a destination in one of Fuse's formats")
    nanp, other = match.groups()
    return int("1" + nanp) if nanp is not None else int(other)
