"""The sandbox clock: unix seconds that can run faster than real time and be moved forward."""

from __future__ import annotations

import threading
import time

__all__ = ["SandboxClock"]


class SandboxClock:
    """Unix time as the simulated Fuse sees it.

    ``now() = start + (real seconds since creation) * time_scale + seconds advanced``.

    :param time_scale: sandbox seconds per real second (60: a ``reattempt_wait`` of 60 s passes in
        one real second). Must be positive.
    :param start: the sandbox time at creation; default the real time (a restarted sandbox passes
        the time it had reached, so its clock never runs backwards).
    :raises ValueError: for a time_scale that is not positive.
    """

    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        self._scale = float(time_scale)
        self._start = time.time() if start is None else float(start)
        self._real_start = time.monotonic()
        self._advanced = 0.0
        self._lock = threading.Lock()

    @property
    def time_scale(self) -> float:
        """Sandbox seconds per real second."""
        return self._scale

    def now(self) -> float:
        """The current sandbox time, in unix seconds."""
        with self._lock:
            return self._start + (time.monotonic() - self._real_start) * self._scale + self._advanced

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward (never back); return the new time.

        :raises ValueError: for a negative ``seconds``.
        """
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._advanced += seconds
        return self.now()

    def real_seconds(self, sandbox_seconds: float) -> float:
        """How many real seconds ``sandbox_seconds`` of sandbox time take."""
        return sandbox_seconds / self._scale
