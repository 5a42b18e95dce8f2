"""The ``fuse`` connection as Airflow knows it: its type, its default id, its form.

Standard library only: Airflow reads the form through
:func:`~airflow_provider_fuse.get_provider_info.get_provider_info` while it is itself being imported,
and the operators, sensors and triggers name the default connection when a DAG is parsed. What a
stored connection means, checked, is :mod:`airflow_provider_fuse.hooks.settings`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from airflow_provider_fuse import __version__
from airflow_provider_fuse.hooks.limits import MAX_TIMEOUT

__all__ = [
    "CONN_FIELDS",
    "CONN_TYPE",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONN_NAME",
    "HOOK_NAME",
    "KNOWN_EXTRAS",
    "UI_FIELD_BEHAVIOUR",
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


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ``::1``, in brackets
    or not). Other names are not resolved: they count as not loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
