"""The sandbox's memory: uploads, calls and the request log, in SQLite (stdlib ``sqlite3``).

A file when a state path is given (a restart loses nothing), in memory otherwise. One connection,
shared by the server's event loop and the simulator thread, guarded by :attr:`Store.lock`; callers
that read, decide and write (the simulator, ``cancel``) hold the lock across all three.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse.sandbox.models import Call, RequestRecord, SandboxCallEvent, Upload

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

__all__ = ["Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id INTEGER,
    deployment_id INTEGER,
    fields TEXT NOT NULL,
    filename TEXT,
    content_type TEXT,
    csv BLOB NOT NULL,
    rows INTEGER NOT NULL,
    calls_queued INTEGER,
    status_code INTEGER,
    fault TEXT,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id INTEGER NOT NULL,
    deployment_id INTEGER NOT NULL,
    upload_id INTEGER,
    destination TEXT NOT NULL,
    phone_number TEXT NOT NULL,
    variables TEXT NOT NULL,
    queued_timestamp INTEGER NOT NULL,
    start_timestamp INTEGER,
    end_timestamp INTEGER,
    max_attempts INTEGER NOT NULL,
    reattempt_wait INTEGER,
    result_url TEXT,
    is_pci INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    events TEXT NOT NULL,
    duration INTEGER,
    next_at REAL,
    result_delivery TEXT,
    result_status_code INTEGER,
    result_detail TEXT
);
CREATE INDEX IF NOT EXISTS calls_status ON calls (status);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status_code INTEGER,
    fault TEXT,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_CALL_COLUMNS = (
    "application_id",
    "deployment_id",
    "upload_id",
    "destination",
    "phone_number",
    "variables",
    "queued_timestamp",
    "start_timestamp",
    "end_timestamp",
    "max_attempts",
    "reattempt_wait",
    "result_url",
    "is_pci",
    "status",
    "attempts",
    "events",
    "duration",
    "next_at",
)
_UPDATABLE_CALL_COLUMNS = frozenset(
    {
        "status",
        "attempts",
        "events",
        "duration",
        "next_at",
        "result_delivery",
        "result_status_code",
        "result_detail",
    }
)
_ACTIVE = "('queued', 'dialing', 'connected')"


class Store:
    """Thread-safe SQLite persistence of the sandbox's state.

    :param path: a database file (created if missing, reopened as is), or ``None`` for memory.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.lock = threading.RLock()
        self._db = sqlite3.connect(self.path or ":memory:", check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._batch_depth = 0
        with self.lock:
            if self.path is not None:
                # WAL + NORMAL: durable across a process exit, without an fsync per call update.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.commit()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the lock and commit once at the end, for many writes in a row (simulator steps)."""
        with self.lock:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
                if self._batch_depth == 0:
                    self._db.commit()

    def _commit(self) -> None:
        if self._batch_depth == 0:
            self._db.commit()

    def close(self) -> None:
        """Close the database; the store is unusable afterwards."""
        with self.lock:
            self._db.close()

    # -- uploads -----------------------------------------------------------------------------

    def add_upload(
        self,
        *,
        application_id: int | None,
        deployment_id: int | None,
        fields: dict[str, str],
        filename: str | None,
        content_type: str | None,
        csv: bytes,
        rows: int,
        calls_queued: int | None,
        status_code: int | None,
        fault: str | None = None,
    ) -> int:
        """Record one ``bulk_queue`` request and return its ``upload_id``."""
        with self.lock:
            cursor = self._db.execute(
                "INSERT INTO uploads (application_id, deployment_id, fields, filename, content_type, csv,"
                " rows, calls_queued, status_code, fault, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    application_id,
                    deployment_id,
                    json.dumps(fields),
                    filename,
                    content_type,
                    csv,
                    rows,
                    calls_queued,
                    status_code,
                    fault,
                    time.time(),
                ),
            )
            self._commit()
            return int(cursor.lastrowid or 0)

    def update_upload(self, upload_id: int, **changes: Any) -> None:
        """Set an upload's ``calls_queued``, ``status_code`` or ``fault`` after the fact."""
        unknown = set(changes) - {"calls_queued", "status_code", "fault"}
        if unknown:
            raise ValueError(f"cannot update upload columns {sorted(unknown)}")
        if not changes:
            return
        assignments = ", ".join(f"{column} = ?" for column in changes)
        with self.lock:
            self._db.execute(f"UPDATE uploads SET {assignments} WHERE id = ?", (*changes.values(), upload_id))
            self._commit()

    def uploads(self) -> list[Upload]:
        """Every recorded upload, oldest first."""
        with self.lock:
            rows = self._db.execute("SELECT * FROM uploads ORDER BY id").fetchall()
        return [
            Upload(
                upload_id=r["id"],
                application_id=r["application_id"],
                deployment_id=r["deployment_id"],
                fields=json.loads(r["fields"]),
                filename=r["filename"],
                content_type=r["content_type"],
                csv=bytes(r["csv"]),
                rows=r["rows"],
                calls_queued=r["calls_queued"],
                status_code=r["status_code"],
                fault=r["fault"],
                received_at=r["received_at"],
            )
            for r in rows
        ]

    # -- calls -------------------------------------------------------------------------------

    def add_calls(self, calls: Sequence[dict[str, Any]]) -> list[str]:
        """Insert calls (dicts keyed by the ``calls`` columns) in one transaction; return their ids."""
        ids: list[str] = []
        with self.lock:
            try:
                for call in calls:
                    values = [_encode(column, call.get(column)) for column in _CALL_COLUMNS]
                    cursor = self._db.execute(
                        f"INSERT INTO calls ({', '.join(_CALL_COLUMNS)})"
                        f" VALUES ({', '.join('?' * len(_CALL_COLUMNS))})",
                        values,
                    )
                    ids.append(str(cursor.lastrowid))
                self._commit()
            except BaseException:
                self._db.rollback()
                raise
        return ids

    def update_call(self, call_id: str, **changes: Any) -> None:
        """Update a call's mutable columns (status, attempts, events, duration, next_at, result_*)."""
        unknown = set(changes) - _UPDATABLE_CALL_COLUMNS
        if unknown:
            raise ValueError(f"cannot update call columns {sorted(unknown)}")
        if not changes:
            return
        assignments = ", ".join(f"{column} = ?" for column in changes)
        values = [_encode(column, value) for column, value in changes.items()]
        with self.lock:
            self._db.execute(f"UPDATE calls SET {assignments} WHERE id = ?", (*values, int(call_id)))
            self._commit()

    def call(self, call_id: str) -> Call | None:
        """The call with this id, or ``None`` (also for a non-numeric id)."""
        if not call_id.isascii() or not call_id.isdigit():
            return None
        with self.lock:
            row = self._db.execute("SELECT * FROM calls WHERE id = ?", (int(call_id),)).fetchone()
        return _call(row) if row is not None else None

    def calls(
        self,
        *,
        status: str | None = None,
        application_id: int | None = None,
        deployment_id: int | None = None,
        statuses: Iterable[str] | None = None,
    ) -> list[Call]:
        """Calls matching every given filter, in id order."""
        clauses: list[str] = []
        params: list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if statuses is not None:
            wanted = list(statuses)
            clauses.append(f"status IN ({', '.join('?' * len(wanted)) or 'NULL'})")
            params.extend(wanted)
        if application_id is not None:
            clauses.append("application_id = ?")
            params.append(application_id)
        if deployment_id is not None:
            clauses.append("deployment_id = ?")
            params.append(deployment_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.lock:
            rows = self._db.execute(f"SELECT * FROM calls{where} ORDER BY id", params).fetchall()
        return [_call(r) for r in rows]

    def due_calls(self, now: float) -> list[Call]:
        """Unfinished calls whose next transition, or closing window, is at or before ``now``."""
        with self.lock:
            rows = self._db.execute(
                f"SELECT * FROM calls WHERE status IN {_ACTIVE} AND (next_at <= ? OR"
                " (status != 'connected' AND end_timestamp IS NOT NULL AND end_timestamp <= ?)) ORDER BY id",
                (now, now),
            ).fetchall()
        return [_call(r) for r in rows]

    def next_due(self) -> float | None:
        """The earliest sandbox time at which some unfinished call changes, or ``None``."""
        with self.lock:
            row = self._db.execute(
                "SELECT MIN(CASE WHEN status != 'connected' AND end_timestamp IS NOT NULL"
                f" AND end_timestamp < next_at THEN end_timestamp ELSE next_at END) FROM calls"
                f" WHERE status IN {_ACTIVE}"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    # -- request log -------------------------------------------------------------------------

    def add_request(self, method: str, path: str) -> int:
        """Log a request on arrival; return its row id for :meth:`finish_request`."""
        with self.lock:
            cursor = self._db.execute(
                "INSERT INTO requests (method, path, received_at) VALUES (?, ?, ?)",
                (method, path, time.time()),
            )
            self._commit()
            return int(cursor.lastrowid or 0)

    def finish_request(self, request_id: int, status_code: int | None, fault: str | None) -> None:
        """Record how a logged request was answered."""
        with self.lock:
            self._db.execute(
                "UPDATE requests SET status_code = ?, fault = ? WHERE id = ?",
                (status_code, fault, request_id),
            )
            self._commit()

    def requests(self) -> list[RequestRecord]:
        """Every logged ``/api`` request, oldest first."""
        with self.lock:
            rows = self._db.execute("SELECT * FROM requests ORDER BY id").fetchall()
        return [
            RequestRecord(
                method=r["method"],
                path=r["path"],
                status_code=r["status_code"],
                fault=r["fault"],
                received_at=r["received_at"],
            )
            for r in rows
        ]

    # -- misc --------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A value saved with :meth:`set_meta`, or ``None``."""
        with self.lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Save a small string that must survive a restart (e.g. the sandbox clock)."""
        with self.lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            self._commit()

    def reset(self) -> None:
        """Forget every upload, call and request (ids restart at 1)."""
        with self.lock:
            self._db.executescript(
                "DELETE FROM uploads; DELETE FROM calls; DELETE FROM requests;"
                " DELETE FROM sqlite_sequence WHERE name IN ('uploads', 'calls', 'requests');"
            )
            self._commit()


def _encode(column: str, value: Any) -> Any:
    if column == "variables":
        return json.dumps(value or {})
    if column == "events":
        return json.dumps([[e.event, e.timestamp] for e in value or ()])
    if column == "is_pci":
        return int(bool(value))
    return value


def _call(row: sqlite3.Row) -> Call:
    return Call(
        call_id=str(row["id"]),
        application_id=row["application_id"],
        deployment_id=row["deployment_id"],
        upload_id=row["upload_id"],
        destination=row["destination"],
        phone_number=row["phone_number"],
        variables=json.loads(row["variables"]),
        queued_timestamp=row["queued_timestamp"],
        start_timestamp=row["start_timestamp"],
        end_timestamp=row["end_timestamp"],
        max_attempts=row["max_attempts"],
        reattempt_wait=row["reattempt_wait"],
        result_url=row["result_url"],
        is_pci=bool(row["is_pci"]),
        status=row["status"],
        attempts=row["attempts"],
        events=tuple(SandboxCallEvent(event, int(ts)) for event, ts in json.loads(row["events"])),
        duration=row["duration"],
        next_at=row["next_at"],
        result_delivery=row["result_delivery"],
        result_status_code=row["result_status_code"],
        result_detail=row["result_detail"],
    )
