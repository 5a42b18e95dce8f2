"""FuseHook.aget_call_status: the status read for the triggerer, held to what get_call_status does.

httpx's own transport is replaced by a recording stand-in where a test is about what is sent or how
an answer is read; a loopback server stands in for a proxy where the proxy setting is the subject.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import tracemalloc
import zlib
from collections.abc import Callable

import certifi
import httpx
import pytest
import requests
from fastapi import FastAPI, Request

from airflow_provider_fuse.calls import CallStatus
from airflow_provider_fuse.exceptions import (
    FuseConnectionLostError,
    FuseInvalidResponseError,
    FuseNotFoundError,
    FuseNotSentError,
    FuseRedirectError,
    FuseRequestError,
    FuseServerError,
    FuseTooManyRequestsError,
    FuseValidationError,
)
from airflow_provider_fuse.hooks.fuse import MAX_ANSWER_BYTES, FuseHook, classify_network_error
from tests.helpers import BASE_URL, DEVELOPER_KEY, connection_json, serving
from tests.hooks.helpers import STATUS_URL, make_hook

DETAILS = {
    "call_details": {"status": "completed", "attempts": "1", "duration": "30", "phone_number": "'6175551234'"}
}

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def fuse(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[httpx.Request]]:
    """Answer the hook's httpx requests with ``handler``, behind the client the hook builds;
    returns the list of requests sent."""

    def install(handler: Handler) -> list[httpx.Request]:
        sent: list[httpx.Request] = []

        async def handle(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return streamed(handler(request))

        monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", handle)
        return sent

    return install


class _Body(httpx.AsyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self):
        yield self.body


def streamed(answer: httpx.Response) -> httpx.Response:
    """``answer`` as a transport hands it over: its raw bytes still to be read (an
    ``httpx.Response(json=...)`` is read whole when it is made)."""
    return httpx.Response(answer.status_code, headers=answer.headers, stream=_Body(answer.content))


def read(hook: FuseHook, call_id: str = "77"):
    return asyncio.run(hook.aget_call_status(call_id))


def test_the_async_read_returns_the_details_the_sync_read_returns(fuse_connection, fuse, requests_mock):
    fuse(lambda request: httpx.Response(200, json=DETAILS))
    requests_mock.get(STATUS_URL, json=DETAILS)
    assert read(make_hook()) == make_hook().get_call_status("77")
    assert read(make_hook()).status is CallStatus.COMPLETED


def test_the_async_read_sends_the_request_the_sync_read_sends(fuse_connection, fuse, requests_mock):
    sent = fuse(lambda request: httpx.Response(200, json=DETAILS))
    requests_mock.get(STATUS_URL, json=DETAILS)
    read(make_hook())
    make_hook().get_call_status("77")
    (async_request,) = sent
    sync_request = requests_mock.last_request
    assert (async_request.method, str(async_request.url)) == (sync_request.method, sync_request.url)
    for name in ("Authorization", "Accept", "Accept-Encoding"):
        assert async_request.headers[name] == sync_request.headers[name]
    assert async_request.headers["User-Agent"].startswith("airflow-provider-fuse/")
    assert async_request.headers["User-Agent"].split()[0] == sync_request.headers["User-Agent"].split()[0]


def test_the_call_id_is_quoted_into_one_path_segment(fuse_connection, fuse):
    sent = fuse(lambda request: httpx.Response(200, json=DETAILS))
    read(make_hook(), "a/b c")
    assert sent[0].url.raw_path == b"/api/outbound/a%2Fb%20c"


def test_a_persistent_5xx_is_asked_again_as_often_as_the_sync_read_asks(fuse_connection, fuse, requests_mock):
    sent = fuse(lambda request: httpx.Response(503, json={"error": "Maintenance."}))
    requests_mock.get(STATUS_URL, status_code=503, json={"error": "Maintenance."})
    with pytest.raises(FuseServerError) as async_error:
        read(make_hook(connect_retries=2))
    with pytest.raises(FuseServerError) as sync_error:
        make_hook(connect_retries=2).get_call_status("77")
    assert len(sent) == requests_mock.call_count == 3
    assert str(async_error.value) == str(sync_error.value)


def test_a_5xx_then_an_answer_is_the_answer(fuse_connection, fuse):
    answers = iter([httpx.Response(502, text="<html>bad gateway</html>"), httpx.Response(200, json=DETAILS)])
    sent = fuse(lambda request: next(answers))
    assert read(make_hook()).status is CallStatus.COMPLETED
    assert len(sent) == 2


@pytest.mark.parametrize(("status", "error"), [(404, FuseNotFoundError), (429, FuseTooManyRequestsError)])
def test_a_rejection_is_raised_at_once_in_the_sync_reads_class(fuse_connection, fuse, status, error):
    sent = fuse(lambda request: httpx.Response(status, json={"error": "No outbound call was found."}))
    with pytest.raises(error, match=f"Fuse API answered {status}: No outbound call was found."):
        read(make_hook())
    assert len(sent) == 1


def test_a_redirect_is_not_followed(fuse_connection, fuse):
    sent = fuse(lambda request: httpx.Response(302, headers={"Location": "https://elsewhere.example.com/"}))
    with pytest.raises(FuseRedirectError):
        read(make_hook(connect_retries=0))
    assert [str(request.url) for request in sent] == [STATUS_URL]


def test_a_refused_connection_is_not_sent_and_tried_connect_retries_more_times(fuse_connection, fuse):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    sent = fuse(refuse)
    with pytest.raises(FuseNotSentError) as caught:
        read(make_hook(connect_retries=2))
    assert len(sent) == 3
    assert "Connection refused" not in str(caught.value)  # exception types only, never their text


def test_an_answer_cut_short_is_an_unknown_outcome_asked_again(fuse_connection, fuse):
    def cut(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    sent = fuse(cut)
    with pytest.raises(FuseConnectionLostError):
        read(make_hook(connect_retries=1))
    assert len(sent) == 2


def test_an_error_after_the_request_left_is_an_unknown_outcome_not_a_request_error(
    fuse_connection, monkeypatch
):
    async def left_then_failed(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        await request.extensions["trace"]("http11.send_request_headers.started", {})
        raise RuntimeError("something below httpx broke")

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", left_then_failed)
    with pytest.raises(FuseConnectionLostError, match="after it was sent"):
        read(make_hook(connect_retries=0))


def test_an_error_before_the_request_left_is_a_request_error(fuse_connection, fuse):
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("something below httpx broke")

    sent = fuse(broken)
    with pytest.raises(FuseRequestError, match="could not be made"):
        read(make_hook())
    assert len(sent) == 1


def test_a_ca_bundle_that_cannot_be_read_is_a_request_error_and_nothing_is_sent(monkeypatch, fuse, tmp_path):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra={"verify": str(tmp_path / "no.pem")})
    )
    sent = fuse(lambda request: httpx.Response(200, json=DETAILS))
    with pytest.raises(FuseRequestError, match="could not be made"):
        read(make_hook())
    assert sent == []


def test_an_invalid_connection_is_refused_before_any_request(monkeypatch, fuse):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="http://fuse.example.com/api"))
    sent = fuse(lambda request: httpx.Response(200, json=DETAILS))
    with pytest.raises(Exception, match="plain http"):
        read(make_hook())
    assert sent == []


def test_the_async_read_masks_the_key_and_the_authorization_header(monkeypatch, fuse):
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    key = "dk-only-read-by-the-async-path-7f3a"  # unique: no other test can have masked it
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(password=key))
    fuse(lambda request: httpx.Response(200, json=DETAILS))
    hook = make_hook()
    read(hook)
    authorization = hook.settings.authorization
    redacted = _secrets_masker().redact(f"{key} {authorization} {authorization.split()[1]}")
    assert key not in redacted
    assert authorization.split()[1] not in redacted


def test_the_connection_is_read_once_for_both_paths(fuse_connection, fuse, monkeypatch):
    fuse(lambda request: httpx.Response(200, json=DETAILS))
    hook = make_hook()
    read(hook)
    monkeypatch.setattr(FuseHook, "get_connection", lambda *args: pytest.fail("read again"))
    assert hook.settings.base_url == BASE_URL


def test_the_answer_scrub_removes_the_credential_and_numbers(fuse_connection, fuse):
    fuse(lambda request: httpx.Response(200, json=DETAILS))
    hook = make_hook()
    read(hook)
    assert hook.scrub(f"key {DEVELOPER_KEY} for 617 555 1234") == "key *** for [redacted]"


# --- the proxies extra ---------------------------------------------------------------------------


def test_the_proxies_extra_routes_the_async_read_through_the_proxy(monkeypatch):
    seen: list[tuple[str, str]] = []
    proxy = FastAPI()

    @proxy.get("/api/outbound/{call_id}")
    async def forwarded(call_id: str, request: Request) -> dict:
        seen.append((request.headers["host"], call_id))
        return DETAILS

    with serving(monkeypatch, proxy) as address:
        extra = {"allow_http": True, "proxies": {"http": address}}
        monkeypatch.setenv(
            "AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="http://fuse.invalid/api", extra=extra)
        )
        assert read(make_hook()).status is CallStatus.COMPLETED
    assert seen == [("fuse.invalid", "77")]


# --- httpx's failures in the hook's outcome classes ----------------------------------------------


REQUEST = httpx.Request("GET", STATUS_URL)
#: What an exception's text could quote of an answer.
QUOTED = "echoed answer text"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.UnsupportedProtocol(QUOTED, request=REQUEST), FuseRequestError),
        (httpx.InvalidURL(QUOTED), FuseRequestError),
        (httpx.LocalProtocolError(QUOTED, request=REQUEST), FuseRequestError),
        (httpx.ConnectError(QUOTED, request=REQUEST), FuseNotSentError),
        (httpx.ConnectTimeout(QUOTED, request=REQUEST), FuseNotSentError),
        (httpx.PoolTimeout(QUOTED, request=REQUEST), FuseNotSentError),
        (httpx.ProxyError(QUOTED, request=REQUEST), FuseNotSentError),
        (httpx.ReadTimeout(QUOTED, request=REQUEST), FuseConnectionLostError),
        (httpx.WriteTimeout(QUOTED, request=REQUEST), FuseConnectionLostError),
        (httpx.ReadError(QUOTED, request=REQUEST), FuseConnectionLostError),
        (httpx.RemoteProtocolError(QUOTED, request=REQUEST), FuseConnectionLostError),
        (httpx.DecodingError(QUOTED, request=REQUEST), FuseConnectionLostError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else value.__name__,
)
def test_httpx_failures_are_classified_where_requests_failures_are(error, expected):
    classified = classify_network_error(error)
    assert type(classified) is expected
    assert str(error) not in str(classified)  # types only: an exception's text may quote the answer


def test_details_hold_no_phone_number(fuse_connection, fuse):
    fuse(lambda request: httpx.Response(200, json=DETAILS))
    assert "6175551234" not in json.dumps(read(make_hook()).to_xcom())


# --- the same route for both paths: proxies from the extras and the environment, CA bundles -------


def _ca_bundles_loaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The CA files and directories TLS contexts are made with, from now on."""
    loaded: list[str] = []
    original = ssl.create_default_context

    def spy(*args: object, cafile: str | None = None, capath: str | None = None, **kwargs: object):
        loaded.extend(path for path in (cafile, capath) if path)
        return original(*args, cafile=cafile, capath=capath, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", spy)
    return loaded


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"REQUESTS_CA_BUNDLE": "corporate.pem"}, "corporate.pem"),
        ({"CURL_CA_BUNDLE": "curl.pem"}, "curl.pem"),
        ({"REQUESTS_CA_BUNDLE": "corporate.pem", "CURL_CA_BUNDLE": "curl.pem"}, "corporate.pem"),
        ({"SSL_CERT_FILE": "httpx-only.pem"}, None),  # read by httpx alone: not by either path
        ({}, None),
    ],
    ids=["requests-ca-bundle", "curl-ca-bundle", "requests-first", "ssl-cert-file", "none"],
)
def test_both_paths_verify_against_the_same_ca_bundle(
    monkeypatch, fuse, requests_mock, tmp_path, environment, expected
):
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, file_name in environment.items():
        shutil.copy(certifi.where(), tmp_path / file_name)
        monkeypatch.setenv(name, str(tmp_path / file_name))
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json())
    wanted = str(tmp_path / expected) if expected else requests.utils.DEFAULT_CA_BUNDLE_PATH
    requests_mock.get(STATUS_URL, json=DETAILS)
    make_hook().get_call_status("77")
    sync_bundle = requests_mock.last_request.verify
    assert (requests.utils.DEFAULT_CA_BUNDLE_PATH if sync_bundle is True else sync_bundle) == wanted
    fuse(lambda request: httpx.Response(200, json=DETAILS))
    loaded = _ca_bundles_loaded(monkeypatch)
    read(make_hook())
    assert loaded == [wanted]


