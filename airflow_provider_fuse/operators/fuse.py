"""FuseBulkQueueOperator: hand an upstream contact CSV to Fuse's ``bulk_queue`` from a DAG.

Imports of requests, requests-toolbelt and the preflight happen in ``execute``: DAG parsing pays
for this module on every parse.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseOperator

from airflow_provider_fuse._compat import AirflowException, AirflowFailException, AirflowSkipException
from airflow_provider_fuse.exceptions import (
    FuseApiError,
    FuseError,
    FuseUnknownOutcomeError,
    FuseValidationError,
)
from airflow_provider_fuse.fields import QueueFields, TimestampLike, to_positive_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_fuse.preflight import CsvSummary

__all__ = ["FuseBulkQueueOperator"]

ON_UNKNOWN_OUTCOME = ("fail", "retry")
#: Optional templated fields: when given, a rendering of ``None`` or nothing is an error, not "unset".
_OPTIONAL_TEMPLATED = ("start_timestamp", "end_timestamp", "max_attempts", "reattempt_wait", "result_url")


class FuseBulkQueueOperator(BaseOperator):
    """Queue a call to every contact of a CSV with Fuse's ``bulk_queue``; push ``calls_queued``.

    Before any request the operator validates every argument and runs the CSV preflight (UTF-8,
    a header with a ``destination`` column, every row's destination in one of Fuse's formats).
    Invalid input fails the task without retries, naming the parameter or the row numbers — never a
    phone number. A CSV with a header and no rows skips the task. On success it returns Fuse's
    ``calls_queued`` (pushed to XCom as ``return_value``).

    What each failure does to the task:

    * Fuse rejected the request (4xx): fails without retries, ``Fuse API answered <code>: <text>``;
      a 429 is the exception and is left to the task's retries.
    * The request never reached Fuse (connection refused, DNS, connect timeout), after the hook's
      own connect retries: an ordinary failure, so the task's retries apply.
    * Unknown outcome (5xx, an answer that is not Fuse's, a timeout or lost connection after
      sending): fails without retries by default, because Fuse may have queued the calls and a retry
      could dial every contact twice; ``on_unknown_outcome="retry"`` leaves it to the task's retries.

    :param application_id: the outbound deployment's application id, a positive integer. (templated)
    :param deployment_id: the outbound deployment's deployment id, a positive integer. (templated)
    :param csv_path: the local path of the contact CSV, e.g. an upstream task's XComArg or
        ``"{{ ti.xcom_pull('export') }}"``. (templated)
    :param start_timestamp: when dialing may begin: unix seconds, a numeric string, an aware
        datetime or an ISO-8601 string with an offset (``"{{ data_interval_end }}"``). Default: now.
        (templated)
    :param end_timestamp: when to stop attempting calls; same forms; must be after the start and
        not already past. (templated)
    :param max_attempts: attempts per contact, 1–10. (templated)
    :param reattempt_wait: seconds between attempts, 60–86400; required when max_attempts > 1.
        (templated)
    :param result_url: absolute http(s) URL that receives each call's ``call_details`` when the
        call ends. (templated)
    :param is_pci: run connected calls in Fuse's HIPAA/PCI secure environment (bool or 0/1). When
        false (the default) no ``is_pci`` field is sent: Fuse's default, the normal environment.
    :param on_unknown_outcome: ``"fail"`` (default) or ``"retry"``; see above.
    :param fuse_conn_id: the ``fuse`` connection to use.
    """

    template_fields: Sequence[str] = (
        "application_id",
        "deployment_id",
        "csv_path",
        "start_timestamp",
        "end_timestamp",
        "max_attempts",
        "reattempt_wait",
        "result_url",
    )
    ui_color = "#f4a460"

    def __init__(
        self,
        *,
        application_id: int | str,
        deployment_id: int | str,
        csv_path: str | os.PathLike[str],
        start_timestamp: TimestampLike | None = None,
        end_timestamp: TimestampLike | None = None,
        max_attempts: int | str | None = None,
        reattempt_wait: int | str | None = None,
        result_url: str | None = None,
        is_pci: bool | int = False,
        on_unknown_outcome: Literal["fail", "retry"] = "fail",
        fuse_conn_id: str = "fuse_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_unknown_outcome not in ON_UNKNOWN_OUTCOME:
            raise ValueError(f"on_unknown_outcome must be 'fail' or 'retry', got {on_unknown_outcome!r}")
        self.application_id = application_id
        self.deployment_id = deployment_id
        self.csv_path = csv_path
        self.start_timestamp = start_timestamp
        self.end_timestamp = end_timestamp
        self.max_attempts = max_attempts
        self.reattempt_wait = reattempt_wait
        self.result_url = result_url
        self.is_pci = is_pci
        self.on_unknown_outcome = on_unknown_outcome
        self.fuse_conn_id = fuse_conn_id
        self._given = frozenset(name for name in _OPTIONAL_TEMPLATED if getattr(self, name) is not None)

    def execute(self, context: Context) -> int:
        """Validate, preflight the CSV, upload it, and return ``calls_queued``."""
        try:
            application_id, deployment_id, fields = self._validated_arguments()
            path = self._local_csv_path()
            summary = self._preflight(path)
        except FuseValidationError as error:
            raise AirflowFailException(f"Nothing was sent to Fuse: {error}") from None
        if summary.rows == 0:
            raise AirflowSkipException("The CSV has a header and no contacts: nothing to queue.")

        from airflow_provider_fuse.hooks.fuse import FuseHook

        hook = FuseHook(self.fuse_conn_id)
        try:
            calls_queued = hook.bulk_queue(
                application_id,
                deployment_id,
                path,
                start_timestamp=fields.start_timestamp,
                end_timestamp=fields.end_timestamp,
                max_attempts=fields.max_attempts,
                reattempt_wait=fields.reattempt_wait,
                result_url=fields.result_url,
                # The default (False) sends no is_pci field at all: Fuse's own default.
                is_pci=fields.is_pci or None,
            )
        except FuseError as error:
            raise self._task_failure(error, application_id, deployment_id) from error
        finally:
            hook.close()

        self.log.info(
            "Fuse bulk_queue: %d rows sent, %d calls queued, application %d / deployment %d, window %s",
            summary.rows,
            calls_queued,
            application_id,
            deployment_id,
            fields.describe_window(),
        )
        if calls_queued < summary.rows:
            self.log.warning(
                "Fuse queued %d calls for %d rows sent: %d rows were not queued. Check the deployment's "
                "outbound calls in Fuse.",
                calls_queued,
                summary.rows,
                summary.rows - calls_queued,
            )
        return calls_queued

    def _validated_arguments(self) -> tuple[int, int, QueueFields]:
        for name in self._given:
            if getattr(self, name) is None:
                raise FuseValidationError(name, "rendered None; give a value or leave the argument out")
        application_id = to_positive_id("application_id", self.application_id)
        deployment_id = to_positive_id("deployment_id", self.deployment_id)
        fields = QueueFields.validate(
            start_timestamp=self.start_timestamp,
            end_timestamp=self.end_timestamp,
            max_attempts=self.max_attempts,
            reattempt_wait=self.reattempt_wait,
            result_url=self.result_url,
            is_pci=self.is_pci,
        )
        return application_id, deployment_id, fields

    def _local_csv_path(self) -> str:
        """The seam where the CSV artifact becomes a local file to read and upload."""
        path = self.csv_path
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str) or not path.strip() or path.strip() == "None":
            raise FuseValidationError("csv_path", f"must be the path of the contact CSV, got {path!r}")
        return path

    def _preflight(self, path: str) -> CsvSummary:
        from airflow_provider_fuse.preflight import preflight_csv

        summary = preflight_csv(path)
        self.log.info(
            "CSV preflight passed: %d contacts, %d columns, %d bytes",
            summary.rows,
            summary.columns,
            summary.size,
        )
        if summary.has_bom:
            self.log.warning("The CSV starts with a UTF-8 byte-order mark; it is sent as it is.")
        if summary.destination_column != 1:
            self.log.warning(
                "'destination' is column %d, not the first; Plum's older documentation wants it first.",
                summary.destination_column,
            )
        return summary

    def _task_failure(self, error: FuseError, application_id: int, deployment_id: int) -> AirflowException:
        """The one place where a Fuse failure becomes a task outcome."""
        if isinstance(error, FuseValidationError):
            return AirflowFailException(f"Nothing was sent to Fuse: {error}")
        if isinstance(error, FuseUnknownOutcomeError):
            message = (
                f"Unknown outcome: {error}. Fuse may have queued some or all of the calls. Check the pending "
                f"outbound calls of application {application_id} / deployment {deployment_id} in Fuse before "
                "running this task again: a retry could dial every contact twice."
            )
            if self.on_unknown_outcome == "retry":
                return AirflowException(message + " (on_unknown_outcome='retry': retrying)")
            return AirflowFailException(message)
        if isinstance(error, FuseApiError) and error.retryable:
            return AirflowException(str(error))
        return AirflowFailException(str(error))
