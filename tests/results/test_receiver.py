"""The results receiver app: token first, body capped, parsed, stored once, and no token in any log."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from airflow_provider_fuse.results.callbacks import MAX_BODY_BYTES
from airflow_provider_fuse.results.config import ResultsConfig, ResultsConfigUnreadable
from airflow_provider_fuse.results.receiver import (
    MASK,
    MAX_WAITING_STORES,
    STORE_THREADS,
    create_app,
    mask_path,
)
from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable
from airflow_provider_fuse.results.tokens import NOT_CONFIGURED_DETAIL, UploadPart, new_campaign, sign
from harness import asgi_post_scope

KEY = secrets.token_hex(24)
CONN_ID = "fuse_results_test"
TABLE = "fuse_call_results"
PHONE = "6175550123"
CAMPAIGN = new_campaign()


def details(status: str = "completed", attempts: int = 1, phone: str = PHONE) -> dict[str, Any]:
    """A call_details object as the documented sample has it: numbers as strings, the number quoted."""
    now = int(time.time())
    return {
        "status": status,
        "attempts": str(attempts),
        "max_attempts": "3",
        "queued_timestamp": str(now - 120),
        "start_timestamp": str(now - 60),
        "end_timestamp": str(now),
        "reattempt_wait": "60",
        "events": [{"event": "queued", "timestamp": str(now - 120)}],
        "duration": "42",
        "phone_number": f"'{phone}'",
    }


def part(**fields: Any) -> UploadPart:
    values: dict[str, Any] = {
        "dag_id": "campaign",
        "run_id": "manual__receiver",
        "task_id": "queue_calls",
        "map_index": -1,
        "campaign": CAMPAIGN,
        "part": 0,
        "rows": 100,
        "expires": int(time.time()) + 3600,
    }
    values.update(fields)
    return UploadPart(**values)


def token(key: str = KEY, **fields: Any) -> str:
    return sign(part(**fields), key)


class Recorder:
    """Outermost ASGI layer, as a server sees the request: the path when the response starts (uvicorn's
    access log) and after the app returns (Airflow's HttpAccessLogMiddleware)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[tuple[str, str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append(("start", scope["path"], scope.get("raw_path", b"")))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.seen.append(("end", scope["path"], scope.get("raw_path", b"")))


class Client:
    """A synchronous client calling an ASGI app in process (httpx's ASGITransport; one event loop a
    request, as the receiver must not depend on one)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)


def mounted(app: Any) -> Client:
    return Client(Starlette(routes=[Mount("/fuse", app=app)]))


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite://{path}")
    return path


def config(signing_key: str | None = KEY) -> ResultsConfig:
    return ResultsConfig(
        base_url="http://127.0.0.1:8080",
        conn_id=CONN_ID,
        table=TABLE,
        signing_key=signing_key,
        token_lifetime=3600,
    )


@pytest.fixture
def recorder(database: Path) -> Recorder:
    return Recorder(Starlette(routes=[Mount("/fuse", app=create_app(load_config=config))]))


@pytest.fixture
def client(recorder: Recorder) -> Client:
    return Client(recorder)


def rows(database: Path) -> list[dict[str, Any]]:
    if not database.exists():
        return []
    with sqlite3.connect(database) as db:
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute(f"SELECT * FROM {TABLE}")]
        except sqlite3.OperationalError:  # no table yet
            return []


def post(client: Client, tok: str, body: Any = None, **kwargs: Any) -> Any:
    if body is None and "content" not in kwargs:
        body = {"call_details": details()}
    if body is not None:
        kwargs["json"] = body
    return client.post(f"/fuse/results/{tok}", **kwargs)


# --- Accepted and stored ------------------------------------------------------------------------


def test_a_json_callback_is_stored_and_answered_stored(client: Client, database: Path) -> None:
    answer = post(client, token())

    assert answer.status_code == 200
    assert answer.json() == {"stored": "stored"}
    [row] = rows(database)
    assert (row["dag_id"], row["run_id"], row["task_id"], row["map_index"], row["part"]) == (
        "campaign",
        "manual__receiver",
        "queue_calls",
        -1,
        0,
    )
    assert row["status"] == "completed"
    assert row["attempts"] == 1


def test_xml_and_form_callbacks_are_stored(client: Client, database: Path) -> None:
    xml = (
        "<result><call_details><status>failed</status><attempts>3</attempts>"
        f"<phone_number>'{PHONE}'</phone_number></call_details></result>"
    )
    form = {"status": "canceled", "attempts": "1", "phone_number": f"'{PHONE}'"}

    assert post(client, token(), None, content=xml, headers={"content-type": "application/xml"}).json() == {
        "stored": "stored"
    }
    assert client.post(f"/fuse/results/{token()}", data=form).json() == {"stored": "stored"}
    assert sorted(row["status"] for row in rows(database)) == ["canceled", "failed"]


def test_a_repeated_delivery_is_stored_once(client: Client, database: Path) -> None:
    body = {"call_details": details()}

    first = post(client, token(), body)
    again = post(client, token(), body)

    assert first.json() == {"stored": "stored"}
    assert again.status_code == 200
    assert again.json() == {"stored": "duplicate"}
    assert len(rows(database)) == 1


def test_the_received_timestamp_comes_from_the_clock(database: Path) -> None:
    now = time.time()
    assert post(mounted(create_app(load_config=config, clock=lambda: now)), token()).status_code == 200
    [row] = rows(database)
    assert float(row["received_timestamp"]) == pytest.approx(now, abs=1)


def test_a_part_holding_all_its_outcomes_refuses_another_with_409(client: Client, database: Path) -> None:
    one_row = token(rows=1)

    assert post(client, one_row, {"call_details": details(phone="6175550100")}).status_code == 200
    refused = post(client, one_row, {"call_details": details(phone="6175550101")})

    assert refused.status_code == 409
    assert len(rows(database)) == 1


# --- Refused before anything is read ------------------------------------------------------------


def flipped(value: str) -> str:
    index = len(value) // 3
    return value[:index] + ("A" if value[index] != "A" else "B") + value[index + 1 :]


@pytest.mark.parametrize(
    ("kind", "make", "reason"),
    [
        ("another key", lambda: token(key=secrets.token_hex(24)), "not signed with this key"),
        ("a flipped character", lambda: flipped(token()), "token"),
        ("truncated", lambda: token()[:-5], "token"),
        ("no signature", lambda: token().split(".")[0], "malformed"),
        ("empty", lambda: "", "malformed"),
        ("garbage", lambda: "not-a-token", "malformed"),
    ],
)
def test_a_forged_token_is_refused_with_403_nothing_stored_one_warning(
    client: Client, database: Path, caplog: pytest.LogCaptureFixture, kind: str, make: Any, reason: str
) -> None:
    forged = make()
    caplog.set_level(logging.DEBUG)

    answer = post(client, forged)

    assert answer.status_code == 403, kind
    assert rows(database) == []
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert reason in warnings[0].getMessage()
    assert forged == "" or forged not in caplog.text
    assert PHONE not in caplog.text


def test_an_expired_token_is_refused_with_403_and_says_so(
    client: Client, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expired = token(expires=int(time.time()) - 1)

    answer = post(client, expired)

    assert answer.status_code == 403
    assert rows(database) == []
    [warning] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert "expired" in warning.getMessage()
    assert expired not in caplog.text


def call_asgi(app: Any, path: str, body_chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> Any:
    """One request straight through ASGI; returns (status, reads): how many body messages were read."""
    reads = 0
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads > len(body_chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": body_chunks[reads - 1], "more_body": reads < len(body_chunks)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    asyncio.run(app(asgi_post_scope(path, headers), receive, send))
    return status[0], reads


def test_a_forged_token_is_refused_without_reading_the_body(database: Path) -> None:
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=config))])
    body = json.dumps({"call_details": details()}).encode()

    status, reads = call_asgi(
        app, f"/fuse/results/{flipped(token())}", [body], [(b"content-type", b"application/json")]
    )

    assert (status, reads) == (403, 0)


def test_a_declared_length_over_the_cap_is_refused_with_413_before_reading(database: Path) -> None:
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=config))])

    status, reads = call_asgi(
        app,
        f"/fuse/results/{token()}",
        [b"{" * 10],
        [(b"content-type", b"application/json"), (b"content-length", str(MAX_BODY_BYTES + 1).encode())],
    )

    assert (status, reads) == (413, 0)
    assert rows(database) == []


def test_a_streamed_body_over_the_cap_is_refused_with_413_without_reading_the_rest(database: Path) -> None:
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=config))])
    chunk = b" " * (16 * 1024)
    chunks = [chunk] * 100  # 1.6 MB, no Content-Length

    status, reads = call_asgi(
        app, f"/fuse/results/{token()}", chunks, [(b"content-type", b"application/json")]
    )

    assert status == 413
    assert reads == MAX_BODY_BYTES // len(chunk) + 1
    assert rows(database) == []


def test_a_body_at_the_cap_is_read(client: Client, database: Path) -> None:
    body = json.dumps({"call_details": details()}).encode()
    padded = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"

    answer = post(client, token(), None, content=padded, headers={"content-type": "application/json"})

    assert len(padded) == MAX_BODY_BYTES
    assert answer.status_code == 200


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refused_token_lines_are_rate_limited_per_kind_and_count_the_rest(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = mounted(create_app(load_config=config, monotonic=clock))
    forged, expired = token(key=secrets.token_hex(24)), token(expires=int(time.time()) - 1)
    caplog.set_level(logging.DEBUG)

    def warnings() -> list[str]:
        lines = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
        assert forged not in caplog.text
        assert expired not in caplog.text
        caplog.clear()
        return lines

    assert post(client, forged).status_code == 403
    assert warnings() == ["Refused a call outcome: token not signed with this key"]
    for _ in range(56):
        clock.now += 0.1
        assert post(client, forged).status_code == 403
    assert post(client, expired).status_code == 403  # another kind: its own line
    assert warnings() == ["Refused a call outcome: the results token has expired"]

    clock.now = 1010.0  # 10 s after the first line
    assert post(client, forged).status_code == 403
    assert warnings() == [
        "Refused 57 call outcomes in the last 10 s: token not signed with this key (one line per 10 s)"
    ]
    clock.now += 9.9
    assert post(client, forged).status_code == 403
    assert warnings() == []
    clock.now += 60
    assert post(client, forged).status_code == 403
    assert warnings() == [
        "Refused 2 call outcomes in the last 70 s: token not signed with this key (one line per 10 s)"
    ]
    clock.now += 60
    assert post(client, forged).status_code == 403
    assert warnings() == ["Refused a call outcome: token not signed with this key"]
    assert forged not in caplog.text


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"call_details": ', "application/json", 400),
        (b'{"no": "details"}', "application/json", 400),
        (b"\x00\x01", "image/png", 415),
    ],
)
def test_an_unreadable_body_is_refused_and_not_quoted(
    client: Client,
    database: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    answer = post(client, token(), None, content=content, headers={"content-type": content_type})

    assert answer.status_code == status
    assert content.decode("latin-1") not in answer.text
    assert rows(database) == []


DEEP_XML = b"<result><call_details>" + b"<a>" * 2000 + b"</a>" * 2000 + b"</call_details></result>"
FORM_INDEX = "call_details[status]=completed&call_details[events][%C2%B2][event]=" + PHONE  # "²"


@pytest.mark.parametrize(
    ("content", "content_type", "quoted"),
    [
        (DEEP_XML, "application/xml", "<a><a>"),
        (FORM_INDEX.encode(), "application/x-www-form-urlencoded", "\u00b2"),
        (b"status=completed&events[%C2%B2][event]=x", "application/x-www-form-urlencoded", "\u00b2"),
        (b"events[%C2%B2][event]=x", "application/x-www-form-urlencoded", "\u00b2"),  # no status
    ],
    ids=["xml 2000 deep", "call_details[events][\u00b2]", "events[\u00b2]", "events[\u00b2] alone"],
)
def test_bodies_python_cannot_take_are_refused_with_400_and_not_quoted(
    client: Client,
    database: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
    content_type: str,
    quoted: str,
) -> None:
    caplog.set_level(logging.DEBUG)

    answer = post(client, token(), None, content=content, headers={"content-type": content_type})

    assert answer.status_code == 400
    assert rows(database) == []
    for text in (caplog.text, answer.text):
        assert quoted not in text
        assert "%C2%B2" not in text
        assert PHONE not in text


def test_any_other_error_reading_the_body_is_a_400_logging_only_its_type(
    client: Client, database: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_read(body: bytes, content_type: str | None) -> Any:
        raise ValueError(f"invalid literal for int() with base 10: {body.decode()!r}")

    monkeypatch.setattr("airflow_provider_fuse.results.receiver.read_callback", failing_read)

    answer = post(client, token())

    assert answer.status_code == 400
    assert rows(database) == []
    [line] = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert line == (
        "Could not read a call outcome for campaign/manual__receiver/queue_calls part 0 "
        "(answered 400): ValueError"
    )
    assert PHONE not in caplog.text
    assert PHONE not in answer.text


@pytest.mark.parametrize("declared", ["\u00b2", "1" * 5000, " 12x", "-1"])
def test_a_content_length_that_is_not_ascii_digits_is_not_an_error(database: Path, declared: str) -> None:
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=config))])
    body = json.dumps({"call_details": details()}).encode()

    status, _ = call_asgi(
        app,
        f"/fuse/results/{token()}",
        [body],
        [(b"content-type", b"application/json"), (b"content-length", declared.encode("latin-1"))],
    )

    assert status == (413 if declared.isdigit() and declared.isascii() else 200)


# --- 503: nothing could be stored, so the sender may retry --------------------------------------


def test_a_store_failure_answers_503_so_the_sender_retries(
    client: Client, database: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_store(self: ResultsTable, *args: Any, **kwargs: Any) -> Any:
        raise ResultsStoreError("the database is locked")

    monkeypatch.setattr(ResultsTable, "store", failing_store)

    answer = post(client, token())

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "60"
    assert "the database is locked" in caplog.text
    assert "campaign/manual__receiver/queue_calls part 0" in caplog.text


def test_an_unexpected_store_error_answers_503_and_logs_only_its_type(
    client: Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_store(self: ResultsTable, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"could not bind {PHONE}")

    monkeypatch.setattr(ResultsTable, "store", failing_store)

    answer = post(client, token())

    assert answer.status_code == 503
    assert "RuntimeError" in caplog.text
    assert PHONE not in caplog.text


def test_a_missing_connection_answers_503_and_the_next_request_tries_again(
    database: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(f"AIRFLOW_CONN_{CONN_ID.upper()}")
    client = mounted(create_app(load_config=config))
    assert post(client, token()).status_code == 503
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite://{database}")
    assert post(client, token()).status_code == 200
    assert len(rows(database)) == 1


def test_a_missing_signing_key_answers_503_naming_the_option(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answer = post(mounted(create_app(load_config=lambda: config(signing_key=None))), token())

    assert answer.status_code == 503
    assert "results_signing_key" in caplog.text
    assert rows(database) == []


def test_a_config_that_cannot_be_read_answers_503_and_logs_only_the_error_type(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def unreadable() -> ResultsConfig:
        raise RuntimeError(f"the secrets backend said {KEY}")

    answer = post(mounted(create_app(load_config=unreadable)), token())

    assert answer.status_code == 503
    assert "RuntimeError" in caplog.text
    assert KEY not in caplog.text


def test_a_signing_key_command_failing_for_now_is_a_plain_503_and_the_receiver_recovers(
    database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Not the receiver's own "not configured": the bulk task's check before dialing fails on that one,
    # without retries, while a _cmd or a secrets backend failing now may work by the next try.
    from airflow_provider_fuse.results import receiver

    key_file = tmp_path / "signing.key"
    monkeypatch.delenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY", raising=False)
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_SIGNING_KEY_CMD", f"cat {key_file}")
    monkeypatch.setenv("AIRFLOW__FUSE__RESULTS_CONN_ID", CONN_ID)
    monkeypatch.setattr(receiver, "CONFIG_RETRY_INTERVAL", 0.0)
    client = mounted(create_app(load_config=ResultsConfig.load))

    answer = post(client, token())

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "60"
    assert answer.json()["detail"] != NOT_CONFIGURED_DETAIL
    assert "results_signing_key could not be read" in caplog.text
    assert str(key_file) not in caplog.text
    key_file.write_text(KEY)
    assert post(client, token()).status_code == 200


@pytest.mark.parametrize(
    "error", [ResultsConfigUnreadable("[fuse] results_signing_key could not be read"), RuntimeError(KEY)]
)
def test_a_config_unreadable_for_now_is_not_answered_as_not_configured(
    database: Path, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    def unreadable() -> ResultsConfig:
        raise error

    answer = post(mounted(create_app(load_config=unreadable)), token())

    assert answer.status_code == 503
    assert answer.json()["detail"] != NOT_CONFIGURED_DETAIL
    assert KEY not in caplog.text


def test_the_config_is_loaded_once(database: Path) -> None:
    loads = []

    def counting_config() -> ResultsConfig:
        loads.append(1)
        return config()

    client = mounted(create_app(load_config=counting_config))
    for attempts in range(1, 4):
        assert post(client, token(), {"call_details": details(attempts=attempts)}).status_code == 200

    assert len(loads) == 1


def test_the_config_is_not_read_when_the_app_is_created() -> None:
    def exploding_config() -> ResultsConfig:
        raise AssertionError("read at creation")

    create_app(load_config=exploding_config)


# --- Nothing to read, and no token in any path a server logs ------------------------------------


@pytest.mark.parametrize(
    "path", ["/fuse/docs", "/fuse/redoc", "/fuse/openapi.json", "/fuse/", "/fuse/results"]
)
def test_there_is_nothing_to_read(client: Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_a_token_cannot_read_its_results(client: Client) -> None:
    tok = token()
    assert post(client, tok).status_code == 200

    assert client.get(f"/fuse/results/{tok}").status_code == 405


@pytest.mark.parametrize(
    ("method", "suffix", "status"),
    [
        ("POST", "", 200),
        ("POST", "-forged", 403),
        ("GET", "", 405),
        ("PUT", "", 405),
        ("POST", "/extra", 403),
    ],
)
def test_servers_see_the_path_without_the_token(
    client: Client, recorder: Recorder, method: str, suffix: str, status: int
) -> None:
    tok = token() + suffix
    kwargs = {"json": {"call_details": details()}} if method != "GET" else {}

    answer = client.request(method, f"/fuse/results/{tok}", **kwargs)

    assert answer.status_code == status
    assert recorder.seen == [
        ("start", "/fuse/results/***", b"/fuse/results/***"),
        ("end", "/fuse/results/***", b"/fuse/results/***"),
    ]


def test_other_paths_below_the_app_are_masked_whole(client: Client, recorder: Recorder) -> None:
    tok = token()

    assert client.post(f"/fuse/result/{tok}").status_code == 404
    assert client.post(f"/fuse//results/{tok}").status_code == 404

    assert {path for _, path, _ in recorder.seen} == {"/fuse/***"}


def test_airflow_access_log_middleware_logs_the_masked_path(database: Path) -> None:
    """Airflow 3.2+ logs each request with HttpAccessLogMiddleware, after the app returns."""
    access_log = pytest.importorskip("airflow.api_fastapi.common.http_access_log")
    from structlog.testing import capture_logs

    app = access_log.HttpAccessLogMiddleware(
        Starlette(routes=[Mount("/fuse", app=create_app(load_config=config))])
    )
    tok = token()
    with capture_logs() as logs:
        post(Client(app), tok)
        Client(app).get(f"/fuse/results/{tok}")

    paths = [entry["path"] for entry in logs if entry.get("event") == "request finished"]
    assert paths == ["/fuse/results/***", "/fuse/results/***"]
    assert tok not in repr(logs)


@pytest.mark.parametrize(
    ("path", "root_path", "masked", "found"),
    [
        ("/fuse/results/abc.def", "/fuse", "/fuse/results/***", "abc.def"),
        ("/airflow/fuse/results/abc.def", "/airflow/fuse", "/airflow/fuse/results/***", "abc.def"),
        ("/results/abc.def", "", "/results/***", "abc.def"),
        ("/fuse/results/", "/fuse", "/fuse/results/***", ""),
        ("/fuse/results", "/fuse", "/fuse/***", None),
        ("/fuse/other/abc.def", "/fuse", "/fuse/***", None),
        ("/fuse", "/fuse", "/fuse/***", None),
        ("/fusebox/results/abc", "/fuse", "/***", None),
    ],
)
def test_mask_path(path: str, root_path: str, masked: str, found: str | None) -> None:
    scope: dict[str, Any] = {"path": path, "raw_path": path.encode(), "root_path": root_path}

    assert mask_path(scope) == found
    assert scope["path"] == masked
    assert scope["raw_path"] == masked.encode()


def test_logs_never_hold_the_token_or_the_number(
    client: Client, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tok = token(rows=1)
    post(client, tok)
    post(client, tok)
    post(client, tok, {"call_details": details(phone="6175550999")})
    post(client, flipped(tok))
    post(client, token(expires=int(time.time()) - 5))
    post(client, tok, None, content=b"<result>", headers={"content-type": "application/xml"})

    assert tok not in caplog.text
    assert PHONE not in caplog.text
    assert "6175550999" not in caplog.text


@given(route=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_a_masked_path_is_one_of_two_and_the_token_is_all_that_was_cut(route: str) -> None:
    path = "/fuse/" + route
    scope: dict[str, Any] = {"path": path, "raw_path": path.encode(), "root_path": "/fuse"}

    found = mask_path(scope)

    assert scope["path"] in ("/fuse/results/***", "/fuse/***")
    assert scope["raw_path"] == scope["path"].encode()
    if found is None:
        assert scope["path"] == "/fuse/" + MASK
    else:
        assert path == "/fuse/results/" + found


# --- Every wait is bounded: the database, the body -------------------------------------------------


class Stuck:
    """ResultsTable.store replaced by a wait for ``release`` (a database that does not answer)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.entered = 0
        release, stuck = self.release, self

        def store(table: ResultsTable, *args: Any, **kwargs: Any) -> Any:
            stuck.entered += 1
            release.wait(30)
            raise ResultsStoreError("the database did not answer")

        monkeypatch.setattr(ResultsTable, "store", store)


async def _post_all(app: Any, tokens: list[str]) -> list[tuple[int, str | None, float]]:
    """POST one outcome (each its own number) with each token, all at once: (status, Retry-After,
    seconds taken) of each."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

        async def one(index: int, tok: str) -> tuple[int, str | None, float]:
            started = time.monotonic()
            body = {"call_details": details(phone=f"617556{index:04d}")}
            answer = await client.post(f"/fuse/results/{tok}", json=body)
            return answer.status_code, answer.headers.get("retry-after"), time.monotonic() - started

        return await asyncio.gather(*(one(index, tok) for index, tok in enumerate(tokens)))


def test_a_database_that_does_not_answer_is_answered_503_within_the_bound(
    database: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = Stuck(monkeypatch)
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=config, store_timeout=0.5))])
    try:
        # Twice as many requests as threads: the ones queued behind the stuck threads too.
        answers = asyncio.run(_post_all(app, [token()] * (2 * STORE_THREADS)))
        assert [(status, retry) for status, retry, _ in answers] == [(503, "60")] * (2 * STORE_THREADS)
        assert max(took for *_, took in answers) < 2.0
        # Every thread is stuck now: the next request is answered at once, not after the bound.
        [(status, _, took)] = asyncio.run(_post_all(app, [token()]))
        assert status == 503
        assert took < 0.4
        # The queued requests were answered and never run afterwards.
        assert stuck.entered == STORE_THREADS
    finally:
        stuck.release.set()
    assert PHONE not in caplog.text


def test_a_held_sqlite_lock_is_answered_503_within_the_bound(database: Path) -> None:
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=config, store_timeout=1.0))])
    assert post(Client(app), token(), {"call_details": details(phone="6175550001")}).status_code == 200
    holder = sqlite3.connect(database, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        answers = asyncio.run(_post_all(app, [token()] * 6))
    finally:
        holder.rollback()
        holder.close()
    assert [status for status, *_ in answers] == [503] * 6
    assert max(took for *_, took in answers) < 3.0


def test_a_config_that_does_not_load_in_time_is_answered_503(database: Path) -> None:
    release = threading.Event()

    def slow_config() -> ResultsConfig:
        release.wait(30)
        return config()

    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=slow_config, store_timeout=0.3))])
    try:
        [(status, retry, took)] = asyncio.run(_post_all(app, [token()]))
    finally:
        release.set()
    assert (status, retry) == (503, "60")
    assert took < 2.0


def test_a_receiver_too_slow_to_read_its_config_does_not_answer_that_it_is_not_configured(
    database: Path,
) -> None:
    # The bulk task's check before dialing fails a task on the receiver's own "not configured": a
    # receiver merely busy or slow must not give that answer (a plain 503, a warning there).
    release = threading.Event()

    def slow_config() -> ResultsConfig:
        release.wait(30)
        return config()

    try:
        answer = post(mounted(create_app(load_config=slow_config, store_timeout=0.3)), token())
    finally:
        release.set()
    assert answer.status_code == 503
    assert answer.json()["detail"] != NOT_CONFIGURED_DETAIL


def test_a_body_that_stalls_is_answered_408_within_the_bound(database: Path) -> None:
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=config, body_timeout=0.3))])
    status: list[int] = []
    headers: list[Any] = []
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads == 1:
            return {"type": "http.request", "body": b'{"call_', "more_body": True}
        await asyncio.sleep(60)  # the sender stalls
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
            headers.extend(message["headers"])

    scope = asgi_post_scope(
        f"/fuse/results/{token()}", [(b"content-type", b"application/json"), (b"content-length", b"400")]
    )
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))

    assert status == [408]
    assert (b"connection", b"close") in headers
    assert time.monotonic() - started < 3
    assert rows(database) == []


# --- An outcome that can never be stored is final (400), not retried ---------------------------------


@pytest.mark.parametrize("character", ["\x00", "\ud800", "\x1f"], ids=repr)
def test_a_number_no_database_stores_is_refused_with_400(
    client: Client, database: Path, character: str
) -> None:
    body = json.dumps({"call_details": details(phone=f"617555{character}0123")})

    answer = post(client, token(), None, content=body, headers={"content-type": "application/json"})

    assert answer.status_code == 400
    assert "retry-after" not in answer.headers
    assert rows(database) == []


def test_a_store_error_marked_final_is_a_400(
    client: Client, database: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refusing_store(self: ResultsTable, *args: Any, **kwargs: Any) -> Any:
        error = ResultsStoreError("the database refuses a value of this outcome")
        error.final = True  # type: ignore[attr-defined]
        raise error

    monkeypatch.setattr(ResultsTable, "store", refusing_store)

    answer = post(client, token())

    assert answer.status_code == 400
    assert "retry-after" not in answer.headers
    assert PHONE not in caplog.text


# --- Logs stay bounded under a flood ----------------------------------------------------------------


def test_a_flood_against_an_unconfigured_receiver_logs_a_bounded_number_of_lines(
    database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loads: list[int] = []

    def unconfigured() -> ResultsConfig:
        loads.append(1)
        return config(signing_key=None)

    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=unconfigured))])
    caplog.set_level(logging.DEBUG, logger="airflow_provider_fuse")
    forged = [flipped(token()) for _ in range(500)]

    answers = asyncio.run(_post_all(app, forged))

    assert {status for status, *_ in answers} == {503}
    lines = [
        record.getMessage() for record in caplog.records if record.name.startswith("airflow_provider_fuse")
    ]
    # One line per kind in the rate limit's window: not configured, and (when more arrive at once
    # than may wait for the config's first read) busy.
    assert 1 <= len(lines) <= 2
    assert any("results_signing_key" in line for line in lines)
    assert not any("within" in line for line in lines)  # busy is not told as a slow config
    assert len(loads) <= 2  # a failed load is not tried again for every request


def test_a_flood_of_outcomes_for_a_full_part_logs_a_bounded_number_of_lines(
    client: Client, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = token(rows=1)
    assert post(client, full).status_code == 200
    caplog.set_level(logging.DEBUG, logger="airflow_provider_fuse")
    app = Starlette(routes=[Mount("/fuse", app=create_app(load_config=config))])

    # More at once than may wait for the database: those past MAX_WAITING_STORES are 503 (retried).
    answers = asyncio.run(_post_all(app, [full] * (MAX_WAITING_STORES + 44)))

    statuses = [status for status, *_ in answers]
    assert set(statuses) <= {409, 503}
    assert statuses.count(409) >= 1
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    # At most one line per kind (part full; stores waiting) in the rate limit's window.
    assert len(warnings) <= 2
    assert any("already holds" in message for message in warnings)
    assert not any("not answering" in message for message in warnings)  # a full queue says so


def test_a_signing_key_command_that_fails_leaks_nothing_to_the_receiver_log(
    database: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_fuse import _compat

    printed = "k3y-PRINTED-by-a-failing-command-0123456789"

    def failing_get(*args: object, **kwargs: object) -> str:
        # What Airflow's AirflowConfigException says of a failing _cmd: its output.
        raise RuntimeError(f"Cannot run the command: output {printed!r}, error ''")

    monkeypatch.setattr(_compat.conf, "get", failing_get)
    caplog.set_level(logging.DEBUG)

    answer = post(mounted(create_app(load_config=ResultsConfig.load)), token())

    assert answer.status_code == 503
    assert "could not be read: RuntimeError" in caplog.text
    assert printed not in caplog.text
