"""The ``fuse`` connection: its form, its fields and extras, read and checked.

What the connection form shows (:data:`CONN_FIELDS`, :data:`UI_FIELD_BEHAVIOUR`, read by
:func:`~airflow_provider_fuse.get_provider_info.get_provider_info` and by Airflow 3.1 through
:class:`~airflow_provider_fuse.hooks.fuse.FuseHook`), and what a stored connection means
(:class:`ConnectionSettings`): the API base URL, the credentials, the extras ``timeout``,
``verify``, ``proxies`` and ``allow_http``. A field or extra that cannot be used is refused when
the connection is read, naming it and never quoting the host, a proxy or a credential.

Light to import: the provider info reads the form in every Airflow process, so the HTTP clients
(whose URL parsers check a host and a proxy) are imported only when a connection is read.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from airflow_provider_fuse import __version__
from airflow_provider_fuse.exceptions import FuseValidationError, redact
from airflow_provider_fuse.hooks.limits import DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, MAX_TIMEOUT

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = [
    "CONN_FIELDS",
    "CONN_TYPE",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONN_NAME",
    "HOOK_NAME",
    "KNOWN_EXTRAS",
    "UI_FIELD_BEHAVIOUR",
    "ConnectionSettings",
    "base_url",
    "connection_form_widgets",
    "is_loopback",
    "request_headers",
    "ui_field_behaviour",
]

#: The connection type, and the connection the hook, operators, sensors and triggers use by default.
CONN_TYPE = "fuse"
DEFAULT_CONN_NAME = "fuse_default"
HOOK_NAME = "Plum Fuse"
DEFAULT_BASE_URL = "https://fuse.plumvoice.com/api"
KNOWN_EXTRAS = frozenset({"timeout", "verify", "proxies", "allow_http"})
_TIMEOUT_KEYS = ("connect", "read", "total")
_SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})

# --- The form --------------------------------------------------------------------------------------

#: The connection form's standard fields: the same dict serves the declarative form (Airflow >= 3.2)
#: and ``FuseHook.get_ui_field_behaviour()`` (Airflow 3.1).
#:
#: ``port`` is shown: Airflow 3.3.2's *Test* button sends a connection without a port as port 0 and
#: its API then refuses the stored (masked) developer key (apache/airflow#73298, fixed after 3.3.2).
#: With 443 stored, as docs/connection.md says, the button works; the hook leaves the scheme's own
#: port out of the URL and a host with a port of its own keeps it.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {"login": "Account email", "password": "Developer key", "host": "API base URL"},
    "placeholders": {
        "login": "you@example.com",
        "password": "the developer key from My Account → Developer keys",
        "host": DEFAULT_BASE_URL,
        "port": "443 (the API base URL's port; Airflow 3.3.2's Test button needs it)",
    },
}


_SECONDS = {"type": "number", "exclusiveMinimum": 0, "maximum": int(MAX_TIMEOUT)}

#: The connection's extras as typed fields of the form (Airflow >= 3.2 reads ``conn-fields``;
#: :func:`connection_form_widgets` builds Airflow 3.1's from the same dict). The form stores each
#: under its own name in the extras, where the hook reads it as any extra: a field left empty is an
#: extra that is not set.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Timeouts (seconds)",
        "schema": {
            "type": ["object", "null"],
            "properties": {"connect": _SECONDS, "read": _SECONDS, "total": _SECONDS},
            "additionalProperties": False,
        },
        "description": "Seconds to connect, to wait for each read of the answer, and for the whole "
        'request: {"connect": 10, "read": 300, "total": 3600} when not set.',
    },
    "verify": {
        "label": "Verify TLS",
        "schema": {"type": ["string", "null"]},
        "description": "true (the default), false, or the path of a CA bundle to verify Fuse's "
        "certificate against.",
    },
    "proxies": {
        "label": "Proxies",
        "schema": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        "description": 'As requests takes them: {"https": "http://proxy.internal:3128"} (http:// is '
        'added to a proxy without a scheme); keys are schemes, "all", "scheme://host" or "no_proxy", '
        "any other key is refused.",
    },
    "allow_http": {
        "label": "Allow plain http",
        "schema": {"type": ["boolean", "null"], "default": False},
        "description": "Accept a plain-http API base URL off loopback: the developer key then "
        "travels in clear.",
    },
}


def connection_form_widgets() -> dict[str, Any]:
    """The extras' fields of the connection form, for Airflow 3.1 (3.2+ read the provider info's
    ``conn-fields``, built from the same :data:`CONN_FIELDS`).

    Airflow 3.1's UI stands in for wtforms, which it does not install: a JSON object is typed
    as text there, which the hook reads as the URI form's text (JSON).
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget  # type: ignore[import-not-found,import-untyped,unused-ignore]
    from flask_babel import lazy_gettext  # type: ignore[import-not-found,import-untyped,unused-ignore]
    from wtforms import BooleanField, StringField  # type: ignore[import-not-found,import-untyped,unused-ignore]

    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        label, description = lazy_gettext(spec["label"]), spec["description"]
        if "boolean" in spec["schema"]["type"]:
            default = spec["schema"].get("default")
            widgets[name] = BooleanField(label, description=description, default=default)
        else:
            widgets[name] = StringField(label, description=description, widget=BS3TextFieldWidget())
    return widgets


