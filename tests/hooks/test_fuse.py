"""FuseHook against requests-mock: connection, the exact request, answers, and failure classes."""

from __future__ import annotations

import base64
import io
import tracemalloc
from pathlib import Path

import pytest
import requests
from requests_toolbelt.multipart.encoder import MultipartEncoder
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from airflow_provider_fuse import __version__
from airflow_provider_fuse.exceptions import (
    FuseAuthenticationError,
    FuseBadRequestError,
    FuseConnectionLostError,
    FuseDeletedError,
    FuseInvalidResponseError,
    FuseMethodNotAllowedError,
    FuseNotFoundError,
    FuseNotSentError,
    FusePermissionError,
    FuseRedirectError,
    FuseRejectedError,
    FuseServerError,
    FuseTooManyRequestsError,
    FuseValidationError,
    Outcome,
    nothing_queued,
)
from airflow_provider_fuse.hooks.fuse import FuseHook
from tests.helpers import BASE_URL, DEVELOPER_KEY, EMAIL, connection_json, decode_multipart
from tests.hooks.helpers import BULK_URL, make_hook

DOCUMENTED_400 = "The reattempt_wait parameter must be supplied when max_attempts is greater than 1."


def test_session_sends_basic_auth_json_accept_and_user_agent(fuse_connection, requests_mock, contacts_csv):
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    make_hook().bulk_queue(12, 34, contacts_csv)
    headers = requests_mock.last_request.headers
    expected = base64.b64encode(f"{EMAIL}:{DEVELOPER_KEY}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith(f"airflow-provider-fuse/{__version__} ")
    assert requests_mock.last_request.verify not in (
        False,
        None,
    )  # True, or the CA bundle REQUESTS_CA_BUNDLE names
    assert requests_mock.last_request.timeout == (10.0, 300.0)


def test_bodies_are_sent_in_large_blocks(fuse_connection):
    from airflow_provider_fuse.hooks.fuse import UPLOAD_BLOCK_SIZE

    adapter = make_hook().session.get_adapter("https://fuse.example.com/api")
    assert adapter.poolmanager.connection_pool_kw["blocksize"] == UPLOAD_BLOCK_SIZE == 256 * 1024


def test_verify_and_proxies_extras_reach_the_session(monkeypatch, requests_mock, contacts_csv):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT",
        connection_json(
            extra={"verify": "/etc/ssl/fuse-ca.pem", "proxies": {"https": "http://127.0.0.1:3128"}}
        ),
    )
    hook = make_hook()
    assert hook.session.verify == "/etc/ssl/fuse-ca.pem"
    assert hook.session.proxies["https"] == "http://127.0.0.1:3128"


# --- The request --------------------------------------------------------------------------------------


def test_bulk_queue_sends_the_documented_multipart_request(fuse_connection, requests_mock, contacts_csv):
    seen = {}

    def answer(request, context):
        seen.update(decode_multipart(request))
        return {"calls_queued": 3}

    requests_mock.post(BULK_URL, json=answer)
    result = make_hook().bulk_queue(
        "12",
        34,
        contacts_csv,
        start_timestamp=4_000_000_000,
        end_timestamp="4000003600",
        max_attempts=3,
        reattempt_wait=120,
        result_url="https://example.com/results",
        is_pci=True,
    )
    assert result == 3
    assert requests_mock.last_request.method == "POST"
    assert requests_mock.last_request.url == BULK_URL
    assert requests_mock.last_request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert {name: content for name, (content, _) in seen.items() if name != "csv"} == {
        "start_timestamp": b"4000000000",
        "end_timestamp": b"4000003600",
        "max_attempts": b"3",
        "reattempt_wait": b"120",
        "result_url": b"https://example.com/results",
        "is_pci": b"1",
    }
    content, headers = seen["csv"]
    assert content == contacts_csv.read_bytes()
    assert 'filename="contacts.csv"' in headers["Content-Disposition"]
    assert headers["Content-Type"] == "text/csv"


def test_only_given_fields_are_sent(fuse_connection, requests_mock, contacts_csv):
    seen = {}
    requests_mock.post(
        BULK_URL, json=lambda request, context: seen.update(decode_multipart(request)) or {"calls_queued": 3}
    )
    make_hook().bulk_queue(12, 34, contacts_csv, is_pci=False)
    assert set(seen) == {"csv", "is_pci"}
    assert seen["is_pci"][0] == b"0"


