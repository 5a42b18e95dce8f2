"""The Fuse sandbox: a local, fake implementation of Plum Fuse's outbound API.

For demos and end-to-end tests of the provider. It serves ``bulk_queue``, ``queue``,
``outbound/{call_id}`` and ``cancel`` under ``/api`` with HTTP Basic auth and Fuse-shaped answers,
simulates the calls it queues (it never places a real one), can be told to misbehave, and records
everything it receives. It shares no code with the hook it is used to test. See ``docs/sandbox.md``.

It needs the ``sandbox`` extra (``pip install 'airflow-provider-fuse[sandbox]'``). Its names are
imported on first use, so ``fuse-sandbox`` can say so instead of failing on an import; using one
without the extra raises :class:`~airflow_provider_fuse.sandbox.requirements.SandboxExtraMissing`.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse.sandbox.requirements import require_sandbox_extra

if TYPE_CHECKING:
    from airflow_provider_fuse.sandbox.app import create_app
    from airflow_provider_fuse.sandbox.assumptions import SandboxAssumptions
    from airflow_provider_fuse.sandbox.clock import SandboxClock
    from airflow_provider_fuse.sandbox.models import (
        Call,
        Fault,
        RequestRecord,
        SandboxCallEvent,
        SandboxCallStatus,
        Upload,
    )
    from airflow_provider_fuse.sandbox.server import FuseSandbox
    from airflow_provider_fuse.sandbox.service import FuseService
    from airflow_provider_fuse.sandbox.settings import SandboxSettings

__all__ = [
    "Call",
    "Fault",
    "FuseSandbox",
    "FuseService",
    "RequestRecord",
    "SandboxAssumptions",
    "SandboxCallEvent",
    "SandboxCallStatus",
    "SandboxClock",
    "SandboxSettings",
    "Upload",
    "create_app",
]

#: Each public name and the module of this package that defines it.
_MODULES = {
    "Call": "models",
    "Fault": "models",
    "FuseSandbox": "server",
    "FuseService": "service",
    "RequestRecord": "models",
    "SandboxAssumptions": "assumptions",
    "SandboxCallEvent": "models",
    "SandboxCallStatus": "models",
    "SandboxClock": "clock",
    "SandboxSettings": "settings",
    "Upload": "models",
    "create_app": "app",
}
#: 0.1.0's names, which the provider's own ``CallStatus`` and ``FuseError`` made ambiguous.
_RENAMED = {"CallStatus": "SandboxCallStatus", "CallEvent": "SandboxCallEvent"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        warnings.warn(
            f"airflow_provider_fuse.sandbox.{name} is renamed {_RENAMED[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        name = _RENAMED[name]
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_sandbox_extra()
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