def ui_field_behaviour() -> dict[str, Any]:
    """The connection form's standard fields, for Airflow 3.1 (3.2+ read :data:`UI_FIELD_BEHAVIOUR`
    from the provider info)."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }


def request_headers(library: str, library_version: str) -> dict[str, str]:
    """The headers every request carries, whichever client sends it. Answers are asked for
    uncompressed: Fuse's are a few hundred bytes, and the read cap then counts the bytes received."""
    return {
        "Accept": "application/json",
        "Accept-Encoding": "identity",
        "User-Agent": f"airflow-provider-fuse/{__version__} {library}/{library_version}",
    }


# --- The stored connection -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionSettings:
    """What a ``fuse`` connection says, checked: where Fuse is, who we are, how to reach it.

    ``timeout`` is (connect, read) seconds; ``total_timeout`` bounds a whole request.
    """

    base_url: str
    email: str
    developer_key: str = field(repr=False)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    verify: bool | str = True
    proxies: Mapping[str, str] = field(default_factory=dict, repr=False)
    ignored_extras: tuple[str, ...] = ()
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT

    @classmethod
    def from_connection(cls, conn: Connection) -> ConnectionSettings:
        """Read and check a ``fuse`` connection.

        login = account email, password = developer key, host = API base URL (see :func:`base_url`),
        extras ``timeout``, ``verify``, ``proxies``, ``allow_http``; other extras are reported in
        ``ignored_extras`` and never used. No message quotes the host, a proxy or a credential.

        :raises FuseValidationError: naming the connection field that is missing or wrong: a host
            that is not an http(s) URL or carries a user name or password, a port outside 1–65535,
            a proxy this install cannot use or a ``proxies`` key requests does not read, a timeout
            that is not a finite positive number of seconds.
        """
        extras = conn.extra_dejson if conn.extra else {}
        if not isinstance(extras, dict):
            raise FuseValidationError("extra", "the connection's extra must be a JSON object")
        # The connection form stores a field left empty as null (or, on Airflow 3.1, ""): not set.
        extras = {key: value for key, value in extras.items() if value is not None and value != ""}
        url = base_url(conn.host, conn.port, conn.schema)
        _refuse_clear_text(url, allow_http=_to_bool("allow_http", extras.get("allow_http", False)))
        if not conn.login:
            raise FuseValidationError("login", "the connection needs the Fuse account email as its login")
        if not conn.password:
            raise FuseValidationError(
                "password", "the connection needs the Fuse developer key as its password"
            )
        connect, read, total = _timeout(extras.get("timeout"))
        return cls(
            base_url=url,
            email=conn.login,
            developer_key=conn.password,
            timeout=(connect, read),
            total_timeout=total,
            verify=_verify(extras.get("verify", True)),
            proxies=_proxies(extras.get("proxies")),
            ignored_extras=tuple(sorted(set(extras) - KNOWN_EXTRAS)),
        )

    @property
    def authorization(self) -> str:
        """The value of the Authorization header these credentials make (a secret)."""
        token = base64.b64encode(f"{self.email}:{self.developer_key}".encode()).decode("ascii")
        return f"Basic {token}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every form of a credential an answer could echo, for :func:`redact`: the developer key,
        the Authorization value and its base64 token, and the passwords of the proxies' URLs."""
        authorization = self.authorization
        values = [self.developer_key, authorization, authorization.removeprefix("Basic ")]
        for key, proxy in self.proxies.items():
            auth = _proxy_auth(proxy) if key != "no_proxy" else None
            if auth:
                values.extend([auth, auth.partition(":")[2], unquote(auth.partition(":")[2])])
        return tuple(value for value in values if value)


