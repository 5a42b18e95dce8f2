"""The duplicate guard: what one task instance has sent to Fuse, remembered across tries and clears.

A bulk upload makes phones ring, so a second try of the same task instance must never send what the
first already queued. The guard keeps a small ledger in Airflow's task state store (Airflow >= 3.3,
``context["task_state_store"]``, scoped to dag/run/task/map index): the sealed fingerprint of what is
being sent, and for each part (chunk) of the list whether it is *sending* (the intent, written just
before the request leaves) or *queued* (written after Fuse's 200, with ``calls_queued``).

On a later try:

* :meth:`BulkQueueLedger.answer` answers from the ledger alone, before the CSV is read: a part still
  *sending* blocks (:class:`UnknownOutcomeRecorded`); a list queued whole is answered with its
  recorded count (or refused, :class:`ListChanged`, when the request parameters changed);
* otherwise :meth:`BulkQueueLedger.plan` compares the list itself: parts queued under another
  fingerprint block sending unless a resend was asked for, and sending resumes at the first part
  not queued.

With ``collect_results`` the ledger also keeps the campaign (:class:`CampaignRecord`): the campaign
id the results tokens are signed with, the rows sent and when they were sent. It is made when a task
instance first sends its list and kept from then on, so a retry, a resumed upload or a clear answered
from the ledger belongs to the same campaign and reports the first send's times; a run deleted and
triggered again under the same run id starts with no ledger, and so with a new campaign.

What the ledger stores, and so what someone who can read Airflow's database learns: part counts,
rows per part, ``calls_queued`` per part (the call id, for a single call), whether an outcome is
unknown, the campaign record (an id, a row count, times), and the fingerprint *sealed* by
:func:`seal`: scrypt (N=2**14, r=8, p=1, 32 bytes) keyed with 16 random bytes drawn for each task
instance's ledger. No phone number, no CSV value, no unsalted hash: to test one guess of a list or a
call against a record costs one scrypt run (16 MiB of memory, by its parameters), and nothing
computed for one record helps with another.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

# Ledger entries never expire on their own: a clear months later must still see them. Airflow
# recognises its own constant by identity; before 3.3 there is no state store to write to anyway.
from airflow_provider_fuse._compat import NEVER_EXPIRE

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import timedelta

__all__ = [
    "LEDGER_KEY",
    "QUEUE_CALL_KEY",
    "AlreadyQueued",
    "BulkQueueLedger",
    "CampaignRecord",
    "Fingerprint",
    "GuardError",
    "ListChanged",
    "Plan",
    "QueueCallLedger",
    "Record",
    "StateStore",
    "SuppressionListChanged",
    "UnknownOutcomeRecorded",
    "seal",
]

#: The task state store key of the bulk ledger.
LEDGER_KEY = "airflow_provider_fuse.bulk_queue"
#: The task state store key of the single-call ledger.
QUEUE_CALL_KEY = "airflow_provider_fuse.queue_call"
SENDING = "sending"
QUEUED = "queued"
VERSION = 2

#: The sealing scheme of both ledgers (see the module docstring and docs/safety.md).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16


def seal(data: bytes, salt: bytes) -> str:
    """The stored form of a fingerprint part: scrypt of ``data`` keyed with this ledger's ``salt``."""
    digest = hashlib.scrypt(data, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32, maxmem=64 << 20)
    return digest.hex()


