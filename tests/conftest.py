"""Shared test setup: an isolated AIRFLOW_HOME, a `fuse_default` connection from the environment,
and, on request, a clock moved ahead for the whole session.

Unit tests need no Airflow database: connections resolve from ``AIRFLOW_CONN_<ID>`` variables.

``FUSE_TEST_CLOCK_OFFSET_DAYS=N`` moves the wall clock (``time.time``, ``datetime.now``, ...) N days
ahead, ticking, for the whole session: ``make test-future`` runs the unit tests a year ahead, so a
test that takes a fixed date for "now" fails the day it is written, not the day that date passes.
Monotonic clocks are not moved (timeouts and asyncio behave as usual), and subprocesses are not.

SIGTERM ends a run as Ctrl-C does (in each pytest-xdist worker too): the fixtures are torn down, so
the processes they started (an ``airflow api-server``, a sandbox) are stopped; a second SIGTERM ends
it at once.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

import pytest
import time_machine
from hypothesis import HealthCheck, settings

from tests.helpers import connection_json

# Property tests judge what is generated, not how fast: these machines are shared, and a generator
# that takes a second under load is not a failure of the code under test.
settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")

# Before anything imports airflow: never touch ~/airflow, never load Airflow's example DAGs.
_HOME = tempfile.mkdtemp(prefix="fuse-tests-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

CLOCK_OFFSET_VARIABLE = "FUSE_TEST_CLOCK_OFFSET_DAYS"
_moved_clock: time_machine.travel | None = None
_sigterm_before: signal.Handlers | None = None


def _clock_offset_days() -> float:
    raw = os.environ.get(CLOCK_OFFSET_VARIABLE, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise pytest.UsageError(f"{CLOCK_OFFSET_VARIABLE} must be a number of days, got {raw!r}") from None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread, once; only where nothing else handles it."""
    global _sigterm_before
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        _sigterm_before = signal.SIG_DFL
        signal.signal(signal.SIGTERM, _interrupt)


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM tears the fixtures down; move the clock before any test module is imported, so
    import-time reads see it too; then import Airflow's configuration."""
    global _moved_clock
    _interrupt_on_sigterm()
    days = _clock_offset_days()
    if days and _moved_clock is None:
        _moved_clock = time_machine.travel(time.time() + days * 86400, tick=True)
        _moved_clock.start()
    # On first import Airflow's configuration module puts "default" filters for DeprecationWarnings
    # from modules matching "airflow" (airflow_provider_fuse too) in front of all others: in the test
    # that first imported it, pyproject's "error" would not hold. Imported before any test instead,
    # they sit beneath pytest's filters.
    import airflow.configuration  # noqa: F401


def pytest_report_header(config: pytest.Config) -> str | None:
    days = _clock_offset_days()
    return f"clock moved {days:g} days ahead ({CLOCK_OFFSET_VARIABLE})" if days else None


def pytest_unconfigure(config: pytest.Config) -> None:
    global _moved_clock, _sigterm_before
    if _sigterm_before is not None and signal.getsignal(signal.SIGTERM) is _interrupt:
        signal.signal(signal.SIGTERM, _sigterm_before)
        _sigterm_before = None
    if _moved_clock is not None:
        _moved_clock.stop()
        _moved_clock = None


@pytest.fixture
def fuse_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """`fuse_default` pointing at https://fuse.example.com/api (served by requests-mock in tests)."""
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json())


@pytest.fixture
def contacts_csv(tmp_path: Path) -> Path:
    """A small valid contact CSV: destination first, one call variable."""
    path = tmp_path / "contacts.csv"
    path.write_bytes(
        b"destination,first_name\r\n6175551234,Ada\r\n16175551235,Grace\r\ntel:+16175551236;ani=8009957586,Alan\r\n"
    )
    return path


@pytest.fixture
def log_text(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture):
    """A callable returning everything logged so far: Airflow's structlog writes to stdout/stderr,
    stdlib logging reaches caplog; tests about what a log line holds read both."""
    caplog.set_level("DEBUG")

    def read() -> str:
        out, err = capsys.readouterr()
        read.text += out + err  # type: ignore[attr-defined]
        return read.text + caplog.text  # type: ignore[attr-defined]

    read.text = ""  # type: ignore[attr-defined]
    return read
