"""Fixtures the hook's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import connection_json
from tests.hooks.helpers import RawPeer


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch) -> Iterator[RawPeer]:
    """A :class:`RawPeer` that ``fuse_default`` points at; closed after the test."""
    server = RawPeer()
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(host=server.url))
    try:
        yield server
    finally:
        server.close()
