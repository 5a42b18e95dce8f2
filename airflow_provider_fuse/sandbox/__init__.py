"""The Fuse sandbox: a local, fake implementation of Plum Fuse's outbound API.

For demos and end-to-end tests of the provider. It serves ``bulk_queue``, ``queue``,
``outbound/{call_id}`` and ``cancel`` under ``/api`` with HTTP Basic auth and Fuse-shaped answers,
simulates the calls it queues (it never places a real one), can be told to misbehave, and records
everything it receives. It shares no code with the hook it is used to test. See ``docs/sandbox.md``.
"""

from __future__ import annotations

from airflow_provider_fuse.sandbox.app import create_app
from airflow_provider_fuse.sandbox.assumptions import SandboxAssumptions
from airflow_provider_fuse.sandbox.clock import SandboxClock
from airflow_provider_fuse.sandbox.models import Call, CallEvent, CallStatus, Fault, RequestRecord, Upload
from airflow_provider_fuse.sandbox.server import FuseSandbox
from airflow_provider_fuse.sandbox.service import FuseService

__all__ = [
    "Call",
    "CallEvent",
    "CallStatus",
    "Fault",
    "FuseSandbox",
    "FuseService",
    "RequestRecord",
    "SandboxAssumptions",
    "SandboxClock",
    "Upload",
    "create_app",
]
