"""A compatibility name for :mod:`airflow_provider_fuse.operators.task_failures`: import from there.

"Outcomes" are Fuse's word for what became of a call; what a Fuse failure does to a task is
:mod:`.task_failures`. Importing this module warns (``DeprecationWarning``) and gives its names.
"""

from __future__ import annotations

import warnings

from airflow_provider_fuse.operators.task_failures import (
    NEXT_STEPS,
    ON_UNKNOWN_OUTCOME,
    bulk_queue_failure,
    nothing_sent,
    rows_of,
    task_failure,
    timed_out,
)

__all__ = [
    "NEXT_STEPS",
    "ON_UNKNOWN_OUTCOME",
    "bulk_queue_failure",
    "nothing_sent",
    "rows_of",
    "task_failure",
    "timed_out",
]

warnings.warn(
    "airflow_provider_fuse.operators.outcomes is renamed airflow_provider_fuse.operators.task_failures",
    DeprecationWarning,
    stacklevel=2,
)