class StateStore(Protocol):
    """What the guard needs of Airflow's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None: ...


@dataclass(frozen=True)
class Fingerprint:
    """What is sent: the content, and everything else that shapes the requests. Held in memory only;
    the ledger stores it sealed (:func:`seal`).

    :param content: the CSV's SHA-256 digest (hex), or a single call's canonical JSON.
    :param parameters: canonical JSON of the ids, the request fields and the sending options.
    :param kind: which ledger it belongs to (only ledgers written by 0.1.0 hash the kinds differently).
    """

    content: bytes = field(repr=False)
    parameters: bytes = field(repr=False)
    kind: Literal["bulk_queue", "queue_call"] = "bulk_queue"
    #: The suppression list's digest, when one is given: a part of its own, so that
    #: :meth:`BulkQueueLedger.answer` compares it before the CSV is read.
    suppression_list: bytes | None = field(default=None, repr=False)

    @classmethod
    def of(cls, content: str | bytes, **parameters: Any) -> Fingerprint:
        """Fingerprint a list: its SHA-256 (hex), and the parameters (JSON-serialisable values)."""
        data = content.encode() if isinstance(content, str) else content
        return cls(content=data, parameters=_canonical(parameters))

    @classmethod
    def of_call(
        cls, phone_number: str, call_parameters: dict[str, Any] | None, **parameters: Any
    ) -> Fingerprint:
        """Fingerprint a single call: its number and call parameters, and the request parameters."""
        content = json.dumps([phone_number, call_parameters], sort_keys=True, separators=(",", ":"))
        return cls(content=content.encode(), parameters=_canonical(parameters), kind="queue_call")

    def with_suppression_list(self, sha256: str) -> Fingerprint:
        """This fingerprint with the digest of the suppression list the list is sent against."""
        return replace(self, suppression_list=sha256.encode())

    def named_parts(self) -> dict[str, bytes]:
        """``content``, ``parameters``, and ``suppression_list`` when one is given."""
        parts = {"content": self.content, "parameters": self.parameters}
        if self.suppression_list is not None:
            parts["suppression_list"] = self.suppression_list
        return parts

    def sealed(self, salt: bytes, names: Iterable[str] | None = None) -> dict[str, str]:
        """Its parts (or those ``names``) sealed with ``salt``, as the ledger stores them."""
        parts = self.named_parts()
        chosen = parts if names is None else names
        return {name: seal(parts[name], salt) for name in chosen if name in parts}

    def to_travel(self) -> dict[str, str]:
        """Sealed under a salt of its own, for what a waiting task carries through Airflow's database (a
        question's ``kwargs``, :mod:`airflow_provider_fuse.decisions`): :meth:`same_as` tells it again."""
        salt = os.urandom(SALT_BYTES)
        return {"salt": salt.hex(), **self.sealed(salt)}

    def same_as(self, travelled: dict[str, str]) -> bool:
        """Whether this is the fingerprint :meth:`to_travel` sealed (every part, none more or less)."""
        try:
            salt = bytes.fromhex(travelled["salt"])
        except (KeyError, TypeError, ValueError):
            return False
        return {name: value for name, value in travelled.items() if name != "salt"} == self.sealed(salt)

    def legacy(self) -> dict[str, str]:
        """Both parts as 0.1.0 stored them (ledger version 1), to read ledgers it left behind; a
        suppression list (0.1.0 had none) hashed as the parameters are."""
        if self.kind == "bulk_queue":
            content = self.content.decode()
        else:
            content = hashlib.pbkdf2_hmac(
                "sha256", self.content, b"airflow-provider-fuse/queue_call", 600_000
            ).hex()
        return {"content": content, **_legacy_hashes(self)}


def _legacy_hashes(fingerprint: Fingerprint) -> dict[str, str]:
    """The parts of ``fingerprint`` other than its content as 0.1.0 hashed its parameters."""
    parts = fingerprint.named_parts()
    return {name: hashlib.sha256(data).hexdigest() for name, data in parts.items() if name != "content"}


def _canonical(parameters: dict[str, Any]) -> bytes:
    return json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str).encode()


class GuardError(Exception):
    """The ledger forbids sending; the message says why and what to do."""


class UnknownOutcomeRecorded(GuardError):
    """A part was sent and its outcome never recorded: Fuse may have queued it."""


class ListChanged(GuardError):
    """Calls were queued for another list (or other parameters) by this task instance."""


class SuppressionListChanged(ListChanged):
    """A list was queued whole against another suppression list (or none) than this try's."""


class AlreadyQueued(ListChanged):
    """This very list (or call) was queued by an earlier try before a resend replaced it: a resend
    never sends it again. Dialing it again is a deliberate act (delete the ledger's key)."""


@dataclass(frozen=True)
class Plan:
    """What to send on this try.

    :param start: index of the first part to send (``parts`` when nothing is left).
    :param calls_queued: calls already queued by earlier tries for parts before ``start``.
    :param resumed: whether earlier tries had queued some parts.
    :param queued: the parts earlier tries queued (not sent again); a part left unsent between
        queued ones (its calling hours had no window) is not among them.
    """

    start: int
    calls_queued: int
    resumed: bool
    queued: tuple[int, ...] = ()


