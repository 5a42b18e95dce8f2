"""The campaign view: the table's aggregate reads (SQLite and Postgres), what the page counts and
shows, and what it never shows (no number, no CSV value). Who may see it is proven on a real
api-server in tests/e2e/test_campaign_view_auth.py."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fuse.calls import CallDetails, CallEvent, CallStatus
from airflow_provider_fuse.links import FuseCallLink, FuseCampaignLink, view_path
from airflow_provider_fuse.results.campaign import SentList
from airflow_provider_fuse.results.table import COLUMNS, PartCount, ResultsTable
from airflow_provider_fuse.results.view import (
    MAX_BUCKETS,
    CallView,
    CampaignView,
    Plot,
    bucket_seconds_for,
    shown_word,
)
from airflow_provider_fuse.results.view_app import _map_index, _Tables
from tests.results.test_table import postgres_cluster  # noqa: F401 (a fixture)

DAG, RUN, TASK = "campaign", "manual__2026-11-29T02:00:00+00:00", "queue_calls"
CAMPAIGN = "campaign-0001"
TABLE = "fuse_call_results"
NOW = 1_800_000_000.0
#: What a contact list holds and no page may show.
PERSONAL = ("6175551234", "+16175551234", "Ada Lovelace", "ada@example.com", "42 Main St")


def outcome_row(
    number: int,
    *,
    status: str = "completed",
    map_index: int = -1,
    part: int = 0,
    received: float = NOW,
    campaign: str = CAMPAIGN,
    destination: str = "6175551234",
    events: str = "[]",
) -> tuple[object, ...]:
    """One row of the results table, in :data:`COLUMNS` order, slot ``number``."""
    key = hashlib.sha256(f"{campaign}/{map_index}/{part}/{number}".encode()).hexdigest()
    values = dict.fromkeys(COLUMNS)
    values.update(
        delivery_key=key,
        dag_id=DAG,
        run_id=RUN,
        task_id=TASK,
        map_index=map_index,
        campaign_id=campaign,
        part=part,
        slot=number,
        destination=destination,
        destination_number=f"+1{destination}",
        status=status,
        attempts=1,
        events=events,
        received_timestamp=received,
    )
    return tuple(values[column] for column in COLUMNS)


def fill(connection: object, rows: Sequence[tuple[object, ...]], placeholder: str = "?") -> None:
    """Insert ``rows`` (:func:`outcome_row`) into the results table at once, committed: how the
    tests and the benchmark hold many outcomes without storing them one by one."""
    insert = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join([placeholder] * len(COLUMNS))})"
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.executemany(insert, rows)
    connection.commit()  # type: ignore[attr-defined]


@contextlib.contextmanager
def sqlite_table(monkeypatch: pytest.MonkeyPatch, directory: Path) -> Iterator[tuple[ResultsTable, object]]:
    """An empty results table in a SQLite file, and a connection to fill it."""
    path = directory / "results.db"
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_VIEW_TEST", f"sqlite://{path}")
    connection = sqlite3.connect(path)
    connection.execute(ResultsTable.ddl(TABLE))
    table = ResultsTable("fuse_view_test", TABLE)
    try:
        yield table, connection
    finally:
        table.close()
        connection.close()


@contextlib.contextmanager
def postgres_table(monkeypatch: pytest.MonkeyPatch, cluster: object) -> Iterator[tuple[ResultsTable, object]]:
    import psycopg2

    uri = cluster.uri  # type: ignore[attr-defined]
    cluster.sql(f"DROP TABLE IF EXISTS {TABLE}", ResultsTable.ddl(TABLE))  # type: ignore[attr-defined]
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_VIEW_TEST", uri)
    connection = psycopg2.connect(uri, connect_timeout=5)
    table = ResultsTable("fuse_view_test", TABLE)
    try:
        yield table, connection
    finally:
        table.close()
        connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
def table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    if request.param == "sqlite":
        with sqlite_table(monkeypatch, tmp_path) as made:
            yield (*made, "?")
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        with postgres_table(monkeypatch, cluster) as made:
            yield (*made, "%s")


def sent(rows: int, *, calls_queued: int | None = None, map_index_campaign: str = CAMPAIGN) -> SentList:
    return SentList(
        campaign=map_index_campaign,
        confirmed=True,
        calls_queued=rows if calls_queued is None else calls_queued,
        rows=rows,
        queued_timestamp=int(NOW) - 3600,
        window_end=int(NOW) + 3600,
    )


def campaign_view(
    table: ResultsTable,
    lists: dict[int, SentList],
    parts: dict[int, list[tuple[int | None, int | None] | None]] | None = None,
    *,
    now: float = NOW,
) -> CampaignView:
    """The view as the app builds it (:func:`airflow_provider_fuse.results.view_app._campaign`)."""
    from airflow_provider_fuse.results.view_app import _campaign

    return _campaign(tables_of(table), DAG, RUN, TASK, lists, parts or {}, now=now)


def tables_of(table: ResultsTable) -> _Tables:
    """The app's tables (its counts kept as in the app) with ``table`` as the results table."""

    class Tables(_Tables):
        def get(self) -> tuple[ResultsTable, int]:
            return table, 2 * 86400

    return Tables()


