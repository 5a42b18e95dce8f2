"""What a stored ``fuse`` connection means, checked when it is read
(:mod:`airflow_provider_fuse.hooks.settings`): a field or extra that cannot be used is refused
naming it, never echoing the host, a proxy or a credential, and nothing was sent."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fuse.exceptions import (
    FuseValidationError,
)
from airflow_provider_fuse.hooks.fuse import base_url
from tests.helpers import BASE_URL, connection_json
from tests.hooks.helpers import connection, make_hook, settings_error


@pytest.mark.parametrize("port", [99999, 65536, -1])
def test_a_port_field_outside_1_to_65535_is_refused_naming_port(monkeypatch, port):
    error = settings_error(monkeypatch, host="fuse.example.com", port=port)
    assert error.parameter == "port"


@pytest.mark.parametrize("host", ["https://fuse.example.com:99999/api", "fuse.example.com:0", "h:x/api"])
def test_a_port_inside_the_host_outside_1_to_65535_is_refused_naming_host(monkeypatch, host):
    error = settings_error(monkeypatch, host=host)
    assert error.parameter == "host"
    assert "65535" in str(error)


@pytest.mark.parametrize(
    "host",
    [
        "https://fuse example.com/api",
        "https://[::1/api",
        "https://fuse.example.com\n/api",
        "https://fuse.\u200bexample.com/",
    ],
)
def test_a_host_that_is_not_a_url_is_refused_naming_host(monkeypatch, host):
    assert settings_error(monkeypatch, host=host).parameter == "host"


@pytest.mark.parametrize(
    "host", ["https://user:pw-s3cr3t@fuse.example.com/api", "https://ops%40example.com@fuse.example.com"]
)
def test_credentials_in_the_host_are_refused_without_echoing_them(monkeypatch, host, log_text):
    error = settings_error(monkeypatch, host=host)
    assert error.parameter == "host"
    assert "login" in str(error)
    for part in ("pw-s3cr3t", "user:", "ops%40example.com", "fuse.example.com"):
        assert part not in str(error)
        assert part not in log_text()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4"])
def test_a_socks_proxy_is_refused_when_socks_support_is_not_installed(monkeypatch, scheme):
    monkeypatch.setattr("airflow_provider_fuse.hooks.settings._socks_available", lambda: False)
    error = settings_error(monkeypatch, extra={"proxies": {"https": f"{scheme}://u:proxy-pw@127.0.0.1:1080"}})
    assert error.parameter == "extra.proxies.https"
    assert "PySocks" in str(error)
    assert "proxy-pw" not in str(error)


def test_a_socks_proxy_is_accepted_when_socks_support_imports(monkeypatch):
    monkeypatch.setattr("airflow_provider_fuse.hooks.settings._socks_available", lambda: True)
    connection(monkeypatch, extra={"proxies": {"https": "socks5h://127.0.0.1:1080"}})
    assert make_hook().settings.proxies == {"https": "socks5h://127.0.0.1:1080"}


@pytest.mark.parametrize(
    "proxy", ["ftp://127.0.0.1:21", "http://127.0.0.1:99999", "http://", "http://u:proxy-pw@127.0.0.1:0"]
)
def test_a_proxy_this_install_cannot_use_is_refused_without_echoing_it(monkeypatch, proxy):
    error = settings_error(monkeypatch, extra={"proxies": {"https": proxy}})
    assert error.parameter == "extra.proxies.https"
    assert proxy not in str(error)
    assert "proxy-pw" not in str(error)


@pytest.mark.parametrize(
    "timeout",
    [
        float("inf"),
        float("nan"),
        0,
        -3,
        1e300,
        "Infinity",
        {"read": float("inf")},
        {"total": 0},
        {"connect": 1, "reed": 2},
        [1, 2, 3, 4],
    ],
)
def test_a_timeout_that_is_not_finite_positive_seconds_is_refused(monkeypatch, timeout):
    assert settings_error(monkeypatch, extra={"timeout": timeout}).parameter.startswith("extra.timeout")


def test_the_total_timeout_is_read_from_the_timeout_extra(monkeypatch):
    connection(monkeypatch, extra={"timeout": {"connect": 2, "read": 30, "total": 90}})
    settings = make_hook().settings
    assert (settings.timeout, settings.total_timeout) == ((2.0, 30.0), 90.0)


def test_the_total_timeout_defaults_to_an_hour(monkeypatch):
    connection(monkeypatch, extra={"timeout": [3, 60]})
    assert make_hook().settings.total_timeout == 3600.0


# --- The API base URL, the credentials, the extras, as the connection form stores them --------------


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        (None, None, None, "https://fuse.plumvoice.com/api"),
        ("", None, None, "https://fuse.plumvoice.com/api"),
        ("fuse.example.com", None, None, "https://fuse.example.com/api"),
        ("https://fuse.example.com", None, None, "https://fuse.example.com/api"),
        ("https://fuse.example.com/", None, None, "https://fuse.example.com/api"),
        ("http://127.0.0.1:8123/api", None, None, "http://127.0.0.1:8123/api"),
        ("https://fuse.example.com/custom/api/", None, None, "https://fuse.example.com/custom/api"),
        ("fuse.example.com", 8443, None, "https://fuse.example.com:8443/api"),
        ("https://fuse.example.com:9443", 9443, None, "https://fuse.example.com:9443/api"),
        ("https://fuse.example.com:443", 443, None, "https://fuse.example.com:443/api"),
        ("http://127.0.0.1", 8123, "api", "http://127.0.0.1:8123/api"),
        # The port field equal to the other scheme's own port: the form's placeholder (443), not a port.
        ("http://127.0.0.1", 443, None, "http://127.0.0.1/api"),
        ("http://127.0.0.1:8123/api", 443, None, "http://127.0.0.1:8123/api"),
        ("https://fuse.example.com", 80, None, "https://fuse.example.com/api"),
        ("", 80, None, "https://fuse.plumvoice.com/api"),
        # The scheme's own port adds nothing to the URL.
        ("https://fuse.example.com", 443, None, "https://fuse.example.com/api"),
        ("http://127.0.0.1", 80, None, "http://127.0.0.1/api"),
        ("fuse.example.com", None, "v2/api", "https://fuse.example.com/v2/api"),
        ("https://fuse.example.com/api", None, "other", "https://fuse.example.com/api"),
    ],
)
def test_base_url_is_formed_from_host_port_and_schema(host, port, schema, expected):
    assert base_url(host, port, schema) == expected


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("https://fuse.example.com:443", 8443),
        ("https://fuse.example.com:9443/api", 443),
        ("https://fuse.example.com:9443", "8443"),
        ("http://127.0.0.1:8123/api", 80),
        ("http://127.0.0.1:8123/api", 8124),
    ],
)
def test_a_port_field_that_disagrees_with_the_hosts_port_is_refused_naming_both(host, port):
    # It was silently dropped: the port the connection's author typed last was not the one used.
    with pytest.raises(FuseValidationError) as caught:
        base_url(host, port)
    assert caught.value.parameter == "port"
    assert "host" in caught.value.message
    assert "fuse.example.com" not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)


def test_a_connection_whose_port_field_disagrees_with_its_host_fails_before_any_request(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="https://fuse.example.com:443/api", port=8443)
    )
    with pytest.raises(FuseValidationError, match="port"):
        make_hook().settings  # noqa: B018
    ok, message = make_hook().test_connection()
    assert not ok
    assert "port" in message


def test_base_url_refuses_a_scheme_other_than_http():
    with pytest.raises(FuseValidationError, match="host"):
        base_url("ftp://fuse.example.com")


def test_uri_form_fills_port_and_schema(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", "fuse://http://me%40example.com:key123456@127.0.0.1:8123/api"
    )
    settings = make_hook().settings
    assert settings.base_url == "http://127.0.0.1:8123/api"
    assert settings.email == "me@example.com"
    assert settings.developer_key == "key123456"


def test_plain_http_off_loopback_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="http://fuse.example.com/api"))
    with pytest.raises(FuseValidationError, match="plain http") as caught:
        make_hook().settings  # noqa: B018
    assert caught.value.parameter == "host"


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:9/api", "http://127.8.9.10/api", "http://[::1]:9/api", "http://localhost/api"]
)
def test_plain_http_on_loopback_is_accepted(monkeypatch, host):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host=host))
    assert make_hook().settings.base_url == host


def test_plain_http_off_loopback_is_accepted_with_allow_http(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="http://fuse.lan/api", extra={"allow_http": True})
    )
    assert make_hook().settings.base_url == "http://fuse.lan/api"


@pytest.mark.parametrize(("field", "message"), [("login", "account email"), ("password", "developer key")])
def test_missing_credentials_are_named(monkeypatch, field, message):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(**{field: None}))
    with pytest.raises(FuseValidationError, match=message) as caught:
        make_hook().settings  # noqa: B018
    assert caught.value.parameter == field


def test_unknown_extras_are_named_in_a_warning_and_never_sent_as_headers(
    monkeypatch, requests_mock, log_text
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra={"X-Api-Token": "sekrit-value", "timeout": 5})
    )
    requests_mock.get(
        f"{BASE_URL}/outbound/airflow-provider-fuse-connection-test", status_code=404, json={"error": "x"}
    )
    hook = make_hook()
    assert hook.test_connection()[0] is True
    assert "X-Api-Token" in log_text()
    assert "sekrit-value" not in log_text()
    assert "X-Api-Token" not in requests_mock.last_request.headers
    assert hook.settings.timeout == (5.0, 5.0)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, (10.0, 300.0)),
        ({"timeout": 7}, (7.0, 7.0)),
        ({"timeout": [3, 60]}, (3.0, 60.0)),
        ({"timeout": {"connect": 2, "read": 30}}, (2.0, 30.0)),
    ],
)
def test_timeout_extra_forms(monkeypatch, extra, expected):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra=extra))
    assert make_hook().settings.timeout == expected


# --- what the connection form stores (its fields are the extras) ------------------------------------

#: Every field of the form left empty: null on Airflow 3.2+, "" on Airflow 3.1's text fields.
EMPTY_FORMS = [
    {"timeout": None, "verify": None, "proxies": None, "allow_http": None},
    {"timeout": "", "verify": "", "proxies": "", "allow_http": False},
]


@pytest.mark.parametrize("extra", EMPTY_FORMS, ids=["null", "empty text"])
def test_a_form_field_left_empty_is_an_extra_not_set(monkeypatch, extra):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra=extra))
    settings = make_hook().settings
    assert (settings.timeout, settings.total_timeout) == ((10.0, 300.0), 3600.0)
    assert (settings.verify, dict(settings.proxies), settings.ignored_extras) == (True, {}, ())


@pytest.mark.parametrize(
    "extra",
    [
        # Airflow 3.2+: typed values.
        {
            "timeout": {"connect": 2, "read": 30, "total": 90},
            "verify": "false",
            "allow_http": True,
            "proxies": {"https": "http://127.0.0.1:3128"},
        },
        # Airflow 3.1: the form's text fields hold JSON as text.
        {
            "timeout": '{"connect": 2, "read": 30, "total": 90}',
            "verify": "false",
            "allow_http": True,
            "proxies": '{"https": "http://127.0.0.1:3128"}',
        },
    ],
    ids=["typed", "text"],
)
def test_the_forms_fields_are_read_as_the_extras_they_are(monkeypatch, extra):
    monkeypatch.setenv(
        "AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host="http://fuse.example.com/api", extra=extra)
    )
    settings = make_hook().settings
    assert (settings.timeout, settings.total_timeout) == ((2.0, 30.0), 90.0)
    assert settings.verify is False
    assert dict(settings.proxies) == {"https": "http://127.0.0.1:3128"}
    assert settings.base_url == "http://fuse.example.com/api"


@pytest.mark.parametrize(
    "extra", [{"timeout": -1}, {"timeout": [1]}, {"verify": 3}, {"proxies": "x"}, {"allow_http": "yes"}]
)
def test_invalid_known_extras_are_refused(monkeypatch, extra):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(extra=extra))
    with pytest.raises(FuseValidationError, match="extra"):
        make_hook().settings  # noqa: B018


# --- An IPv6 address for host: Airflow's URI form stores it without its brackets -------------------------

IPV6_URIS = {
    "fuse://me%40example.com:key123456@[::1]:8443/api": "https://[::1]:8443/api",
    "fuse://me%40example.com:key123456@[2001:db8::1]:443/api": "https://[2001:db8::1]/api",
    "fuse://me%40example.com:key123456@[2001:db8::1]/api": "https://[2001:db8::1]/api",
    "fuse://http://me%40example.com:key123456@[::1]:8123/api": "http://[::1]:8123/api",
}


@pytest.mark.parametrize(("uri", "expected"), IPV6_URIS.items(), ids=IPV6_URIS.keys())
def test_an_ipv6_host_from_the_uri_form_is_put_in_brackets(monkeypatch, uri, expected):
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", uri)
    settings = make_hook().settings
    assert settings.base_url == expected
    assert settings.email == "me@example.com"


@given(
    address=st.ip_addresses(v=6),
    port=st.none() | st.integers(1, 65535),
    scheme=st.sampled_from(["", "https://"]),
)
def test_a_bare_ipv6_host_is_that_address_in_brackets_with_the_port_field(address, port, scheme):
    url = base_url(f"{scheme}{address}", port, "api")
    parts = urlsplit(url)
    assert parts.hostname == str(address)
    assert parts.port == (None if port in (None, 80, 443) else port)
    assert url == f"https://[{address}]{'' if parts.port is None else f':{port}'}/api"


@pytest.mark.parametrize("host", ["::1/api", "[::1", "https://::1]", "::1::2", "https://::g"])
def test_a_host_that_is_neither_a_url_nor_an_ipv6_address_is_still_refused(host):
    with pytest.raises(FuseValidationError) as caught:
        base_url(host, 8443)
    assert caught.value.parameter == "host"
