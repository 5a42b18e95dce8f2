"""The table of call outcomes: where the results receiver stores each callback, and what reads them.

A SQL database behind an Airflow ``DbApiHook`` connection, the one ``[fuse] results_conn_id`` names, in
the table ``[fuse] results_table``, created by its writers where it is missing and the connection may
(:meth:`ResultsTable.ddl` is the statement, for a DBA); a read creates nothing. The SQL is the portable
subset (``CREATE TABLE IF NOT EXISTS`` with a unique constraint, ``BIGINT``, ``TEXT``, ``DOUBLE
PRECISION``, the connection's own placeholder), tested on SQLite and Postgres. (Not MySQL: it indexes no
``TEXT`` column without a prefix length.)

What makes two deliveries the same call's outcome: Fuse's ``call_details`` carries no call id, so
the identity of an outcome is the upload part it belongs to (dag id, run id, task id, map index,
campaign, part), the destination (canonical: ``6175551234`` and ``16175551234`` are one number) and
every field of ``call_details`` (status, attempts, max_attempts, reattempt_wait, the three
timestamps, duration, events). Its SHA-256 is the table's primary key, ``delivery_key``: a repeated
delivery is refused by the database itself and stored once. One list that dials the same number
twice gets two rows when the two calls' outcomes differ in any field (they were queued at different
times, so they nearly always do); two calls with identical outcomes cannot be told apart and are
stored once — the limit of a format without a call id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import importlib
import itertools
import json
import os
import socket
import sqlite3
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook
from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_fuse.destinations import destination_number
from airflow_provider_fuse.masking import redact
from airflow_provider_fuse.results.callbacks import CALL_DETAILS_NUMBERS
from airflow_provider_fuse.results.campaign import NAMED_STATUSES, counted_as
from airflow_provider_fuse.results.config import check_table_name

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from airflow_provider_fuse.calls import CallDetails
    from airflow_provider_fuse.results.tokens import UploadPart

_T = TypeVar("_T")
SUMMARY_STATUSES = NAMED_STATUSES  # the statuses a summary counts by name, by its former name here

__all__ = [
    "COLUMNS",
    "CONNECT_TIMEOUT_SECONDS",
    "DATABASE_WAIT_SECONDS",
    "PART_COLUMNS",
    "SLOT_TRIES",
    "SQLITE_BUSY_TIMEOUT_MS",
    "WATCHDOG_GRACE_SECONDS",
    "PartCount",
    "ResultsStoreError",
    "ResultsTable",
    "ResultsTableMissing",
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
    "slot",
    "destination",
    "destination_number",
    "status",
    *CALL_DETAILS_NUMBERS,
    "events",
    "received_timestamp",
)
#: The columns that name one upload part: its outcomes hold the slots 1 to ``rows`` of it.
PART_COLUMNS = ("dag_id", "run_id", "task_id", "campaign_id", "map_index", "part")
#: Seconds any one wait on the results database may last: for a lock (a SQLite writer of another
#: process, this process's own SQLite writers, a Postgres row, table or advisory lock) or for a
#: statement (Postgres ``statement_timeout``). Below the receiver's answer bound (about 10 s), so a
#: locked database fails a store with a retryable :class:`ResultsStoreError` (answered 503) in time.
DATABASE_WAIT_SECONDS = 5.0
#: Seconds a new Postgres connection may take (libpq's ``connect_timeout``, unless the connection's
#: extra sets its own).
CONNECT_TIMEOUT_SECONDS = 3
#: The per-connection SQLite ``PRAGMA busy_timeout``, in milliseconds: how long a SQLite writer waits
#: for another (another api-server worker, a reading task) before giving up.
SQLITE_BUSY_TIMEOUT_MS = int(DATABASE_WAIT_SECONDS * 1000)
#: How often one store tries again when another writer took the slot it read as free (writers that
#: take the part's lock never collide; this covers those that do not).
SLOT_TRIES = 8

_SCHEMA = """CREATE TABLE IF NOT EXISTS {table} (
    delivery_key VARCHAR(64) NOT NULL PRIMARY KEY,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    map_index INTEGER NOT NULL,
    campaign_id TEXT NOT NULL,
    part INTEGER NOT NULL,
    slot INTEGER NOT NULL,
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
    received_timestamp DOUBLE PRECISION NOT NULL,
    CONSTRAINT {constraint} UNIQUE (dag_id, run_id, task_id, campaign_id, map_index, part, slot)
)"""
_CONSTRAINT_SUFFIX = "_part_slot"
#: The index that lets a campaign's counts (:meth:`ResultsTable.part_counts`, :meth:`ResultsTable.
#: arrivals`) read the index alone, not each row: created with the table by a writer that creates it;
#: for a table that exists, by its owner (docs/results.md). A table without it is read all the same.
_COUNTS_INDEX = "CREATE INDEX IF NOT EXISTS {index} ON {table} ({columns})"
_COUNTS_INDEX_SUFFIX = "_counts"
_COUNTS_INDEX_COLUMNS = (*PART_COLUMNS, "status", "received_timestamp")
#: Seconds beyond :data:`DATABASE_WAIT_SECONDS` after which a Postgres connection whose statement
#: has not returned is closed from this side: a server that does not run (frozen, its host gone) never
#: applies its own timeouts. The store or read fails, retryable, and a new connection is opened.
WATCHDOG_GRACE_SECONDS = 2.0
#: Seconds between the interrupts of a SQLite read that overran its bound, until it ends.
_INTERRUPT_AGAIN = 0.05
#: A wait for a part's lock shorter than this (seconds) leaves the store's own bounds as they are.
_UNBOUNDED_WAIT_SECONDS = 0.05
#: Campaign ids one read names at most (SQLite allowed 999 placeholders before 3.32).
_CAMPAIGNS_PER_QUERY = 500
#: Result rows fetched from the driver at a time by a read.
_FETCH_ROWS = 1000
#: The package that brings each tested connection type's hook (Airflow itself brings neither).
_PROVIDER_PACKAGES = {
    "sqlite": ("apache-airflow-providers-sqlite", "airflow.providers.sqlite.hooks.sqlite"),
    "postgres": ("apache-airflow-providers-postgres", "airflow.providers.postgres.hooks.postgres"),
}
#: Postgres SQLSTATEs: a table or column that is not there; a connection the server ended; a wait
#: that ran out (``lock_timeout``, ``statement_timeout``).
_PG_UNDEFINED = frozenset({"42P01", "42703", "3F000"})
_PG_ENDED = frozenset({"57P01", "57P02", "57P03", "08000", "08003", "08006"})
_PG_TIMED_OUT = frozenset({"55P03", "57014"})


@dataclasses.dataclass(frozen=True)
class PartCount:
    """How many outcomes of one status one part holds (:meth:`ResultsTable.part_counts`), and when
    the first and the last of them was received (unix seconds). No personal data."""

    map_index: int
    part: int
    status: str
    count: int
    first_received: float
    last_received: float

    def plus(self, other: PartCount) -> PartCount:
        """Both counts of the same part and status, added up."""
        return dataclasses.replace(
            self,
            count=self.count + other.count,
            first_received=min(self.first_received, other.first_received),
            last_received=max(self.last_received, other.last_received),
        )


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


class ResultsTableMissing(ResultsStoreError):
    """A read found no results table (or, on SQLite, no database file yet): reads create nothing.

    The message names the connection and the table, and who creates it."""


def _not_defined(conn_id: str, given_as: str = "[fuse] results_conn_id") -> str:
    """What to do when the results connection ``conn_id`` is not defined (names it, no value)."""
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"  # Airflow's name for it
    return (
        f"the results connection {conn_id!r} ({given_as}) is not defined where this process "
        f"looks for it: define it where the api-server, the workers and the triggerer run, e.g. with "
        f"the environment variable {variable}=<database URI> or `airflow connections add {conn_id} "
        "--conn-uri <database URI>` (a standalone fuse-results serve reads environment variables and "
        "secrets backends only)"
    )


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
    ``call_details`` field are equal. (``rows`` and ``expires`` of the part, and when it was
    received, are not part of it.)"""
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
    ``campaign_id``              the campaign (:attr:`UploadPart.campaign`): tells a run id used
                                 again after a delete from the first run of that id
    ``part``                     which part of that task's list (0 when sent whole)
    ``slot``                     the outcome's place in its part, 1 to the part's ``rows``
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
    else (no log line, exception or XCom holds them). A unique constraint on (dag_id, run_id,
    task_id, campaign_id, map_index, part, slot) is the per-part bound and the index that serves
    :meth:`summary` and :meth:`rows`. :meth:`ddl` is the table's DDL, for a DBA.

    **The per-part bound is the database's own.** A part may hold ``rows`` outcomes, in the slots 1
    to ``rows``; the unique constraint lets no two outcomes share a slot, so the table can never hold
    more, whatever number of processes (api-server workers, standalone receivers) store at once. A
    store takes the part's next slot, one more than its highest (an indexed read of one entry, not a
    count), inside the transaction of its ``INSERT``; the writers of one part take turns on a lock so
    that they do not read the same slot: on SQLite the database's write lock (``BEGIN IMMEDIATE``),
    on Postgres ``pg_advisory_xact_lock`` on a 64-bit hash of the part (no privilege needed; other
    parts are not held up). A writer that takes the slot anyway (a database with neither) finds it
    taken by the constraint and reads again, :data:`SLOT_TRIES` times at most.

    **Every wait is bounded** (:data:`DATABASE_WAIT_SECONDS`): on Postgres by the session's
    ``statement_timeout`` and ``lock_timeout`` and libpq's ``connect_timeout``
    (:data:`CONNECT_TIMEOUT_SECONDS`), given as connection options; on SQLite by ``PRAGMA
    busy_timeout`` and a timeout on the lock this process's threads take turns on (fair, where
    SQLite's own busy handler polls and can starve a waiting writer for seconds). A server that does
    not run applies none of its timeouts: a Postgres statement still running
    :data:`WATCHDOG_GRACE_SECONDS` after the bound has its connection closed from this side. A wait
    that runs out is a retryable :class:`ResultsStoreError`.

    **Least privilege.** The table is created only where it is missing: it is looked for first (a
    ``SELECT`` of its columns that reads no row), so a receiver needs ``SELECT`` and ``INSERT`` on a
    table a DBA created, and a reader ``SELECT``. A missing table that the connection may not create
    is a :class:`ResultsStoreError` that says so. Only writes (:meth:`ensure`, :meth:`ready`,
    :meth:`store`) create the table, or a SQLite file; reads create and alter nothing.

    **Recovery.** The table is looked for again after any failure (dropped, the next store creates it
    again where allowed; a read finds it missing); a connection the server ended (a Postgres restart) is
    replaced and the statement tried once more within the same call; on SQLite a store is not committed
    into a file that is no longer the configured database (moved, deleted or replaced: the path's device
    and inode are compared with the file opened, one ``stat`` a store). A SQLite database is created only
    the first time this object finds none at the path, and never beside a ``-wal`` or ``-shm`` file left
    there without its database (a file moved while in use leaves them, still in use: a new database would
    take them over, and SQLite would reset the WAL that holds the moved file's last commits). After a
    move, a database put at the path is used (the table looked for again); with nothing there, every store
    and read fails retryable, saying the file was moved or deleted, and the moved file's ``-wal`` is
    checkpointed into it through the connection that still has it open (also on :meth:`close`), so the
    moved file holds every outcome answered stored.

    Thread-safe: each thread uses its own database connection, opened on first use and reused. In
    SQLite's default rollback journal every commit syncs the journal and the file, and a busy disk
    makes that slow; WAL syncs once per commit and lets readers run beside the writer. Creating the
    table in a SQLite database that holds no table yet (a new results database) switches it to WAL,
    which persists in the file; a database that already holds tables keeps its journal mode.

    :param conn_id: the Airflow connection; its hook must be a ``DbApiHook``.
    :param table: ``name`` or ``schema.name`` (letters, digits, underscores).
    :param conn_given_as: where ``conn_id`` came from, for the message when it is not defined: the
        option (the default) or the argument that gave it.
    :raises ResultsConfigError: ``table`` is not such a name.
    """

    def __init__(self, conn_id: str, table: str, *, conn_given_as: str = "[fuse] results_conn_id") -> None:
        self.conn_id = conn_id
        self.table = check_table_name(table)
        self._conn_given_as = conn_given_as
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._generation = 0
        self._connections: list[Any] = []
        #: The SQLite file each connection (by ``id``) opened: its path, device and inode.
        self._files: dict[int, tuple[str, int, int]] = {}
        #: A SQLite database was found (or created) once: never created again by this object.
        self._found = False
        self._sqlite_uri: str | None = None
        self._hook: DbApiHook | None = None
        self._kind = ""
        self._placeholder = "?"
        self._ensured = False
        self._secrets: tuple[str, ...] = ()
        # Held while a SQLite file is looked for and, the first time, created (see _open).
        self._creating = threading.Lock()

    @staticmethod
    def ddl(table: str = "fuse_call_results") -> str:
        """The ``CREATE TABLE`` statement of a results table named ``table``, for a DBA who creates it
        (SQLite and Postgres; the table's creator grants the receiver's role ``SELECT, INSERT`` and
        the readers' ``SELECT`` on it, see docs/results.md).

        :raises ResultsConfigError: ``table`` is not a (schema-qualified) name.
        """
        table = check_table_name(table)
        name = table.rpartition(".")[2]
        constraint = f"{name[: 63 - len(_CONSTRAINT_SUFFIX)]}{_CONSTRAINT_SUFFIX}"
        return _SCHEMA.format(table=table, constraint=constraint)

    # --- Connections ---------------------------------------------------------------------------------

    def _connection(self, *, create: bool = True) -> Any:
        """This thread's DB-API connection, opened on first use (``create``: by a write, a SQLite
        database may be created: see :meth:`_open`)."""
        local = self._local
        if getattr(local, "generation", None) == self._generation and local.connection is not None:
            return local.connection
        with self._lock:
            hook = self._get_hook()
            generation = self._generation
        try:
            connection = self._open(hook, create=create)
            local.file = None
            if isinstance(connection, sqlite3.Connection):
                connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                local.file = _file_of(connection)
        except ResultsStoreError:
            raise
        except Exception as error:
            raise self._error("cannot connect", error, detail=True) from None
        with self._lock:
            self._connections.append(connection)
            if local.file is not None:
                self._files[id(connection)] = local.file
        local.connection = connection
        local.generation = generation
        return connection

    def _open(self, hook: DbApiHook, *, create: bool = True) -> Any:
        """A new DB-API connection of ``hook``.

        A SQLite file is opened as :class:`~airflow.providers.sqlite.hooks.sqlite.SqliteHook` opens it, but
        never created by a read (not ``create``: :class:`ResultsTableMissing`), nor by a write except the
        first time this object finds no database at all and no ``-wal`` or ``-shm`` file is at the path: a
        database moved or deleted while in use leaves those behind, still in use by the connections that
        have it open, and a new file beside them would take them over (SQLite resets the WAL: the moved
        file's last commits are gone). Found beside a ``-wal`` or ``-shm``, the database is looked for once
        more before that is refused: another process creating it at the same time makes both. Its
        connections may be closed from any thread (:meth:`close` checkpoints a moved one first)."""
        path = _sqlite_file(self._sqlite_uri)
        if self._sqlite_uri is None or path is None:
            return hook.get_conn()  # not SQLite, in memory, or a URI that chooses its own mode
        try:
            connection = sqlite3.connect(
                _with_mode(self._sqlite_uri, "rw"), uri=True, check_same_thread=False
            )
        except sqlite3.OperationalError:
            # One thread of this object creates the file; the others wait for it and open it.
            with self._creating:
                if os.path.lexists(path):
                    # Made meanwhile (another thread or process created it first), or there and
                    # unreadable: opened once more, and the error says why.
                    return self._opened(
                        sqlite3.connect(_with_mode(self._sqlite_uri, "rw"), uri=True, check_same_thread=False)
                    )
                with self._lock:
                    found = self._found
                if found:
                    raise ResultsStoreError(self._moved_message()) from None
                if os.path.lexists(f"{path}-wal") or os.path.lexists(f"{path}-shm"):
                    try:
                        # Another process may have created the database (and switched it to WAL)
                        # since the path was found empty: then it is there now, and opened.
                        return self._opened(
                            sqlite3.connect(
                                _with_mode(self._sqlite_uri, "rw"), uri=True, check_same_thread=False
                            )
                        )
                    except sqlite3.OperationalError:
                        pass
                    raise ResultsStoreError(
                        f"results connection {self.conn_id!r}: no SQLite database is at the connection's "
                        "path, but a -wal or -shm file is (a database moved or deleted while in use): no "
                        "new database is created beside them; put the database back at the path, or stop "
                        "every process that uses it and move the -wal and -shm files away with it"
                    ) from None
                if not create:
                    if not os.path.isdir(os.path.dirname(path) or "."):
                        raise  # a folder that is not there: the path is wrong ("cannot connect")
                    raise ResultsTableMissing(self._missing_message(no_file=True)) from None
                return self._opened(sqlite3.connect(self._sqlite_uri, uri=True, check_same_thread=False))
        return self._opened(connection)

    def _opened(self, connection: Any) -> Any:
        """``connection``, noting that this object has found its database (see :meth:`_open`)."""
        with self._lock:
            self._found = True
        return connection

    def _missing_message(self, *, no_file: bool = False) -> str:
        where = "no SQLite database is at the connection's path, so " if no_file else ""
        return (
            f"results connection {self.conn_id!r}: {where}the table {self.table} does not exist. "
            "Reads create nothing: the table is created by the results receiver on its first store, "
            "by FuseBulkQueueOperator(collect_results=True) before it sends, and by fuse-results serve; "
            "or by a DBA with ResultsTable.ddl(). Check the connection and the table name"
        )

    def _moved_message(self) -> str:
        return (
            f"results connection {self.conn_id!r}: the SQLite database file was moved or deleted "
            "while in use, and no new one is created in its place (the outcomes stored so far are in "
            "the moved file): put a database back at the connection's path (the moved one, or "
            "another); until then every store fails and may be retried"
        )

    def _keep_moved(self, connection: Any) -> None:
        """Checkpoint the WAL of a SQLite file moved away from the configured path into that file,
        through ``connection``, which still has it open: its last commits are in the ``-wal`` left at
        the path, and SQLite checkpoints no moved file on close (nor deletes anything). Done only
        where nothing is at the path: a file put there since may already use that ``-wal`` as its
        own. Best effort: a checkpoint that cannot finish now is done by the next one."""
        if not isinstance(connection, sqlite3.Connection):
            return
        with self._lock:
            opened = self._files.get(id(connection))
        if opened is None:
            return
        try:
            os.stat(opened[0])  # one stat: where it runs after every commit, nearly always there
        except FileNotFoundError:
            with contextlib.suppress(Exception):
                if connection.in_transaction:
                    connection.rollback()
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except OSError:
            pass

    def _parameter(self) -> str:
        """The connection's placeholder (``?``, ``%s``): its hook read first, where it was not yet."""
        with self._lock:
            self._get_hook()
        return self._placeholder

    def _get_hook(self) -> DbApiHook:
        """The connection's hook, read once (under ``self._lock``)."""
        if self._hook is not None:
            return self._hook
        kind = ""
        try:
            connection = BaseHook.get_connection(self.conn_id)
            kind = str(connection.conn_type or "").lower()
            self._secrets = tuple(secret for secret in (connection.password,) if secret)
            hook = connection.get_hook()  # type: ignore[no-untyped-call]
        except Exception as error:
            missing = _missing_provider(kind)
            if missing:
                raise ResultsStoreError(
                    f"results connection {self.conn_id!r}: its type {kind!r} needs the package "
                    f"{missing}, which is not installed here (Airflow does not include it): install "
                    "it where the api-server, the workers and the triggerer run",
                    retryable=False,
                ) from None
            if type(error).__name__ == "AirflowNotFoundException":
                # A connection that is not defined stays undefined however often it is asked for.
                raise ResultsStoreError(
                    _not_defined(self.conn_id, self._conn_given_as), retryable=False
                ) from None
            raise self._error("cannot read the connection", error, detail=True) from None
        if not isinstance(hook, DbApiHook):
            raise ResultsStoreError(
                f"the results connection {self.conn_id!r} is not a SQL database: its hook is "
                f"{type(hook).__name__}, not a DbApiHook (use a Postgres or SQLite connection)",
                retryable=False,
            )
        try:
            self._placeholder = hook.placeholder
            if kind in ("postgres", "postgresql"):
                _bound_postgres_waits(hook)
            if kind == "sqlite":
                # As SqliteHook.get_conn makes it (its URI, the sqlite scheme as a file: URI).
                self._sqlite_uri = str(hook.get_uri()).replace("sqlite:///", "file:", 1)
        except Exception as error:
            raise self._error("cannot read the connection", error, detail=True) from None
        self._kind = kind
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
                self._files.pop(id(connection), None)
            with contextlib.suppress(Exception):  # already failed: closing is best effort
                connection.close()

    def _error(self, what: str, error: BaseException, *, detail: bool = False) -> ResultsStoreError:
        # Only errors raised before any outcome is in flight (reading the connection, connecting,
        # looking for or creating the table) carry their message, scrubbed of numbers and the
        # connection's password. A failed INSERT's message may quote the values: only its kind is told.
        message = f"results connection {self.conn_id!r}: {what} ({type(error).__name__}"
        if detail:
            text = redact(str(error), 200, secrets=self._secrets)
            message += f": {text}" if text else ""
        message += ")"
        if _timed_out(error):
            message += f": the database was locked or busy for more than {DATABASE_WAIT_SECONDS:g} s"
        return ResultsStoreError(message)

    def close(self) -> None:
        """Close every connection this table opened (a thread's next use opens a new one).

        A SQLite file moved away from the configured path has its WAL checkpointed into it first."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._generation += 1
        for connection in connections:
            self._keep_moved(connection)
            with self._lock:
                self._files.pop(id(connection), None)
            # SQLite refuses to close another thread's connection (where the hook opened it):
            # dropping the last reference does.
            with contextlib.suppress(Exception):
                connection.close()
        self._local.connection = None

    def _with_recovery(self, what: str, work: Callable[[Any], _T], *, create: bool) -> _T:
        """``work(connection)`` after the table is found (or, ``create``: a write, created), on this
        thread's connection.

        A failure forgets the connection and that the table was found. A connection the server ended,
        a table that is gone, or a SQLite file that is no longer the configured one is tried once more
        at once (a new connection; the table looked for, and created where allowed).

        :raises ResultsTableMissing: not ``create``, and the table (or the SQLite file) is not there.
        """
        failure: ResultsStoreError | None = None
        for attempt in (1, 2):
            connection = None
            ticket = None
            try:
                connection = self._connection(create=create)
                ticket = _WATCHDOG.watch(connection, interrupt=not create)
                self._ensure(connection, create)
                result = work(connection)
                if _WATCHDOG.release(ticket):
                    self._discard()  # done just in time, and its connection ended: not reused
                return result
            except ResultsStoreError:
                if _WATCHDOG.release(ticket):
                    self._discard()
                raise
            except Exception as error:
                ended = _WATCHDOG.release(ticket)
                again = attempt == 1 and not ended and _recoverable(connection, error)
                if connection is not None and not ended:
                    _rollback(connection)
                if isinstance(error, _MovedDatabase):
                    self._keep_moved(connection)
                self._discard()
                self._ensured = False
                if ended and isinstance(connection, sqlite3.Connection):
                    failure = ResultsStoreError(
                        f"results connection {self.conn_id!r}: {what}: the read took more than "
                        f"{DATABASE_WAIT_SECONDS:g} s (interrupted)"
                    )
                elif ended:
                    failure = ResultsStoreError(
                        f"results connection {self.conn_id!r}: {what}: the database did not answer "
                        f"within {DATABASE_WAIT_SECONDS + WATCHDOG_GRACE_SECONDS:g} s (the connection "
                        "was closed)"
                    )
                elif _cannot_hold(error):
                    failure = ResultsStoreError(
                        f"results connection {self.conn_id!r}: {what}: the database cannot hold one of "
                        f"its values ({type(error).__name__}); sending it again cannot help",
                        final=True,
                    )
                elif not again:
                    failure = self._error(what, error)
            if failure is not None:
                # Raised outside the except block: the driver's error, which may quote a value, is
                # not even the new one's context.
                raise failure
        raise AssertionError("unreachable")  # pragma: no cover

    # --- The table -----------------------------------------------------------------------------------

    @classmethod
    def ready(cls, conn_id: str, table: str) -> ResultsTable:
        """A results table found, or created where it is missing and the connection may
        (:meth:`ensure`): what the receiver, the bulk operator's check before dialing and
        ``fuse-results serve`` call before they rely on it. Readers do not: a read creates nothing
        (see :meth:`summary` and :meth:`rows` for a missing table).

        :raises ResultsStoreError: as :meth:`ensure`; the connections it opened are closed then.
        :raises ResultsConfigError: ``table`` is not a table name.
        """
        results = cls(conn_id, table)
        try:
            results.ensure()
        except BaseException:
            results.close()
            raise
        return results

    def ensure(self) -> None:
        """Find the table, and create it when it is missing and the connection may: the one place
        the table's DDL runs (also on the first store of this object, and after a failed store;
        never on a read).

        Looked for with a ``SELECT`` of its columns that reads no row: a role with ``SELECT`` on a
        table a DBA created needs nothing more. Checked again after any failure of a store or a read.

        :raises ResultsStoreError: no such connection, not a SQL database, or the table is missing and
            cannot be created, or exists without the results table's columns.
        """
        self._with_recovery("cannot find the table", lambda connection: None, create=True)

    def _ensure(self, connection: Any, create: bool) -> None:
        if self._ensured:
            return
        probe = f"SELECT {', '.join(COLUMNS)} FROM {self.table} WHERE 1 = 0"
        try:
            _execute(connection, probe)
        except Exception as error:
            _rollback(connection)
            if _recoverable(connection, error) and not _undefined(error):
                raise  # a connection the server ended: the caller connects again
            if not _undefined(error):
                raise self._error(f"cannot read the table {self.table}", error, detail=True) from None
        else:
            _rollback(connection)
            self._ensured = True
            return
        if not create:
            raise ResultsTableMissing(self._missing_message())
        schema = self.table.rpartition(".")[0]
        if isinstance(connection, sqlite3.Connection) and not schema:
            _wal_if_new(connection)
        refused: BaseException | None = None
        try:
            _execute(connection, self.ddl(self.table))
            connection.commit()
        except Exception as error:
            # Missing and not ours to create (a role without CREATE), or created at the same instant
            # by another process (Postgres refuses one of two concurrent creators): looked for again.
            _rollback(connection)
            refused = error
        else:
            self._index_new_table(connection)
        try:
            _execute(connection, probe)
        except Exception as error:
            _rollback(connection)
            if refused is not None:
                raise ResultsStoreError(
                    f"results connection {self.conn_id!r}: the table {self.table} is missing and "
                    f"cannot be created with this connection ({type(refused).__name__}: "
                    f"{redact(str(refused), 200, secrets=self._secrets)}); have it created with the "
                    "statement of ResultsTable.ddl() and granted as docs/results.md says"
                ) from None
            raise ResultsStoreError(
                f"results connection {self.conn_id!r}: the table {self.table} exists without the "
                f"results table's columns ({type(error).__name__}: "
                f"{redact(str(error), 200, secrets=self._secrets)}); see ResultsTable.ddl()"
            ) from None
        _rollback(connection)
        self._ensured = True

    def _index_new_table(self, connection: Any) -> None:
        """Give a table this object just created the counts' index (:data:`_COUNTS_INDEX`): empty, it
        is built at once. A table that existed is left as its owner made it: building an index takes
        the table's owner, and holds its writers back while it reads every row."""
        schema, _, name = self.table.rpartition(".")
        index = f"{name[: 63 - len(_COUNTS_INDEX_SUFFIX)]}{_COUNTS_INDEX_SUFFIX}"
        on = self.table
        if isinstance(connection, sqlite3.Connection) and schema:
            index, on = f"{schema}.{index}", name  # SQLite names the schema on the index
        try:
            _execute(
                connection,
                _COUNTS_INDEX.format(index=index, table=on, columns=", ".join(_COUNTS_INDEX_COLUMNS)),
            )
            connection.commit()
        except Exception:
            _rollback(connection)  # a matter of speed: the table is read all the same without it

    # --- Writing -------------------------------------------------------------------------------------

    def store(self, part: UploadPart, details: CallDetails, *, received: float) -> Stored:
        """Store one outcome of ``part`` (committed before this returns).

        In one transaction: the part's lock (see the class docstring), an indexed read of its highest
        slot, one ``INSERT`` into the next slot, the commit. A slot above ``part.rows`` is refused
        (:attr:`Stored.FULL`), so a part never holds more than ``rows`` outcomes, however many
        processes store at once; the primary key refuses a repeated delivery, which a look-up of the
        key then confirms (:attr:`Stored.DUPLICATE`).

        :param received: unix seconds the callback was received.
        :return: :attr:`Stored.STORED`, :attr:`Stored.DUPLICATE` (already there: nothing changed) or
            :attr:`Stored.FULL` (the part already has ``part.rows`` outcomes: nothing stored).
        :raises ResultsStoreError: the database could not be reached, did not answer within
            :data:`DATABASE_WAIT_SECONDS`, or refused the write (``retryable``); or can never hold
            this outcome (``final``: a value the database refuses, such as a NUL on Postgres).
        """
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
        where = (part.dag_id, part.run_id, part.task_id, part.campaign, part.map_index, part.part)

        def work(connection: Any) -> Stored:
            deadline = time.monotonic() + DATABASE_WAIT_SECONDS
            if not isinstance(connection, sqlite3.Connection):
                return self._place(connection, values, where, part.rows, deadline)
            # SQLite has one writer at a time anyway; this process's threads take turns on a lock
            # (fair, and bounded), and wait for other processes in SQLite's busy handler for what is
            # left of the bound.
            if not self._write_lock.acquire(timeout=DATABASE_WAIT_SECONDS):
                raise ResultsStoreError(
                    f"results connection {self.conn_id!r}: cannot store an outcome: this process's "
                    f"other stores held the database for more than {DATABASE_WAIT_SECONDS:g} s"
                )
            try:
                # What is left of the bound, where the turn took a while (a pragma costs a statement).
                left = deadline - time.monotonic()
                shortened = left < DATABASE_WAIT_SECONDS - _UNBOUNDED_WAIT_SECONDS
                if shortened or getattr(self._local, "shortened", False):
                    milliseconds = max(1, int(left * 1000)) if shortened else SQLITE_BUSY_TIMEOUT_MS
                    connection.execute(f"PRAGMA busy_timeout = {milliseconds}")
                    self._local.shortened = shortened
                return self._place(connection, values, where, part.rows, deadline)
            finally:
                self._write_lock.release()

        return self._with_recovery("cannot store an outcome", work, create=True)

    def _place(
        self, connection: Any, values: tuple[Any, ...], where: tuple[Any, ...], rows: int, deadline: float
    ) -> Stored:
        """Insert ``values`` into the next free slot of the part ``where`` (see :meth:`store`), by
        ``deadline`` (``time.monotonic()``)."""
        p = self._placeholder
        in_part = " AND ".join(f"{column} = {p}" for column in PART_COLUMNS)
        highest = f"SELECT slot FROM {self.table} WHERE {in_part} ORDER BY slot DESC LIMIT 1"
        taken = f"SELECT 1 FROM {self.table} WHERE {in_part} AND slot = {p}"
        stored = f"SELECT 1 FROM {self.table} WHERE delivery_key = {p}"
        insert = f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES ({', '.join([p] * len(COLUMNS))})"
        position = COLUMNS.index("slot")
        cursor = connection.cursor()
        try:
            for _ in range(SLOT_TRIES):
                self._take_part(connection, cursor, where, deadline)
                cursor.execute(highest, where)
                top = cursor.fetchone()
                slot = (int(top[0]) if top else 0) + 1
                if slot > rows:
                    cursor.execute(stored, values[:1])
                    repeated = cursor.fetchone() is not None
                    _rollback(connection)
                    return Stored.DUPLICATE if repeated else Stored.FULL
                try:
                    cursor.execute(insert, (*values[:position], slot, *values[position:]))
                except Exception as error:
                    if not _is_integrity_error(connection, error):
                        raise
                    _rollback(connection)
                    # The primary key (a repeated delivery) or the slot (another writer took it);
                    # a constraint or trigger of the user's raises the same error, and must pass
                    # for neither (the outcome would be lost, or tried again for nothing).
                    cursor.execute(stored, values[:1])
                    repeated = cursor.fetchone() is not None
                    cursor.execute(taken, (*where, slot))
                    collided = cursor.fetchone() is not None
                    _rollback(connection)
                    if repeated:
                        return Stored.DUPLICATE
                    if not collided:
                        raise
                    continue
                if isinstance(connection, sqlite3.Connection):
                    _check_file(getattr(self._local, "file", None))
                connection.commit()
                if isinstance(connection, sqlite3.Connection):
                    # Moved between the check and the commit: the commit is in the -wal left at the
                    # path, checkpointed now into the moved file (see _keep_moved).
                    self._keep_moved(connection)
                return Stored.STORED
        finally:
            cursor.close()
        raise ResultsStoreError(
            f"results connection {self.conn_id!r}: cannot store an outcome: its part's next slot was "
            f"taken by another writer {SLOT_TRIES} times"
        )

    def _take_part(self, connection: Any, cursor: Any, where: tuple[Any, ...], deadline: float) -> None:
        """Begin the store's transaction holding the part's lock: no other writer reads its slots.

        On Postgres, a store that waited for the part's lock (behind another store of the part,
        itself waiting on a locked table, say) gives its next statements only what is left of its
        bound (``SET LOCAL``: this transaction only), so that waits in turn never add up."""
        if isinstance(connection, sqlite3.Connection):
            if connection.in_transaction:
                connection.rollback()
            cursor.execute("BEGIN IMMEDIATE")
        elif self._kind in ("postgres", "postgresql"):
            cursor.execute(
                f"SELECT pg_advisory_xact_lock({self._placeholder})", (_lock_key(self.table, where),)
            )
            cursor.fetchone()
            left = deadline - time.monotonic()
            if left < DATABASE_WAIT_SECONDS - _UNBOUNDED_WAIT_SECONDS:
                if left <= 0:
                    _rollback(connection)
                    raise ResultsStoreError(
                        f"results connection {self.conn_id!r}: cannot store an outcome: the database "
                        f"was locked or busy for more than {DATABASE_WAIT_SECONDS:g} s"
                    )
                milliseconds = max(1, int(left * 1000))
                cursor.execute(
                    f"SET LOCAL lock_timeout = {milliseconds}; SET LOCAL statement_timeout = {milliseconds}"
                )

    # --- Reading -------------------------------------------------------------------------------------

    def summary(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Collection[str],
        *,
        table_required: bool = False,
    ) -> dict[str, int]:
        """The outcomes stored for one task of one run, in the given campaigns, counted. Creates
        nothing.

        :param campaigns: the campaign ids to count (one per map index of the task, from its
            ``fuse_results`` XComs); rows of any other campaign — a deleted run's, under the same run
            id — are not counted. Empty: all zeros, nothing read.
        :param table_required: whether a missing table (or SQLite file) is an error; by default it
            counts as nothing stored yet (all zeros), as the results sensor and its trigger read it.
        :return: ``{"completed", "failed", "canceled", "rejected", "other", "received"}`` — ``other``
            is any status but those four, ``received`` all of them (so ``received`` is the sum of the
            other five). No personal data.
        :raises ResultsTableMissing: ``table_required`` and the table is not there.
        :raises ResultsStoreError: the database could not be read.
        :raises TypeError: ``campaigns`` is one string or ``None``, not a collection of ids.
        """
        counts = dict.fromkeys((*NAMED_STATUSES, "other", "received"), 0)
        for status, number in self._read_task(
            "status, COUNT(*)",
            "GROUP BY status",
            dag_id,
            run_id,
            task_id,
            campaigns,
            table_required=table_required,
            convert=tuple,
        ):
            counts[counted_as(str(status))] += int(number)
            counts["received"] += int(number)
        return counts

    def part_counts(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Collection[str],
        *,
        table_required: bool = False,
    ) -> list[PartCount]:
        """The outcomes stored for one task of one run, in the given campaigns, counted in the database
        by map index, part and status (one row each), with when the first and the last of them was
        received. Creates nothing; reads no phone number.

        :param campaigns: as for :meth:`summary`.
        :param table_required: as for :meth:`summary` (by default a missing table counts nothing).
        :return: one :class:`PartCount` per (map index, part, status) that holds an outcome, ordered
            by map index, part and status.
        :raises ResultsTableMissing: ``table_required`` and the table is not there.
        :raises ResultsStoreError: the database could not be read.
        :raises TypeError: ``campaigns`` is one string or ``None``, not a collection of ids.
        """
        return _added_up(
            self._read_task(
                *_BY_PART,
                dag_id,
                run_id,
                task_id,
                campaigns,
                table_required=table_required,
                convert=_part_count,
            )
        )

    def arrivals(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Collection[str],
        *,
        bucket_seconds: int,
        table_required: bool = False,
    ) -> dict[int, int]:
        """When the outcomes of one task of one run arrived, counted in the database by time bucket.
        Creates nothing.

        :param campaigns: as for :meth:`summary`.
        :param bucket_seconds: the width of a bucket, a whole number of seconds from 1.
        :param table_required: as for :meth:`summary`.
        :return: ``{bucket: outcomes}`` for each bucket that holds one: bucket ``b`` holds the outcomes
            received from ``b * bucket_seconds`` (unix seconds) to before ``(b + 1) * bucket_seconds``.
            The counts add up to the outcomes received.
        :raises ValueError: ``bucket_seconds`` is not a whole number from 1.
        :raises ResultsTableMissing: ``table_required`` and the table is not there.
        :raises ResultsStoreError: the database could not be read.
        """
        queries = self._task_queries(*self._by_bucket(bucket_seconds), dag_id, run_id, task_id, campaigns)
        return self._reading(
            lambda connection: _bucketed(connection, queries), table_required=table_required, nothing={}
        )

    def campaign_counts(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Collection[str],
        *,
        bucket_seconds: Callable[[Sequence[PartCount]], int],
        table_required: bool = False,
    ) -> tuple[list[PartCount], int, dict[int, int]]:
        """:meth:`part_counts` and :meth:`arrivals` in one transaction on one connection, bounded as
        one read: what the campaign view reads. The buckets' width is ``bucket_seconds(counts)``, chosen
        from the counts (their first and last arrival).

        :return: the counts, the width and the arrivals (``{}`` when there is no outcome).
        :raises ResultsTableMissing: ``table_required`` and the table is not there.
        :raises ResultsStoreError: the database could not be read (or not within its bound).
        """
        by_part = self._task_queries(*_BY_PART, dag_id, run_id, task_id, campaigns)

        def work(connection: Any) -> tuple[list[PartCount], int, dict[int, int]]:
            counts = _added_up([row for query in by_part for row in _fetch(connection, *query, _part_count)])
            width = bucket_seconds(counts)
            if not counts:
                return counts, width, {}
            queries = self._task_queries(*self._by_bucket(width), dag_id, run_id, task_id, campaigns)
            return counts, width, _bucketed(connection, queries)

        nothing: tuple[list[PartCount], int, dict[int, int]] = ([], bucket_seconds([]), {})
        return self._reading(work, table_required=table_required, nothing=nothing)

    def _by_bucket(self, bucket_seconds: int) -> tuple[str, str]:
        """The ``SELECT`` and ``GROUP BY`` of :meth:`arrivals` for buckets ``bucket_seconds`` wide.

        :raises ValueError: ``bucket_seconds`` is not a whole number from 1.
        """
        if isinstance(bucket_seconds, bool) or not isinstance(bucket_seconds, int) or bucket_seconds < 1:
            raise ValueError("bucket_seconds must be a whole number of seconds from 1")
        with self._lock:
            self._get_hook()
            kind = self._kind
        # A checked int, written into the statement: the placeholders are the WHERE clause's. SQLite's
        # CAST truncates (and the times are positive); Postgres's would round, so FLOOR there.
        if kind == "sqlite":
            bucket = f"CAST(received_timestamp / {bucket_seconds} AS INTEGER)"
        else:
            bucket = f"FLOOR(received_timestamp / {bucket_seconds})"
        return f"{bucket}, COUNT(*)", f"GROUP BY {bucket}"

    def rows(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Collection[str],
        *,
        map_index: int | None = None,
        table_required: bool = False,
    ) -> list[dict[str, Any]]:
        """Every outcome stored for one task of one run in the given campaigns, for a downstream task
        (the warehouse, the CRM, tomorrow's retry list). Creates nothing.

        The list is held in memory whole: for a task of many map indexes, read one map index at a
        time (``map_index``, filtered by the database).

        :param campaigns: the campaign ids to read (as for :meth:`summary`); rows of any other
            campaign are not returned. Empty: an empty list, nothing read.
        :param map_index: only this map index's rows; default all of them.
        :param table_required: as for :meth:`summary` (by default a missing table has no rows).
        :return: one dict per row, keyed by :data:`COLUMNS` (``events`` decoded into a list of
            ``{"event", "timestamp"}``), ordered by map index, part and time received. Holds phone
            numbers: never log it or push it to XCom.
        :raises ResultsTableMissing: ``table_required`` and the table is not there.
        :raises ResultsStoreError: the database could not be read.
        :raises TypeError: ``campaigns`` is one string or ``None``, not a collection of ids.
        """
        rows = self._read_task(
            ", ".join(COLUMNS),
            "",
            dag_id,
            run_id,
            task_id,
            campaigns,
            table_required=table_required,
            map_index=map_index,
            convert=_row,
        )
        rows.sort(
            key=lambda row: (row["map_index"], row["part"], row["received_timestamp"], row["delivery_key"])
        )
        return rows

    def _read_task(
        self,
        select: str,
        then: str,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Collection[str],
        *,
        table_required: bool,
        map_index: int | None = None,
        convert: Callable[[Sequence[Any]], _T],
    ) -> list[_T]:
        """``SELECT <select>`` of one task's rows in ``campaigns`` (and ``map_index``, when given;
        ``then``: a ``GROUP BY``, or ``""``), one query per group of campaign ids: each result row
        passed to ``convert`` as it is fetched. None from a missing table, unless ``table_required``."""
        queries = self._task_queries(select, then, dag_id, run_id, task_id, campaigns, map_index=map_index)
        return self._reading(
            lambda connection: [row for query in queries for row in _fetch(connection, *query, convert)],
            table_required=table_required,
            nothing=[],
        )

    def _task_queries(
        self,
        select: str,
        then: str,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Collection[str],
        *,
        map_index: int | None = None,
    ) -> list[tuple[str, tuple[Any, ...]]]:
        """The statements and parameters of :meth:`_read_task`: one per group of campaign ids."""
        if map_index is not None and (isinstance(map_index, bool) or not isinstance(map_index, int)):
            raise TypeError("map_index is a whole number (-1 for a task that is not mapped), or None")
        queries = []
        for chosen in _chunks(campaigns):
            p = self._parameter()
            parameters: tuple[Any, ...] = (dag_id, run_id, task_id, *chosen)
            query = (
                f"SELECT {select} FROM {self.table} "
                f"WHERE dag_id = {p} AND run_id = {p} AND task_id = {p} "
                f"AND campaign_id IN ({', '.join([p] * len(chosen))})"
            )
            if map_index is not None:
                query += f" AND map_index = {p}"
                parameters += (map_index,)
            queries.append((f"{query} {then}".rstrip(), parameters))
        return queries

    def _read(
        self, query: str, parameters: tuple[Any, ...], convert: Callable[[Sequence[Any]], Any] = tuple
    ) -> list[Any]:
        """The result rows of ``query``, each passed to ``convert`` as it is fetched (see
        :meth:`_reading`): :class:`ResultsTableMissing` when the table is not there."""
        return self._reading(
            lambda connection: _fetch(connection, query, parameters, convert), table_required=True, nothing=[]
        )

    def _reading(self, work: Callable[[Any], _T], *, table_required: bool, nothing: _T) -> _T:
        """``work(connection)``: reads of the table, in one transaction, bounded as a whole (see
        :class:`_Watchdog`); ``nothing`` from a missing table, unless ``table_required``. Creates
        nothing: :class:`ResultsTableMissing` when the table (or the SQLite file) is not there."""

        def read(connection: Any) -> _T:
            if isinstance(connection, sqlite3.Connection):
                _check_file(getattr(self._local, "file", None))  # not the counts of a moved file
            try:
                return work(connection)
            finally:
                # End the read's transaction (Postgres opens one): no "idle in transaction" between polls.
                _rollback(connection)

        try:
            return self._with_recovery("cannot read outcomes", read, create=False)
        except ResultsTableMissing:
            if table_required:
                raise
            return nothing  # nothing stored yet


class _Watchdog:
    """Ends, from this side, a statement that overran its bound.

    One daemon thread for the process, started on first use, waking at most every second: watching
    a statement costs a dict entry under a lock. A network connection (Postgres) has its socket shut
    down once :data:`DATABASE_WAIT_SECONDS` and :data:`WATCHDOG_GRACE_SECONDS` have passed (its server
    applies its own timeouts first): the driver's blocked read returns an error at once. A SQLite read
    (``interrupt``) has its statement interrupted once :data:`DATABASE_WAIT_SECONDS` have passed, and
    again every :data:`_INTERRUPT_AGAIN` seconds until it ends (an interrupt that finds no statement
    running is lost): SQLite bounds only its lock waits (``busy_timeout``), not a long scan. SQLite
    writes are not watched: their waits are ``busy_timeout`` and the write lock's timeout."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._watched: dict[int, tuple[float, Callable[[], None], bool]] = {}
        self._ended: set[int] = set()
        self._tickets = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, connection: Any, *, interrupt: bool = False) -> int | None:
        """Watch ``connection`` until :meth:`release`: a ticket, or ``None`` when it is not watched
        (a SQLite connection unless ``interrupt``, or a driver without a socket)."""
        if isinstance(connection, sqlite3.Connection):
            if not interrupt:
                return None
            return self._add(DATABASE_WAIT_SECONDS, connection.interrupt, again=True)
        try:
            descriptor = int(connection.fileno())
        except Exception:
            return None
        return self._add(
            DATABASE_WAIT_SECONDS + WATCHDOG_GRACE_SECONDS, lambda: _shut_down(descriptor), again=False
        )

    def _add(self, seconds: float, end: Callable[[], None], *, again: bool) -> int:
        with self._condition:
            ticket = next(self._tickets)
            self._watched[ticket] = (time.monotonic() + seconds, end, again)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fuse-results-watchdog", daemon=True)
                self._thread.start()
            else:
                self._condition.notify()
        return ticket

    def release(self, ticket: int | None) -> bool:
        """Stop watching; whether the watchdog had ended the statement meanwhile."""
        if ticket is None:
            return False
        with self._condition:
            self._watched.pop(ticket, None)
            if ticket in self._ended:
                self._ended.discard(ticket)
                return True
        return False

    def _run(self) -> None:
        while True:
            with self._condition:
                now = time.monotonic()
                for ticket, (deadline, end, again) in list(self._watched.items()):
                    if deadline <= now:
                        self._ended.add(ticket)
                        if again:
                            self._watched[ticket] = (now + _INTERRUPT_AGAIN, end, again)
                        else:
                            del self._watched[ticket]
                        with contextlib.suppress(Exception):  # a connection closed meanwhile
                            end()
                nearest = min((deadline for deadline, _, _ in self._watched.values()), default=now + 1.0)
                self._condition.wait(min(1.0, max(0.01, nearest - now)))


def _shut_down(descriptor: int) -> None:
    """Shut a connected socket down for both directions, given the driver's descriptor (which the
    driver still owns: a duplicate is closed here)."""
    with contextlib.suppress(OSError):
        duplicate = socket.socket(fileno=os.dup(descriptor))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


_WATCHDOG = _Watchdog()


def _chunks(campaigns: Collection[str]) -> list[tuple[str, ...]]:
    """The distinct campaign ids, sorted, in groups small enough for one query's placeholders."""
    if isinstance(campaigns, str) or campaigns is None:
        raise TypeError(
            "campaigns is a collection of campaign ids (bulk_campaigns(ti, bulk_task_id) gives them), "
            f"not {'one string' if campaigns is not None else 'None'}"
        )
    distinct = sorted(set(campaigns))
    return [
        tuple(distinct[start : start + _CAMPAIGNS_PER_QUERY])
        for start in range(0, len(distinct), _CAMPAIGNS_PER_QUERY)
    ]


