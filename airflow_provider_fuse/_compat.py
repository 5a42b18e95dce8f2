"""Names that moved between Airflow 3.1 and 3.3, imported from wherever this Airflow keeps them."""

from __future__ import annotations

try:  # Airflow >= 3.2
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSkipException,
        AirflowTaskTimeout,
    )
except ImportError:  # Airflow 3.1
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined]
        AirflowException,
        AirflowFailException,
        AirflowSkipException,
        AirflowTaskTimeout,
    )

try:  # Airflow >= 3.2
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf  # type: ignore[no-redef,unused-ignore]

__all__ = ["AirflowException", "AirflowFailException", "AirflowSkipException", "AirflowTaskTimeout", "conf"]