def base_url(host: str | None, port: int | str | None = None, schema: str | None = None) -> str:
    """Form the API base URL from a connection's host, port and schema.

    Empty host → Fuse's public API, ``https://fuse.plumvoice.com/api``, read by the same rules as a
    host. A host without a scheme gets ``https://``. A host without a path gets ``/<schema>`` when
    the schema is set, else ``/api``. A host with a path is taken as it is.

    The ``port`` field (which Airflow 3.3.2's *Test* button needs stored; the form's placeholder
    says 443, Fuse's port):

    * the other scheme's own port (443 with an http host, 80 with an https one) is taken for that
      placeholder copied in, not for a port: it is not used (``http://127.0.0.1`` with 443 is
      ``http://127.0.0.1/api``, not ``http://127.0.0.1:443/api``). To reach such a port, put it in
      the host;
    * otherwise, for a host without a port: added to the URL, unless it is the scheme's own (443
      for https, 80 for http);
    * for a host with a port: it must be that port.

    :raises FuseValidationError: naming ``host`` when it is not an http(s) URL, carries a user name
        or password, or has a port outside 1–65535; naming ``port`` when that is outside 1–65535,
        or differs from the port in the host. The message never quotes the host.
    """
    text = (host or "").strip() or DEFAULT_BASE_URL
    if any(char.isspace() or not char.isprintable() for char in text):
        raise FuseValidationError("host", "the API base URL must not contain spaces or control characters")
    if "://" not in text:
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        hostname = parts.hostname
    except ValueError:
        hostname = scheme = None
    if scheme not in ("http", "https") or not hostname:
        raise FuseValidationError(
            "host", "the API base URL must be an http(s) URL such as " + DEFAULT_BASE_URL
        )
    if "@" in parts.netloc:
        # Credentials in the URL would be logged with it; they belong in login and password.
        raise FuseValidationError(
            "host",
            "the API base URL must not carry a user name or password: put the account email in login "
            "and the developer key in password",
        )
    try:
        host_port = parts.port
    except ValueError:
        host_port = 0
    if host_port == 0:
        raise FuseValidationError("host", "the port in the API base URL must be a number from 1 to 65535")
    netloc = parts.netloc
    field_port = _port(port)
    if field_port == _DEFAULT_PORTS["http" if scheme == "https" else "https"]:
        field_port = None  # the form's placeholder, not this scheme's port
    if field_port and host_port is not None and field_port != host_port:
        raise FuseValidationError(
            "port",
            f"{field_port} differs from the port in the host's API base URL ({host_port}): make them the "
            "same, or leave port empty",
        )
    if field_port and host_port is None and field_port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{field_port}"
    path = parts.path.rstrip("/")
    if not path:
        path = "/" + schema.strip("/") if schema and schema.strip("/") else "/api"
    url = urlunsplit((scheme, netloc, path, "", ""))
    import requests
    from urllib3.exceptions import LocationParseError

    try:
        # What requests will do with it: IDNA-encode the host, parse every part.
        requests.PreparedRequest().prepare_url(f"{url}/", None)
    except (requests.RequestException, LocationParseError, ValueError):
        raise FuseValidationError(
            "host", "the API base URL is not a valid URL (check its host name, port and path)"
        ) from None
    return url


#: The port a scheme's URL means without one: a ``port`` field naming it adds nothing to the URL.
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _port(value: object) -> int | None:
    """The connection's ``port`` field: unset, or a number from 1 to 65535."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise FuseValidationError("port", "must be a number from 1 to 65535")


def _refuse_clear_text(url: str, *, allow_http: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme != "http" or allow_http or is_loopback(parts.hostname or ""):
        return
    raise FuseValidationError(
        "host",
        f"{url} is plain http and would send the developer key in clear; use https, or set the "
        'connection extra {"allow_http": true} if this network is trusted',
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ``::1``, in brackets
    or not). Other names are not resolved: they count as not loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _to_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise FuseValidationError(f"extra.{name}", "must be true or false")


def _from_text(value: object) -> object:
    """A connection extra given as text (the URI form's query string): its JSON value, if it has one."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _is_seconds(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= MAX_TIMEOUT
    )