def _fetch(
    connection: Any, query: str, parameters: tuple[Any, ...], convert: Callable[[Sequence[Any]], _T]
) -> list[_T]:
    """The result rows of ``query``, each passed to ``convert`` as it is fetched: a batch at a time,
    so the driver's rows are not all held beside the result."""
    cursor = connection.cursor()
    try:
        cursor.execute(query, parameters)
        result: list[_T] = []
        while batch := cursor.fetchmany(_FETCH_ROWS):
            result.extend(convert(values) for values in batch)
        return result
    finally:
        cursor.close()


#: The ``SELECT`` and ``GROUP BY`` of :meth:`ResultsTable.part_counts`.
_BY_PART = (
    "map_index, part, status, COUNT(*), MIN(received_timestamp), MAX(received_timestamp)",
    "GROUP BY map_index, part, status",
)


def _added_up(counted: Sequence[PartCount]) -> list[PartCount]:
    """``counted`` by map index, part and status; the same part in two groups of campaign ids (two
    campaigns' rows) added up."""
    found: dict[tuple[int, int, str], PartCount] = {}
    for one in counted:
        key = (one.map_index, one.part, one.status)
        earlier = found.get(key)
        found[key] = one if earlier is None else earlier.plus(one)
    return [found[key] for key in sorted(found)]


