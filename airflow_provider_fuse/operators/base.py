"""What every Fuse operator has: a ``fuse`` connection and the settings of the hook it builds.

The operators never speak HTTP: they build a :class:`~airflow_provider_fuse.hooks.fuse.FuseHook`
from the rendered ``fuse_conn_id`` and ``hook_params`` (checked here, when the DAG is parsed and
again before anything is sent) and ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow.sdk import BaseOperator

from airflow_provider_fuse.exceptions import FuseValidationError
from airflow_provider_fuse.hooks.connection import DEFAULT_CONN_NAME

# The hook's own bounds and checks, from a module that imports no HTTP client: parsing a DAG
# checks hook_params with them without importing the hook.
from airflow_provider_fuse.hooks.limits import (
    MAX_CONNECT_RETRIES,
    MAX_RETRY_BACKOFF,
    PROGRESS_INTERVAL_RULE,
    is_connect_retries,
    is_progress_interval,
    is_retry_backoff,
    shown_value,
)

if TYPE_CHECKING:
    from airflow_provider_fuse.hooks.fuse import FuseHook

__all__ = ["HOOK_PARAMS", "BaseFuseOperator", "Log", "checked_hook_params", "where"]


class Log(Protocol):
    """What the operators' helpers write to: an operator's ``self.log``."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


#: The ``FuseHook`` settings ``hook_params`` may give: each name, its check, and what it must be.
#: A value the hook would refuse (a string, ``nan`` seconds, a backoff that overflows a sleep) is
#: refused here, when the DAG is parsed, before a ledger records an intent for a request.
HOOK_PARAMS: dict[str, tuple[Callable[[object], bool], str]] = {
    "connect_retries": (is_connect_retries, f"an integer from 0 to {MAX_CONNECT_RETRIES}"),
    "retry_backoff": (is_retry_backoff, f"a finite number of seconds from 0 to {MAX_RETRY_BACKOFF:g}"),
    "progress_interval": (is_progress_interval, PROGRESS_INTERVAL_RULE),
}


def checked_hook_params(hook_params: object) -> dict[str, Any]:
    """``hook_params`` as ``FuseHook(...)`` takes them, checked against :data:`HOOK_PARAMS`.

    :raises FuseValidationError: (a ``ValueError``) naming the setting that is unknown or invalid.
    """
    if hook_params is None:
        return {}
    if not isinstance(hook_params, Mapping):
        raise FuseValidationError(
            "hook_params", f"must be a dict of FuseHook settings or None, got {type(hook_params).__name__}"
        )
    known = ", ".join(sorted(HOOK_PARAMS))
    for name, value in hook_params.items():
        if name == "fuse_conn_id":
            raise FuseValidationError("hook_params", "give the connection as the operator's fuse_conn_id")
        if name not in HOOK_PARAMS:
            raise FuseValidationError(
                "hook_params", f"{_key(name)} is not a FuseHook setting (known: {known})"
            )
        check, wanted = HOOK_PARAMS[name]
        if not check(value):
            raise FuseValidationError("hook_params", f"{name} must be {wanted}, got {shown_value(value)}")
    return dict(hook_params)


def _key(name: object) -> str:
    """An unknown ``hook_params`` key as an error names it: a short identifier itself, else what it is."""
    if isinstance(name, str) and name.isidentifier() and len(name) <= 64:
        return repr(name)
    return f"a key that is {shown_value(name)}"


def where(application_id: int, deployment_id: int) -> str:
    """The deployment a message is about, as every message names it."""
    return f"application {application_id} / deployment {deployment_id}"


class BaseFuseOperator(BaseOperator):
    """An operator that asks Fuse through a :class:`~airflow_provider_fuse.hooks.fuse.FuseHook`.

    :param fuse_conn_id: the ``fuse`` connection to use. (templated)
    :param hook_params: settings passed to ``FuseHook(...)``: ``connect_retries``, ``retry_backoff``,
        ``progress_interval`` (see :data:`HOOK_PARAMS`). Checked when the DAG is parsed.
    """

    def __init__(
        self,
        *,
        fuse_conn_id: str = DEFAULT_CONN_NAME,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        checked_hook_params(hook_params)
        self.fuse_conn_id = fuse_conn_id
        self.hook_params = hook_params

    def _connection_arguments(self) -> tuple[str, dict[str, Any]]:
        """The rendered connection id and the hook's settings, checked.

        :raises FuseValidationError: the connection id rendered to no id; ``hook_params`` was
            assigned something invalid after construction.
        """
        conn_id = self.fuse_conn_id
        if not isinstance(conn_id, str) or conn_id.strip() in ("", "None"):
            raise FuseValidationError("fuse_conn_id", f"must name an Airflow connection, got {conn_id!r}")
        return conn_id.strip(), checked_hook_params(self.hook_params)

    def _hook(self) -> FuseHook:
        """A new hook on the rendered connection, with ``hook_params``; reads nothing yet."""
        from airflow_provider_fuse.hooks.fuse import FuseHook

        conn_id, hook_params = self._connection_arguments()
        return FuseHook(conn_id, **hook_params)
