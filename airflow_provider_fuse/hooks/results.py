"""FuseResultsHook: read the call outcomes a ``collect_results`` bulk task got back, from a downstream task.

The outcomes are rows of the results table (:class:`~airflow_provider_fuse.results.table.ResultsTable`),
read through the ``DbApiHook`` of its connection. This hook finds the table the way the receiver and
the sensor do (the ``[fuse]`` options ``results_conn_id`` and ``results_table``), or takes another
connection and table, and reads one task's rows or counts. It speaks no HTTP and logs counts only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_fuse.results.campaign import (
    CampaignSummary,
    SentList,
    sent_lists,
    sent_records,
    summarize,
)

if TYPE_CHECKING:
    from collections.abc import Collection

    from airflow_provider_fuse.results.table import ResultsTable

__all__ = ["FuseResultsHook"]

log = logging.getLogger(__name__)


class FuseResultsHook(BaseHook):
    """Read the call outcomes stored in the results table, for a task downstream of the bulk task.

    Each outcome is one row (its columns: :data:`~airflow_provider_fuse.results.table.COLUMNS`;
    ``events`` decoded into a list). Rows hold phone numbers: they are the user's own data, returned
    to the calling code and never logged by this hook; do not push them to XCom.

    One task's outcomes are read by its ``dag_id``, ``run_id`` and ``task_id`` and the campaigns it
    sent (a run deleted and triggered again under the same run id is another campaign). From inside
    a task of the same run, :meth:`get_task_outcomes` and :meth:`get_task_summary` find those from the
    bulk task's ``fuse_results`` XComs.

    :param results_conn_id: the connection of the results table (any SQL database with a
        ``DbApiHook``); default ``[fuse] results_conn_id``.
    :param table: the results table, ``name`` or ``schema.name``; default ``[fuse] results_table``.
        It must exist: a read creates nothing (the receiver creates the table on its first store,
        the bulk operator before it sends; or :meth:`ResultsTable.ddl
        <airflow_provider_fuse.results.table.ResultsTable.ddl>`).
    :raises ResultsConfigError: (on first read) a ``[fuse]`` option needed is unusable, or ``table``
        is not a table name (naming the argument or the option that gave it).
    """

    conn_name_attr = "results_conn_id"
    default_conn_name = "fuse_results_default"
    hook_name = "Plum Fuse call outcomes"

    def __init__(self, results_conn_id: str | None = None, table: str | None = None) -> None:
        super().__init__()
        self.results_conn_id = results_conn_id
        self.table = table

    def _results_table(self) -> ResultsTable:
        """A results table on the configured (or given) connection and table; reads nothing yet.
        Errors name the argument that gave a value (``table=``, ``results_conn_id=``), else the
        ``[fuse]`` option."""
        from airflow_provider_fuse.results.config import check_table_name
        from airflow_provider_fuse.results.table import ResultsTable

        conn_id, table = self.results_conn_id, self.table
        if table is not None:
            check_table_name(table, given_as="FuseResultsHook(table=...)")
        if conn_id is None or table is None:
            from airflow_provider_fuse.results.config import ResultsConfig

            config = ResultsConfig.load()
            conn_id, table = conn_id or config.conn_id, table or config.table
        given_as = "FuseResultsHook(results_conn_id=...)"
        if self.results_conn_id is None:
            given_as = "[fuse] results_conn_id"
        return ResultsTable(conn_id, table, conn_given_as=given_as)

    def get_outcomes(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        campaigns: Collection[str],
        *,
        map_index: int | None = None,
    ) -> list[dict[str, Any]]:
        """The outcomes stored for one task of one run, in the given campaigns.

        The rows are returned in one list, held in memory: for a task of many map indexes, read one
        map index at a time (``map_index``: the database filters, only its rows are read).

        :param campaigns: the campaign ids (:func:`~airflow_provider_fuse.results.campaign.
            bulk_campaigns`); rows of any other campaign are not returned. Empty: nothing read.
        :param map_index: only this map index's rows; default all of them.
        :return: one dict per row, keyed by the table's columns, ordered by map index, part and time
            received. Holds phone numbers.
        :raises ResultsTableMissing: the table is not there (reads create nothing).
        :raises ResultsStoreError: the database could not be read (names the connection, no value).
        :raises TypeError: ``campaigns`` is one string or ``None``, not a collection of ids.
        """
        table = self._results_table()
        try:
            rows = table.rows(dag_id, run_id, task_id, campaigns, map_index=map_index, table_required=True)
        finally:
            table.close()
        log.info("Read %d Fuse call outcomes of %s.", len(rows), task_id)
        return rows

    def get_summary(
        self, dag_id: str, run_id: str, task_id: str, campaigns: Collection[str]
    ) -> dict[str, int]:
        """The outcomes stored for one task of one run, in the given campaigns, counted by status.

        Not the sensor's summary (:meth:`get_task_summary`): the calls queued are not known from
        these arguments, so there is no ``calls_queued`` nor ``missing``, and ``received`` counts
        every outcome.

        :param campaigns: as for :meth:`get_outcomes`.
        :return: ``{"completed", "failed", "canceled", "rejected", "other", "received"}`` (``received``
            is the sum of the others). No personal data.
        :raises ResultsTableMissing: the table is not there (reads create nothing).
        :raises ResultsStoreError: the database could not be read.
        :raises TypeError: ``campaigns`` is one string or ``None``, not a collection of ids.
        """
        table = self._results_table()
        try:
            return table.summary(dag_id, run_id, task_id, campaigns, table_required=True)
        finally:
            table.close()

    def get_task_outcomes(self, ti: Any, bulk_task_id: str) -> list[dict[str, Any]]:
        """The outcomes of the calls ``bulk_task_id`` queued in the run of ``ti``: :meth:`get_outcomes`
        for the campaigns its ``fuse_results`` XComs name, read as the results sensor reads them
        (:func:`~airflow_provider_fuse.results.campaign.sent_lists`).

        :param ti: the running task instance (``context["ti"]``) of a task of the same run.
        :return: as :meth:`get_outcomes`; empty when the bulk task recorded no campaign.
        :raises UnreadableRecord: one of its ``fuse_results`` XComs is not a record the sensor reads
            (the message is the sensor's: the task, which record, the field; never a value).
        :raises ResultsTableMissing: the table is not there.
        :raises ResultsStoreError: the database could not be read.
        """
        campaigns = {one.campaign for one in _sent(ti, bulk_task_id)}
        return self.get_outcomes(ti.dag_id, ti.run_id, bulk_task_id, campaigns)

    def get_task_summary(self, ti: Any, bulk_task_id: str) -> CampaignSummary:
        """The summary of the calls ``bulk_task_id`` queued in the run of ``ti``, as the results sensor
        pushes it (:data:`~airflow_provider_fuse.results.campaign.SUMMARY_KEYS`), counted now: the
        calls queued and the campaigns are those of its ``fuse_results`` XComs, read as the sensor
        reads them (:func:`~airflow_provider_fuse.results.campaign.sent_lists`).

        :param ti: the running task instance (``context["ti"]``) of a task of the same run.
        :raises UnreadableRecord: as :meth:`get_task_outcomes`.
        :raises ResultsTableMissing: the table is not there.
        :raises ResultsStoreError: the database could not be read.
        """
        sent = _sent(ti, bulk_task_id)
        counts = self.get_summary(ti.dag_id, ti.run_id, bulk_task_id, {one.campaign for one in sent})
        return summarize(counts, sum(one.expected for one in sent))


def _sent(ti: Any, bulk_task_id: str) -> list[SentList]:
    """The lists the bulk task recorded in the run of ``ti``, every one read (:func:`sent_lists`)."""
    return sent_lists(sent_records(ti, bulk_task_id), bulk_task_id, reader="FuseResultsHook")
