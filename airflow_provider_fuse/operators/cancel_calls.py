"""FuseCancelCallsOperator: cancel every pending call of a deployment, the emergency stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_fuse.exceptions import FuseError, FuseValidationError
from airflow_provider_fuse.fields import to_positive_id
from airflow_provider_fuse.operators.base import BaseFuseOperator, where
from airflow_provider_fuse.operators.task_failures import ON_UNKNOWN_OUTCOME, nothing_sent, task_failure

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

__all__ = ["FuseCancelCallsOperator"]


class FuseCancelCallsOperator(BaseFuseOperator):
    """Cancel every pending call of a deployment: the emergency stop of a campaign.

    Sends ``DELETE /apps/{application_id}/{deployment_id}/cancel``; Fuse's 202 means done. Fuse
    documents no per-call cancel: this stops every call of the deployment that has not ended — those
    queued by :class:`FuseBulkQueueOperator`, :class:`FuseQueueCallOperator`, or anyone else. Whether
    a call already ringing or connected counts as pending is not documented.

    A rejection (4xx: 404 no such deployment, 401, 403, ...) fails the task without retries in Fuse's
    words; 429 and "not sent" are left to the task's retries. An unknown outcome (5xx, a lost answer)
    is retried by default: canceling twice is harmless, and a stop that gives up is worse.

    :param application_id: the outbound deployment's application id. (templated)
    :param deployment_id: the outbound deployment's deployment id. (templated)
    :param on_unknown_outcome: ``"retry"`` (default) or ``"fail"``.
    :param fuse_conn_id: the ``fuse`` connection to use. (templated)
    :param hook_params: settings of the :class:`~airflow_provider_fuse.hooks.fuse.FuseHook` the
        operator builds: ``connect_retries``, ``retry_backoff``, ``progress_interval``. Checked when
        the DAG is parsed; an unknown or invalid setting is a ``ValueError`` naming it.
    """

    template_fields: Sequence[str] = ("application_id", "deployment_id", "fuse_conn_id")
    ui_color = "#e9967a"

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        on_unknown_outcome: Literal["fail", "retry"] = "retry",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_unknown_outcome not in ON_UNKNOWN_OUTCOME:
            raise ValueError(f"on_unknown_outcome must be 'fail' or 'retry', got {on_unknown_outcome!r}")
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.on_unknown_outcome = on_unknown_outcome

    def execute(self, context: Context) -> None:
        """Validate the ids and the connection id, and cancel the deployment's pending calls."""
        try:
            application_id = to_positive_id("application_id", self.application_id)
            deployment_id = to_positive_id("deployment_id", self.deployment_id)
            hook = self._hook()
        except FuseValidationError as error:
            raise nothing_sent(error) from None
        at = where(application_id, deployment_id)
        try:
            hook.cancel_calls(application_id, deployment_id)
        except FuseError as error:
            raise task_failure(
                error,
                unknown_outcome=(
                    f"Fuse may or may not have canceled the pending calls of {at}; canceling again is "
                    "harmless. Check the deployment's outbound calls in Fuse."
                ),
                on_unknown_outcome=self.on_unknown_outcome,
            ) from error
        finally:
            hook.close()
        self.log.info("Fuse canceled the pending calls of %s.", at)
