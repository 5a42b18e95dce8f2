"""Benchmark the results receiver: callbacks per second into SQLite through a real Airflow api-server.

One command, from the project root (needs the project installed; loopback only):

    python benchmarks/bench_results.py                   # 5 rounds of 5,000 callbacks, 32 at a time
    python benchmarks/bench_results.py --rounds 3 --callbacks 2000 --journal wal

For each SQLite journal mode (``delete``: SQLite's default, which a database that already holds
tables keeps; ``wal``: what ResultsTable gives a new results database), it starts three servers on
127.0.0.1, each storing into its own fresh SQLite file:

* **api-server**: ``airflow api-server`` (one worker) with the plugin: ``POST /fuse/results/{token}``
  through Airflow's middlewares and access log, the token checked, the body parsed, the outcome
  stored by ``ResultsTable`` (the part's lock, its highest slot, INSERT, COMMIT);
* **standalone**: ``fuse-results serve``, the same app on bare uvicorn (its access log on): the
  difference to the api-server is Airflow's own cost;
* **reference**: a bare FastAPI app on uvicorn (no access log) that reads the JSON body and does the
  same INSERT of the same row into a table of the same schema and commits, from one thread: no token,
  no parsing rules, no per-part bound — what storing a callback costs at the least.

Each round sends every server ``--callbacks`` distinct outcomes of one new upload part (a list sent
whole), ``--concurrency`` at a time over keep-alive connections, servers taking turns so that noise
falls on all of them alike, and checks that every one was answered 200 and stored exactly once. It
prints the median callbacks/s of each, the ratio to the reference, and the target (api-server >=
500/s). Below, where the time goes: the in-process cost of each step of one callback (token,
parsing, storing; storing again once the part already holds ``--prefill`` outcomes), and what each
middleware Airflow's api-server wraps around every request adds to a bare app.

The machine's disk decides the ``delete`` rows (each commit syncs the journal and the file), and
other work on the machine moves every row: compare servers within one run, not across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# The process harness the benchmarks share with the tests and scripts (scripts/harness.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from harness import ApiServer, Post, Process, asgi_post_scope, free_port, post_many, wait_for_port

KEY = "bench-" + "0123456789abcdef" * 3
BENCH_CAMPAIGN = "bench-campaign-0001"
TARGET = 500.0
SERVERS = ("api-server", "standalone", "reference")


# --- The reference: a bare FastAPI app doing the same INSERT ------------------------------------------


def reference_app(database: str) -> Any:
    """FastAPI: read the JSON body, INSERT the row ResultsTable would, commit (one writer thread)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.requests import Request

    from airflow_provider_fuse.results.table import COLUMNS

    insert = f"INSERT INTO fuse_call_results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    local = threading.local()
    writer = ThreadPoolExecutor(1)
    slots = itertools.count(1)  # each row its own slot: the table's unique (part, slot)

    def store(values: tuple[Any, ...]) -> str:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = sqlite3.connect(database)
            connection.execute("PRAGMA busy_timeout = 15000")
        try:
            connection.execute(insert, values)
        except sqlite3.IntegrityError:
            connection.rollback()
            return "duplicate"
        connection.commit()
        return "stored"

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    # A plain Starlette route on the FastAPI app: no parameter analysis, nothing but the work.
    async def receive(request: Request) -> JSONResponse:
        import asyncio

        token = request.path_params["token"]
        body = await request.body()
        details = json.loads(body)["call_details"]
        number = str(details["phone_number"]).strip("'")
        values = (
            hashlib.sha256(body).hexdigest(),
            "campaign",
            token[:32],
            "queue_calls",
            -1,
            BENCH_CAMPAIGN,
            0,
            next(slots),
            number,
            f"+1{number}",
            details["status"],
            int(details["attempts"]),
            None,
            None,
            None,
            None,
            None,
            None,
            "[]",
            time.time(),
        )
        stored = await asyncio.get_running_loop().run_in_executor(writer, store, values)
        return JSONResponse({"stored": stored})

    app.add_route("/fuse/results/{token}", receive, methods=["POST"])
    return app