# --- The table's aggregate reads --------------------------------------------------------------------


def test_part_counts_and_arrivals_are_counted_by_the_database(table):
    results, connection, placeholder = table
    rows = [outcome_row(n, status="completed", received=NOW + n) for n in range(1, 6)]
    rows += [outcome_row(n, status="failed", part=1, received=NOW + 100 + n) for n in range(1, 3)]
    rows += [outcome_row(1, status="no answer", map_index=2, received=NOW + 59.5)]
    rows += [outcome_row(1, campaign="another-campaign")]  # a deleted run's: not this campaign's
    fill(connection, rows, placeholder)

    counts = results.part_counts(DAG, RUN, TASK, [CAMPAIGN])
    arrivals = results.arrivals(DAG, RUN, TASK, [CAMPAIGN], bucket_seconds=60)

    assert [(c.map_index, c.part, c.status, c.count) for c in counts] == [
        (-1, 0, "completed", 5),
        (-1, 1, "failed", 2),
        (2, 0, "no answer", 1),
    ]
    assert counts[0].first_received == NOW + 1
    assert counts[0].last_received == NOW + 5
    expected = Counter(int((NOW + offset) // 60) for offset in (1, 2, 3, 4, 5, 101, 102, 59.5))
    assert arrivals == dict(expected)  # floor, on both: 59.5 s past is not rounded up a bucket


def test_reads_of_a_missing_table_count_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_VIEW_TEST", f"sqlite://{tmp_path}/none.db")
    table = ResultsTable("fuse_view_test", TABLE)
    assert table.part_counts(DAG, RUN, TASK, [CAMPAIGN]) == []
    assert table.arrivals(DAG, RUN, TASK, [CAMPAIGN], bucket_seconds=60) == {}
    assert not (tmp_path / "none.db").exists()  # a read creates nothing


@pytest.mark.parametrize("width", [0, -5, 1.5, True, "60"])
def test_a_bucket_is_a_whole_number_of_seconds(monkeypatch, tmp_path, width):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_VIEW_TEST", f"sqlite://{tmp_path}/none.db")
    with pytest.raises(ValueError, match="bucket_seconds"):
        ResultsTable("fuse_view_test", TABLE).arrivals(DAG, RUN, TASK, [CAMPAIGN], bucket_seconds=width)


def test_the_view_reads_the_same_numbers_on_sqlite_and_postgres(table):
    results, connection, placeholder = table
    fill(connection, [outcome_row(n, received=NOW - 600 + n) for n in range(1, 8)], placeholder)
    fill(
        connection,
        [outcome_row(n, status="failed", part=1, received=NOW + n) for n in range(1, 3)],
        placeholder,
    )

    view = campaign_view(results, {-1: sent(12)}, {-1: [(8, 8), (4, 4)]})

    assert view.as_dict()["by_outcome"]["completed"] == 7
    assert (view.calls_queued, view.received, view.missing) == (12, 9, 3)
    assert [(row.part, row.rows, row.received, row.missing) for row in view.part_rows] == [
        (0, 8, 7, 1),
        (1, 4, 2, 2),
    ]
    assert sum(view.plot.counts) == 9
    assert view.refreshing  # outcomes missing, and the tokens still take them


# --- Invariants -------------------------------------------------------------------------------------

STATUSES = st.sampled_from(
    ["completed", "failed", "canceled", "rejected", "no answer", "busy", "x1", "6175551234"]
)
OUTCOMES = st.lists(
    st.tuples(
        st.sampled_from([-1, 0, 1]),  # map index
        st.integers(0, 2),  # part
        STATUSES,
        st.floats(-7200, 90_000, allow_nan=False),  # received, from NOW
    ),
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(outcomes=OUTCOMES, extra_rows=st.integers(0, 5), now_offset=st.floats(-3600, 400_000))
def test_the_counts_add_up_whatever_arrived(monkeypatch_module, outcomes, extra_rows, now_offset):
    # Every outcome in exactly one status; per part, received <= rows and missing = rows - received;
    # the plot's bars add up to the outcomes received.
    with (
        tempfile.TemporaryDirectory() as directory,
        sqlite_table(monkeypatch_module, Path(directory)) as made,
    ):
        results, connection = made
        slots: Counter[tuple[int, int]] = Counter()
        rows = []
        for map_index, part, status, offset in outcomes:
            slots[(map_index, part)] += 1
            rows.append(
                outcome_row(
                    slots[(map_index, part)],
                    status=status,
                    map_index=map_index,
                    part=part,
                    received=NOW + offset,
                )
            )
        fill(connection, rows)
        per_part = {key: count + extra_rows for key, count in slots.items()}
        lists = {m: sent(sum(c for (i, _), c in per_part.items() if i == m) or 1) for m in (-1, 0, 1)}
        ledger = {m: [(per_part.get((m, p)), per_part.get((m, p))) for p in range(3)] for m in (-1, 0, 1)}

        view = campaign_view(results, lists, ledger, now=NOW + now_offset)

        numbers = view.as_dict()
        assert sum(numbers["by_outcome"].values()) == numbers["received"] == len(outcomes)
        assert sum(view.plot.counts) == len(outcomes)
        assert len(view.plot.counts) <= 4 * MAX_BUCKETS
        for part in numbers["parts"]:
            assert sum(part["by_outcome"].values()) == part["received"]
            if part["rows"] is not None:
                assert part["received"] <= part["rows"]
                assert part["missing"] == part["rows"] - part["received"] >= 0
        assert numbers["missing"] == max(0, numbers["calls_queued"] - numbers["received"])
        assert "6175551234" not in json.dumps(numbers) + view.html()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@given(st.floats(0, 10 * 365 * 86400, allow_nan=False))
def test_a_plot_has_at_most_max_buckets_bars(span):
    width = bucket_seconds_for(span)
    assert width >= 1
    assert span / width <= MAX_BUCKETS


@given(
    arrivals=st.dictionaries(st.integers(-10, 10**6), st.integers(1, 1000), max_size=30),
    window=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
)
def test_a_plots_bars_add_up_to_the_arrivals(arrivals, window):
    plot = Plot.of(arrivals, 60, window_start=min(window), window_end=max(window), now=NOW)
    assert sum(plot.counts) == sum(arrivals.values())


# --- Nothing personal -------------------------------------------------------------------------------


def test_no_number_or_csv_value_reaches_the_page_or_its_json(monkeypatch, tmp_path):
    # A callback's fields are free text to its sender: a number or a contact's details in the status
    # or an event's name are counted as "other", never shown; the destination columns are never read.
    events = json.dumps(
        [{"event": "called 6175551234", "timestamp": 1}, {"event": "Ada Lovelace", "timestamp": 2}]
    )
    with sqlite_table(monkeypatch, tmp_path) as (results, connection):
        fill(
            connection,
            [
                outcome_row(1, status="6175551234", destination="6175551234", events=events),
                outcome_row(2, status="Ada Lovelace", destination="ada@example.com"),
                outcome_row(3, status="+16175551234"),
                outcome_row(4, status="42 Main St"),
                outcome_row(5, status="completed"),
            ],
        )
        view = campaign_view(results, {-1: sent(5)})
        shown = view.html() + json.dumps(view.as_dict())

    for value in PERSONAL:
        assert value not in shown
        assert value.lower() not in shown.lower()
    assert view.by_outcome["completed"] == 1
    assert view.by_outcome["other"] == 4  # not one of Fuse's words: counted, never shown


def test_a_calls_page_shows_its_status_and_events_and_no_number():
    details = CallDetails(
        status=CallStatus("completed"),
        attempts=2,
        max_attempts=3,
        queued_timestamp=int(NOW) - 60,
        end_timestamp=int(NOW),
        duration=42,
        events=(CallEvent("queued", int(NOW) - 60), CallEvent("dial 6175551234", int(NOW) - 30)),
        phone_number="6175551234",
        call_id="call-123",
    ).as_dict(include_phone_number=True)  # even a record that holds it: never shown

    view = CallView(DAG, RUN, "queue_call", "call-123", details, NOW)
    shown = view.html() + json.dumps(view.as_dict())

    assert view.as_dict()["status"] == "completed"
    assert [event["event"] for event in view.as_dict()["events"]] == ["queued", "other"]
    assert "id='fuse-call-status' data-status='completed'" in view.html()
    assert not view.refreshing
    assert "6175551234" not in shown


def test_a_call_id_that_is_not_an_id_is_not_shown():
    view = CallView(DAG, RUN, "queue_call", "+1 617 555 1234", None, NOW)
    assert view.shown_call_id is None
    assert view.refreshing  # no ending seen yet: the page reloads itself
    assert "617 555" not in view.html()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("completed", "completed"),
        ("No Answer", "no answer"),
        ("no_answer", None),  # not how the receiver stores "no answer": not that word (r12 #14)
        ("completed_", None),
        ("6175551234", None),
        ("busy1", None),
        ("Cancelled", "canceled"),
        ("Ada Lovelace", None),  # words, but not Fuse's: a contact's name
        ("x" * 25, None),
        ("<script>", None),
        (None, None),
        ("ｃｏｍｐｌｅｔｅｄ", None),  # fullwidth letters: not the ASCII word
    ],
)
def test_only_status_words_are_shown(value, shown):
    assert shown_word(value) == shown


def test_the_page_escapes_what_it_shows():
    view = CallView("<dag>", "run'\"", "<task>", None, None, NOW)
    page = view.html()
    assert "<dag>" not in page
    assert "&lt;dag&gt;" in page
    assert "run'\"" not in page


def test_the_page_reloads_only_while_outcomes_can_arrive(monkeypatch, tmp_path):
    with sqlite_table(monkeypatch, tmp_path) as (results, connection):
        fill(connection, [outcome_row(1)])
        running = campaign_view(results, {-1: sent(2)})
        done = campaign_view(results, {-1: sent(1)})
        expired = campaign_view(results, {-1: sent(2)}, now=NOW + 3600 + 2 * 86400 + 1)

    assert "http-equiv='refresh'" in running.html()
    assert "http-equiv='refresh'" not in done.html()  # nothing missing
    assert "http-equiv='refresh'" not in expired.html()  # the tokens no longer take outcomes


# --- Links and URLs ---------------------------------------------------------------------------------


def test_the_view_path_quotes_every_id():
    assert view_path("d", "manual__2026-01-01T00:00:00+00:00", "g.t") == (
        "/fuse/campaigns/d/manual__2026-01-01T00%3A00%3A00%2B00%3A00/g.t"
    )
    assert view_path("d", "a/b?c#d", "t", 3).startswith("/fuse/campaigns/d/a%2Fb%3Fc%23d/t?map_index=3")
    assert "map_index" not in view_path("d", "r", "t", -1)


@pytest.mark.parametrize(
    ("given", "read"), [(None, None), ("{MAP_INDEX}", None), ("3", 3), ("-1", -1), ("-7", -1), ("٣", None)]
)
def test_the_map_index_of_the_tab_is_read_or_left(given, read):
    assert _map_index(given) == read


def test_the_links_open_the_view_under_airflows_base_url(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team/")
    key = SimpleNamespace(dag_id="d", run_id="r", task_id="wait", map_index=-1)
    sensor = SimpleNamespace(bulk_task_id="queue_calls")

    assert FuseCampaignLink().get_link(sensor, ti_key=key) == (  # type: ignore[arg-type]
        "https://airflow.example.com/team/fuse/campaigns/d/r/queue_calls"
    )
    mapped = SimpleNamespace(dag_id="d", run_id="r", task_id="call", map_index=2)
    assert FuseCallLink().get_link(SimpleNamespace(), ti_key=mapped) == (  # type: ignore[arg-type]
        "https://airflow.example.com/team/fuse/campaigns/d/r/call?map_index=2"
    )


def test_the_four_fuse_tasks_carry_their_link():
    from airflow_provider_fuse.operators.fuse import FuseBulkQueueOperator, FuseQueueCallOperator
    from airflow_provider_fuse.sensors.fuse import FuseCallStatusSensor, FuseCampaignResultsSensor

    for operator, link in (
        (FuseBulkQueueOperator, FuseCampaignLink),
        (FuseCampaignResultsSensor, FuseCampaignLink),
        (FuseQueueCallOperator, FuseCallLink),
        (FuseCallStatusSensor, FuseCallLink),
    ):
        assert [type(one) for one in operator.operator_extra_links] == [link]


def test_a_render_reads_no_row(monkeypatch, tmp_path):
    # The view counts in the database: the method that reads rows (and numbers) is never called.
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the view read rows")

    monkeypatch.setattr(ResultsTable, "rows", refused)
    with sqlite_table(monkeypatch, tmp_path) as (results, connection):
        fill(connection, [outcome_row(n) for n in range(1, 4)])
        assert campaign_view(results, {-1: sent(3)}).received == 3


def test_part_counts_add_up_two_groups_of_campaign_ids():
    one = PartCount(0, 0, "completed", 2, NOW, NOW + 1)
    other = PartCount(0, 0, "completed", 3, NOW - 5, NOW)
    assert one.plus(other) == PartCount(0, 0, "completed", 5, NOW - 5, NOW + 1)


def _ids(page: str) -> list[str]:
    return re.findall(r"id='([^']+)'", page)


def test_the_numbers_carry_stable_ids_for_a_browser(monkeypatch, tmp_path):
    with sqlite_table(monkeypatch, tmp_path) as (results, connection):
        fill(connection, [outcome_row(1, received=time.time())])
        page = campaign_view(results, {-1: sent(2)}).html()
    for element in (
        "fuse-rows",
        "fuse-calls-queued",
        "fuse-received",
        "fuse-missing",
        "fuse-arrivals",
        "fuse-parts",
    ):
        assert element in _ids(page)
    assert "fuse-outcome-completed" in _ids(page)
    assert "data-bucket-start=" in page


# --- Review r12 ------------------------------------------------------------------------------------


def test_the_view_counts_every_status_as_the_sensor_does(monkeypatch, tmp_path):
    # r12 #14: "completed_" is not "completed" to the sensor's summary, nor to a filter on the rows.
    statuses = ["completed", "completed_", "Completed-", "failed_", "no_answer", "no answer", "busy"]
    with sqlite_table(monkeypatch, tmp_path) as (results, connection):
        fill(connection, [outcome_row(n, status=status) for n, status in enumerate(statuses, 1)])
        view = campaign_view(results, {-1: sent(len(statuses))})
        summary = results.summary(DAG, RUN, TASK, [CAMPAIGN])

    assert view.by_outcome == {name: summary[name] for name in view.by_outcome}
    assert view.by_outcome == {"completed": 1, "failed": 0, "canceled": 0, "rejected": 0, "other": 6}
    assert view.other_words == {"busy": 1, "no answer": 1}  # Fuse's words, as stored; the rest unnamed
    assert "id='fuse-other-no-answer' data-count='1'" in view.html()
    assert [row.by_outcome for row in view.part_rows] == [{"completed": 1, "other": 6}]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.sampled_from(["completed", "Completed", "completed_", "no answer", "no_answer", "x"]), max_size=20
    )
)
def test_the_views_counts_are_the_summarys_whatever_the_statuses(monkeypatch_module, statuses):
    with (
        tempfile.TemporaryDirectory() as directory,
        sqlite_table(monkeypatch_module, Path(directory)) as (results, connection),
    ):
        fill(connection, [outcome_row(n, status=status) for n, status in enumerate(statuses, 1)])
        view = campaign_view(results, {-1: sent(max(1, len(statuses)))})
        summary = results.summary(DAG, RUN, TASK, [CAMPAIGN])
    assert view.by_outcome == {name: summary[name] for name in view.by_outcome}
    assert view.received == summary["received"]