def test_bytes_are_sent_as_given_with_bom_crlf_quotes_and_utf8(fuse_connection, requests_mock, tmp_path):
    data = '\ufeffname,destination\r\n"Zoë, ""the"" dev",6175551234\r\n"multi\nline",6175551235\r\n'.encode()
    path = tmp_path / "odd.csv"
    path.write_bytes(data)
    seen = {}
    requests_mock.post(
        BULK_URL, json=lambda request, context: seen.update(decode_multipart(request)) or {"calls_queued": 2}
    )
    make_hook().bulk_queue(12, 34, path)
    assert seen["csv"][0] == data


def test_a_binary_file_object_is_sent_from_its_current_position(fuse_connection, requests_mock, contacts_csv):
    seen = {}
    requests_mock.post(
        BULK_URL, json=lambda request, context: seen.update(decode_multipart(request)) or {"calls_queued": 3}
    )
    with open(contacts_csv, "rb") as file:
        make_hook().bulk_queue(12, 34, file)
    assert seen["csv"][0] == contacts_csv.read_bytes()
    assert 'filename="contacts.csv"' in seen["csv"][1]["Content-Disposition"]


def test_a_long_upload_logs_its_progress_in_bytes_and_percent(
    fuse_connection, requests_mock, tmp_path, log_text
):
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"destination\n" + b"6175551234\n" * 100_000)

    def answer(request, context):
        while request.body.read(100_000):
            pass
        return {"calls_queued": 100_000}

    requests_mock.post(BULK_URL, json=answer)
    make_hook(progress_interval=1e-9).bulk_queue(12, 34, path)
    logs = log_text()
    assert "Uploaded 1.0 of 1.0 MiB (100%)" in logs
    assert "(9%)" in logs


def test_a_quick_upload_logs_no_progress(fuse_connection, requests_mock, contacts_csv, log_text):
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    make_hook().bulk_queue(12, 34, contacts_csv)
    assert "Uploaded" not in log_text()


def test_a_large_file_is_streamed_not_read_whole(fuse_connection, requests_mock, tmp_path):
    path = tmp_path / "big.csv"
    row = b"6175551234,some call variable text\n"
    with open(path, "wb") as file:
        file.write(b"destination,note\n")
        for _ in range(32):
            file.write(row * 32_768)  # 32 x ~1.1 MB
    size = path.stat().st_size
    received = 0

    def answer(request, context):
        nonlocal received
        assert isinstance(request.body.encoder, MultipartEncoder), "the body must be a streaming encoder"
        while chunk := request.body.read(65_536):
            received += len(chunk)
        return {"calls_queued": 1}

    requests_mock.post(BULK_URL, json=answer)
    hook = make_hook()
    hook.settings  # noqa: B018  (read the connection before measuring)
    tracemalloc.start()
    try:
        hook.bulk_queue(12, 34, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received > size
    assert peak < size / 8, f"peak {peak} bytes for a {size}-byte file: the file was read whole"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"application_id": 0}, "application_id"),
        ({"deployment_id": "abc"}, "deployment_id"),
        ({"max_attempts": 11}, "max_attempts"),
        ({"max_attempts": 2}, "reattempt_wait"),
        ({"max_attempts": 2, "reattempt_wait": 59}, "reattempt_wait"),
        ({"end_timestamp": 1_000}, "end_timestamp"),
        ({"result_url": "ftp://example.com/x"}, "result_url"),
        ({"is_pci": 2}, "is_pci"),
    ],
)
def test_invalid_arguments_fail_before_any_request(
    fuse_connection, requests_mock, contacts_csv, kwargs, parameter
):
    args = {"application_id": 12, "deployment_id": 34, "csv": contacts_csv, **kwargs}
    with pytest.raises(FuseValidationError) as caught:
        make_hook().bulk_queue(**args)
    assert caught.value.parameter == parameter
    assert not requests_mock.called


# --- Answers ------------------------------------------------------------------------------------------


def test_xml_success_answer(fuse_connection, requests_mock, contacts_csv):
    body = '<?xml version="1.0"?>\n<result>\n  <calls_queued>3</calls_queued>\n</result>'
    requests_mock.post(BULK_URL, text=body, headers={"Content-Type": "application/xml"})
    assert make_hook().bulk_queue(12, 34, contacts_csv) == 3


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, FuseBadRequestError),
        (401, FuseAuthenticationError),
        (403, FusePermissionError),
        (404, FuseNotFoundError),
        (405, FuseMethodNotAllowedError),
        (409, FuseDeletedError),
        (418, FuseRejectedError),
    ],
)
def test_each_4xx_is_a_typed_rejection_with_fuses_words(
    fuse_connection, requests_mock, contacts_csv, status, error_type
):
    requests_mock.post(BULK_URL, status_code=status, json={"error": DOCUMENTED_400})
    with pytest.raises(error_type) as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.status_code == status
    assert caught.value.error == DOCUMENTED_400
    assert caught.value.outcome is Outcome.REJECTED
    assert not caught.value.retryable
    # Fuse's words first; a 401 goes on to say what to check (tests/test_exceptions.py).
    assert str(caught.value).startswith(f"Fuse API answered {status}: {DOCUMENTED_400}")
    assert requests_mock.call_count == 1


