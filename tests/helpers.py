"""Constants and helpers shared by the tests."""

from __future__ import annotations

import json

EMAIL = "ops@example.com"
DEVELOPER_KEY = "dk-4f1c9e2a7b3d5e6f"
BASE_URL = "https://fuse.example.com/api"


def connection_json(**fields: object) -> str:
    """A ``fuse`` connection in Airflow's JSON environment-variable form."""
    conn: dict[str, object] = {
        "conn_type": "fuse",
        "login": EMAIL,
        "password": DEVELOPER_KEY,
        "host": BASE_URL,
    }
    conn.update(fields)
    return json.dumps({key: value for key, value in conn.items() if value is not None})