@dataclass(frozen=True)
class CampaignRecord:
    """The campaign a ``collect_results`` list belongs to, as the ledger keeps it (no personal data).

    :param campaign: the campaign id every part's results token is signed with
        (:func:`airflow_provider_fuse.results.tokens.new_campaign`).
    :param rows: the rows of the list being sent (all its parts): the most outcomes it can get.
    :param queued_timestamp: unix seconds when the list was last sent (a resumed upload's try).
    :param window_end: the dialing window's end (``end_timestamp``), if given.
    :param start_timestamp: when dialing may begin, if given.
    :param last_attempt_timestamp: the earliest start of the last attempt of a call.
    """

    campaign: str
    rows: int
    queued_timestamp: int
    window_end: int | None = None
    start_timestamp: int | None = None
    last_attempt_timestamp: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.campaign, str) or not self.campaign:
            raise ValueError("campaign must be a non-empty string")
        for name in ("rows", "queued_timestamp", "window_end", "start_timestamp", "last_attempt_timestamp"):
            value = getattr(self, name)
            required = name in ("rows", "queued_timestamp")
            if value is None and not required:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer")

    def as_dict(self) -> dict[str, Any]:
        """The stored (and XCom) form: JSON-serialisable ids, counts and times."""
        return {
            "campaign": self.campaign,
            "rows": self.rows,
            "queued_timestamp": self.queued_timestamp,
            "window_end": self.window_end,
            "start_timestamp": self.start_timestamp,
            "last_attempt_timestamp": self.last_attempt_timestamp,
        }

    @classmethod
    def from_dict(cls, value: Any) -> CampaignRecord:
        """Read :meth:`as_dict`'s form. :raises ValueError: (or ``KeyError``/``TypeError``) not one."""
        return cls(
            campaign=value["campaign"],
            rows=value["rows"],
            queued_timestamp=value["queued_timestamp"],
            window_end=value.get("window_end"),
            start_timestamp=value.get("start_timestamp"),
            last_attempt_timestamp=value.get("last_attempt_timestamp"),
        )