def _timeout(value: object) -> tuple[float, float, float]:
    """The ``timeout`` extra as (connect, read, total) seconds, each finite, positive, at most a day."""
    value = _from_text(value)
    connect, read = DEFAULT_TIMEOUT
    total = DEFAULT_TOTAL_TIMEOUT
    if value is None:
        return connect, read, total
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        connect = read = value
    elif isinstance(value, Mapping) and set(value) <= set(_TIMEOUT_KEYS):
        connect = value.get("connect", connect)
        read = value.get("read", read)
        total = value.get("total", total)
    elif isinstance(value, (list, tuple)) and len(value) in (2, 3):
        connect, read = value[0], value[1]
        total = value[2] if len(value) == 3 else total
    else:
        raise FuseValidationError(
            "extra.timeout", 'must be seconds, [connect, read] or {"connect": s, "read": s, "total": s}'
        )
    for name, seconds in zip(_TIMEOUT_KEYS, (connect, read, total), strict=True):
        if not _is_seconds(seconds):
            raise FuseValidationError(
                f"extra.timeout.{name}", f"must be a number of seconds above 0 and at most {MAX_TIMEOUT:.0f}"
            )
    return float(connect), float(read), float(total)


def _verify(value: object) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if isinstance(value, str) and value:
        return value
    raise FuseValidationError("extra.verify", "must be true, false, or the path of a CA bundle")


#: The keys of the ``proxies`` extra requests reads: a scheme (``http``, ``https``), ``all``, a
#: scheme or ``all`` with a host (``https://fuse.example.com``), and ``no_proxy`` (hosts for which
#: the environment's proxies are not used).
_PROXY_KEY = re.compile(r"(?:https?|all)(?:://[^\s/]+)?")


def _proxies(value: object) -> dict[str, str]:
    """The ``proxies`` extra as both clients use it: each proxy a URL with a scheme this install can
    use (``http://`` put in front of one without, as requests does), each key one requests reads.
    A key requests would ignore is refused rather than silently unused. No message quotes a proxy
    URL: it may carry the proxy's password."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    value = _from_text(value)
    if value is None:
        return {}
    if not (
        isinstance(value, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise FuseValidationError("extra.proxies", 'must be an object such as {"https": "http://proxy:3128"}')
    proxies: dict[str, str] = {}
    for key, proxy in value.items():
        name = f"extra.proxies.{redact(key, 40)}"
        if key == "no_proxy":
            if not proxy.isprintable():
                raise FuseValidationError(name, "must be a comma-separated list of host names")
            proxies[key] = proxy
            continue
        if not _PROXY_KEY.fullmatch(key):
            raise FuseValidationError(
                name,
                "is not a key requests reads: use http, https, all, <scheme>://<host> or no_proxy",
            )
        text = proxy.strip()
        if "://" not in text:
            text = f"http://{text}"  # as requests reads a proxy without a scheme
        try:
            parsed = parse_url(text)
            port = parsed.port
        except (LocationParseError, ValueError):
            raise FuseValidationError(name, "is not a valid proxy URL") from None
        scheme = (parsed.scheme or "").lower()
        if not parsed.host or port == 0 or any(char.isspace() for char in text):
            raise FuseValidationError(name, "is not a valid proxy URL")
        if scheme in _SOCKS_SCHEMES and not _socks_available():
            raise FuseValidationError(
                name, "a SOCKS proxy needs PySocks, which is not installed (pip install 'requests[socks]')"
            )
        if scheme not in ("http", "https") and scheme not in _SOCKS_SCHEMES:
            raise FuseValidationError(name, "must be an http, https or socks proxy URL")
        proxies[key] = text
    return proxies


def _socks_available() -> bool:
    """Whether urllib3's SOCKS support imports in this install (it needs PySocks)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # urllib3 warns before it raises
            import urllib3.contrib.socks  # noqa: F401
    except ImportError:
        return False
    return True


def _proxy_auth(proxy: str) -> str | None:
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        return parse_url(proxy if "://" in proxy else f"http://{proxy}").auth
    except (LocationParseError, ValueError):
        return None
