"""The examples the deployment test runs: their DAG ids, whom they dial, and what they should end with."""

from __future__ import annotations

# The example DAGs (example_dags/) and the task of the campaign-results example that waits.
BULK = "example_fuse_bulk_queue"
SINGLE = "example_fuse_queue_call"
STOP = "example_fuse_stop_campaign"
RESULTS = "example_fuse_campaign_results"
APPROVAL = "example_fuse_approval"
# The deployment test's own DAG (scripts/deployment_test/dags/): a list in parts of 2 rows that asks
# after an unknown outcome; the harness writes its CSV of UNKNOWN_NUMBERS to object storage.
UNKNOWN_ASK = "deployment_unknown_outcome"
RESULTS_SENSOR = "wait_for_outcomes"
# The campaign-results example's numbers: the sandbox answers every number but the one ending in 9.
RESULTS_NUMBERS = ("6175550100", "16175550104", "tel:+16175550109")
# The phone numbers the examples dial (555-01xx: reserved for fiction). The bulk example's are
# written by its export task; the single call's comes from the worker's environment, as a secrets
# backend would give it. None of them may appear anywhere Airflow keeps text.
BULK_NUMBERS = ("6175550100", "6175550101", "6175550102", "8005550199")
SINGLE_CONTACT = {"phone_number": "16175550142", "first_name": "Grace"}
# The approval example's list (its export task writes it) and the approver the notifier phones (the
# Variable fuse_example_approver, from the environment as a secrets backend would give it).
APPROVAL_NUMBERS = ("6175550110", "16175550111", "16175550112")
APPROVER = "tel:+16175550123"
UNKNOWN_NUMBERS = tuple(f"161755501{index}" for index in range(30, 36))
# The bulk example runs this many times at once; then once against a deployment Fuse does not know.
BULK_RUNS = 6
UNKNOWN_DEPLOYMENT = 999
# What the campaign-results example's sensor pushes: the sandbox's outcome rule, for RESULTS_NUMBERS.
RESULTS_SUMMARY = {
    "calls_queued": 3,
    "completed": 2,
    "failed": 1,
    "canceled": 0,
    "rejected": 0,
    "other": 0,
    "missing": 0,
}


def phone_numbers() -> dict[str, str]:
    """Every phone number the examples dial, by a name that does not spell it out (last 10 digits)."""
    numbers = [
        *BULK_NUMBERS,
        SINGLE_CONTACT["phone_number"],
        *RESULTS_NUMBERS,
        *APPROVAL_NUMBERS,
        APPROVER,
        *UNKNOWN_NUMBERS,
    ]
    return {f"phone number …{number[-4:]}": number[-10:] for number in numbers}