@dataclass
class Record:
    """What earlier tries of one task instance recorded under one state-store key.

    :param version: 2 (sealed with :func:`seal`), or 1 (written by 0.1.0: unsalted hashes).
    :param salt: this ledger's key for :func:`seal` (``None`` for version 1).
    :param hashes: the stored fingerprint: ``{"content": ..., "parameters": ...}``.
    :param entries: per part: ``None`` (not sent, or known not queued), or a dict whose ``state`` is
        ``"sending"`` or ``"queued"`` with ``rows`` and ``calls_queued`` (bulk) or ``call_id`` (call).
    :param history: the lists this task instance queued (in whole or in part) before a resend
        replaced them: each ``{"salt", "fingerprint", "calls_queued", "complete"}``, sealed as above
        (``salt`` ``None``: a list 0.1.0 queued, in its unsalted hashes).
    :param campaign: the campaign of a ``collect_results`` list (``None`` without one, or in a ledger
        written before campaigns were recorded).
    :param decisions: what people decided for this task instance (:mod:`airflow_provider_fuse.decisions`),
        oldest first: each ``{"question", "answer", "by", "at", "list", "part"}``, where ``list`` is the
        salt of the list it was about (a list's salt is kept while its fingerprint is) and ``part`` the
        index of the part an unknown-outcome answer settled (``None`` for an approval).
    """

    version: int
    salt: bytes | None
    hashes: dict[str, str]
    entries: list[dict[str, Any] | None]
    history: list[dict[str, Any]] = field(default_factory=list)
    campaign: CampaignRecord | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    _seen: dict[Fingerprint, dict[str, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, store: StateStore, key: str) -> Record | None:
        """The record under ``key``, or ``None`` when there is none.

        :raises GuardError: when something is stored there that is not a ledger this provider wrote
            (see :func:`_parts`; a history entry's salt that is not hex): sending blind could dial
            people twice.
        """
        value = store.get(key, None)
        if value is None:
            return None
        try:
            version = value.get("version", 1)
            if not isinstance(version, int) or isinstance(version, bool) or version not in (1, VERSION):
                raise ValueError("not a ledger version")
            hashes = _hashes(value["fingerprint"])
            salt = bytes.fromhex(value["salt"]) if version >= 2 else None
            if "parts" in value:
                parts = value["parts"]
            else:  # a single call, as 0.1.0 stored it
                state = value.get("state")
                parts = [{"state": state, "call_id": value.get("call_id")} if state else None]
            entries = _parts(parts, single_call=key == QUEUE_CALL_KEY)
            for item in value.get("history", []):
                if item["salt"] is not None:
                    bytes.fromhex(item["salt"])  # Record.earlier seals with it
                if not _is_count(item["calls_queued"]) or not isinstance(item["complete"], bool):
                    raise ValueError("not a history entry")
            history = [
                {
                    # ``None``: a list 0.1.0 queued, kept in its unsalted form (see Record.as_history).
                    "salt": None if item["salt"] is None else str(item["salt"]),
                    "fingerprint": _hashes(item["fingerprint"]),
                    "calls_queued": int(item["calls_queued"]),
                    "complete": bool(item["complete"]),
                }
                for item in value.get("history", [])
            ]
            campaign = CampaignRecord.from_dict(value["campaign"]) if value.get("campaign") else None
            decisions = [_decision(item) for item in value.get("decisions", [])]
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
            raise GuardError(
                f"the task state store holds something under {key!r} that is not this provider's ledger; "
                "inspect and delete it before sending"
            ) from None
        return cls(version, salt, hashes, entries, history, campaign, decisions)

    def stored_form(self, fingerprint: Fingerprint) -> dict[str, str]:
        """``fingerprint`` in the form this record stores (sealed with its salt, or 0.1.0's hashes)."""
        if fingerprint not in self._seen:
            self._seen[fingerprint] = (
                fingerprint.sealed(self.salt) if self.salt is not None else fingerprint.legacy()
            )
        return self._seen[fingerprint]

    def changes(self, fingerprint: Fingerprint, parts: tuple[str, ...] = ("content", "parameters")) -> str:
        """What of ``fingerprint`` differs from the recorded one: ``"content"``, ``"parameters"``,
        ``"suppression_list"``, joined by "and", or ``""``. Only the named ``parts`` are compared; a
        part one side has and the other has not differs."""
        stored = self.stored_form(fingerprint) if "content" in parts else self._form(fingerprint, parts)
        return " and ".join(name for name in parts if stored.get(name) != self.hashes.get(name))

    def _form(self, fingerprint: Fingerprint, parts: tuple[str, ...]) -> dict[str, str]:
        """The named parts of ``fingerprint`` but its content, in the form this record stores."""
        if self.salt is None:
            return _legacy_hashes(fingerprint)
        return fingerprint.sealed(self.salt, parts)

    def earlier(self, fingerprint: Fingerprint) -> dict[str, Any] | None:
        """The entry of :attr:`history` that ``fingerprint`` matches, if any."""
        for item in self.history:
            if item["salt"] is None:  # queued by 0.1.0: compared as Record.changes compares its ledgers
                stored = fingerprint.legacy()
            else:
                stored = fingerprint.sealed(bytes.fromhex(item["salt"]))
            # The parts the entry recorded (one written before suppression lists were a part of their
            # own has none: its content covers the list).
            if all(stored.get(name) == value for name, value in item["fingerprint"].items()):
                return item
        return None

    def as_history(self) -> dict[str, Any] | None:
        """This record's list as a :attr:`history` entry (``None`` when it queued nothing).

        A list 0.1.0 queued is kept too, with ``salt`` ``None`` and its unsalted hashes as they were
        stored: :meth:`earlier` compares it exactly (``Fingerprint.legacy``). Dropping it would let a
        later resend of that list send it again.
        """
        if not self.queued:
            return None
        return {
            "salt": None if self.salt is None else self.salt.hex(),
            "fingerprint": dict(self.hashes),
            "calls_queued": self.calls_queued(),
            "complete": self.complete,
        }

    @property
    def sending(self) -> list[int]:
        """Indexes of the parts whose outcome is unknown."""
        return [index for index, entry in enumerate(self.entries) if entry and entry["state"] == SENDING]

    @property
    def queued(self) -> list[int]:
        """Indexes of the parts Fuse queued."""
        return [index for index, entry in enumerate(self.entries) if entry and entry["state"] == QUEUED]

    @property
    def complete(self) -> bool:
        """Whether every part was queued."""
        return bool(self.entries) and len(self.queued) == len(self.entries)

    def calls_queued(self, indexes: list[int] | None = None) -> int:
        """The calls Fuse queued for the given parts (default: all queued parts)."""
        chosen = self.queued if indexes is None else indexes
        return sum(int((self.entries[index] or {}).get("calls_queued") or 0) for index in chosen)

    def approval(self, fingerprint: Fingerprint) -> dict[str, Any] | None:
        """The decision that approved this very list (``fingerprint``), if a person approved it."""
        if self.salt is None or self.changes(fingerprint):
            return None
        return next(
            (
                item
                for item in reversed(self.decisions)
                if item["question"] == "approval" and item["list"] == self.salt.hex()
            ),
            None,
        )


def _parts(parts: Any, *, single_call: bool) -> list[dict[str, Any] | None]:
    """A stored ``parts`` list, checked: one entry or more (exactly one for a single call), each
    ``None`` or a dict whose ``state`` is *sending* or *queued*; ``rows`` absent or a count; a queued
    part of a list with its ``calls_queued`` count, a queued call with its ``call_id`` text.

    :raises ValueError: anything else (read as "not this provider's ledger").
    """
    if not isinstance(parts, list) or not parts or (single_call and len(parts) != 1):
        raise ValueError("a ledger has one part or more; a single call's, one")
    entries: list[dict[str, Any] | None] = []
    for entry in parts:
        if entry is None:
            entries.append(None)
            continue
        if not isinstance(entry, dict) or entry.get("state") not in (SENDING, QUEUED):
            raise ValueError("a part is null or has a known state")
        if entry.get("rows") is not None and not _is_count(entry["rows"]):
            raise ValueError("rows is a count")
        if entry["state"] == QUEUED:
            call_id = entry.get("call_id")
            if single_call and not (isinstance(call_id, str) and call_id):
                raise ValueError("a queued call has its call id")
            if not single_call and not _is_count(entry.get("calls_queued")):
                raise ValueError("a queued part has its calls_queued count")
        entries.append(dict(entry))
    return entries


def _decision(item: Any) -> dict[str, Any]:
    """A stored decision, checked (see :attr:`Record.decisions`).

    :raises ValueError: (or ``KeyError``, ``TypeError``) not one.
    """
    if set(item) != {"question", "answer", "by", "at", "list", "part"}:
        raise ValueError("a decision has its six fields")
    if not all(isinstance(item[name], str) and item[name] for name in ("question", "answer", "at", "list")):
        raise ValueError("a decision names its question, answer, time and list")
    bytes.fromhex(item["list"])
    if item["by"] is not None and not isinstance(item["by"], str):
        raise ValueError("by is a user or null")
    if item["part"] is not None and not _is_count(item["part"]):
        raise ValueError("part is an index or null")
    return dict(item)


def _hashes(fingerprint: Any) -> dict[str, str]:
    """A stored fingerprint, checked: ``content`` and ``parameters``, and ``suppression_list`` if any.

    :raises KeyError: (or ``TypeError``) not one.
    """
    names = ("content", "parameters", *(("suppression_list",) if "suppression_list" in fingerprint else ()))
    return {name: str(fingerprint[name]) for name in names}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _Ledger:
    """Reading and writing one task instance's record under ``key``."""

    key: str

    def __init__(self, store: StateStore, retention: timedelta = NEVER_EXPIRE) -> None:
        self.store = store
        self.retention = retention
        self.record = Record.read(store, self.key)
        self._salt = b""
        self._sealed: dict[str, str] = {}
        self._entries: list[dict[str, Any] | None] = []
        self._history: list[dict[str, Any]] = list(self.record.history) if self.record else []
        self._campaign: CampaignRecord | None = self.record.campaign if self.record else None
        self._decisions: list[dict[str, Any]] = list(self.record.decisions) if self.record else []

    def _start(self, fingerprint: Fingerprint, entries: list[dict[str, Any] | None]) -> None:
        """Write from now on under ``fingerprint``: the record's salt when it is kept, else a new one."""
        record = self.record
        if record is not None and record.salt is not None and not record.changes(fingerprint):
            self._salt = record.salt
            self._sealed = record.stored_form(fingerprint)
        else:
            replaced = record.as_history() if record is not None else None
            if replaced is not None:
                self._history.append(replaced)
            self._salt = os.urandom(SALT_BYTES)
            self._sealed = fingerprint.sealed(self._salt)
        self._entries = entries

    def _save(self) -> None:
        value = {
            "version": VERSION,
            "salt": self._salt.hex(),
            "fingerprint": self._sealed,
            "parts": self._entries,
        }
        if self._history:
            value["history"] = self._history
        if self._campaign is not None:
            value["campaign"] = self._campaign.as_dict()
        if self._decisions:
            value["decisions"] = self._decisions
        self.store.set(self.key, value, retention=self.retention)

    def approved(self, by: str | None, at: str) -> None:
        """Record that a person approved what this try planned to send (call after ``plan``)."""
        self._decide("approval", "Approve", by, at, None)

    def _decide(self, question: str, answer: str, by: str | None, at: str, part: int | None) -> None:
        decision = {"question": question, "answer": answer, "by": by, "at": at, "part": part}
        self._decisions.append({**decision, "list": self._salt.hex()})
        self._save()


class BulkQueueLedger(_Ledger):
    """The ledger of one task instance's ``bulk_queue`` requests, in its task state store.

    Read once when built. Ask :meth:`answer` before reading the CSV, then :meth:`plan` with the
    list's fingerprint; record each part with :meth:`sending` (just before its request),
    :meth:`queued` (after Fuse's 200) or :meth:`not_queued` (nothing left the machine, or a rejection).

    :param store: ``context["task_state_store"]``.
    :param retention: how long entries live; default never expire.
    :raises GuardError: when the key holds something that is not a ledger.
    """

    key = LEDGER_KEY

    def answer(
        self,
        parameters: dict[str, Any],
        *,
        suppression_list: str | None = None,
        retry_unknown: bool = False,
        resend: bool = False,
    ) -> int | None:
        """What earlier tries decide without the list: the recorded count, or ``None`` (read the list).

        :param parameters: the request parameters of this try, as given to :meth:`Fingerprint.of`.
        :param suppression_list: the digest of the suppression list this try was given, read before
            asking (:meth:`Fingerprint.with_suppression_list`); ``None`` when none is given.
        :return: the total ``calls_queued`` when this task instance's list was queued whole under the
            same parameters and suppression list and ``resend`` is off; ``None`` when there is no
            record, parts are left to send, or ``resend`` asks for the list to be compared.
        :raises UnknownOutcomeRecorded: a part's outcome is unknown and ``retry_unknown`` is off.
        :raises SuppressionListChanged: the list was queued whole against another suppression list
            (or none), the parameters the same, and ``resend`` is off.
        :raises ListChanged: the list was queued whole under other parameters and ``resend`` is off.
        """
        record = self.record
        if record is None:
            return None
        self._check_unknown(record, retry_unknown)
        if not record.complete or resend:
            return None
        fingerprint = Fingerprint.of(b"", **parameters)
        compared: tuple[str, ...] = ("parameters",)
        if suppression_list is not None:
            fingerprint = fingerprint.with_suppression_list(suppression_list)
            compared = ("parameters", "suppression_list")
        changed = record.changes(fingerprint, parts=compared)
        if changed == "suppression_list":
            raise _suppression_list_changed(record)
        if changed:
            raise ListChanged(
                f"an earlier try of this task already queued {record.calls_queued()} calls, and the "
                "parameters of the list changed since"
            )
        return record.calls_queued()

    def plan(
        self, fingerprint: Fingerprint, parts: int, *, retry_unknown: bool = False, resend: bool = False
    ) -> Plan:
        """Compare this try's list with the record and decide where this try starts.

        :param retry_unknown: treat parts whose outcome is unknown as not queued (send them again).
        :param resend: allow sending a list whose fingerprint differs from the one already queued.
            The same list is never sent twice, with or without it.
        :raises UnknownOutcomeRecorded: a part's outcome is unknown and ``retry_unknown`` is off.
        :raises SuppressionListChanged: calls were queued against another suppression list (or none),
            the parameters the same, and ``resend`` is off.
        :raises ListChanged: calls were queued under another fingerprint and ``resend`` is off.
        """
        fresh: list[dict[str, Any] | None] = [None] * parts
        record = self.record
        if record is None:
            self._start(fingerprint, fresh)
            return Plan(start=0, calls_queued=0, resumed=False)
        self._check_unknown(record, retry_unknown)
        changed = record.changes(fingerprint)
        if changed or len(record.entries) != parts:
            if record.queued and not resend:
                # The plan's content covers the suppression list: when the parameters are the same and
                # the list differs, say so (a list queued whole is refused so by answer()).
                besides = record.changes(fingerprint, parts=("parameters", "suppression_list"))
                if besides == "suppression_list":
                    raise _suppression_list_changed(record)
                raise ListChanged(
                    f"an earlier try of this task already queued {record.calls_queued()} calls, and the "
                    f"{changed or 'parts'} of the list changed since"
                )
            # A resend sends a changed list once; a list queued before it was replaced is not sent again.
            earlier = record.earlier(fingerprint)
            if earlier is not None and earlier["complete"]:
                return Plan(start=parts, calls_queued=earlier["calls_queued"], resumed=False)
            if earlier is not None:
                raise AlreadyQueued(
                    f"an earlier try of this task already queued {earlier['calls_queued']} calls of this "
                    "very list before another list replaced it; sending it again could dial people twice"
                )
            self._start(fingerprint, fresh)
            return Plan(start=0, calls_queued=0, resumed=False)
        kept = [entry if entry and entry["state"] == QUEUED else None for entry in record.entries]
        self._start(fingerprint, kept)
        start = next((index for index, entry in enumerate(kept) if entry is None), parts)
        queued = tuple(index for index, entry in enumerate(kept) if entry is not None)
        return Plan(
            start=start, calls_queued=record.calls_queued(list(queued)), resumed=start > 0, queued=queued
        )

    @property
    def campaign(self) -> CampaignRecord | None:
        """The campaign of this task instance's list: recorded by an earlier try, or set by this one
        (:meth:`set_campaign`); ``None`` when neither."""
        return self._campaign

    def set_campaign(self, campaign: CampaignRecord) -> None:
        """Keep ``campaign`` with the record; written with the next part's intent (:meth:`sending`),
        so it is in the ledger before anything is sent. Keep the recorded campaign id when there is
        one: a retry, a resume and a clear are the same campaign."""
        self._campaign = campaign

    def sending(self, index: int, rows: int, window: Any = None) -> None:
        """Record the intent: part ``index`` is about to be sent. Call just before the request.

        :param window: the part's own dialing window (``.start``/``.end``, unix seconds), recorded with
            it, when calling hours gave it one.
        """
        entry: dict[str, Any] = {"state": SENDING, "rows": rows, "sent_at": int(time.time())}
        if window is not None:
            entry.update(start_timestamp=int(window.start), end_timestamp=int(window.end))
        self._entries[index] = entry
        self._save()

    def queued(self, index: int, calls_queued: int) -> None:
        """Record Fuse's 200 for part ``index`` (its window, if recorded, is kept)."""
        entry = self._entries[index] or {}
        window: dict[str, Any] = {
            name: entry[name] for name in ("start_timestamp", "end_timestamp") if name in entry
        }
        self._entries[index] = {
            "state": QUEUED,
            "rows": entry.get("rows"),
            "calls_queued": calls_queued,
            **window,
        }
        self._save()

    def not_queued(self, index: int) -> None:
        """Clear the intent of part ``index``: Fuse rejected it, or it never left the machine."""
        self._entries[index] = None
        self._save()

    def settle(
        self, index: int, answer: Literal["queued", "not_queued", "stop"], by: str | None, at: str
    ) -> None:
        """Record a person's answer about part ``index``, whose outcome an earlier request left unknown.

        ``"queued"``: Fuse has it; the part is recorded as queued, its rows counted as its calls (Fuse's
        own count never arrived) and marked ``"decided": true``. ``"not_queued"``: the part is cleared, so
        it is sent again; parts recorded as queued stay so. ``"stop"``: only the answer is recorded; the
        part stays unknown. Call before :meth:`answer` and :meth:`plan`, which then see the settled record.

        :raises GuardError: part ``index`` is not unknown, or the record was written by 0.1.0 (no salt to
            record the decision under).
        """
        record = self.record
        if record is None or record.salt is None or index not in record.sending:
            raise GuardError(
                f"part {index + 1} has no unknown outcome recorded in the ledger to settle"
                if record is None or record.salt is not None
                else "this ledger was written by 0.1.0 and cannot record a decision; inspect and delete it"
            )
        entries = [dict(entry) if entry else None for entry in record.entries]
        entry = entries[index] or {}
        if answer == "queued":
            entries[index] = {
                **{name: value for name, value in entry.items() if name != "state"},
                "state": QUEUED,
                "calls_queued": int(entry.get("rows") or 0),
                "decided": True,
            }
        elif answer == "not_queued":
            entries[index] = None
        self._salt, self._sealed, self._entries = record.salt, dict(record.hashes), entries
        self._decide("unknown_outcome", answer, by, at, index)
        self.record = replace(record, entries=entries, decisions=list(self._decisions), _seen={})

    @staticmethod
    def _check_unknown(record: Record, retry_unknown: bool) -> None:
        if record.sending and not retry_unknown:
            index = record.sending[0]
            rows = (record.entries[index] or {}).get("rows")
            raise UnknownOutcomeRecorded(
                f"an earlier try sent part {index + 1} of {len(record.entries)} ({rows} rows) and "
                "never learned whether Fuse queued it (the worker died, or Fuse's answer was lost)"
            )


class QueueCallLedger(_Ledger):
    """The ledger of one task instance's single ``queue`` request: a list of one, same rules.

    :param store: ``context["task_state_store"]``.
    :param fingerprint: the fingerprint of the call this try would queue (:meth:`Fingerprint.of_call`).
    :param retention: how long the entry lives; default never expire.
    :raises GuardError: when the key holds something that is not a ledger.
    """

    key = QUEUE_CALL_KEY

    def __init__(self, store: StateStore, fingerprint: Fingerprint, retention: timedelta = NEVER_EXPIRE):
        super().__init__(store, retention)
        self.fingerprint = fingerprint

    def plan(self, *, retry_unknown: bool = False, resend: bool = False) -> str | None:
        """Read what earlier tries recorded: the call id already queued for this call, or ``None``.

        :param retry_unknown: treat a call whose outcome is unknown as not queued (queue it again).
        :param resend: allow queuing a call whose fingerprint differs from the one already queued.
            The same call is never queued twice, with or without it: a call queued before another
            replaced it (it is in the ledger's history) is refused, as the bulk ledger refuses a list.
        :raises UnknownOutcomeRecorded: the intent of an earlier try has no result, and
            ``retry_unknown`` is off.
        :raises ListChanged: a call with another fingerprint was queued and ``resend`` is off.
        :raises AlreadyQueued: this very call was queued before another call replaced it.
        """
        record = self.record
        if record is None:
            self._start(self.fingerprint, [None])
            return None
        entry = record.entries[0] if record.entries else None
        if entry is not None and entry["state"] == SENDING and not retry_unknown:
            raise UnknownOutcomeRecorded(
                "an earlier try sent the call and never learned whether Fuse queued it (the worker died, or "
                "Fuse's answer was lost)"
            )
        if entry is not None and entry["state"] == QUEUED:
            changed = record.changes(self.fingerprint)
            if not changed:
                return str(entry["call_id"])
            if not resend:
                raise ListChanged(
                    f"an earlier try of this task already queued call {entry['call_id']}, and the "
                    f"{changed} of the call changed since"
                )
        # A resend queues a changed call once; a call queued before it was replaced is not queued
        # again (the bulk ledger's rule for a list in its history).
        if record.earlier(self.fingerprint) is not None:
            raise AlreadyQueued(
                "an earlier try of this task already queued this very call before another call replaced "
                "it; queuing it again would dial the person twice"
            )
        self._start(self.fingerprint, [None])
        return None

    def sending(self) -> None:
        """Record the intent: the call is about to be sent. Call just before the request."""
        self._entries = [{"state": SENDING}]
        self._save()

    def queued(self, call_id: str) -> None:
        """Record Fuse's 200 and the call id."""
        self._entries = [{"state": QUEUED, "call_id": call_id}]
        self._save()

    def not_queued(self) -> None:
        """Clear the intent: Fuse rejected the call, or it never left the machine."""
        self._entries = [None]
        self._save()


def _suppression_list_changed(record: Record) -> SuppressionListChanged:
    return SuppressionListChanged(
        f"the suppression list changed since {record.calls_queued()} calls were queued by an earlier "
        "try of this task"
    )
