"""Names that moved between Airflow 3.1 and 3.3: the one place this package imports them from.

Everything ``apache-airflow-providers-common-compat`` maps (``airflow.providers.common.compat.sdk``,
1.12.0 and later) comes from there, as in the official providers. Only what that layer does not
export is resolved here: ``AirflowProviderDeprecationWarning`` (what providers warn with, and what
Airflow users filter on) is ``airflow.exceptions``'s on every supported Airflow.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    AirflowTaskTimeout,
    conf,
)

#: The task state store's "keep forever" retention. Airflow recognises its own constant by identity,
#: so on 3.3 it must be Airflow's object; before 3.3 there is no state store to write to anyway.
NEVER_EXPIRE: timedelta
try:  # Airflow >= 3.3; airflow/sdk/__init__.pyi of 3.3.2 omits the name its __init__.py exports
    from airflow.sdk import NEVER_EXPIRE  # type: ignore[attr-defined,no-redef]
except ImportError:  # Airflow < 3.3
    NEVER_EXPIRE = timedelta.max

__all__ = [
    "NEVER_EXPIRE",
    "AirflowException",
    "AirflowFailException",
    "AirflowProviderDeprecationWarning",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "conf",
]