def test_a_ca_bundle_in_the_extras_wins_over_the_environment_on_both_paths(
    monkeypatch, fuse, requests_mock, tmp_path
):
    shutil.copy(certifi.where(), tmp_path / "extra.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra={"verify": str(tmp_path / "extra.pem")})
    )
    requests_mock.get(STATUS_URL, json=DETAILS)
    make_hook().get_call_status("77")
    assert requests_mock.last_request.verify == str(tmp_path / "extra.pem")
    fuse(lambda request: httpx.Response(200, json=DETAILS))
    loaded = _ca_bundles_loaded(monkeypatch)
    read(make_hook())
    assert loaded == [str(tmp_path / "extra.pem")]


def _direct_and_proxy(monkeypatch: pytest.MonkeyPatch, seen: list[str]):
    """Two loopback servers answering the status read: "direct" (the connection's host) and
    "proxy"; each records its name in ``seen`` when asked."""
    apps = {}
    for name in ("direct", "proxy"):
        app = FastAPI()

        @app.get("/api/outbound/{call_id}")
        async def answer(call_id: str, name: str = name) -> dict:
            seen.append(name)
            return DETAILS

        apps[name] = app
    return serving(monkeypatch, apps["direct"]), serving(monkeypatch, apps["proxy"])


@pytest.mark.parametrize(
    ("extra_proxies", "environment", "expected"),
    [
        ({"http": "{proxy}"}, {}, "proxy"),  # no scheme: http://, as requests reads it
        ({"all": "{proxy}"}, {}, "proxy"),
        ({"http": "http://{proxy}", "no_proxy": "127.0.0.1"}, {}, "proxy"),  # no_proxy: the env's only
        ({}, {"HTTP_PROXY": "http://{proxy}"}, "proxy"),
        ({"no_proxy": "127.0.0.1"}, {"HTTP_PROXY": "http://{proxy}"}, "direct"),
        ({}, {"HTTP_PROXY": "http://{proxy}", "NO_PROXY": "127.0.0.1"}, "direct"),
    ],
    ids=["no-scheme", "all", "extra-no-proxy", "env-proxy", "env-proxy-extra-no-proxy", "env-no-proxy"],
)
def test_one_proxy_setting_takes_both_paths_the_same_way(monkeypatch, extra_proxies, environment, expected):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: list[str] = []
    direct_server, proxy_server = _direct_and_proxy(monkeypatch, seen)
    with direct_server as direct, proxy_server as proxy:
        proxy_address = proxy.removeprefix("http://")

        def fill(text: str) -> str:
            return text.replace("{proxy}", proxy_address)

        for name, value in environment.items():
            monkeypatch.setenv(name, fill(value))
        extra = {"proxies": {key: fill(value) for key, value in extra_proxies.items()}}
        monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host=f"{direct}/api", extra=extra))
        assert make_hook().get_call_status("77").status is CallStatus.COMPLETED
        assert read(make_hook()).status is CallStatus.COMPLETED
    assert seen == [expected, expected]


