"""The provider's operators, by their public import path.

Each lives in a module named for what it answers; this module is their one import path for DAGs,
with the values their parameters take:

* :mod:`.bulk_queue` — :class:`FuseBulkQueueOperator`, a contact CSV → ``bulk_queue``;
  :mod:`.contact_list` — which list it sends (snapshot, preflight, repeats, parts);
* :mod:`.queue_call` — :class:`FuseQueueCallOperator`, one call → ``queue``;
* :mod:`.cancel_calls` — :class:`FuseCancelCallsOperator`, the emergency stop → ``cancel``;
* :mod:`.task_failures` — what a Fuse failure does to the task (:func:`~.task_failures.task_failure`);
* :mod:`.reruns` — what a retry or clear sends: the guard's state store, resend switch and refusals;
* :mod:`.staleness` — whether a run is too old to dial;
* :mod:`.queueing` — what the two operators that make phones ring share;
* :mod:`.base` — what every Fuse operator has: the connection and the hook's settings;
* :mod:`airflow_provider_fuse.masking` — what of a call is personal and how it is kept out of sight.

``mask_personal_data`` and ``task_failure`` still resolve here, with an
``AirflowProviderDeprecationWarning``: import them from :mod:`airflow_provider_fuse.masking` and
:mod:`.task_failures`.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from airflow_provider_fuse._compat import AirflowProviderDeprecationWarning
from airflow_provider_fuse.operators.bulk_queue import FuseBulkQueueOperator
from airflow_provider_fuse.operators.cancel_calls import FuseCancelCallsOperator
from airflow_provider_fuse.operators.contact_list import ON_DUPLICATE_DESTINATIONS
from airflow_provider_fuse.operators.queue_call import FuseQueueCallOperator
from airflow_provider_fuse.operators.reruns import RESEND_CONF_KEY
from airflow_provider_fuse.operators.task_failures import ON_UNKNOWN_OUTCOME

__all__ = [
    "ON_DUPLICATE_DESTINATIONS",
    "ON_UNKNOWN_OUTCOME",
    "RESEND_CONF_KEY",
    "FuseBulkQueueOperator",
    "FuseCancelCallsOperator",
    "FuseQueueCallOperator",
]

#: Helpers this module once gave too, and the module that owns each.
_MOVED = {
    "mask_personal_data": "airflow_provider_fuse.masking",
    "task_failure": "airflow_provider_fuse.operators.task_failures",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"import {name} from {module}, not from {__name__} (the operators' import path)",
        AirflowProviderDeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