def serve_reference(port: int, database: str) -> None:
    import uvicorn

    uvicorn.run(reference_app(database), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- Servers ------------------------------------------------------------------------------------------


def base_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    return {**env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


def new_database(path: Path, journal: str) -> Path:
    """A fresh SQLite file in ``journal`` mode, with the results table (created by ResultsTable)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA journal_mode={journal}")
        # A table of its own, so that ResultsTable keeps the mode chosen here: it switches only a
        # database that holds no table yet to WAL.
        db.execute("CREATE TABLE IF NOT EXISTS benchmark_marker (mode TEXT)")
    return path


def serve(name: str, command: list[str], env: dict[str, str], port: int, workdir: Path) -> Process:
    """``command`` as a process of its own, once it answers on ``port``."""
    process = Process(name, command, log=workdir / f"{name}.log", env=env)
    try:
        wait_for_port(port, name, 60, process=process)
    except BaseException:
        process.stop()
        raise
    return process


@contextlib.contextmanager
def servers(home: Path, workdir: Path, journal: str) -> Iterator[dict[str, tuple[str, Path]]]:
    """The three servers, each on its own fresh database in ``journal`` mode: name -> (url, database)."""
    from airflow_provider_fuse.results.table import ResultsTable

    databases = {name: new_database(workdir / f"{name}-{journal}.db", journal) for name in SERVERS}
    os.environ["AIRFLOW_CONN_BENCH_REFERENCE"] = f"sqlite://{databases['reference']}"
    table = ResultsTable("bench_reference", "fuse_call_results")
    table.ensure()  # the reference stores into the same schema
    table.close()

    def env(name: str) -> dict[str, str]:
        return {
            **base_env(home),
            "AIRFLOW__FUSE__RESULTS_SIGNING_KEY": KEY,
            "AIRFLOW_CONN_FUSE_RESULTS_DEFAULT": f"sqlite://{databases[name]}",
        }

    api_server = ApiServer(env("api-server"), workers=1)
    started: list[Process] = []
    try:
        api_server.start()
        ports = {"standalone": free_port(), "reference": free_port()}
        fuse_results = str(Path(sys.executable).parent / "fuse-results")
        started.append(
            serve(
                "standalone",
                [fuse_results, "serve", "--port", str(ports["standalone"])],
                env("standalone"),
                ports["standalone"],
                workdir,
            )
        )
        started.append(
            serve(
                "reference",
                [
                    sys.executable,
                    __file__,
                    "--reference",
                    *(str(ports["reference"]), str(databases["reference"])),
                ],
                env("reference"),
                ports["reference"],
                workdir,
            )
        )
        yield {
            "api-server": (api_server.url, databases["api-server"]),
            **{name: (f"http://127.0.0.1:{port}", databases[name]) for name, port in ports.items()},
        }
    finally:
        for process in started:
            process.stop()
        api_server.close()


# --- Measuring ----------------------------------------------------------------------------------------


def callbacks(run_id: str, count: int, first_number: int) -> list[Post]:
    """``count`` distinct outcomes of one part of one upload (numbers as strings, the number quoted)."""
    from airflow_provider_fuse.results.tokens import UploadPart, sign

    token = sign(
        UploadPart("campaign", run_id, "queue_calls", -1, BENCH_CAMPAIGN, 0, count, int(time.time()) + 86400),
        KEY,
    )
    now = int(time.time())
    posts = []
    for index in range(count):
        details = {
            "status": "completed" if index % 3 else "failed",
            "attempts": str(1 + index % 3),
            "max_attempts": "3",
            "reattempt_wait": "60",
            "queued_timestamp": str(now - 120),
            "start_timestamp": str(now - 60),
            "end_timestamp": str(now),
            "duration": "42",
            "events": [
                {"event": "queued", "timestamp": str(now - 120)},
                {"event": "completed", "timestamp": str(now)},
            ],
            "phone_number": f"'617{first_number + index:07d}'",
        }
        posts.append(Post(f"/fuse/results/{token}", json.dumps({"call_details": details}).encode()))
    return posts


def stored_rows(database: Path, run_id: str | None) -> int:
    with sqlite3.connect(database) as db:
        if run_id is None:
            return int(db.execute("SELECT COUNT(*) FROM fuse_call_results").fetchone()[0])
        return int(
            db.execute("SELECT COUNT(*) FROM fuse_call_results WHERE run_id = ?", (run_id,)).fetchone()[0]
        )


def one_round(
    url: str, database: Path, posts: list[Post], run_id: str, concurrency: int, reference: bool
) -> float:
    """Callbacks per second for one round; checks every one was stored, once."""
    before = stored_rows(database, None) if reference else 0
    start = time.perf_counter()
    answers = post_many(url, posts, concurrency=concurrency, timeout=120)
    seconds = time.perf_counter() - start
    bad = [answer for answer in answers if (answer.status, answer.body) != (200, b'{"stored":"stored"}')]
    if bad:
        raise RuntimeError(f"{len(bad)} callbacks not stored, e.g. {bad[0]}")
    stored = stored_rows(database, None) - before if reference else stored_rows(database, run_id)
    if stored != len(posts):
        raise RuntimeError(f"{len(posts)} callbacks answered, {stored} rows stored")
    return len(posts) / seconds


def measure(
    home: Path, workdir: Path, journal: str, rounds: int, count: int, concurrency: int
) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    number = 2_000_000
    with servers(home, workdir, journal) as running:
        for name, (url, database) in running.items():  # warm up: the table, the connections, the imports
            posts = callbacks(f"warmup-{name}", 200, number)
            number += 200
            one_round(url, database, posts, f"warmup-{name}", concurrency, name == "reference")
        for index in range(rounds):
            for name in SERVERS[index % len(SERVERS) :] + SERVERS[: index % len(SERVERS)]:
                url, database = running[name]
                run_id = f"{journal}-{name}-{index}"
                posts = callbacks(run_id, count, number)
                number += count
                rate = one_round(url, database, posts, run_id, concurrency, name == "reference")
                rates[name].append(rate)
                print(
                    f"  {journal} {name:<10} round {index + 1}: {rate:7.0f} callbacks/s",
                    file=sys.stderr,
                    flush=True,
                )
    return rates


def step_costs(workdir: Path, journal: str, prefill: int) -> dict[str, float]:
    """Microseconds per callback of each step, in process, one thread (medians of 1,000)."""
    import dataclasses

    from airflow_provider_fuse.results.callbacks import read_callback
    from airflow_provider_fuse.results.table import COLUMNS, ResultsTable
    from airflow_provider_fuse.results.tokens import UploadPart, verify

    post = callbacks("steps", 1, 3_000_000)[0]
    token = post.path.rsplit("/", 1)[1]
    costs: dict[str, float] = {}

    def per_call(function: Any, number: int = 1000) -> float:
        start = time.perf_counter()
        for _ in range(number):
            function()
        return (time.perf_counter() - start) / number * 1e6

    costs["token check"] = per_call(lambda: verify(token, KEY, now=time.time()))
    costs["parse body"] = per_call(lambda: read_callback(post.body, "application/json"))
    details = read_callback(post.body, "application/json")
    database = new_database(workdir / f"steps-{journal}.db", journal)
    os.environ["AIRFLOW_CONN_BENCH_STEPS"] = f"sqlite://{database}"
    table = ResultsTable("bench_steps", "fuse_call_results")
    table.ensure()
    for label, rows_before in (("store (empty part)", 0), (f"store ({prefill:,} rows in the part)", prefill)):
        part = UploadPart(
            "campaign",
            f"steps-{rows_before}",
            "queue_calls",
            -1,
            BENCH_CAMPAIGN,
            0,
            10**9,
            int(time.time()) + 3600,
        )
        if rows_before:
            with sqlite3.connect(database) as db:
                db.executemany(
                    f"INSERT INTO fuse_call_results ({', '.join(COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(COLUMNS))})",
                    (
                        (
                            f"{index:064x}",
                            part.dag_id,
                            part.run_id,
                            part.task_id,
                            -1,
                            part.campaign,
                            0,
                            index + 1,
                            None,
                            None,
                            "completed",
                        )
                        + (None,) * 7
                        + ("[]", 0.0)
                        for index in range(rows_before)
                    ),
                )
        variants = iter(range(10**9))

        def store(part: UploadPart = part, variants: Iterator[int] = variants) -> None:
            table.store(part, dataclasses.replace(details, attempts=next(variants)), received=time.time())

        costs[label] = per_call(store, 500)
    table.close()
    return costs


def middleware_costs(requests: int = 3000) -> dict[str, float]:
    """Microseconds each middleware Airflow's api-server puts around every request adds, in process,
    around a trivial app (a median of three runs of ``requests``); the receiver cannot avoid them."""
    import asyncio
    import io

    from starlette.applications import Starlette
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Any) -> JSONResponse:
        await request.body()
        return JSONResponse({"stored": "stored"})

    inner = Starlette(routes=[Route("/fuse/results/{token}", endpoint, methods=["POST"])])
    stacks: dict[str, Any] = {
        "none (a bare Starlette app)": inner,
        "GZipMiddleware": GZipMiddleware(inner, 1024),
    }
    # Importing Airflow's API app warns, through its own logging, that something of it imports
    # starlette's test client: noise in the benchmark's output.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    with contextlib.suppress(ImportError):
        from airflow.api_fastapi.auth.middlewares.refresh_token import JWTRefreshMiddleware

        stacks["JWTRefreshMiddleware"] = JWTRefreshMiddleware(inner)
    with contextlib.suppress(ImportError):  # Airflow >= 3.2; 3.1 has uvicorn log instead
        from airflow.api_fastapi.common.http_access_log import HttpAccessLogMiddleware

        stacks["HttpAccessLogMiddleware (to memory)"] = HttpAccessLogMiddleware(inner)
    body = b'{"call_details": {"status": "completed"}}'

    async def call(app: Any) -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await app(asgi_post_scope("/fuse/results/***", headers, client_port=40000), receive, send)

    async def timed(app: Any) -> float:
        for _ in range(200):
            await call(app)
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(requests):
                await call(app)
            runs.append((time.perf_counter() - start) / requests * 1e6)
        return statistics.median(runs)

    with contextlib.redirect_stdout(io.StringIO()):
        costs = {name: asyncio.run(timed(app)) for name, app in stacks.items()}
    bare = costs.pop("none (a bare Starlette app)")
    return {"a bare Starlette app": bare, **{f"+ {name}": cost - bare for name, cost in costs.items()}}


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model
        )
    import airflow

    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"Airflow {airflow.__version__}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.release()}"
    )


def table(results: dict[str, dict[str, list[float]]], count: int, concurrency: int) -> str:
    out = [
        f"callbacks/s ({count:,} a round, {concurrency} in flight; median over rounds)",
        "",
        "| journal | server | rounds | median/s | min/s | max/s | vs reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for journal, rates in results.items():
        reference = statistics.median(rates["reference"])
        for name in SERVERS:
            median = statistics.median(rates[name])
            out.append(
                f"| {journal} | {name} | {len(rates[name])} | {median:,.0f} | {min(rates[name]):,.0f} "
                f"| {max(rates[name]):,.0f} | {median / reference:.2f}× |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server (default 5)")
    parser.add_argument("--callbacks", type=int, default=5000, help="callbacks per round (default 5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument(
        "--journal", choices=["delete", "wal", "both"], default="both", help="SQLite journal mode"
    )
    parser.add_argument("--prefill", type=int, default=50_000, help="rows in the part for the last step cost")
    parser.add_argument("--reference", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        serve_reference(int(args.reference[0]), args.reference[1])
        return

    workdir = Path(tempfile.mkdtemp(prefix="fuse-bench-results-"))
    home = workdir / "airflow-home"
    journals = ["delete", "wal"] if args.journal == "both" else [args.journal]
    try:
        print(f"Machine: {machine()}", flush=True)
        print(f"Command: python benchmarks/bench_results.py {' '.join(sys.argv[1:])}".rstrip(), flush=True)
        os.environ.update(base_env(home))
        migrated = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            env=base_env(home),
            capture_output=True,
            text=True,
            check=False,
        )
        if migrated.returncode != 0:
            sys.exit(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")
        results = {
            journal: measure(home, workdir, journal, args.rounds, args.callbacks, args.concurrency)
            for journal in journals
        }
        costs = {journal: step_costs(workdir, journal, args.prefill) for journal in journals}
        middleware = middleware_costs()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(table(results, args.callbacks, args.concurrency))
    print()
    print("In process, one thread, µs per callback:")
    print()
    labels = list(next(iter(costs.values())))
    print("| step | " + " | ".join(journals) + " |")
    print("|---|" + "---|" * len(journals))
    for label in labels:
        print(f"| {label} | " + " | ".join(f"{costs[journal][label]:,.0f}" for journal in journals) + " |")
    print()
    print("The api-server's middlewares around every request, in process, µs added to a bare app:")
    print()
    print("| middleware | µs |")
    print("|---|---|")
    for name, cost in middleware.items():
        print(f"| {name} | {cost:,.0f} |")
    print()
    print(f"Target: the api-server stores >= {TARGET:.0f} callbacks/s (median):")
    for journal, rates in results.items():
        median = statistics.median(rates["api-server"])
        print(f"  {'MET   ' if median >= TARGET else 'MISSED'} journal={journal}: {median:,.0f}/s")


if __name__ == "__main__":
    main()