@pytest.mark.parametrize("key", ["htps", "HTTPS", "no-proxy", "ftp"])
def test_a_proxies_key_requests_would_ignore_is_refused_naming_it(monkeypatch, fuse, key):
    extra = {"proxies": {key: "http://proxy.internal:3128"}}
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra=extra))
    sent = fuse(lambda request: httpx.Response(200, json=DETAILS))
    with pytest.raises(FuseValidationError, match=f"extra.proxies.{key}: is not a key requests reads"):
        make_hook().settings  # noqa: B018
    with pytest.raises(FuseValidationError, match=f"extra.proxies.{key}"):
        read(make_hook())
    assert sent == []


# --- SOCKS in the triggerer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "socksio", "named"),
    [
        ("socks4://127.0.0.1:1080", True, "socks4, which the triggerer's HTTP client \\(httpx\\) does not"),
        ("socks4a://127.0.0.1:1080", True, "socks4a, which the triggerer's HTTP client"),
        ("socks5://127.0.0.1:1080", False, "needs socksio.*pip install 'httpx\\[socks\\]'"),
        ("socks5h://127.0.0.1:1080", False, "needs socksio.*pip install 'httpx\\[socks\\]'"),
    ],
)
def test_a_socks_proxy_the_async_path_cannot_use_is_a_request_error_naming_the_fix(
    monkeypatch, fuse, proxy, socksio, named
):
    import importlib.util

    from airflow_provider_fuse.hooks import settings as hook_module

    monkeypatch.setattr(hook_module, "_socks_available", lambda: True)  # PySocks: the sync path can
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: (
            (find_spec("json") if socksio else None) if name == "socksio" else find_spec(name, *args)
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra={"proxies": {"https": proxy}}))
    sent = fuse(lambda request: httpx.Response(200, json=DETAILS))
    with pytest.raises(FuseRequestError, match=f"^not sent: .*{named}"):
        read(make_hook())
    assert sent == []


