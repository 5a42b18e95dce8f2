"""The call lifecycle simulation and the ``result_url`` callbacks. No real call is ever placed.

Rules (all times on the sandbox clock, see ``docs/sandbox.md``):

* A call is ``queued`` at its first attempt time: ``start_timestamp``, or the queue time if later.
* An attempt: ``dialing`` (``attempts`` + 1). A destination whose number ends in ``9`` does not
  answer: after :data:`NO_ANSWER_SECONDS` the attempt ends (event ``no_answer``); the call is
  ``queued`` again ``reattempt_wait`` seconds later, or ``failed`` once ``max_attempts`` are used.
  Any other destination answers after :data:`RING_SECONDS` (``connected``), talks for
  :data:`TALK_SECONDS` (``duration``) and hangs up (``disconnected``, then ``completed``).
* The window: no attempt begins at or after ``end_timestamp``; a call still ``queued`` or ``dialing``
  when it closes is ``failed`` (event ``expired``). A ``connected`` call finishes its conversation.
* ``cancel`` makes calls ``canceled`` (which ones: the ``cancel_scope`` assumption).
* A call that ends with a ``result_url`` gets its ``call_details`` POSTed there, only to a loopback
  host unless external callbacks were explicitly allowed. Redirects are never followed: only the
  checked URL is ever called.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_fuse.sandbox.models import Call, SandboxCallEvent, SandboxCallStatus

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_fuse.sandbox.clock import SandboxClock
    from airflow_provider_fuse.sandbox.store import Store

__all__ = [
    "NO_ANSWER_SECONDS",
    "RING_SECONDS",
    "TALK_SECONDS",
    "CallbackDelivery",
    "Simulator",
    "answers",
    "is_loopback_url",
]

log = logging.getLogger(__name__)

#: Sandbox seconds an answering destination rings before it connects.
RING_SECONDS = 5
#: Sandbox seconds an unanswered attempt rings before it gives up.
NO_ANSWER_SECONDS = 30
#: Sandbox seconds a connected call lasts (its ``duration``).
TALK_SECONDS = 30
#: Reattempt wait used if a call somehow has none (validation requires it when max_attempts > 1).
_DEFAULT_WAIT = 60
_CALLBACK_TIMEOUT = 5.0


def answers(phone_number: str) -> bool:
    """The deterministic outcome rule: a number ending in ``9`` never answers; others always do."""
    return not phone_number.endswith("9")


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is ``localhost`` or a loopback address (127.0.0.0/8, ::1).

    Names other than ``localhost`` are not resolved: they count as not loopback.
    """
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuses every redirect, so a 3xx ends the delivery as an ``HTTPError``.

    Following one would send the call's details to a URL the loopback check never saw.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


@dataclass
class _State:
    status: str
    attempts: int
    events: list[SandboxCallEvent]
    duration: int | None
    next_at: float | None


