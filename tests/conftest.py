"""Shared test setup: an isolated AIRFLOW_HOME, and a `fuse_default` connection from the environment.

Unit tests need no Airflow database: connections resolve from ``AIRFLOW_CONN_<ID>`` variables.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.helpers import connection_json

# Before anything imports airflow: never touch ~/airflow, never load Airflow's example DAGs.
_HOME = tempfile.mkdtemp(prefix="fuse-tests-airflow-home-")
os.environ["AIRFLOW_HOME"] = _HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")


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
