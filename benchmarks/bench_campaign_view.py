"""Benchmark the campaign view: how long one page of a 100,000-call campaign takes, on SQLite and Postgres.

One command, from the project root (needs the project installed with its test extras; Postgres needs
its binaries, initdb and pg_ctl, and starts a throwaway cluster on loopback as the tests do):

    python benchmarks/bench_campaign_view.py                  # 100,000 outcomes, 15 renders each
    python benchmarks/bench_campaign_view.py --outcomes 1000000 --renders 5 --no-postgres

For each database it creates a results table and fills it with ``--outcomes`` outcomes of one bulk
task (10 map indexes of 5 parts, the four named statuses and ``no answer``, received over a 12-hour
dialing window) and as many again of another run's campaign (the index must find the campaign's rows,
not scan the table). Then it times, each ``--renders`` times, in this process:

* **page**: what a request for the page costs after Airflow's records are read, when the campaign's
  counts were not read in the last refresh interval — the view's read of the table
  (``ResultsTable.campaign_counts``: by map index, part and status, then by time bucket, in one
  transaction, counted by the database), the numbers and the HTML with its SVG plot;
* **json**: the same read and the numbers as JSON;
* **kept**: the page reloading itself within the refresh interval: its counts as the view keeps
  them per process (what every other open tab's reload costs);
* **summary**: ``ResultsTable.summary``, the results sensor's one count, the least a read of the
  campaign's outcomes costs — the reference of the ratio column.

It prints the median and the fastest of each, the ratio of the medians to the summary, and the
target (a page well under a second: 0.5 s). Reading Airflow's records (a few indexed rows of its
metadata database) and the api-server's own cost are not in these numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from airflow_provider_fuse.results.campaign import SentList  # noqa: E402
from airflow_provider_fuse.results.table import ResultsTable  # noqa: E402
from airflow_provider_fuse.results.view_app import _campaign, _Tables  # noqa: E402
from tests.results.test_campaign_view import CAMPAIGN, DAG, RUN, TABLE, TASK, fill, outcome_row  # noqa: E402

TARGET_SECONDS = 0.5
MAP_INDEXES, PARTS = 10, 5
STATUSES = ("completed", "completed", "completed", "failed", "no answer", "canceled", "rejected")
WINDOW = 12 * 3600
CONN_ID = "fuse_view_bench"


def outcomes(count: int, start: float, campaign: str) -> Iterator[tuple[object, ...]]:
    """``count`` outcomes of one campaign spread over its map indexes and parts, in slot order."""
    per_part = -(-count // (MAP_INDEXES * PARTS))
    made = 0
    for map_index in range(MAP_INDEXES):
        for part in range(PARTS):
            for slot in range(1, per_part + 1):
                if made == count:
                    return
                received = start + (made * 7919 % WINDOW) + (made % 1000) / 1000
                yield outcome_row(
                    slot,
                    status=STATUSES[made % len(STATUSES)],
                    map_index=map_index,
                    part=part,
                    received=received,
                    campaign=campaign,
                    destination=f"617{made:07d}",
                )
                made += 1


def fill_table(connection: Any, count: int, start: float, placeholder: str) -> None:
    for campaign in (CAMPAIGN, "another-campaign"):
        batch: list[tuple[object, ...]] = []
        for row in outcomes(count, start, campaign):
            batch.append(row)
            if len(batch) == 20_000:
                fill(connection, batch, placeholder)
                batch = []
        if batch:
            fill(connection, batch, placeholder)


def sent_lists(count: int, start: float) -> dict[int, SentList]:
    rows = -(-count // MAP_INDEXES)
    return {
        map_index: SentList(
            campaign=CAMPAIGN,
            confirmed=True,
            calls_queued=rows,
            rows=rows,
            queued_timestamp=int(start),
            window_end=int(start) + WINDOW,
        )
        for map_index in range(MAP_INDEXES)
    }


def timed(work: Callable[[], object], renders: int) -> list[float]:
    work()  # warm: the connection opened, the statements prepared
    seconds = []
    for _ in range(renders):
        began = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - began)
    return seconds


def measure(
    table: ResultsTable, lists: dict[int, SentList], renders: int, now: float
) -> dict[str, list[float]]:
    # The ledger's parts, as Airflow 3.3 keeps them: each map index's rows in PARTS equal parts.
    parts = {m: [(-(-one.rows // PARTS),) * 2] * PARTS for m, one in lists.items()}

    class Tables(_Tables):
        def get(self) -> tuple[ResultsTable, int]:
            return table, 2 * 86400

    kept = Tables()

    def view(tables: _Tables | None = None) -> Any:
        return _campaign(tables or Tables(), DAG, RUN, TASK, lists, parts, now=now, fresh=tables is None)

    return {
        "page": timed(lambda: view().html(), renders),
        "json": timed(lambda: json.dumps(view().as_dict()), renders),
        "kept": timed(lambda: view(kept).html(), renders),
        "summary": timed(lambda: table.summary(DAG, RUN, TASK, [CAMPAIGN]), renders),
    }


def create_table(uri: str) -> None:
    """The results table as the provider creates it: with the counts' index (a SQLite file in WAL)."""
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = uri
    table = ResultsTable(CONN_ID, TABLE)
    try:
        table.ensure()
    finally:
        table.close()