def test_xml_error_text_is_read(fuse_connection, requests_mock, contacts_csv):
    body = f'<?xml version="1.0"?>\n<result>\n  <error>{DOCUMENTED_400}</error>\n</result>'
    requests_mock.post(BULK_URL, status_code=400, text=body)
    with pytest.raises(FuseBadRequestError, match="reattempt_wait parameter must be supplied"):
        make_hook().bulk_queue(12, 34, contacts_csv)


def test_an_answer_nested_deeper_than_python_recurses_is_not_fuses():
    import sys

    from airflow_provider_fuse.hooks.fuse import parse_answer

    # Python's default limit: something in a test process may have raised it.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        deep = b"<result>" + b"<a>" * 2000 + b"x" + b"</a>" * 2000 + b"</result>"
        assert parse_answer(deep) is None
    finally:
        sys.setrecursionlimit(limit)


def test_429_is_a_retryable_rejection(fuse_connection, requests_mock, contacts_csv):
    requests_mock.post(BULK_URL, status_code=429, json={"error": "slow down"})
    with pytest.raises(FuseTooManyRequestsError) as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.retryable
    assert caught.value.outcome is Outcome.REJECTED


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_an_unknown_outcome_and_not_retried(fuse_connection, requests_mock, contacts_csv, status):
    requests_mock.post(BULK_URL, status_code=status, json={"error": "database error"})
    with pytest.raises(FuseServerError) as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.outcome is Outcome.UNKNOWN
    assert not caught.value.retryable
    assert requests_mock.call_count == 1


def test_an_html_proxy_page_error_names_status_and_what_the_body_is(
    fuse_connection, requests_mock, contacts_csv
):
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    requests_mock.post(BULK_URL, status_code=502, text=page)
    with pytest.raises(
        FuseServerError, match=rf"502: no Fuse error text in an HTML page \({len(page)} bytes\)$"
    ):
        make_hook().bulk_queue(12, 34, contacts_csv)


@pytest.mark.parametrize(
    "body",
    ["<html><body>Welcome</body></html>", "", '{"status": "ok"}', "<result><queued>1</queued></result>"],
)
def test_a_200_that_is_not_a_count_is_an_unknown_outcome(fuse_connection, requests_mock, contacts_csv, body):
    requests_mock.post(BULK_URL, status_code=200, text=body)
    with pytest.raises(FuseInvalidResponseError) as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.status_code == 200
    assert caught.value.outcome is Outcome.UNKNOWN


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_an_unknown_outcome(
    fuse_connection, requests_mock, contacts_csv, status
):
    requests_mock.post(BULK_URL, status_code=status, headers={"Location": "https://elsewhere.example.com/"})
    with pytest.raises(FuseRedirectError, match=f"{status}.*base URL") as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert caught.value.status_code == status
    assert not nothing_queued(caught.value)
    assert requests_mock.call_count == 1


def test_an_informational_status_is_an_unknown_outcome():
    from airflow_provider_fuse.hooks.fuse import classify_answer

    with pytest.raises(FuseRedirectError):
        classify_answer(103, b"")


def test_phone_numbers_in_fuses_answers_are_redacted(fuse_connection, requests_mock, contacts_csv):
    requests_mock.post(
        BULK_URL, status_code=400, json={"error": "Invalid destination 16175551234 (617-555-1235)"}
    )
    with pytest.raises(FuseBadRequestError) as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert "6175551234" not in str(caught.value)
    assert "555-1235" not in str(caught.value)
    assert "Invalid destination" in str(caught.value)


def test_long_bodies_are_cut_short(fuse_connection, requests_mock, contacts_csv):
    requests_mock.post(BULK_URL, status_code=500, text="<html>" + "x" * 10_000 + "</html>")
    with pytest.raises(FuseServerError) as caught:
        make_hook().bulk_queue(12, 34, contacts_csv)
    assert len(str(caught.value)) < 400


# --- Network failures ---------------------------------------------------------------------------------


def refused() -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "Connection refused")))


