"""The ``[fuse]`` config section: where Fuse reaches the results receiver, and where outcomes land.

Declared in the provider info (:data:`CONFIG`), so ``airflow config list`` shows it, and read with
Airflow's own ``conf``: an option comes from ``airflow.cfg``, from ``AIRFLOW__FUSE__<OPTION>`` in any
component, or — for the signing key, a sensitive option — from ``results_signing_key_cmd`` /
``results_signing_key_secret`` (a secrets backend). Every component that takes part needs the same
values: the workers (the bulk operator signs tokens and builds ``result_url``), the api-server (the
receiver checks tokens and stores outcomes), and the triggerer (the results sensor counts them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_fuse.hooks.connection import is_loopback

__all__ = [
    "CONFIG",
    "DEFAULT_CONN_ID",
    "DEFAULT_TABLE",
    "SECTION",
    "ResultsConfig",
    "ResultsConfigError",
    "ResultsConfigUnreadable",
    "check_base_url",
    "check_table_name",
    "is_loopback",
]

SECTION = "fuse"
DEFAULT_CONN_ID = "fuse_results_default"
DEFAULT_TABLE = "fuse_call_results"
#: Seconds a results token stays valid after the dialing window closes: 2 days.
DEFAULT_TOKEN_LIFETIME = 2 * 86400
#: The receiver's path, below ``results_base_url``: ``<results_base_url>/fuse/results/<token>``.
RESULTS_PATH = "/fuse/results/"

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?")
#: Schemas a results table must not be in, case-insensitive: SQLite's ``temp`` (the connection's
#: temporary database) and Postgres's ``pg_`` schemas (``pg_temp``, ``pg_temp_<n>``: the session's
#: temporary schema; the others are the system's). A table there is dropped with its connection and
#: every outcome answered stored goes with it.
_TEMPORARY_SCHEMA = re.compile(r"temp|pg_\w*", re.IGNORECASE | re.ASCII)

#: The provider info's ``config`` entry (Airflow's config.yml schema).
CONFIG: dict[str, Any] = {
    SECTION: {
        "description": "Plum Fuse: the results receiver (POST <results_base_url>/fuse/results/<token>, "
        "mounted on the api-server) and FuseBulkQueueOperator(collect_results=True).",
        "options": {
            "results_base_url": {
                "description": "Where Fuse can reach the results receiver: the api-server's public base "
                "URL (or the standalone receiver's), without /fuse. https, except on a loopback host.",
                "version_added": "0.2.0",
                "type": "string",
                "example": "https://airflow.example.com",
                "default": None,
            },
            "results_conn_id": {
                "description": "The Airflow connection (any DbApiHook database: Postgres, SQLite, ...) "
                "the receiver stores call outcomes in.",
                "version_added": "0.2.0",
                "type": "string",
                "example": None,
                "default": DEFAULT_CONN_ID,
            },
            "results_table": {
                "description": "The table of call outcomes, created when missing: a name, or "
                "schema.name (letters, digits, underscores).",
                "version_added": "0.2.0",
                "type": "string",
                "example": None,
                "default": DEFAULT_TABLE,
            },
            "results_signing_key": {
                "description": "The key results tokens are signed with (HMAC-SHA256), at least 32 "
                "characters, the same on workers and the api-server. Sensitive: give it with "
                "results_signing_key_secret or results_signing_key_cmd, or "
                "AIRFLOW__FUSE__RESULTS_SIGNING_KEY.",
                "version_added": "0.2.0",
                "type": "string",
                "sensitive": True,
                "example": None,
                "default": None,
            },
            "results_token_lifetime": {
                "description": "Seconds a results token stays valid after the dialing window closes "
                "(end_timestamp, or the last attempt's earliest start when there is none).",
                "version_added": "0.2.0",
                "type": "integer",
                "example": None,
                "default": str(DEFAULT_TOKEN_LIFETIME),
            },
        },
    }
}


class ResultsConfigError(ValueError):
    """An option of ``[fuse]`` is missing or unusable; the message names it (never its value)."""


class ResultsConfigUnreadable(ResultsConfigError):
    """An option of ``[fuse]`` could not be read at all: its ``_cmd`` failed, its secrets backend was
    out of reach. Unlike a missing or unusable option this may pass: a task meeting it is left to its
    retries."""


@dataclass(frozen=True)
class ResultsConfig:
    """The ``[fuse]`` options, read and checked.

    ``signing_key`` and ``base_url`` are ``None`` when not configured: :meth:`require_signing_key` and
    :meth:`result_url` say so, naming the option.
    """

    base_url: str | None
    conn_id: str
    table: str
    # Kept out of repr(): a config object in a traceback or a log line must not show the key.
    signing_key: str | None = field(repr=False)
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME

    @classmethod
    def load(cls) -> ResultsConfig:
        """Read ``[fuse]`` from Airflow's configuration (environment variables, ``_cmd``, ``_secret``).

        :raises ResultsConfigError: a table name that is not an identifier, a lifetime that is not
            a positive number of seconds, or an option that could not be read at all (a
            ``results_signing_key_cmd`` that failed, a secrets backend out of reach, ...). The last
            names the option and the exception's type only, and carries no cause: Airflow's error
            for a failing ``_cmd`` quotes the command's output, which may be the key itself.
        """
        from airflow_provider_fuse._compat import conf

        _know_the_section(conf)

        def option(key: str, fallback: str | None) -> str | None:
            try:
                value = conf.get(SECTION, key, fallback=fallback)
            except Exception as error:
                # Never the message (nor the exception as a cause): it may quote a _cmd's output.
                raise ResultsConfigUnreadable(
                    f"[fuse] {key} could not be read: {type(error).__name__} (its message is not "
                    "shown: it may quote the value, or the output of the option's _cmd)"
                ) from None
            return value.strip() if isinstance(value, str) and value.strip() else fallback

        lifetime = option("results_token_lifetime", str(DEFAULT_TOKEN_LIFETIME))
        try:
            token_lifetime = int(str(lifetime))
        except ValueError:
            raise ResultsConfigError(
                "[fuse] results_token_lifetime must be a whole number of seconds"
            ) from None
        if token_lifetime < 1:
            raise ResultsConfigError("[fuse] results_token_lifetime must be positive")
        return cls(
            base_url=option("results_base_url", None),
            conn_id=option("results_conn_id", DEFAULT_CONN_ID) or DEFAULT_CONN_ID,
            table=check_table_name(option("results_table", DEFAULT_TABLE) or DEFAULT_TABLE),
            signing_key=option("results_signing_key", None),
            token_lifetime=token_lifetime,
        )

    def require_signing_key(self) -> str:
        """The signing key; :class:`ResultsConfigError` naming the option when missing or too short."""
        from airflow_provider_fuse.results.tokens import MIN_KEY_LENGTH, check_key

        if self.signing_key is None:
            raise ResultsConfigError(
                "[fuse] results_signing_key is not set: set it (or results_signing_key_secret / "
                "results_signing_key_cmd, or AIRFLOW__FUSE__RESULTS_SIGNING_KEY) to a random key of at "
                f"least {MIN_KEY_LENGTH} characters, the same on the workers and the api-server"
            )
        try:
            return check_key(self.signing_key)
        except ValueError:
            raise ResultsConfigError(
                f"[fuse] results_signing_key is shorter than {MIN_KEY_LENGTH} characters: make a random "
                'one, e.g. with python -c "import secrets; print(secrets.token_hex(32))", and give the '
                "same key to the workers and the api-server"
            ) from None

    def result_url(self, token: str) -> str:
        """``<results_base_url>/fuse/results/<token>``.

        :raises ResultsConfigError: ``results_base_url`` missing, not an absolute http(s) URL, with
            userinfo, a query or a fragment, plain http off loopback (outcomes carry phone numbers),
            or a path ending in ``/fuse`` or holding ``/fuse/results`` (the receiver's own path,
            which the provider adds).
        """
        return f"{check_base_url(self.base_url)}{RESULTS_PATH}{token}"


def _know_the_section(conf: Any) -> None:
    """Make ``conf`` know ``[fuse]`` as the provider declares it, so that ``results_signing_key_cmd``
    and ``results_signing_key_secret`` are read: Airflow reads those variants only for options it
    knows to be sensitive. Airflow 3.1 loads the providers' config sections in its own commands but
    not in every process (``fuse-results serve``, a task); then it is loaded here, once."""
    try:
        if (SECTION, "results_signing_key") in conf.sensitive_config_values:
            return
        from airflow.providers_manager import ProvidersManager

        ProvidersManager().initialize_providers_configuration()  # type: ignore[no-untyped-call]
    except (AttributeError, ImportError):  # a conf without the notion: plain options still work
        return
    except Exception as error:
        # Type only, no cause: what a provider's configuration raises may quote anything. Nothing
        # says [fuse] is wrong: unreadable, so a task meeting it keeps its retries.
        raise ResultsConfigUnreadable(
            f"the providers' configuration could not be loaded to read [fuse] ({type(error).__name__})"
        ) from None


def check_table_name(name: str, *, given_as: str = "[fuse] results_table") -> str:
    """``name`` if it is a table name this package will put in SQL: ``name`` or ``schema.name``.

    Letters, digits and underscores only, not starting with a digit, each part at most 63
    characters: it is interpolated into SQL, so nothing else is accepted. The schema is not a
    temporary one (SQLite's ``temp``, Postgres's ``pg_temp``, ``pg_temp_<n>`` or any ``pg_``
    schema, in any case): a table there is dropped when its connection closes, with its outcomes.

    :param given_as: where the name came from, for the message: the option (the default) or the
        argument that gave it.
    :raises ResultsConfigError: otherwise, naming ``given_as`` (never the name).
    """
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise ResultsConfigError(
            f"{given_as} must be a table name (letters, digits and underscores, optionally "
            "schema.table, each at most 63 characters)"
        )
    schema, dot, _ = name.partition(".")
    if dot and _TEMPORARY_SCHEMA.fullmatch(schema):
        raise ResultsConfigError(
            f"{given_as} must not be in a temporary or system schema (temp, pg_temp, pg_...): a "
            "table there is dropped when its connection closes, and every outcome stored in it "
            "with it. Use the default schema or one of your own"
        )
    return name


def check_base_url(url: str | None) -> str:
    """``url`` without its trailing slash, if Fuse can be told to POST outcomes below it.

    :raises ResultsConfigError: see :meth:`ResultsConfig.result_url`.
    """
    if not url:
        raise ResultsConfigError(
            "[fuse] results_base_url is not set: set it to where Fuse can reach the results receiver "
            "(the api-server's public URL, e.g. https://airflow.example.com)"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ResultsConfigError("[fuse] results_base_url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ResultsConfigError("[fuse] results_base_url must be an absolute http(s) URL")
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ResultsConfigError("[fuse] results_base_url must have no userinfo, query or fragment")
    if parts.scheme == "http" and not is_loopback(host):
        raise ResultsConfigError(
            "[fuse] results_base_url must use https off loopback: call outcomes carry phone numbers"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/fuse") or "/fuse/results" in path:
        raise ResultsConfigError(
            "[fuse] results_base_url must be the api-server's root URL (or the standalone receiver's), "
            f"without /fuse: the provider adds {RESULTS_PATH}<token> to it. Remove /fuse and what "
            "follows it from the option"
        )
    return url.rstrip("/")