class CallbackDelivery:
    """A worker thread that POSTs ``call_details`` to ``result_url`` s and records the outcome.

    :param store: where outcomes are recorded (``Call.result_delivery`` and friends).
    :param allow_external: also deliver to non-loopback hosts (off by default: the sandbox never
        talks to the outside world).
    """

    def __init__(self, store: Store, allow_external: bool = False) -> None:
        self._store = store
        self._allow_external = allow_external
        self._queue: queue.Queue[tuple[str, str, bytes] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        # No proxies: a loopback callback must never be routed through an HTTP(S)_PROXY.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fuse-sandbox-callbacks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Deliver what is already queued, then stop and join the worker."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def submit(self, call: Call, body: dict[str, Any]) -> None:
        """Deliver ``body`` to the call's ``result_url`` (or record why it is not delivered)."""
        if not call.result_url:
            return
        if not (self._allow_external or is_loopback_url(call.result_url)):
            self._store.update_call(
                call.call_id,
                result_delivery="not_delivered",
                result_detail="the result_url host is not loopback; the sandbox only calls loopback hosts",
            )
            return
        self._store.update_call(call.call_id, result_delivery="pending")
        self._queue.put((call.call_id, call.result_url, json.dumps(body, separators=(",", ":")).encode()))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            call_id, url, body = item
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with self._opener.open(request, timeout=_CALLBACK_TIMEOUT) as response:
                    self._store.update_call(
                        call_id,
                        result_delivery="delivered",
                        result_status_code=response.status,
                        result_detail=None,
                    )
            except urllib.error.HTTPError as exc:
                detail = (
                    f"the result_url answered a redirect ({exc.code}); the sandbox does not follow redirects"
                    if 300 <= exc.code < 400
                    else str(exc)
                )
                self._store.update_call(
                    call_id, result_delivery="failed", result_status_code=exc.code, result_detail=detail
                )
            except Exception as exc:  # any network failure is an outcome to record, not a crash
                self._store.update_call(call_id, result_delivery="failed", result_detail=repr(exc))


class Simulator:
    """Moves calls through their lifecycle as the sandbox clock passes.

    A background thread wakes when the next call is due; :meth:`catch_up` does the same work
    synchronously, so anything that reads or changes calls first brings them up to the clock.

    :param on_terminal: called (under the store lock) with each call that just ended.
    """

    def __init__(self, store: Store, clock: SandboxClock, on_terminal: Callable[[Call], None]) -> None:
        self._store = store
        self._clock = clock
        self._on_terminal = on_terminal
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="fuse-sandbox-simulator", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop and join the background thread."""
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join()
            self._thread = None

    def wake(self) -> None:
        """Re-plan now (new calls were queued or the clock was moved)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.catch_up()
                due = self._store.next_due()
            except Exception:  # keep simulating; a test will see the stuck call
                log.exception("Fuse sandbox simulator step failed")
                due = None
            wait = 0.5 if due is None else self._clock.real_seconds(due - self._clock.now())
            self._wake.wait(min(max(wait, 0.002), 0.5))
            self._wake.clear()

    def catch_up(self) -> None:
        """Apply every transition due by the sandbox's current time."""
        with self._store.batch():
            now = self._clock.now()
            for call in self._store.due_calls(now):
                self._advance(call, now)

    def queue_state(self, queued_at: int, start_timestamp: int | None) -> dict[str, Any]:
        """Initial column values of a call queued at ``queued_at``."""
        first_attempt = max(start_timestamp or queued_at, queued_at)
        return {
            "status": SandboxCallStatus.QUEUED,
            "attempts": 0,
            "events": [SandboxCallEvent("queued", queued_at)],
            "duration": None,
            "next_at": float(first_attempt),
        }

    def cancel(self, calls: list[Call]) -> list[Call]:
        """Mark ``calls`` canceled at the current time and report them ended. Hold the store lock."""
        now = int(self._clock.now())
        ended = []
        for call in calls:
            events = (*call.events, SandboxCallEvent(SandboxCallStatus.CANCELED, now))
            self._store.update_call(
                call.call_id, status=SandboxCallStatus.CANCELED, events=events, next_at=None
            )
            ended.append(replace(call, status=SandboxCallStatus.CANCELED, events=events, next_at=None))
        for call in ended:
            self._on_terminal(call)
        return ended

    def _advance(self, call: Call, now: float) -> None:
        state = _State(call.status, call.attempts, list(call.events), call.duration, call.next_at)
        end = call.end_timestamp
        while state.status in (
            SandboxCallStatus.QUEUED,
            SandboxCallStatus.DIALING,
            SandboxCallStatus.CONNECTED,
        ):
            assert state.next_at is not None
            window_closes = (
                state.status != SandboxCallStatus.CONNECTED and end is not None and end <= state.next_at
            )
            due = float(end) if window_closes and end is not None else state.next_at
            if due > now:
                break
            if window_closes and end is not None:
                state.events.append(SandboxCallEvent("expired", end))
                state.events.append(SandboxCallEvent(SandboxCallStatus.FAILED, end))
                state.status, state.next_at = SandboxCallStatus.FAILED, None
            else:
                self._transition(call, state)
        self._store.update_call(
            call.call_id,
            status=state.status,
            attempts=state.attempts,
            events=state.events,
            duration=state.duration,
            next_at=state.next_at,
        )
        if state.status != call.status and state.next_at is None:
            self._on_terminal(
                replace(
                    call,
                    status=state.status,
                    attempts=state.attempts,
                    events=tuple(state.events),
                    duration=state.duration,
                    next_at=None,
                )
            )

    @staticmethod
    def _transition(call: Call, state: _State) -> None:
        assert state.next_at is not None
        at = int(state.next_at)
        if state.status == SandboxCallStatus.QUEUED:
            state.attempts += 1
            state.status = SandboxCallStatus.DIALING
            state.events.append(SandboxCallEvent(SandboxCallStatus.DIALING, at))
            state.next_at = state.next_at + (
                RING_SECONDS if answers(call.phone_number) else NO_ANSWER_SECONDS
            )
        elif state.status == SandboxCallStatus.DIALING and answers(call.phone_number):
            state.status = SandboxCallStatus.CONNECTED
            state.events.append(SandboxCallEvent(SandboxCallStatus.CONNECTED, at))
            state.next_at = state.next_at + TALK_SECONDS
        elif state.status == SandboxCallStatus.DIALING:
            state.events.append(SandboxCallEvent("no_answer", at))
            if state.attempts < call.max_attempts:
                state.status = SandboxCallStatus.QUEUED
                state.next_at = state.next_at + (call.reattempt_wait or _DEFAULT_WAIT)
            else:
                state.status = SandboxCallStatus.FAILED
                state.events.append(SandboxCallEvent(SandboxCallStatus.FAILED, at))
                state.next_at = None
        else:  # connected
            state.status = SandboxCallStatus.COMPLETED
            state.duration = TALK_SECONDS
            state.events.append(SandboxCallEvent("disconnected", at))
            state.events.append(SandboxCallEvent(SandboxCallStatus.COMPLETED, at))
            state.next_at = None
