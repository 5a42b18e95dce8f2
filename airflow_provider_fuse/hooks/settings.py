"""What a stored ``fuse`` connection means, checked: :class:`ConnectionSettings`.

The API base URL (:func:`base_url`), the credentials, and the extras ``timeout``, ``verify``,
``proxies`` and ``allow_http`` (:data:`~airflow_provider_fuse.hooks.connection.KNOWN_EXTRAS`); other
extras are reported and never used. A field or extra that cannot be used is refused when the
connection is read, naming it and never quoting the host, a proxy or a credential.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.hooks.connection import DEFAULT_BASE_URL, KNOWN_EXTRAS, is_loopback
from airflow_provider_fuse.hooks.limits import DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, MAX_TIMEOUT
from airflow_provider_fuse.masking import redact

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = ["ConnectionSettings", "base_url"]

_TIMEOUT_KEYS = ("connect", "read", "total")
_SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})


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
    host. A host without a scheme gets ``https://``. A host that is an IPv6 address without its
    brackets (with or without a scheme: Airflow's URI form stores ``[::1]`` as ``::1``) is that
    address, put in brackets; its port goes in the port field. A host without a path gets ``/<schema>`` when
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
    text = _bracket_ipv6(text)
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
    try:
        # What requests will do with it: IDNA-encode the host, parse every part.
        requests.PreparedRequest().prepare_url(f"{url}/", None)
    except (requests.RequestException, LocationParseError, ValueError):
        raise FuseValidationError(
            "host", "the API base URL is not a valid URL (check its host name, port and path)"
        ) from None
    return url


def _bracket_ipv6(text: str) -> str:
    """``text`` with its host in brackets when it is an IPv6 address without them, as a URL needs it
    (a zone's ``%`` quoted, as RFC 6874 has it); any other text as it is."""
    scheme, separator, host = text.rpartition("://")
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return text
    return f"{scheme}{separator}[{host.replace('%', '%25')}]"


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
    try:
        return parse_url(proxy if "://" in proxy else f"http://{proxy}").auth
    except (LocationParseError, ValueError):
        return None
