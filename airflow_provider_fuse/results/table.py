"""The table of call outcomes: where the results receiver stores each callback, and what reads them.

A SQL database behind an Airflow ``DbApiHook`` connection, the one ``[fuse] results_conn_id`` names,
in the table ``[fuse] results_table``, created when missing. The SQL is the portable subset
(``CREATE TABLE IF NOT EXISTS``, ``CREATE INDEX IF NOT EXISTS``, ``BIGINT``, ``TEXT``, ``DOUBLE
PRECISION``, the connection's own placeholder), tested on SQLite and Postgres. (Not MySQL: it has no
``CREATE INDEX IF NOT EXISTS``, and indexes no ``TEXT`` column without a prefix length.)

What makes two deliveries the same call's outcome: Fuse's ``call_details`` carries no call id, so
the identity of an outcome is the upload part it belongs to (dag id, run id, task id, map index,
part), the destination (canonical: ``6175551234`` and ``16175551234`` are one number) and every field
of ``call_details`` (status, attempts, max_attempts, reattempt_wait, the three timestamps, duration,
events). Its SHA-256 is the table's primary key, ``delivery_key``: a repeated delivery is refused by
the database itself and stored once. One list that dials the same number twice gets two rows when the
two calls' outcomes differ in any field (they were queued at different times, so they nearly always
do); two calls with identical outcomes cannot be told apart and are stored once — the limit of a
format without a call id.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook
from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_fuse.exceptions import redact
from airflow_provider_fuse.preflight import destination_number
from airflow_provider_fuse.results.config import check_table_name

if TYPE_CHECKING:
    from collections.abc import Collection

    from airflow_provider_fuse.calls import CallDetails
    from airflow_provider_fuse.results.tokens import UploadPart

__all__ = [
    "COLUMNS",
    "ResultsStoreError",
    "ResultsTable",
    "Stored",
    "canonical_destination",
    "delivery_key",
]

#: The table's columns, in order (see :class:`ResultsTable`).
COLUMNS = (
    "delivery_key",
    "dag_id",
    "run_id",
    "task_id",
    "map_index",
    "campaign_id",
    "part",
    "destination",
    "destination_number",
    "status",
    "attempts",
    "max_attempts",
    "reattempt_wait",
    "queued_timestamp",
    "start_timestamp",
    "end_timestamp",
    "duration",
    "events",
    "received_timestamp",
)
#: The statuses :meth:`ResultsTable.summary` counts by name; any other is counted as ``other``.
SUMMARY_STATUSES = ("completed", "failed", "canceled", "rejected")
#: Milliseconds a SQLite writer waits for another (another thread, another api-server worker)
#: before giving up; the per-connection ``PRAGMA busy_timeout``, not a setting of the database.
SQLITE_BUSY_TIMEOUT_MS = 15_000
#: Seconds after which a part's row count is taken again in SQL rather than carried forward in
#: memory (other processes store for the same part: between counts their rows are not seen).
RECOUNT_SECONDS = 10.0
#: Parts whose counts one table object keeps (their runs' callbacks have mostly ended long since).
_MAX_COUNTED_PARTS = 10_000

_SCHEMA = """CREATE TABLE IF NOT EXISTS {table} (
    delivery_key VARCHAR(64) NOT NULL PRIMARY KEY,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    map_index INTEGER NOT NULL,
    campaign_id TEXT NOT NULL,
    part INTEGER NOT NULL,
    destination TEXT,
    destination_number TEXT,
    status TEXT NOT NULL,
    attempts BIGINT,
    max_attempts BIGINT,
    reattempt_wait BIGINT,
    queued_timestamp BIGINT,
    start_timestamp BIGINT,
    end_timestamp BIGINT,
    duration BIGINT,
    events TEXT NOT NULL,
    received_timestamp DOUBLE PRECISION NOT NULL
)"""
_INDEX_SUFFIX = "_upload_part"
#: Campaign ids one read names at most (SQLite allowed 999 placeholders before 3.32).
_CAMPAIGNS_PER_QUERY = 500


class Stored(str, enum.Enum):
    """What :meth:`ResultsTable.store` did with one outcome."""

    #: Stored now.
    STORED = "stored"
    #: Already stored: a repeated delivery of the same outcome (see the module's docstring).
    DUPLICATE = "duplicate"
    #: Not stored: the part already has ``rows`` outcomes, as many as it sent calls.
    FULL = "full"

    def __str__(self) -> str:
        return self.value


class ResultsStoreError(Exception):
    """The outcome could not be stored or read (no connection, not a SQL database, a database error).

    The message names the connection and the kind of failure; it never holds a phone number or
    any value of an outcome. ``retryable`` is ``False`` when trying again cannot help: the connection
    is not defined, or it is not a SQL database. ``final`` is ``True`` when this outcome can never be
    stored, however often it is sent (the database refuses its values: a NUL or a lone surrogate in
    a text field); the receiver answers such a callback 400, not 503. ``final`` implies not
    ``retryable``.
    """

    def __init__(self, message: str, *, retryable: bool = True, final: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable and not final
        self.final = final


def canonical_destination(value: str | None) -> str | None:
    """A destination as ``+`` and its E.164 digits (``6175551234`` → ``+16175551234``), or ``None``.

    The same grammar as the contact list's ``destination`` column (:data:`~airflow_provider_fuse.
    preflight.DESTINATION_FORMAT`; options such as ``;ani=`` are dropped): the join key between an
    outcome and its contact row. ``None`` for anything that is not a destination in Fuse's formats.
    """
    if not isinstance(value, str):
        return None
    try:
        return f"+{destination_number(value.strip())}"
    except ValueError:
        return None


def delivery_key(part: UploadPart, details: CallDetails) -> str:
    """The hex SHA-256 that names one outcome: equal for two deliveries exactly when their upload
    part (dag id, run id, task id, map index, campaign, part), canonical destination and every
    ``call_details`` field are equal. (``rows`` and ``expires`` of the part, and when it was received, are not part of
    it.)"""
    destination = canonical_destination(details.phone_number) or details.phone_number
    identity = [
        part.dag_id,
        part.run_id,
        part.task_id,
        part.map_index,
        part.campaign,
        part.part,
        destination,
        *_reported(details),
        [[event.event, event.timestamp] for event in details.events],
    ]
    text = json.dumps(identity, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class ResultsTable:
    """Call outcomes in a SQL table, through an Airflow ``DbApiHook`` connection.

    One row per outcome (``NULL`` where Fuse sent no value):

    ============================ ====================================================================
    ``delivery_key``             primary key: the outcome's identity (:func:`delivery_key`), hex
    ``dag_id``, ``run_id``,      the task instance that queued the call
    ``task_id``, ``map_index``
    ``part``                     which part of that task's list (0 when sent whole)
    ``destination``              the phone number as Fuse sent it back, without its quotes
    ``destination_number``       ``+`` and its E.164 digits (:func:`canonical_destination`): the join
                                 key to the contact list; ``NULL`` when it is not a destination
    ``status``                   completed, failed, canceled, rejected (or whatever Fuse sent), lower
                                 case
    ``attempts``,                as in ``call_details``
    ``max_attempts``,
    ``reattempt_wait``
    ``queued_timestamp``,        unix seconds, as in ``call_details``
    ``start_timestamp``,
    ``end_timestamp``
    ``duration``                 seconds (completed calls)
    ``events``                   JSON text: ``[{"event": "queued", "timestamp": 1430769441}, ...]``
    ``received_timestamp``       unix seconds (fractional) the receiver got the callback
    ============================ ====================================================================

    ``destination`` and ``destination_number`` are personal data: they are stored here and nowhere
    else (no log line, exception or XCom holds them). An index on (dag_id, run_id, task_id,
    map_index, part) serves the per-part bound, :meth:`summary` and :meth:`rows`.

    Thread-safe: each thread uses its own database connection, opened on first use and reused. On
    SQLite, which has one writer at a time, the threads of one process take turns on a lock (fair,
    where SQLite's own busy handler polls and can starve a waiting writer for seconds), and each
    connection sets ``PRAGMA busy_timeout`` (:data:`SQLITE_BUSY_TIMEOUT_MS`), so that other processes
    (api-server workers, a reading task) are waited for instead of failing the store. In the default
    rollback journal every commit syncs the journal and the file, and a busy disk makes that slow;
    WAL syncs once per commit and lets readers run beside the writer. :meth:`ensure` switches a SQLite
    database that holds no table yet (a new results database) to WAL, which persists in the file; a
    database that already holds tables keeps the journal mode its owner chose.

    The bound of a part (:attr:`Stored.FULL`) needs the part's row count, and an indexed count costs
    in proportion to the part (on SQLite about a millisecond per 10,000 rows it holds: 6 ms a store
    late in a 100,000-row part). So the table counts a part in SQL when this process first stores for
    it, after storing a quarter of the room the last count left, every :data:`RECOUNT_SECONDS`, and at
    every store once fewer than four places are left; in between it adds its own stores to the last
    count. A part is refused only on a count made in SQL. One process never overfills a part, and up
    to four storing at once cannot either (each stores at most a quarter of the room between counts);
    more can, by at most what they store before their next count. A 100,000-row part is counted
    about forty times, not 100,000.

    :param conn_id: the Airflow connection; its hook must be a ``DbApiHook``.
    :param table: ``name`` or ``schema.name`` (letters, digits, underscores).
    :raises ResultsConfigError: ``table`` is not such a name.
    """

    def __init__(self, conn_id: str, table: str) -> None:
        self.conn_id = conn_id
        self.table = check_table_name(table)
        # Per part: (the rows it held when last counted in SQL, this process's stores since, when).
        # See the class docstring.
        self._counts: dict[tuple[str, str, str, str, int, int], tuple[int, int, float]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._generation = 0
        self._connections: list[Any] = []
        self._hook: DbApiHook | None = None
        self._placeholder = "?"
        self._ensured = False
        self._secrets: tuple[str, ...] = ()

    # --- Connections ---------------------------------------------------------------------------------

    def _connection(self) -> Any:
        """This thread's DB-API connection, opened on first use."""
        local = self._local
        if getattr(local, "generation", None) == self._generation and local.connection is not None:
            return local.connection
        with self._lock:
            hook = self._get_hook()
            try:
                connection = hook.get_conn()
                if isinstance(connection, sqlite3.Connection):
                    connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            except Exception as error:
                raise self._error("cannot connect", error, detail=True) from None
            self._connections.append(connection)
            local.connection = connection
            local.generation = self._generation
        return connection

    def _get_hook(self) -> DbApiHook:
        if self._hook is not None:
            return self._hook
        try:
            connection = BaseHook.get_connection(self.conn_id)
            self._secrets = tuple(secret for secret in (connection.password,) if secret)
            hook = connection.get_hook()  # type: ignore[no-untyped-call]
        except Exception as error:
            failure = self._error("cannot read the connection", error, detail=True)
            # A connection that is not defined stays undefined however often it is asked for.
            failure.retryable = type(error).__name__ != "AirflowNotFoundException"
            raise failure from None
        if not isinstance(hook, DbApiHook):
            raise ResultsStoreError(
                f"the results connection {self.conn_id!r} is not a SQL database: its hook is "
                f"{type(hook).__name__}, not a DbApiHook (use a Postgres or SQLite connection)",
                retryable=False,
            )
        try:
            self._placeholder = hook.placeholder
        except Exception as error:
            raise self._error("cannot read the connection", error, detail=True) from None
        self._hook = hook
        return hook

    def _discard(self) -> None:
        """Forget this thread's connection after a database error: the next use opens a new one."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)
            with contextlib.suppress(Exception):  # already failed: closing is best effort
                connection.close()

    def _error(self, what: str, error: BaseException, *, detail: bool = False) -> ResultsStoreError:
        # Only errors raised before any outcome is in flight (reading the connection, connecting,
        # creating the table) carry their message, scrubbed of numbers and the connection's password.
        # A failed INSERT's message may quote the values: only its kind is told.
        message = f"results connection {self.conn_id!r}: {what} ({type(error).__name__}"
        if detail:
            text = redact(str(error), 200, secrets=self._secrets)
            message += f": {text}" if text else ""
        return ResultsStoreError(message + ")")

    def close(self) -> None:
        """Close every connection this table opened (a thread's next use opens a new one)."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._generation += 1
        for connection in connections:
            # SQLite refuses to close another thread's connection: dropping the last reference does.
            with contextlib.suppress(Exception):
                connection.close()
        self._local.connection = None

    # --- Writing -------------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the table and its index when missing (idempotent; done once per instance).

        :raises ResultsStoreError: no such connection, not a SQL database, or the DDL failed.
        """
        if self._ensured:
            return
        connection = self._connection()
        schema, _, name = self.table.rpartition(".")
        index = f"{name[: 63 - len(_INDEX_SUFFIX)]}{_INDEX_SUFFIX}"
        if isinstance(connection, sqlite3.Connection) and schema:
            # SQLite qualifies the index's name with the schema (an attached database), not the table.
            index_sql = f"CREATE INDEX IF NOT EXISTS {schema}.{index} ON {name}"
        else:
            index_sql = f"CREATE INDEX IF NOT EXISTS {index} ON {self.table}"
        index_sql += " (dag_id, run_id, task_id, map_index, part)"
        if isinstance(connection, sqlite3.Connection) and not schema:
            _wal_if_new(connection)
        for attempt in (1, 2):
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(_SCHEMA.format(table=self.table))
                    cursor.execute(index_sql)
                finally:
                    cursor.close()
                connection.commit()
                break
            except Exception as error:
                _rollback(connection)
                # Two processes creating the table at once: Postgres refuses one of them (its
                # catalog's unique index) even with IF NOT EXISTS. The second try finds it there.
                if attempt == 2:
                    self._discard()
                    raise self._error(f"cannot create the table {self.table}", error, detail=True) from None
        self._ensured = True

    def store(self, part: UploadPart, details: CallDetails, *, received: float) -> Stored:
        """Store one outcome of ``part`` (committed before this returns).

        One ``INSERT`` (the primary key refuses a repeated delivery, which a look-up of the key then
        confirms), one indexed count of the part's rows, one commit. The bound is checked inside the
        insert's transaction: on SQLite, whose writers take turns, a part never holds more than
        ``rows`` outcomes; on a database with concurrent writers (Postgres), outcomes arriving at the
        same instant for a part's last place may each be stored — the bound guards against a leaked
        token, it is not a count.

        :param received: unix seconds the callback was received.
        :return: :attr:`Stored.STORED`, :attr:`Stored.DUPLICATE` (already there: nothing changed) or
            :attr:`Stored.FULL` (the part already has ``part.rows`` outcomes: nothing stored).
        :raises ResultsStoreError: the database could not be reached or refused the write.
        """
        self.ensure()
        destination = details.phone_number
        values = (
            delivery_key(part, details),
            part.dag_id,
            part.run_id,
            part.task_id,
            part.map_index,
            part.campaign,
            part.part,
            destination,
            canonical_destination(destination),
            *_reported(details),
            json.dumps([{"event": event.event, "timestamp": event.timestamp} for event in details.events]),
            float(received),
        )
        connection = self._connection()
        p = self._placeholder
        insert = f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES ({', '.join([p] * len(COLUMNS))})"
        count = (
            f"SELECT COUNT(*) FROM {self.table} "
            f"WHERE dag_id = {p} AND run_id = {p} AND task_id = {p} AND campaign_id = {p} "
            f"AND map_index = {p} AND part = {p}"
        )
        # SQLite has one writer at a time anyway; taking turns on a lock here, rather than in
        # SQLite's busy handler (which polls, and lets a waiting thread starve for seconds), keeps
        # every store's wait short and fair. Other databases write concurrently.
        turn = self._write_lock if isinstance(connection, sqlite3.Connection) else contextlib.nullcontext()
        try:
            with turn:
                return self._insert(connection, insert, values, count, part)
        except Exception as error:
            _rollback(connection)
            self._discard()
            raise self._error("cannot store an outcome", error) from None

    def _insert(
        self, connection: Any, insert: str, values: tuple[Any, ...], count: str, part: UploadPart
    ) -> Stored:
        cursor = connection.cursor()
        try:
            try:
                cursor.execute(insert, values)
            except Exception as error:
                if not _is_integrity_error(connection, error):
                    raise
                _rollback(connection)
                # The primary key, almost surely; a constraint or trigger of the user's raises the
                # same error, and must not pass for a duplicate (the outcome would be lost).
                p = self._placeholder
                cursor.execute(f"SELECT 1 FROM {self.table} WHERE delivery_key = {p}", values[:1])
                found = cursor.fetchone()
                _rollback(connection)
                if found is None:
                    raise
                return Stored.DUPLICATE
            where = (part.dag_id, part.run_id, part.task_id, part.campaign, part.map_index, part.part)
            now = time.monotonic()
            with self._lock:
                base, since, counted = self._counts.get(where, (-1, 0, 0.0))
            room = part.rows - base
            if base < 0 or since + 1 >= max(1, room // 4) or now - counted > RECOUNT_SECONDS:
                cursor.execute(count, where)
                (stored,) = cursor.fetchone()
                base, since, counted = int(stored), 0, now  # this insert included
                stored = base
            else:
                since += 1
                stored = base + since  # this insert included; other processes' rows unseen
        finally:
            cursor.close()
        if stored > part.rows:
            _rollback(connection)
            with self._lock:
                self._remember(where, (base - 1, 0, counted))
            return Stored.FULL
        connection.commit()
        with self._lock:
            self._remember(where, (base, since, counted))
        return Stored.STORED

    def _remember(self, where: tuple[str, str, str, str, int, int], count: tuple[int, int, float]) -> None:
        """Keep a part's count (under ``self._lock``); the parts of long-finished runs are forgotten."""
        if len(self._counts) >= _MAX_COUNTED_PARTS and where not in self._counts:
            self._counts.clear()
        self._counts[where] = count

    # --- Reading -------------------------------------------------------------------------------------

    def summary(self, dag_id: str, run_id: str, task_id: str, campaigns: Collection[str]) -> dict[str, int]:
        """The outcomes stored for one task of one run, in the given campaigns, counted.

        :param campaigns: the campaign ids to count (one per map index of the task, from its
            ``fuse_results`` XComs); rows of any other campaign — a deleted run's, under the same run
            id — are not counted. None: all zeros, nothing read.
        :return: ``{"completed", "failed", "canceled", "rejected", "other", "received"}`` — ``other``
            is any status but those four, ``received`` all of them (so ``received`` is the sum of the
            other five). No personal data.
        :raises ResultsStoreError: the database could not be read.
        """
        counts = dict.fromkeys((*SUMMARY_STATUSES, "other", "received"), 0)
        for chosen in _chunks(campaigns):
            p = self._placeholder
            query = (
                f"SELECT status, COUNT(*) FROM {self.table} "
                f"WHERE dag_id = {p} AND run_id = {p} AND task_id = {p} "
                f"AND campaign_id IN ({', '.join([p] * len(chosen))}) GROUP BY status"
            )
            for status, number in self._read(query, (dag_id, run_id, task_id, *chosen)):
                key = status if status in SUMMARY_STATUSES else "other"
                counts[key] += int(number)
                counts["received"] += int(number)
        return counts

    def rows(
        self, dag_id: str, run_id: str, task_id: str, campaigns: Collection[str]
    ) -> list[dict[str, Any]]:
        """Every outcome stored for one task of one run in the given campaigns, for a downstream task
        (the warehouse, the CRM, tomorrow's retry list).

        :param campaigns: the campaign ids to read (as for :meth:`summary`); rows of any other
            campaign are not returned. None: an empty list, nothing read.
        :return: one dict per row, keyed by :data:`COLUMNS` (``events`` decoded into a list of
            ``{"event", "timestamp"}``), ordered by map index, part and time received. Holds phone
            numbers: never log it or push it to XCom.
        :raises ResultsStoreError: the database could not be read.
        """
        rows = []
        for chosen in _chunks(campaigns):
            p = self._placeholder
            query = (
                f"SELECT {', '.join(COLUMNS)} FROM {self.table} "
                f"WHERE dag_id = {p} AND run_id = {p} AND task_id = {p} "
                f"AND campaign_id IN ({', '.join([p] * len(chosen))})"
            )
            for values in self._read(query, (dag_id, run_id, task_id, *chosen)):
                row = dict(zip(COLUMNS, values, strict=True))
                try:
                    row["events"] = json.loads(row["events"]) if row["events"] else []
                except ValueError:
                    row["events"] = []
                rows.append(row)
        rows.sort(
            key=lambda row: (row["map_index"], row["part"], row["received_timestamp"], row["delivery_key"])
        )
        return rows

    def _read(self, query: str, parameters: tuple[Any, ...]) -> list[Any]:
        self.ensure()
        connection = self._connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(query, parameters)
                result = list(cursor.fetchall())
            finally:
                cursor.close()
            # End the read's transaction (Postgres opens one): no "idle in transaction" between polls.
            _rollback(connection)
        except Exception as error:
            _rollback(connection)
            self._discard()
            raise self._error("cannot read outcomes", error) from None
        return result


def _chunks(campaigns: Collection[str]) -> list[tuple[str, ...]]:
    """The distinct campaign ids, sorted, in groups small enough for one query's placeholders."""
    if isinstance(campaigns, str):
        raise TypeError("campaigns is a collection of campaign ids, not one string")
    distinct = sorted(set(campaigns))
    return [
        tuple(distinct[start : start + _CAMPAIGNS_PER_QUERY])
        for start in range(0, len(distinct), _CAMPAIGNS_PER_QUERY)
    ]


def _reported(details: CallDetails) -> tuple[Any, ...]:
    """The scalar fields of ``call_details``, in the table's column order (status to duration): what
    a row stores and what a delivery's identity covers, besides the ids, destination and events."""
    return (
        details.status.value,
        details.attempts,
        details.max_attempts,
        details.reattempt_wait,
        details.queued_timestamp,
        details.start_timestamp,
        details.end_timestamp,
        details.duration,
    )


def _wal_if_new(connection: sqlite3.Connection) -> None:
    """Switch a SQLite database that holds no table yet — a results database this table is about to
    start — to WAL: one sync per commit instead of the rollback journal's several (measured through
    the api-server: 488 callbacks/s with the default journal, 662/s in WAL). A database that already
    holds tables is left in the mode its owner chose. The mode is kept in the file."""
    try:
        (tables,) = connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        if tables == 0:
            connection.execute("PRAGMA journal_mode=WAL").fetchone()
    except sqlite3.Error:
        pass  # the mode is a matter of speed: a database that refuses it still works


def _rollback(connection: Any) -> None:
    with contextlib.suppress(Exception):  # a broken connection: the caller discards it
        connection.rollback()


def _is_integrity_error(connection: Any, error: BaseException) -> bool:
    """Whether ``error`` is the driver's IntegrityError (DB-API: ``connection.IntegrityError``, where
    the driver exposes it; else any class of that name in its hierarchy, as psycopg 3's)."""
    integrity = getattr(connection, "IntegrityError", None)
    if isinstance(integrity, type) and isinstance(error, integrity):
        return True
    return any(cls.__name__ == "IntegrityError" for cls in type(error).__mro__)