def _bucketed(connection: Any, queries: Sequence[tuple[str, tuple[Any, ...]]]) -> dict[int, int]:
    """The arrivals the ``queries`` (:meth:`ResultsTable._by_bucket`) count, by bucket."""
    counts: dict[int, int] = {}
    for query in queries:
        for number, count in _fetch(connection, *query, tuple):
            counts[int(number)] = counts.get(int(number), 0) + int(count)
    return counts


def _part_count(values: Sequence[Any]) -> PartCount:
    map_index, part, status, count, first, last = values
    return PartCount(int(map_index), int(part), str(status), int(count), float(first), float(last))


def _row(values: Sequence[Any]) -> dict[str, Any]:
    """One result row of :data:`COLUMNS` as a dict, ``events`` decoded (``[]`` when unreadable)."""
    row = dict(zip(COLUMNS, values, strict=True))
    try:
        row["events"] = json.loads(row["events"]) if row["events"] else []
    except ValueError:
        row["events"] = []
    return row


def _reported(details: CallDetails) -> tuple[Any, ...]:
    """The scalar fields of ``call_details``, in the table's column order (status to duration): what
    a row stores and what a delivery's identity covers, besides the ids, destination and events."""
    return (details.status.value, *(getattr(details, name) for name in CALL_DETAILS_NUMBERS))


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