def test_a_long_sqlite_read_is_interrupted_at_its_bound(monkeypatch, tmp_path):
    # r12 #19: busy_timeout bounds lock waits only; a read that scans for long is cut as Postgres cuts
    # it at statement_timeout. Without the bound this read runs for minutes.
    from airflow_provider_fuse.results import table as table_module
    from airflow_provider_fuse.results.table import ResultsStoreError

    monkeypatch.setattr(table_module, "DATABASE_WAIT_SECONDS", 0.3)
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
    with sqlite_table(monkeypatch, tmp_path) as (results, _):
        outcome: list[BaseException] = []

        def read() -> None:
            try:
                results._read(endless, ())
            except BaseException as error:
                outcome.append(error)

        reader = threading.Thread(target=read, daemon=True)
        began = time.monotonic()
        reader.start()
        reader.join(10)
        assert not reader.is_alive()
        assert time.monotonic() - began < 5
        (error,) = outcome
        assert isinstance(error, ResultsStoreError)
        assert error.retryable
        assert "interrupted" in str(error)
        assert results.part_counts(DAG, RUN, TASK, [CAMPAIGN]) == []  # the next read works


def test_a_sqlite_store_is_not_interrupted(monkeypatch, tmp_path):
    # Only reads: a store's waits are busy_timeout and the write lock's, each within the bound.
    from airflow_provider_fuse.results.table import _WATCHDOG

    connection = sqlite3.connect(tmp_path / "x.db")
    assert _WATCHDOG.watch(connection) is None
    assert _WATCHDOG.release(_WATCHDOG.watch(connection, interrupt=True)) is False
    connection.close()