def test_a_refused_connection_is_retried_with_the_file_reopened_then_succeeds(
    fuse_connection, requests_mock, contacts_csv
):
    bodies = []

    def answer(request, context):
        bodies.append(decode_multipart(request)["csv"][0])
        return {"calls_queued": 3}

    requests_mock.post(BULK_URL, [{"exc": refused()}, {"exc": refused()}, {"json": answer}])
    assert make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv) == 3
    assert requests_mock.call_count == 3
    assert bodies == [contacts_csv.read_bytes()]


def test_a_file_object_is_rewound_for_a_retry(fuse_connection, requests_mock, contacts_csv):
    bodies = []
    requests_mock.post(
        BULK_URL,
        [
            {"exc": refused()},
            {
                "json": lambda request, context: (
                    bodies.append(decode_multipart(request)["csv"][0]) or {"calls_queued": 3}
                )
            },
        ],
    )
    stream = io.BytesIO(contacts_csv.read_bytes())
    make_hook(connect_retries=1).bulk_queue(12, 34, stream)
    assert bodies == [contacts_csv.read_bytes()]


@pytest.mark.parametrize("error", [refused(), requests.exceptions.ConnectTimeout("connect timed out")])
def test_not_sent_after_all_retries_raises_a_retryable_error(
    fuse_connection, requests_mock, contacts_csv, error
):
    requests_mock.post(BULK_URL, exc=error)
    with pytest.raises(FuseNotSentError) as caught:
        make_hook(connect_retries=2).bulk_queue(12, 34, contacts_csv)
    assert caught.value.retryable
    assert caught.value.outcome is Outcome.NOT_SENT
    assert requests_mock.call_count == 3


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))),
        requests.exceptions.ChunkedEncodingError(ProtocolError("Connection broken: IncompleteRead")),
    ],
)
def test_a_failure_after_sending_is_an_unknown_outcome_and_never_retried(
    fuse_connection, requests_mock, contacts_csv, error
):
    requests_mock.post(BULK_URL, exc=error)
    with pytest.raises(FuseConnectionLostError) as caught:
        make_hook(connect_retries=3).bulk_queue(12, 34, contacts_csv)
    assert caught.value.outcome is Outcome.UNKNOWN
    assert not caught.value.retryable
    assert requests_mock.call_count == 1


def test_a_real_refused_connection_on_loopback_is_not_sent(monkeypatch, contacts_csv):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host=f"http://127.0.0.1:{port}/api"))
    with pytest.raises(FuseNotSentError):
        make_hook(connect_retries=1).bulk_queue(12, 34, contacts_csv)


# --- test_connection and secrets ----------------------------------------------------------------------

TEST_URL = f"{BASE_URL}/outbound/airflow-provider-fuse-connection-test"


@pytest.mark.parametrize(("status", "ok"), [(404, True), (403, True), (401, False), (500, False)])
def test_test_connection_reads_the_status_of_a_call_that_cannot_exist(
    fuse_connection, requests_mock, status, ok
):
    requests_mock.get(TEST_URL, status_code=status, json={"error": "x"})
    assert make_hook().test_connection()[0] is ok
    assert requests_mock.last_request.method == "GET"


def test_test_connection_reports_an_unreachable_host(monkeypatch, requests_mock):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json())
    requests_mock.get(TEST_URL, exc=refused())
    ok, message = make_hook().test_connection()
    assert ok is False
    assert "not sent" in message


def test_the_developer_key_and_authorization_header_are_masked_once_read(fuse_connection):
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    hook = make_hook()
    authorization = hook.settings.authorization
    masker = _secrets_masker()
    text = f"key={DEVELOPER_KEY} header={authorization} token={authorization.split()[1]}"
    redacted = masker.redact(text)
    assert DEVELOPER_KEY not in redacted
    assert authorization not in redacted
    assert authorization.split()[1] not in redacted


def test_the_developer_key_is_not_in_the_settings_repr(fuse_connection):
    assert DEVELOPER_KEY not in repr(make_hook().settings)


def test_get_ui_field_behaviour_needs_no_wtforms():
    behaviour = FuseHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == ["schema"]
    assert behaviour["relabeling"] == {
        "login": "Account email",
        "password": "Developer key",
        "host": "API base URL",
    }
    assert behaviour["placeholders"]["host"] == "https://fuse.plumvoice.com/api"


def test_hook_class_attributes():
    assert (FuseHook.conn_name_attr, FuseHook.default_conn_name, FuseHook.conn_type, FuseHook.hook_name) == (
        "fuse_conn_id",
        "fuse_default",
        "fuse",
        "Plum Fuse",
    )


