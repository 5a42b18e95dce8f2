"""The duplicate guard: what one task instance has sent to Fuse, remembered across tries and clears.

A bulk upload makes phones ring, so a second try of the same task instance must never send what the
first already queued. The guard keeps a small ledger in Airflow's task state store (Airflow >= 3.3,
``context["task_state_store"]``, scoped to dag/run/task/map index): the fingerprint of what is being
sent, and for each part (chunk) of the list whether it is *sending* (the intent, written before the
request) or *queued* (written after Fuse's 200, with ``calls_queued``).

On a later try :meth:`BulkQueueLedger.plan` decides:

* a part still *sending* — a try died or met an unknown outcome after sending it — blocks sending,
  whatever the fingerprint (:class:`UnknownOutcomeRecorded`), unless unknown outcomes may be retried;
* parts *queued* under another fingerprint — the list or the parameters changed — block sending
  (:class:`ListChanged`), unless a resend was asked for;
* otherwise sending resumes at the first part not queued; when all are queued, nothing is sent and
  the recorded total is returned.

The fingerprint is a SHA-256 over the CSV's bytes plus the application id, the deployment id, every
request field, ``chunk_size`` and the duplicate-destination policy. Nothing personal is stored: no
phone number, no CSV value, only hashes and counts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

__all__ = [
    "LEDGER_KEY",
    "QUEUE_CALL_KEY",
    "BulkQueueLedger",
    "Fingerprint",
    "GuardError",
    "ListChanged",
    "Plan",
    "QueueCallLedger",
    "StateStore",
    "UnknownOutcomeRecorded",
    "has_record",
]

#: The task state store key of the ledger.
LEDGER_KEY = "airflow_provider_fuse.bulk_queue"
#: Ledger entries never expire on their own: a clear months later must still see them. Airflow
#: recognises its own constant by identity; before 3.3 there is no state store to write to anyway.
try:
    from airflow.sdk.execution_time.context import NEVER_EXPIRE
except ImportError:  # Airflow < 3.3
    NEVER_EXPIRE = timedelta.max
SENDING = "sending"
QUEUED = "queued"


def has_record(store: StateStore, key: str) -> bool:
    """Whether an earlier try of this task instance left a ledger under ``key``."""
    return store.get(key, None) is not None


class StateStore(Protocol):
    """What the guard needs of Airflow's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None: ...


@dataclass(frozen=True)
class Fingerprint:
    """What is sent, hashed: the CSV's content, and everything else that shapes the requests."""

    content: str
    parameters: str

    @classmethod
    def of(cls, csv_sha256: str, **parameters: Any) -> Fingerprint:
        """Fingerprint a list: its SHA-256, and the parameters (JSON-serialisable values)."""
        canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
        return cls(content=csv_sha256, parameters=hashlib.sha256(canonical.encode()).hexdigest())

    @property
    def value(self) -> str:
        """The single fingerprint: SHA-256 over both parts."""
        return hashlib.sha256(f"{self.content}:{self.parameters}".encode()).hexdigest()

    def changes_from(self, other: Fingerprint) -> str:
        """What differs from ``other``, in kind: ``"content"``, ``"parameters"`` or both."""
        kinds = [name for name in ("content", "parameters") if getattr(self, name) != getattr(other, name)]
        return " and ".join(kinds) or "nothing"


class GuardError(Exception):
    """The ledger forbids sending; the message says why and what to do."""


class UnknownOutcomeRecorded(GuardError):
    """A part was sent and its outcome never recorded: Fuse may have queued it."""


class ListChanged(GuardError):
    """Calls were queued for another list (or other parameters) by this task instance."""


@dataclass(frozen=True)
class Plan:
    """What to send on this try.

    :param start: index of the first part to send (``parts`` when nothing is left).
    :param calls_queued: calls already queued by earlier tries for parts before ``start``.
    :param resumed: whether earlier tries had queued some parts.
    """

    start: int
    calls_queued: int
    resumed: bool