@contextlib.contextmanager
def sqlite_database(directory: Path, count: int, start: float, *, index: bool) -> Iterator[ResultsTable]:
    path = directory / "results.db"
    connection = sqlite3.connect(path)
    if index:
        create_table(f"sqlite://{path}")
    else:  # a table a DBA created from ResultsTable.ddl() before the index was added
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(ResultsTable.ddl(TABLE))
    fill_table(connection, count, start, "?")
    connection.close()
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = f"sqlite://{path}"
    table = ResultsTable(CONN_ID, TABLE)
    try:
        yield table
    finally:
        table.close()


@contextlib.contextmanager
def postgres_database(count: int, start: float, *, index: bool) -> Iterator[ResultsTable]:
    import psycopg2

    from tests.results.test_table import throwaway_postgres

    with throwaway_postgres() as cluster:
        if index:
            create_table(cluster.uri)
        else:
            cluster.sql(ResultsTable.ddl(TABLE))
        with contextlib.closing(psycopg2.connect(cluster.uri, connect_timeout=5)) as connection:
            fill_table(connection, count, start, "%s")
        cluster.sql(f"ANALYZE {TABLE}")
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = cluster.uri
        table = ResultsTable(CONN_ID, TABLE)
        try:
            yield table
        finally:
            table.close()


def row(database: str, name: str, seconds: list[float], reference: float) -> str:
    median = statistics.median(seconds)
    return (
        f"| {database:<8} | {name:<7} | {median * 1000:>9.1f} | {min(seconds) * 1000:>9.1f} "
        f"| {median / reference:>8.1f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=100_000, help="outcomes of the campaign")
    parser.add_argument("--renders", type=int, default=15, help="timed renders of each kind")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--without-index", action="store_true", help="a table from ResultsTable.ddl() alone (no counts index)"
    )
    args = parser.parse_args()

    start = time.time() - WINDOW
    now = start + WINDOW / 2  # mid-window: the page still reloads itself, as while a campaign runs
    lists = sent_lists(args.outcomes, start)
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"Command: python benchmarks/bench_campaign_view.py {' '.join(sys.argv[1:])}".rstrip())
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="fuse-bench-view-") as directory:
        print(
            f"filling SQLite with {args.outcomes:,} outcomes (and as many of another run) ...",
            file=sys.stderr,
        )
        with sqlite_database(Path(directory), args.outcomes, start, index=not args.without_index) as table:
            results["SQLite"] = measure(table, lists, args.renders, now)
    if not args.no_postgres:
        print(
            f"filling Postgres with {args.outcomes:,} outcomes (and as many of another run) ...",
            file=sys.stderr,
        )
        try:
            with postgres_database(args.outcomes, start, index=not args.without_index) as table:
                results["Postgres"] = measure(table, lists, args.renders, now)
        except BaseException as error:  # pytest's skip where the binaries or the driver are missing
            if isinstance(error, KeyboardInterrupt):
                raise
            print(f"Postgres: not measured ({type(error).__name__}: {error})")

    print()
    index = "without the counts index" if args.without_index else "with the counts index"
    print(
        f"{args.outcomes:,} outcomes, {MAP_INDEXES} map indexes x {PARTS} parts, {index}; "
        f"{args.renders} renders each"
    )
    print("| database | render  | median ms |   best ms | / summary |")
    print("|----------|---------|-----------|-----------|-----------|")
    for database, timings in results.items():
        reference = statistics.median(timings["summary"])
        for name, seconds in timings.items():
            print(row(database, name, seconds, reference))
    print()
    for database, timings in results.items():
        median = statistics.median(timings["page"])
        verdict = "MET" if median < TARGET_SECONDS else "MISSED"
        print(f"Target: a page of {database} under {TARGET_SECONDS:g} s (median): {median:.3f} s, {verdict}")


if __name__ == "__main__":
    main()
