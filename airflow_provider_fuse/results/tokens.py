"""The results token: the credential in each ``result_url``, naming the upload part it belongs to.

Fuse cannot log in to Airflow, so the URL it POSTs a call's outcome to carries its own credential:
``<base64url payload>.<base64url HMAC-SHA256>``. The payload is an :class:`UploadPart` — dag id, run
id, task id, map index, the campaign, part, the rows the part sent (the most outcomes it may store)
and when it expires — as compact JSON. The MAC is over a fixed context string and the encoded
payload, with the ``[fuse] results_signing_key``; it is checked in constant time before the
payload is decoded.

A token is readable (its payload is not secret: ids and counts, no personal data) and unforgeable
without the key. What it authorises: storing at most ``rows`` call outcomes for its one part of one
upload, until ``expires``; nothing else, and no reading at all. Nothing here knows HTTP or Airflow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "MIN_KEY_LENGTH",
    "NOT_CONFIGURED_DETAIL",
    "REFUSED_DETAIL",
    "TokenError",
    "TokenExpired",
    "TokenTooLong",
    "UploadPart",
    "as_dict",
    "check_key",
    "is_campaign_id",
    "new_campaign",
    "sign",
    "verify",
]

#: The shortest signing key accepted: 32 characters (e.g. ``openssl rand -hex 16``, or longer).
MIN_KEY_LENGTH = 32
#: What the results receiver answers (403, JSON ``{"detail": ...}``) to a token it refuses —
#: malformed, signed with another key, or expired — and so what tells its refusal from another
#: server's 403 (a proxy's) to the bulk operator's check before dialing.
REFUSED_DETAIL = "invalid or expired results token"
#: What the results receiver answers (503, JSON ``{"detail": ...}``) while it cannot check tokens
#: because its ``[fuse]`` options are missing or unusable. It refuses every outcome until they are
#: fixed, and the bulk operator's check before dialing tells this answer from any other 503 (a
#: database briefly locked, options unreadable for now) by it.
NOT_CONFIGURED_DETAIL = "the results receiver is not configured"
#: Tokens longer than this are refused before anything else is done with them, and never signed.
MAX_TOKEN_LENGTH = 2048
# Domain separation: a MAC made for another purpose with the same key is never a results token.
_CONTEXT = b"airflow-provider-fuse/results-token/v2."
_FIELDS = ("dag_id", "run_id", "task_id", "map_index", "campaign", "part", "rows", "expires")
#: What a campaign id may hold: URL-safe characters, 8 to 64 of them (the operator makes 32 hex digits).
_CAMPAIGN_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class TokenError(ValueError):
    """The token is not one this key signed (malformed, forged, or signed with another key).

    The message never quotes the token.
    """


class TokenExpired(TokenError):
    """The token is genuine but its ``expires`` has passed."""


class TokenTooLong(ValueError):
    """The part's token would be longer than :data:`MAX_TOKEN_LENGTH`, which the receiver refuses:
    its dag, run or task id is too long. The message names which and the sizes, never the token."""


@dataclass(frozen=True)
class UploadPart:
    """One part of one upload: the task instance that sent it, which part, and its bounds.

    :param campaign: the campaign id: made afresh when a task instance first sends its list, and kept
        in the duplicate guard's ledger, so a retry or clear answered from the ledger keeps it while a
        run deleted and triggered again under the same run id (a new list, new calls) gets another.
        The dag, run and task ids alone cannot tell those two apart.
    :param part: the part's index, from 0 (a list sent whole is part 0).
    :param rows: the rows the part sent: the most outcomes the receiver stores for it.
    :param expires: unix seconds after which outcomes for the part are refused.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    campaign: str
    part: int
    rows: int
    expires: int

    def __post_init__(self) -> None:
        for name in ("dag_id", "run_id", "task_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        if not is_campaign_id(self.campaign):
            raise ValueError("campaign must be 8 to 64 letters, digits, '-' or '_'")
        for name in ("map_index", "part", "rows", "expires"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer")
        if self.map_index < -1 or self.part < 0 or self.rows < 1 or self.expires < 0:
            raise ValueError("map_index >= -1, part >= 0, rows >= 1 and expires >= 0 are required")


def is_campaign_id(value: object) -> bool:
    """Whether ``value`` is a campaign id: 8 to 64 letters, digits, ``-`` or ``_``."""
    return isinstance(value, str) and 8 <= len(value) <= 64 and set(value) <= _CAMPAIGN_CHARACTERS


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or "=" in text:
        raise binascii.Error("empty or padded")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, payload: str) -> bytes:
    return hmac.new(key.encode("utf-8"), _CONTEXT + payload.encode("ascii"), hashlib.sha256).digest()


def new_campaign() -> str:
    """A new campaign id (:attr:`UploadPart.campaign`): 32 random hex digits, never made twice."""
    return secrets.token_hex(16)


def check_key(key: object) -> str:
    """The signing key, if usable: a string of at least :data:`MIN_KEY_LENGTH` characters.

    :raises ValueError: otherwise (never quoting the key).
    """
    if not isinstance(key, str) or len(key.strip()) < MIN_KEY_LENGTH:
        raise ValueError(f"the results signing key must be at least {MIN_KEY_LENGTH} characters")
    return key.strip()


def sign(part: UploadPart, key: str) -> str:
    """The token for ``part``, signed with ``key`` (URL-safe: letters, digits, ``-``, ``_``, ``.``).

    :raises TokenTooLong: the token would be longer than :data:`MAX_TOKEN_LENGTH` (:func:`verify`
        would call it malformed): the ids it names are too long. Nothing is signed.
    """
    payload = _b64(json.dumps([getattr(part, name) for name in _FIELDS], separators=(",", ":")).encode())
    token = f"{payload}.{_b64(_mac(check_key(key), payload))}"
    if len(token) > MAX_TOKEN_LENGTH:
        # The ids as the payload holds them: JSON, where a non-ASCII character takes 6 bytes (\uXXXX).
        sizes = {name: len(json.dumps(getattr(part, name))) for name in ("dag_id", "run_id", "task_id")}
        longest = max(sizes, key=lambda name: sizes[name]).replace("_", " ")
        raise TokenTooLong(
            f"the {longest} is too long for a results token: the token would be {len(token)} bytes, over "
            f"the {MAX_TOKEN_LENGTH} the results receiver accepts (as JSON, before base64, the dag id, "
            f"run id and task id take {sizes['dag_id']}, {sizes['run_id']} and {sizes['task_id']} bytes "
            f"of it; a character outside ASCII takes 6). Shorten the {longest}"
        )
    return token


def verify(token: str, key: str, *, now: float) -> UploadPart:
    """The upload part ``token`` names, when ``key`` signed it and it has not expired at ``now``.

    The MAC is compared in constant time before the payload is decoded: a forged token's payload is
    never parsed.

    :raises TokenError: malformed, or not signed with ``key``.
    :raises TokenExpired: genuine, and ``expires`` < ``now``.
    """
    key = check_key(key)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise TokenError("malformed token")
    payload, signature = token.split(".")
    if not (payload.isascii() and signature.isascii()):
        raise TokenError("malformed token")
    # The encoded signature is compared, not its decoded bytes: base64's last character carries
    # unused bits, and a lenient decode would accept four spellings of one MAC.
    if not hmac.compare_digest(signature.encode("ascii"), _b64(_mac(key, payload)).encode("ascii")):
        raise TokenError("token not signed with this key")
    try:
        values: Any = json.loads(_unb64(payload))
        if not isinstance(values, list) or len(values) != len(_FIELDS):
            raise ValueError("wrong shape")
        part = UploadPart(**dict(zip(_FIELDS, values, strict=True)))
    except (binascii.Error, ValueError, TypeError, RecursionError):
        # Signed with our key but unreadable: only a bug (or a key shared with something else) gets here.
        raise TokenError("malformed token payload") from None
    if part.expires < now:
        raise TokenExpired("token expired")
    return part


def as_dict(part: UploadPart) -> dict[str, Any]:
    """The part's fields as a plain dict (no personal data in it)."""
    return asdict(part)
