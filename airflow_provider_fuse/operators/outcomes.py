"""A compatibility name for :mod:`airflow_provider_fuse.operators.task_failures`: import from there.

"Outcomes" are Fuse's word for what became of a call; what a Fuse failure does to a task is
:mod:`.task_failures`. Importing this module warns (``AirflowProviderDeprecationWarning``) and
gives its names.
"""

from __future__ import annotations

import warnings
from typing import Any

from airflow_provider_fuse._compat import AirflowProviderDeprecationWarning
from airflow_provider_fuse.operators import task_failures

__all__ = task_failures.__all__

warnings.warn(
    "airflow_provider_fuse.operators.outcomes is renamed airflow_provider_fuse.operators.task_failures",
    AirflowProviderDeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(task_failures, name)