def _execute(connection: Any, statement: str) -> None:
    cursor = connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def _lock_key(table: str, where: tuple[Any, ...]) -> int:
    """The Postgres advisory lock of one part of one table: a signed 64-bit hash of its identity."""
    text = json.dumps([table, *where], separators=(",", ":"), ensure_ascii=True)
    return int.from_bytes(hashlib.sha256(text.encode("ascii")).digest()[:8], "big", signed=True)


def _bound_postgres_waits(hook: DbApiHook) -> None:
    """Give the hook's Postgres connections a connect timeout and the session's statement and lock
    timeouts (:data:`DATABASE_WAIT_SECONDS`), through the connection's extra as the Postgres hook
    reads it (``connect_timeout``, ``options``); values the connection's own extra sets are kept."""
    connection = hook.connection
    extra = dict(connection.extra_dejson)
    extra.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    options = str(extra.get("options") or "")
    milliseconds = int(DATABASE_WAIT_SECONDS * 1000)
    for setting in ("statement_timeout", "lock_timeout"):
        if setting not in options:
            options = f"{options} -c {setting}={milliseconds}".strip()
    extra["options"] = options
    connection.extra = json.dumps(extra)


def _missing_provider(kind: str) -> str | None:
    """The package a connection of type ``kind`` needs and is missing here, if that is the case."""
    package = _PROVIDER_PACKAGES.get(kind)
    if package is None:
        return None
    try:
        importlib.import_module(package[1])
    except ImportError:
        return package[0]
    return None


