"""Call outcomes back in the user's database: the results receiver and what feeds and reads it.

Fuse reports a bulk call's outcome only by POSTing its ``call_details`` to the ``result_url`` given
with the upload. ``FuseBulkQueueOperator(collect_results=True)`` gives each part of a list a
``result_url`` with a signed token (:mod:`.tokens`); the receiver (:mod:`.receiver`, mounted on
Airflow's api-server by the plugin :mod:`.plugin`, or run standalone) checks the token, reads the
body (:mod:`.callbacks`) and stores the outcome in a SQL table (:mod:`.table`);
``FuseCampaignResultsSensor`` counts them. The ``[fuse]`` config section is :mod:`.config`.
"""

from __future__ import annotations
