"""Tests of the Fuse sandbox (``airflow_provider_fuse.sandbox``)."""

from __future__ import annotations
