"""What the hook's tests share: Fuse's URLs below the test connection's base URL, a hook that does
not wait between tries, and the ``fuse_default`` connection set through the environment."""

from __future__ import annotations

import base64

import pytest

from airflow_provider_fuse.exceptions import FuseValidationError, nothing_queued
from airflow_provider_fuse.hooks.fuse import FuseHook
from tests.helpers import BASE_URL, DEVELOPER_KEY, EMAIL, connection_json

BULK_URL = f"{BASE_URL}/apps/12/34/bulk_queue"
QUEUE_URL = f"{BASE_URL}/apps/12/34/queue"
STATUS_URL = f"{BASE_URL}/outbound/77"
#: The test connection's credentials as its Authorization header carries them.
TOKEN = base64.b64encode(f"{EMAIL}:{DEVELOPER_KEY}".encode()).decode()


def make_hook(**kwargs: object) -> FuseHook:
    """A hook on ``fuse_default`` that retries without waiting."""
    return FuseHook(retry_backoff=0.0, **kwargs)  # type: ignore[arg-type]


def connection(monkeypatch: pytest.MonkeyPatch, **fields: object) -> None:
    """Set ``fuse_default`` to the test connection with ``fields`` changed."""
    monkeypatch.setenv("AIRFLOW_CONN_FUSE_DEFAULT", connection_json(**fields))


def settings_error(monkeypatch: pytest.MonkeyPatch, **fields: object) -> FuseValidationError:
    """What reading the settings of ``fuse_default`` with ``fields`` raises; nothing was sent."""
    connection(monkeypatch, **fields)
    with pytest.raises(FuseValidationError) as caught:
        make_hook().settings  # noqa: B018
    assert nothing_queued(caught.value)
    return caught.value