class BulkQueueLedger:
    """The ledger of one task instance's ``bulk_queue`` requests, in its task state store.

    :param store: ``context["task_state_store"]``.
    :param fingerprint: the fingerprint of what this try would send.
    :param parts: how many requests (chunks) the list is sent in.
    :param retention: how long entries live; default never expire.
    """

    def __init__(
        self,
        store: StateStore,
        fingerprint: Fingerprint,
        parts: int,
        retention: timedelta = NEVER_EXPIRE,
    ) -> None:
        self.store = store
        self.fingerprint = fingerprint
        self.parts = parts
        self.retention = retention
        self._entries: list[dict[str, Any] | None] = [None] * parts

    def plan(self, *, retry_unknown: bool = False, resend: bool = False) -> Plan:
        """Read what earlier tries recorded and decide where this try starts.

        :param retry_unknown: treat parts whose outcome is unknown as not queued (send them again).
        :param resend: allow sending a list whose fingerprint differs from the one already queued.
            The same list is never sent twice, with or without it.
        :raises UnknownOutcomeRecorded: a part's outcome is unknown and ``retry_unknown`` is off.
        :raises ListChanged: calls were queued under another fingerprint and ``resend`` is off.
        """
        recorded = self.store.get(LEDGER_KEY, None)
        if not isinstance(recorded, dict) or not isinstance(recorded.get("parts"), list):
            return Plan(start=0, calls_queued=0, resumed=False)
        entries: list[dict[str, Any] | None] = list(recorded["parts"])
        sending = [index for index, entry in enumerate(entries) if entry and entry.get("state") == SENDING]
        if sending and not retry_unknown:
            index = sending[0]
            rows = (entries[index] or {}).get("rows")
            raise UnknownOutcomeRecorded(
                f"an earlier try sent part {index + 1} of {len(entries)} ({rows} rows) and "
                "never learned whether Fuse queued it (the worker died, or Fuse's answer was lost)"
            )
        queued = [entry for entry in entries if entry and entry.get("state") == QUEUED]
        before = Fingerprint(**recorded["fingerprint"])
        if before != self.fingerprint:
            if queued and not resend:
                calls = sum(int(entry["calls_queued"]) for entry in queued)
                raise ListChanged(
                    f"an earlier try of this task already queued {calls} calls, and the "
                    f"{self.fingerprint.changes_from(before)} of the list changed since"
                )
            return Plan(start=0, calls_queued=0, resumed=False)
        self._entries = [entry if entry and entry.get("state") == QUEUED else None for entry in entries]
        start = next((index for index, entry in enumerate(self._entries) if entry is None), self.parts)
        calls = sum(int(entry["calls_queued"]) for entry in self._entries[:start] if entry)
        return Plan(start=start, calls_queued=calls, resumed=start > 0)

    def sending(self, index: int, rows: int) -> None:
        """Record the intent: part ``index`` is about to be sent. Call before the request."""
        self._entries[index] = {"state": SENDING, "rows": rows}
        self._save()

    def queued(self, index: int, calls_queued: int) -> None:
        """Record Fuse's 200 for part ``index``."""
        entry = self._entries[index] or {}
        self._entries[index] = {"state": QUEUED, "rows": entry.get("rows"), "calls_queued": calls_queued}
        self._save()

    def not_queued(self, index: int) -> None:
        """Clear the intent of part ``index``: Fuse rejected it, or it was never sent."""
        self._entries[index] = None
        self._save()

    def _save(self) -> None:
        value = {
            "version": 1,
            "fingerprint": {"content": self.fingerprint.content, "parameters": self.fingerprint.parameters},
            "fingerprint_sha256": self.fingerprint.value,
            "parts": self._entries,
        }
        self.store.set(LEDGER_KEY, value, retention=self.retention)


# --- queue: one call ---------------------------------------------------------------------------------

#: The task state store key of the single-call ledger.
QUEUE_CALL_KEY = "airflow_provider_fuse.queue_call"
#: Iterations of the slow hash over a single call's phone number and parameters: a bare SHA-256 of one
#: phone number could be reversed by trying every number.
_CALL_HASH_ITERATIONS = 600_000


def call_content_hash(phone_number: str, call_parameters: dict[str, Any] | None) -> str:
    """A slow, salted hash of what identifies one call: its number and its parameters.

    PBKDF2-HMAC-SHA256 rather than one SHA-256: ten-digit phone numbers are few enough to try them all
    against a fast hash, and the ledger must not hold a recoverable phone number.
    """
    canonical = json.dumps([phone_number, call_parameters], sort_keys=True, separators=(",", ":"))
    digest = hashlib.pbkdf2_hmac(
        "sha256", canonical.encode(), b"airflow-provider-fuse/queue_call", _CALL_HASH_ITERATIONS
    )
    return digest.hex()


class QueueCallLedger:
    """The ledger of one task instance's single ``queue`` request, in its task state store.

    Same rules as :class:`BulkQueueLedger`, for a list of one: the intent is recorded before the
    request, the call id after Fuse's 200.

    :param store: ``context["task_state_store"]``.
    :param fingerprint: the fingerprint of the call this try would queue (see :func:`call_content_hash`).
    :param retention: how long the entry lives; default never expire.
    """

    def __init__(self, store: StateStore, fingerprint: Fingerprint, retention: timedelta = NEVER_EXPIRE):
        self.store = store
        self.fingerprint = fingerprint
        self.retention = retention

    def plan(self, *, retry_unknown: bool = False, resend: bool = False) -> str | None:
        """Read what earlier tries recorded: the call id already queued for this call, or ``None``.

        :param retry_unknown: treat a call whose outcome is unknown as not queued (queue it again).
        :param resend: allow queuing a call whose fingerprint differs from the one already queued.
        :raises UnknownOutcomeRecorded: the intent of an earlier try has no result, and
            ``retry_unknown`` is off.
        :raises ListChanged: a call with another fingerprint was queued and ``resend`` is off.
        """
        recorded = self.store.get(QUEUE_CALL_KEY, None)
        if not isinstance(recorded, dict) or not isinstance(recorded.get("fingerprint"), dict):
            return None
        state = recorded.get("state")
        if state == SENDING and not retry_unknown:
            raise UnknownOutcomeRecorded(
                "an earlier try sent the call and never learned whether Fuse queued it (the worker died, or "
                "Fuse's answer was lost)"
            )
        if state != QUEUED:
            return None
        before = Fingerprint(**recorded["fingerprint"])
        if before == self.fingerprint:
            return str(recorded["call_id"])
        if resend:
            return None
        raise ListChanged(
            f"an earlier try of this task already queued call {recorded['call_id']}, and the "
            f"{self.fingerprint.changes_from(before)} of the call changed since"
        )

    def sending(self) -> None:
        """Record the intent: the call is about to be sent. Call before the request."""
        self._save(SENDING, None)

    def queued(self, call_id: str) -> None:
        """Record Fuse's 200 and the call id."""
        self._save(QUEUED, call_id)

    def not_queued(self) -> None:
        """Clear the intent: Fuse rejected the call, or it was never sent."""
        self._save(None, None)

    def _save(self, state: str | None, call_id: str | None) -> None:
        value = {
            "version": 1,
            "fingerprint": {"content": self.fingerprint.content, "parameters": self.fingerprint.parameters},
            "fingerprint_sha256": self.fingerprint.value,
            "state": state,
            "call_id": call_id,
        }
        self.store.set(QUEUE_CALL_KEY, value, retention=self.retention)
