"""Counting a campaign's outcomes without waiting on a database forever: the bound of one count,
and the daemon threads counts run in, shared by the results sensor and its trigger."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_COUNT_TIMEOUT", "LAST_COUNT_SECONDS", "DaemonThreadExecutor"]

#: Seconds a count of the results table is waited for, by the trigger and the poking sensor.
DEFAULT_COUNT_TIMEOUT = 30.0
#: Seconds the trigger's last count, made when the deadline passes, may take: its event comes no
#: later than this after the deadline (or ``count_timeout``, if shorter), whatever the database does.
LAST_COUNT_SECONDS = 2.0

_T = TypeVar("_T")


class DaemonThreadExecutor(ThreadPoolExecutor):
    """Runs each call in a new daemon thread of its own (a ``ThreadPoolExecutor`` in type only, for
    asgiref's ``sync_to_async``: it starts no pool).

    For database reads that may never return: a pool's threads are joined when the interpreter exits
    (and a busy worker delays the next call); a daemon thread stuck on a frozen database delays
    nothing and is dropped when the process ends. Callers run one call at a time.
    """

    def __init__(self, name: str) -> None:
        super().__init__(max_workers=1, thread_name_prefix=name)
        self.name = name

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        """Start ``fn(*args, **kwargs)`` in a new daemon thread; its future."""
        future: Future[_T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:  # handed to whoever waits on the future
                future.set_exception(error)

        threading.Thread(target=run, name=self.name, daemon=True).start()
        return future