def _file_of(connection: sqlite3.Connection) -> tuple[str, int, int] | None:
    """The main database file a SQLite connection opened: its path, device and inode (``None`` for a
    database in memory)."""
    for _, name, path in connection.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:
            status = os.stat(path)
            return str(path), status.st_dev, status.st_ino
    return None


def _sqlite_file(uri: str | None) -> str | None:
    """The file a SQLite ``file:`` URI names; ``None`` for a database in memory, a temporary one, or a
    URI that chooses its own ``mode`` (left to SQLite as given)."""
    if uri is None or not uri.startswith("file:"):
        return None
    parts = urllib.parse.urlsplit(uri)
    if "mode" in urllib.parse.parse_qs(parts.query) or parts.netloc not in ("", "localhost"):
        return None
    path = urllib.parse.unquote(parts.path)
    return None if path in ("", ":memory:") else path


def _with_mode(uri: str, mode: str) -> str:
    """A SQLite ``file:`` URI (with no ``mode`` of its own) with the given ``mode``."""
    base, hash_sign, fragment = uri.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}mode={mode}{hash_sign}{fragment}"


class _MovedDatabase(Exception):
    """The configured SQLite path no longer names the file the connection has open."""


def _check_file(opened: tuple[str, int, int] | None) -> None:
    """Raise :class:`_MovedDatabase` when the configured path is no longer the file opened."""
    if opened is None:
        return
    path, device, inode = opened
    try:
        status = os.stat(path)
    except OSError:
        raise _MovedDatabase from None
    if (status.st_dev, status.st_ino) != (device, inode):
        raise _MovedDatabase