# --- compressed answers --------------------------------------------------------------------------


def test_both_paths_ask_for_answers_uncompressed(fuse_connection, fuse, requests_mock):
    sent = fuse(lambda request: httpx.Response(200, json=DETAILS))
    requests_mock.get(STATUS_URL, json=DETAILS)
    read(make_hook())
    make_hook().get_call_status("77")
    assert sent[0].headers["Accept-Encoding"] == "identity"
    assert requests_mock.last_request.headers["Accept-Encoding"] == "identity"


def _gzip(size: int) -> bytes:
    """``size`` zero bytes, gzipped (a few hundred KiB for hundreds of MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(2**20)
    return b"".join(packer.compress(block) for _ in range(size // 2**20)) + packer.flush()


def test_a_gzip_bomb_is_refused_without_inflating_more_than_the_read_cap(fuse_connection, monkeypatch):
    bomb = _gzip(256 * 2**20)
    assert len(bomb) < MAX_ANSWER_BYTES

    async def answer(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        # Sent compressed although the hook asked for identity; all of it in one chunk.
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=_Body(bomb))

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", answer)
    tracemalloc.start()
    try:
        with pytest.raises(FuseInvalidResponseError, match="not read whole"):
            read(make_hook(connect_retries=0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_ANSWER_BYTES, f"peak {peak} bytes allocated"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_a_compressed_answer_within_the_cap_is_read(fuse_connection, monkeypatch, encoding):
    body = json.dumps(DETAILS).encode()
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw-deflate": -zlib.MAX_WBITS}[encoding]
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    packed = packer.compress(body) + packer.flush()
    header = encoding.removeprefix("raw-")

    async def answer(transport: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": header}, stream=_Body(packed))

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", answer)
    assert read(make_hook()).status is CallStatus.COMPLETED
