"""The provider's sensors, by their public import path.

Each lives in a module named for what it waits for; this module is their one import path for DAGs:

* :mod:`.call_status` — :class:`FuseCallStatusSensor`, one call until it has ended;
* :mod:`.campaign_results` — :class:`FuseCampaignResultsSensor`, a bulk task's call outcomes in the
  results table until every one has arrived or the dialing window is over.
"""

from __future__ import annotations

from airflow_provider_fuse.calls import TERMINAL_STATUSES as TERMINAL_STATUSES
from airflow_provider_fuse.exceptions import FuseError as FuseError
from airflow_provider_fuse.exceptions import FuseValidationError as FuseValidationError
from airflow_provider_fuse.sensors.call_status import ON_FAILURE_STATUS, FuseCallStatusSensor
from airflow_provider_fuse.sensors.campaign_results import FuseCampaignResultsSensor

__all__ = ["ON_FAILURE_STATUS", "FuseCallStatusSensor", "FuseCampaignResultsSensor"]