def _sqlstate(error: BaseException) -> str | None:
    """A Postgres error's SQLSTATE (psycopg2's ``pgcode``, psycopg 3's ``sqlstate``)."""
    for name in ("pgcode", "sqlstate"):
        value = getattr(error, name, None)
        if isinstance(value, str):
            return value
    return None


def _undefined(error: BaseException) -> bool:
    """Whether ``error`` says the table (or a column of it) is not there."""
    if isinstance(error, sqlite3.OperationalError):
        return str(error).startswith(("no such table", "no such column"))
    return _sqlstate(error) in _PG_UNDEFINED


def _timed_out(error: BaseException) -> bool:
    """Whether ``error`` is a wait that ran out (a lock held too long, a statement too slow)."""
    if isinstance(error, sqlite3.OperationalError):
        return "locked" in str(error) or "busy" in str(error)
    return _sqlstate(error) in _PG_TIMED_OUT


def _recoverable(connection: Any, error: BaseException) -> bool:
    """Whether trying once more at once, on a new connection, can help: the server ended the
    connection (closed, or a SQLSTATE of class 08 or 57P0x), the table is gone, or the SQLite file
    was moved. Never a wait that ran out: that would double the wait."""
    if isinstance(error, _MovedDatabase) or _undefined(error):
        return True
    if _timed_out(error):
        return False
    if _sqlstate(error) in _PG_ENDED:
        return True
    return bool(getattr(connection, "closed", False))  # psycopg: set once the server ended it


def _cannot_hold(error: BaseException) -> bool:
    """Whether ``error`` says the database can never hold the values given: a driver's
    ``DataError`` (Postgres: a NUL or an invalid character, a number out of range), or the driver
    refusing a value before sending it (a NUL for psycopg, a lone surrogate, an integer too large)."""
    if isinstance(error, (ValueError, OverflowError)):
        return True
    return any(cls.__name__ == "DataError" for cls in type(error).__mro__)


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
