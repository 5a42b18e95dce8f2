"""The end-to-end tests' names for the shared process harness (``scripts/harness.py``): a real
``airflow api-server`` on a loopback port and a light HTTP load client."""

from __future__ import annotations

from harness import AIRFLOW, Answer, ApiServer, Post, free_port, post_many

__all__ = ["AIRFLOW", "Answer", "ApiServer", "Post", "free_port", "post_many"]
