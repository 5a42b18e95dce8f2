"""What of a call is personal or secret, and how it is kept out of logs and Airflow's rendered view.

A phone number, a call's parameter values and the credentials a ``result_url`` may carry (userinfo,
a token in its query) are registered with Airflow's secret masker, which redacts log lines. The
masker alone is not enough for the rendered-template view: it skips values shorter than 5
characters, and an override of ``render_template_fields`` is not on the path mapped tasks render
through. So these template fields are :class:`Sealed`: once Airflow writes a rendered value back,
the operator attribute shows a redacted view of it and the value itself is held apart for ``execute``.

Text that comes from outside (an answer of Fuse, a database's error) is scrubbed by :func:`redact`
(defined in :mod:`airflow_provider_fuse.redaction`) before it reaches a log line or an exception:
credentials and phone numbers, whatever their spelling.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from airflow_provider_fuse.redaction import _EXCERPT_CHARS, HIDDEN, redact

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "Sealed",
    "mask_personal_data",
    "mask_url",
    "redact",
    "redact_value",
    "shape",
    "shown_call_parameters",
    "shown_keys",
    "shown_suppression_list",
    "shown_url",
]


def redact_value(value: Any, limit: int = _EXCERPT_CHARS, *, secrets: Iterable[str] = ()) -> str:
    """:func:`redact` of ``value`` as JSON text, its characters as they are: JSON's ``\\uXXXX``
    escapes would hide other scripts' digits and a key's non-ASCII characters from the scrubbing."""
    return redact(json.dumps(value, default=str, ensure_ascii=False), limit, secrets=secrets)


# A name an error may show: a short plain identifier ("error", "call_details").
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_SHOWN_NAMES = 8


def shape(value: Any, *, secrets: Iterable[str] = ()) -> str:
    """What ``value`` is, for an error that must not quote it: its kind and size, never its text.

    An object (a dict) is described by :func:`shown_keys` (``an object with keys error, message``);
    a list and a string by their length; a whole number by itself when it has 6 digits or fewer.

    :param secrets: every form of the connection's credential: a key that holds one is not named.
    """
    if isinstance(value, dict):
        return f"an object {shown_keys(value, secrets=secrets)}" if value else "an empty object"
    if isinstance(value, list):
        return f"a list of {_counted(len(value), 'item')}"
    if isinstance(value, str):
        return f"a string of {_counted(len(value), 'character')}" if value else "an empty string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        # Compared before it is printed: str() of a huge int may be refused.
        return str(value) if -(10**6) < value < 10**6 else "a number of more than 6 digits"
    if isinstance(value, float):
        return "a number"
    return type(value).__name__


def shown_keys(mapping: dict[Any, Any], *, secrets: Iterable[str] = ()) -> str:
    """The keys of a non-empty ``mapping`` as an error may show them: ``with keys error, message``
    (the first 8, then how many more), naming only short plain identifiers with fewer than 7 digits
    and no part of a secret, in any case; ``of 3 keys`` when none is one of those."""
    # Compared without case: a key that spells a secret in other capitals still spells it.
    hidden = [secret.casefold() for secret in secrets if secret]
    names = [
        key
        for key in mapping
        if isinstance(key, str)
        and _PLAIN_NAME.fullmatch(key)
        and redact(key) == key
        and not any(secret in key.casefold() or key.casefold() in secret for secret in hidden)
    ]
    if not names:
        return f"of {_counted(len(mapping), 'key')}"
    others = len(mapping) - min(len(names), _SHOWN_NAMES)
    more = f" and {_counted(others, 'other key')}" if others else ""
    return f"with keys {', '.join(names[:_SHOWN_NAMES])}{more}"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _mask(secret: str) -> None:
    from airflow.sdk.log import mask_secret

    if secret:
        mask_secret(secret)


def mask_personal_data(phone_number: object, call_parameters: object) -> None:
    """Register a call's phone number (as given, and its bare digits) and parameter values as secrets."""
    if isinstance(phone_number, (str, int)) and not isinstance(phone_number, bool):
        text = str(phone_number).strip()
        number = text.split(";", 1)[0].removeprefix("tel:").removeprefix("+")
        for secret in {text, number, number[-10:]}:
            _mask(secret)
    if isinstance(call_parameters, dict):
        for value in call_parameters.values():
            if isinstance(value, str):
                _mask(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                _mask(str(value))
    elif isinstance(call_parameters, str):
        _mask(call_parameters)


def shown_url(url: object) -> object:
    """``url`` as it may be shown: userinfo and every query value replaced by ``***``, no fragment.

    Anything that is not a string comes back as it is; a string that is not a URL is hidden whole.
    """
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return HIDDEN
    netloc = f"{HIDDEN}@{host}{port}" if "@" in parts.netloc else parts.netloc
    if all("=" in item for item in parts.query.split("&") if item):
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(name, HIDDEN) for name, _ in pairs], safe="*")
    else:  # a bare token (``?s3cr3t``) is no name: the whole query is hidden
        query = HIDDEN
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def mask_url(url: object) -> None:
    """Register the credentials a URL may carry (userinfo, query values) with the secret masker."""
    if not isinstance(url, str):
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        _mask(url)
        return
    if parts.username:
        _mask(parts.username)
    if parts.password:
        _mask(parts.password)
    for item in parts.query.split("&"):
        name, equals, value = item.partition("=")
        _mask(value if equals else name)


