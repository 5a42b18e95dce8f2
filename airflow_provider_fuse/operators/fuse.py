"""The provider's operators, by their public import path.

Each lives in a module named for what it answers; this module keeps the names DAGs import from it:

* :mod:`.bulk_queue` — :class:`FuseBulkQueueOperator`, a contact CSV → ``bulk_queue``;
  :mod:`.contact_list` — which list it sends (snapshot, preflight, repeats, parts);
* :mod:`.queue_call` — :class:`FuseQueueCallOperator`, one call → ``queue``;
* :mod:`.cancel_calls` — :class:`FuseCancelCallsOperator`, the emergency stop → ``cancel``;
* :mod:`.outcomes` — what a Fuse failure does to the task (:func:`task_failure`);
* :mod:`.reruns` — what a retry or clear sends: the guard's state store, resend switch and refusals;
* :mod:`.staleness` — whether a run is too old to dial;
* :mod:`.queueing` — what the two operators that make phones ring share;
* :mod:`.base` — what every Fuse operator has: the connection and the hook's settings;
* :mod:`airflow_provider_fuse.masking` — what of a call is personal and how it is kept out of sight.
"""

from __future__ import annotations

from airflow_provider_fuse.masking import mask_personal_data
from airflow_provider_fuse.operators.bulk_queue import FuseBulkQueueOperator
from airflow_provider_fuse.operators.cancel_calls import FuseCancelCallsOperator
from airflow_provider_fuse.operators.contact_list import ON_DUPLICATE_DESTINATIONS
from airflow_provider_fuse.operators.outcomes import ON_UNKNOWN_OUTCOME, task_failure
from airflow_provider_fuse.operators.queue_call import FuseQueueCallOperator
from airflow_provider_fuse.operators.reruns import RESEND_CONF_KEY

__all__ = [
    "ON_DUPLICATE_DESTINATIONS",
    "ON_UNKNOWN_OUTCOME",
    "RESEND_CONF_KEY",
    "FuseBulkQueueOperator",
    "FuseCancelCallsOperator",
    "FuseQueueCallOperator",
    "mask_personal_data",
    "task_failure",
]
