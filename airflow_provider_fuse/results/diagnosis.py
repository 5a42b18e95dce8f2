"""Why no outcome arrives: the results receiver asked, with a token this process signs, whether it
would store one; when the results sensor and its trigger ask, and how its answer is told."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_fuse.hooks.fuse import ProbeAnswer

__all__ = [
    "DIAGNOSE_AFTER_POLLS",
    "DIAGNOSE_EVERY",
    "DIAGNOSIS_SECONDS",
    "NOTHING_STORED_HINT",
    "describe_receiver_answer",
    "receiver_diagnosis",
]

#: While no outcome has arrived, the receiver is asked why (:func:`receiver_diagnosis`) once this
#: many counts in a row found none, by the trigger and the poking sensor ...
DIAGNOSE_AFTER_POLLS = 3
#: ... and then at most once per this many seconds (10 minutes): a wait of hours logs a few lines.
DIAGNOSE_EVERY = 600.0
#: Seconds the trigger waits for :func:`receiver_diagnosis` (the probe's own bound is 15 s); past
#: it the poll goes on without the diagnosis.
DIAGNOSIS_SECONDS = 20.0
#: What the results sensor adds when no outcome at all was stored by its deadline: counting again
#: cannot bring those outcomes back, so it says what to check before the next list (no value in it).
NOTHING_STORED_HINT = (
    "None of their outcomes was stored: counting again (a clear of this task) finds only outcomes "
    "stored since, and those posted while the receiver could not store them are lost. Before the next "
    "list, check the receiver: [fuse] results_base_url (host and port) is where the api-server (or "
    "fuse-results serve) listens, as Fuse reaches it, and a POST to "
    "<results_base_url>/fuse/results/x answers 403 there (the receiver, configured, refusing a "
    "made-up token)"
)


def describe_receiver_answer(answer: ProbeAnswer, shown: str) -> str:
    """Why no outcome arrives, as far as the receiver's answer to a token this process signed tells
    (``shown``: its URL with the token hidden); ``""`` when it tells nothing (400: the token
    accepted)."""
    from airflow_provider_fuse.hooks.fuse import RECEIVER_SETUP_HINT

    status = answer.status_code
    if answer.refuses_token:
        return (
            f"the results receiver at {shown} refuses tokens signed with this worker's [fuse] "
            "results_signing_key (403): the receiver has another key, so it refused every outcome. "
            "Give the api-server (or fuse-results serve) and the workers the same key"
        )
    if answer.no_receiver:
        return (
            f"nothing at {shown} is the results receiver (it answers {status}): every outcome Fuse "
            f"posted there was lost. {RECEIVER_SETUP_HINT}"
        )
    if answer.not_configured:
        return (
            f"the results receiver at {shown} answers that it is not configured (503): it refuses every "
            f"outcome (its log names the option). {RECEIVER_SETUP_HINT}"
        )
    if answer.connection_refused:
        return f"nothing listens at {shown}, as seen from this worker (the connection was refused)"
    if status is None:
        return f"the results receiver at {shown} cannot be reached from this worker"
    if status == 503:
        return f"the results receiver at {shown} answers 503 (its results database is busy or down?)"
    return ""


def receiver_diagnosis(dag_id: str, run_id: str, bulk_task_id: str, campaign: str) -> str:
    """Ask the results receiver, with a token this process signs for ``campaign`` of the bulk task
    (part 0, one row, valid for five minutes), whether it would store an outcome
    (:func:`~airflow_provider_fuse.hooks.fuse.probe_results_receiver`): the reason no outcome
    arrives (:func:`describe_receiver_answer`), or ``""`` when none is found or this process cannot
    ask (no ``[fuse]`` signing key or base URL here). Synchronous (up to 15 s); never raises; the
    token is masked and never shown."""
    try:
        from airflow.sdk.log import mask_secret

        from airflow_provider_fuse.hooks.fuse import probe_results_receiver
        from airflow_provider_fuse.results.config import ResultsConfig, ResultsConfigError
        from airflow_provider_fuse.results.tokens import UploadPart, sign

        config = ResultsConfig.load()
        if not config.signing_key or not config.base_url:
            return ""
        try:
            shown = config.result_url("***")
        except ResultsConfigError as error:  # names the option and the fix, never its value
            return str(error)
        part = UploadPart(
            dag_id=dag_id,
            run_id=run_id,
            task_id=bulk_task_id,
            map_index=-1,
            campaign=campaign,
            part=0,
            rows=1,
            expires=int(time.time()) + 300,
        )
        token = sign(part, config.require_signing_key())
        mask_secret(token)
        answer = probe_results_receiver(config.result_url(token))
    except Exception:
        return ""
    return describe_receiver_answer(answer, shown)