def test_the_views_two_counts_are_one_read(monkeypatch, tmp_path):
    with sqlite_table(monkeypatch, tmp_path) as (results, connection):
        fill(connection, [outcome_row(n, received=NOW + 60 * n) for n in range(1, 6)])
        reads = []
        real = ResultsTable._with_recovery
        monkeypatch.setattr(
            ResultsTable, "_with_recovery", lambda self, *a, **k: reads.append(a[0]) or real(self, *a, **k)
        )
        counts, width, arrivals = results.campaign_counts(
            DAG, RUN, TASK, [CAMPAIGN], bucket_seconds=lambda counts: 60
        )
        assert reads == ["cannot read outcomes"]
        assert counts == results.part_counts(DAG, RUN, TASK, [CAMPAIGN])
        assert arrivals == results.arrivals(DAG, RUN, TASK, [CAMPAIGN], bucket_seconds=width)


def test_a_table_the_provider_creates_has_the_counts_index(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_VIEW_TEST", f"sqlite://{tmp_path}/new.db")
    ResultsTable.ready("fuse_view_test", TABLE).close()
    with contextlib.closing(sqlite3.connect(tmp_path / "new.db")) as connection:
        plan = connection.execute(
            f"EXPLAIN QUERY PLAN SELECT map_index, part, status, COUNT(*), MIN(received_timestamp) "
            f"FROM {TABLE} WHERE dag_id = 'd' AND run_id = 'r' AND task_id = 't' AND campaign_id IN ('c') "
            "GROUP BY map_index, part, status"
        ).fetchall()
    assert "COVERING INDEX fuse_call_results_counts" in str(plan)


def test_an_existing_table_is_given_no_index(monkeypatch, tmp_path):
    # Building an index takes the table's owner and holds its writers back: left to the owner.
    with sqlite_table(monkeypatch, tmp_path) as (results, connection):
        results.ensure()
        indexes = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    assert [name for (name,) in indexes if not name.startswith("sqlite_autoindex")] == []


def test_counts_are_read_once_per_interval_and_shared():
    from airflow_provider_fuse.results.view_app import _Recent

    now = [0.0]
    reads: list[int] = []
    recent: _Recent[int] = _Recent(15, clock=lambda: now[0])

    def read() -> int:
        reads.append(1)
        return len(reads)

    assert recent.get("campaign", read) == recent.get("campaign", read) == 1
    now[0] = 14.9
    assert recent.get("campaign", read) == 1
    assert recent.get("another", read) == 2
    now[0] = 15.1
    assert recent.get("campaign", read) == 3
    # A page opened (not reloading itself) reads the counts as they are now, and keeps them.
    assert recent.get("campaign", read, fresh=True) == 4
    assert recent.get("campaign", read) == 4


def test_tabs_asking_at_once_share_one_read():
    from airflow_provider_fuse.results.view_app import _Recent

    recent: _Recent[int] = _Recent(15)
    started, release = threading.Event(), threading.Event()
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        started.set()
        release.wait(5)
        return 7

    answers: list[int] = []
    tabs = [threading.Thread(target=lambda: answers.append(recent.get("c", read))) for _ in range(5)]
    tabs[0].start()
    started.wait(5)
    for tab in tabs[1:]:
        tab.start()
    time.sleep(0.1)
    release.set()
    for tab in tabs:
        tab.join(5)
    assert answers == [7] * 5
    assert reads == [1]


def test_a_failed_read_is_kept_briefly():
    from airflow_provider_fuse.results.table import ResultsStoreError
    from airflow_provider_fuse.results.view_app import _Recent

    now = [0.0]
    recent: _Recent[int] = _Recent(15, clock=lambda: now[0])
    calls = []

    def read() -> int:
        calls.append(1)
        raise ResultsStoreError("down")

    for _ in range(3):
        with pytest.raises(ResultsStoreError):
            recent.get("c", read)
    now[0] = 5.1
    with pytest.raises(ResultsStoreError):
        recent.get("c", read)
    assert len(calls) == 2


def test_the_page_stops_reloading_an_hour_after_the_window(monkeypatch, tmp_path):
    from airflow_provider_fuse.results.view import REFRESH_AFTER_WINDOW

    window_end = NOW + 3600
    with sqlite_table(monkeypatch, tmp_path) as (results, connection):
        fill(connection, [outcome_row(1)])
        late = campaign_view(results, {-1: sent(2)}, now=window_end + REFRESH_AFTER_WINDOW - 1)
        later = campaign_view(results, {-1: sent(2)}, now=window_end + REFRESH_AFTER_WINDOW + 1)

    assert late.refreshing
    assert not later.refreshing  # outcomes missing, tokens valid for 2 days: no reload all that time
    assert "fuse-not-reloading" in later.html()


def test_the_unreadable_page_reloads_a_bounded_number_of_times_backing_off():
    from airflow_provider_fuse.results.view import UNREADABLE_TRIES, unreadable_page

    def refresh(page: str) -> str | None:
        found = re.search(r"http-equiv='refresh' content='([^']*)'", page)
        return found.group(1) if found else None

    assert refresh(unreadable_page("down")) == "15;url=?retry=1"  # ?retry=: may use the kept counts
    assert refresh(unreadable_page("down", retry=2, map_index=3)) == "60;url=?map_index=3&amp;retry=3"
    assert refresh(unreadable_page("down", retry=UNREADABLE_TRIES)) is None
    assert "no longer reloads" in unreadable_page("down", retry=UNREADABLE_TRIES)


# --- The app, its own answers (Airflow's authorization is proven in tests/e2e) ----------------------


@pytest.fixture
def app_client(monkeypatch):
    """The view's app with Airflow's authorization let through, and ``read_view`` as the test sets it."""
    import warnings

    from airflow_provider_fuse.results import view_app

    with warnings.catch_warnings():
        # Airflow's API imports starlette's test client, which warns about the httpx it finds.
        warnings.simplefilter("ignore")
        import airflow.api_fastapi.core_api.security as security
        from fastapi.testclient import TestClient

    monkeypatch.setattr(security, "requires_access_dag", lambda *args, **kwargs: lambda: None)

    def use(read_view, **constants):
        monkeypatch.setattr(view_app, "read_view", read_view)
        for name, value in constants.items():
            monkeypatch.setattr(view_app, name, value)
        return TestClient(view_app.create_view_app())

    return use


def test_every_answer_is_uncached_unsniffed_and_scriptless(app_client):
    client = app_client(lambda *args, **kwargs: None)
    for answer in (
        client.get("/d/r/t"),
        client.get("/d/r/t/view.json"),
        client.get("/"),
        client.post("/d/r/t"),
    ):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src" not in policy
        assert "frame-ancestors 'self'" in policy


def test_head_is_answered_as_get(app_client):
    client = app_client(lambda *args, **kwargs: CallView(DAG, RUN, "call", "call-1", None, NOW))
    assert client.head("/d/r/t").status_code == 200
    assert client.head("/d/r/t/view.json").status_code == 200


def test_the_503_names_no_host_and_the_log_does(app_client, caplog):
    from airflow_provider_fuse.results.table import ResultsStoreError

    def down(*args, **kwargs):
        raise ResultsStoreError('cannot connect (connection to server at "10.1.2.3", port 5432 failed)')

    client = app_client(down)
    with caplog.at_level("WARNING"):
        page, numbers = client.get("/d/r/t?retry=1"), client.get("/d/r/t/view.json")
    assert page.status_code == numbers.status_code == 503
    for answer in (page, numbers):
        assert "10.1.2.3" not in answer.text
        assert "5432" not in answer.text
    assert "30;url=?retry=2" in page.text  # the second try waits twice as long
    assert "10.1.2.3" in caplog.text


def test_reads_beyond_the_readers_and_their_queue_are_refused_at_once(app_client):
    release = threading.Event()

    def slow(*args, **kwargs):
        release.wait(10)

    client = app_client(slow, VIEW_READERS=1, VIEW_QUEUE=0)
    first: list[int] = []
    holder = threading.Thread(target=lambda: first.append(client.get("/d/r/t").status_code))
    holder.start()
    time.sleep(0.5)
    began = time.monotonic()
    refused = client.get("/d/r/t/view.json")
    assert refused.status_code == 503
    assert time.monotonic() - began < 2
    assert "Too many" in refused.json()["detail"]
    release.set()
    holder.join(10)
    assert first == [404]


def test_reads_run_on_the_views_own_few_threads(app_client):
    # r12 #25: the results table keeps a connection per thread: so at most VIEW_READERS of them.
    from airflow_provider_fuse.results.view_app import VIEW_READERS

    threads = set()

    def record(*args, **kwargs):
        threads.add(threading.current_thread().name)

    client = app_client(record)
    for _ in range(3 * VIEW_READERS):
        client.get("/d/r/t")
    assert 1 <= len(threads) <= VIEW_READERS
    assert all(name.startswith("fuse-campaign-view") for name in threads)


def test_subclasses_of_the_fuse_tasks_are_known_by_their_links():
    # r12 #31: Airflow records the class name only; the serialized task carries the links it inherits.
    from datetime import datetime as moment
    from types import SimpleNamespace

    from airflow.sdk import DAG as Dag

    try:  # Airflow >= 3.2
        from airflow.serialization.serialized_objects import DagSerialization
    except ImportError:  # Airflow 3.1
        from airflow.serialization.serialized_objects import SerializedDAG as DagSerialization

    from airflow_provider_fuse.operators.fuse import FuseQueueCallOperator
    from airflow_provider_fuse.results.view_app import _links
    from airflow_provider_fuse.sensors.fuse import FuseCallStatusSensor, FuseCampaignResultsSensor

    class MyResults(FuseCampaignResultsSensor):
        pass

    class MyCall(FuseQueueCallOperator):
        pass

    with Dag("links", schedule=None, start_date=moment(2026, 1, 1)) as dag:
        MyResults(task_id="results", bulk_task_id="queue_calls")
        MyCall(task_id="call", phone_number="6175551234", application_id="app", deployment_id="deployment")
        FuseCallStatusSensor.partial(task_id="status").expand(call_id=["a", "b"])
    data = DagSerialization.to_dict(dag)
    session = SimpleNamespace(scalar=lambda query: SimpleNamespace(data=data))

    links = _links(session, "a-version-of-links")  # type: ignore[arg-type]
    assert links == {
        "results": frozenset({"Fuse campaign"}),
        "call": frozenset({"Fuse call"}),
        "status": frozenset({"Fuse call"}),
    }


def test_a_map_index_that_is_not_there_is_not_another():
    from airflow_provider_fuse.results.view_app import _chosen

    assert _chosen({0: "v", 1: "v"}, 1) == 1
    assert _chosen({0: "v", 1: "v"}, 7) is None
    assert _chosen({0: "v", 1: "v"}, None) == 0
    assert _chosen({}, None) is None


def test_a_page_reloading_itself_may_use_the_kept_counts_and_one_opened_does_not(app_client):
    asked: list[bool] = []

    def record(*args, fresh=True, **kwargs):
        asked.append(fresh)
        return CallView(DAG, RUN, "call", "call-1", None, NOW)

    client = app_client(record)
    opened = client.get("/d/r/t?map_index=2")
    client.get("/d/r/t?map_index=2&reload=1")
    client.get("/d/r/t?retry=2")
    assert asked == [True, False, False]
    assert "content='15;url=?map_index=2&amp;reload=1'" in opened.text