def shown_call_parameters(parameters: object) -> object:
    """Call parameters as they may be shown: each value hidden, the names kept."""
    if isinstance(parameters, dict):
        return {name: HIDDEN for name in parameters}
    return None if parameters is None else HIDDEN


def _shown_phone_number(value: object) -> object:
    return None if value is None else HIDDEN


class Sealed:
    """A template field whose rendered value is never left on the operator's attribute.

    An assignment outside rendering (``__init__``, or a DAG author setting a template or an XComArg
    later) is what was given, and reading the attribute gives it back. An assignment while the task
    is being rendered for execution (see :func:`_rendering`) is Airflow writing a rendered value
    back: the value is registered with the secret masker (``mask``) and held apart — :meth:`value`
    gives it to ``execute`` — while the attribute, which Airflow stores as the rendered field, shows
    ``view(value)``. Rendering the view again (a second render) changes nothing.

    :param check: run on each assignment outside rendering (what is given), to refuse it early.
    """

    def __init__(
        self,
        view: Callable[[Any], Any],
        mask: Callable[[Any], None],
        check: Callable[[Any], None] | None = None,
    ) -> None:
        self.view = view
        self.mask = mask
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        if f"_sealed_{self.name}" in state:
            return state[f"_sealed_{self.name}"][1]
        return state.get(f"_given_{self.name}")

    def __set__(self, obj: object, value: Any) -> None:
        state = obj.__dict__
        if f"_given_{self.name}" not in state or not _rendering(obj):
            # Construction (the first assignment, even of a mapped task's operator, which is built
            # while "from mapped"), or a DAG author's assignment: what is given (a template, an XComArg).
            if self.check is not None:
                self.check(value)
            state[f"_given_{self.name}"] = value
            if value is not None:
                state[f"_ever_given_{self.name}"] = True
            state.pop(f"_sealed_{self.name}", None)
            return
        sealed = state.get(f"_sealed_{self.name}")
        if sealed is not None and value == sealed[1]:
            return
        self.mask(value)
        state[f"_sealed_{self.name}"] = (value, self.view(value))

    def was_given(self, obj: object) -> bool:
        """Whether anything but ``None`` was ever assigned outside rendering (in ``__init__`` or later):
        once given, a value that renders (or is later set to) ``None`` is missing, not absent."""
        return bool(obj.__dict__.get(f"_ever_given_{self.name}"))

    def value(self, obj: object) -> Any:
        """The rendered value (or, before any rendering, what was given)."""
        state = obj.__dict__
        if f"_sealed_{self.name}" in state:
            return state[f"_sealed_{self.name}"][0]
        return state.get(f"_given_{self.name}")


#: Set on an operator by its ``render_template_fields`` while it renders (see :func:`_rendering`).
RENDERING = "_fuse_rendering"


def _rendering(obj: object) -> bool:
    """Whether ``obj`` is being rendered for execution: Airflow renders a copy locked for execution
    (``prepare_for_execution``), a mapped task's unmapped operator, or an operator whose own
    ``render_template_fields`` is running."""
    state = obj.__dict__
    return bool(
        state.get(RENDERING)
        or getattr(obj, "_lock_for_execution", False)
        or getattr(obj, "_BaseOperator__from_mapped", False)
    )


def sealed_phone_number() -> Sealed:
    """A ``phone_number`` template field: shown as ``***`` once rendered."""
    return Sealed(_shown_phone_number, lambda value: mask_personal_data(value, None))


def sealed_call_parameters() -> Sealed:
    """A ``call_parameters`` template field: names shown, every value ``***`` once rendered."""
    return Sealed(shown_call_parameters, lambda value: mask_personal_data(None, value))


def sealed_result_url() -> Sealed:
    """A ``result_url`` template field: userinfo and query values shown as ``***`` once rendered."""
    return Sealed(shown_url, mask_url)


def shown_suppression_list(value: object) -> object:
    """A suppression list as it may be shown: a list of numbers as ``<N numbers>``; a path as itself,
    with any run of seven digits or more hidden (a number given where a path belongs); anything else
    (an ``ObjectStoragePath``, a ``SuppressionQuery``, whose text names its connection, not its SQL)
    as itself."""
    if isinstance(value, str):
        return redact(value, limit=len(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        return f"<{_counted(len(value), 'number')}>"
    return value


def sealed_suppression_list(check: Callable[[Any], None] | None = None) -> Sealed:
    """A ``suppression_list`` template field: shown by :func:`shown_suppression_list` once rendered.
    Its numbers are not registered with the secret masker (a list may hold a million): no log line
    holds them. ``check`` refuses what is given (see :class:`Sealed`)."""
    return Sealed(shown_suppression_list, lambda value: None, check)