def test_settings_are_read_once(fuse_connection, monkeypatch):
    hook = make_hook()
    first = hook.settings
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="https://other.example.com"))
    assert hook.settings is first


def test_the_csv_path_may_be_a_path_object(fuse_connection, requests_mock, contacts_csv: Path):
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    assert make_hook().bulk_queue(12, 34, Path(contacts_csv)) == 3


# --- Review fixes: TLS after sending, environment overrides, URI extras, redaction at the cut ---------


def test_a_refused_certificate_is_not_sent(fuse_connection, requests_mock, contacts_csv):
    import ssl

    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error = requests.exceptions.SSLError(MaxRetryError(None, "/", cause))
    requests_mock.post(BULK_URL, exc=error)
    with pytest.raises(FuseNotSentError, match="certificate was not accepted"):
        make_hook(connect_retries=1).bulk_queue(12, 34, contacts_csv)


def test_a_tls_failure_after_sending_is_an_unknown_outcome_and_not_retried(
    fuse_connection, requests_mock, contacts_csv
):
    import ssl

    error = requests.exceptions.SSLError(ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]"))
    requests_mock.post(BULK_URL, exc=error)
    with pytest.raises(FuseConnectionLostError, match="TLS connection failed"):
        make_hook(connect_retries=3).bulk_queue(12, 34, contacts_csv)
    assert requests_mock.call_count == 1


def test_verify_and_proxies_extras_win_over_the_environment(monkeypatch, requests_mock, contacts_csv):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT",
        connection_json(extra={"verify": False, "proxies": {"https": "http://127.0.0.1:3128"}}),
    )
    requests_mock.post(BULK_URL, json={"calls_queued": 3})
    make_hook().bulk_queue(12, 34, contacts_csv)
    assert requests_mock.last_request.verify is False
    assert requests_mock.last_request.proxies["https"] == "http://127.0.0.1:3128"


def test_uri_form_extras_arrive_as_text_and_are_read(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT",
        "fuse://ops%40example.com:key123456@fuse.example.com/api"
        "?timeout=30&proxies=%7B%22https%22%3A+%22http%3A%2F%2Fproxy%3A3128%22%7D&verify=false",
    )
    settings = make_hook().settings
    assert settings.timeout == (30.0, 30.0)
    assert settings.proxies == {"https": "http://proxy:3128"}
    assert settings.verify is False


def test_a_number_at_the_cut_is_redacted_whole():
    from airflow_provider_fuse.exceptions import redact

    text = "x" * 195 + " 16175551234 trailing"
    assert not any(digit in redact(text) for digit in "0123456789")


# --- The hook's public names ----------------------------------------------------------------------

#: Every public name hooks/fuse.py defined before the connection, limits, classification and the two
#: clients became modules of their own: each still imports from here.
PUBLIC_NAMES = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "KNOWN_EXTRAS",
    "MAX_ANSWER_BYTES",
    "MAX_ANSWER_HEADERS",
    "MAX_ANSWER_HEAD_BYTES",
    "MAX_CALLS_QUEUED",
    "MAX_CALL_ID_CHARS",
    "MAX_CONNECT_RETRIES",
    "MAX_INTERIM_HEAD_BYTES",
    "MAX_RETRY_BACKOFF",
    "MAX_RETRY_DELAY",
    "MAX_TIMEOUT",
    "NO_RECEIVER_STATUSES",
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_DEADLINE",
    "PROBE_READ_BYTES",
    "RECEIVER_NOT_CONFIGURED",
    "RECEIVER_REFUSES_TOKEN",
    "RECEIVER_SETUP_HINT",
    "UPLOAD_BLOCK_SIZE",
    "CallDetails",
    "CallStatus",
    "ConnectionSettings",
    "CsvSource",
    "FuseHook",
    "ProbeAnswer",
    "asking_again_can_help",
    "base_url",
    "classify_answer",
    "classify_network_error",
    "parse_answer",
    "probe_results_receiver",
]


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_still_imports_from_the_hook_module(name):
    from airflow_provider_fuse.hooks import fuse

    assert name in fuse.__all__
    assert getattr(fuse, name) is not None


def test_the_hook_names_its_connection_as_the_connection_module_does():
    from airflow_provider_fuse.hooks import connection

    assert (FuseHook.default_conn_name, FuseHook.conn_type, FuseHook.hook_name) == (
        connection.DEFAULT_CONN_NAME,
        connection.CONN_TYPE,
        connection.HOOK_NAME,
    )
