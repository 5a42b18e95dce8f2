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
    UnreadableRecord,
    bulk_campaigns,
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
    :raises ResultsConfigError: (on first read) a ``[fuse]`` option needed is unusable, or ``table``
        is not a table name.
    """

    conn_name_attr = "results_conn_id"
    default_conn_name = "fuse_results_default"
    hook_name = "Plum Fuse call outcomes"

    def __init__(self, results_conn_id: str | None = None, table: str | None = None) -> None:
        super().__init__()
        self.results_conn_id = results_conn_id
        self.table = table

    def _results_table(self) -> ResultsTable:
        """A results table on the configured (or given) connection and table; reads nothing yet."""
        from airflow_provider_fuse.results.table import ResultsTable

        conn_id, table = self.results_conn_id, self.table
        if conn_id is None or table is None:
            from airflow_provider_fuse.results.config import ResultsConfig

            config = ResultsConfig.load()
            conn_id, table = conn_id or config.conn_id, table or config.table
        return ResultsTable(conn_id, table)

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

        :param campaigns: the campaign ids (:func:`~airflow_provider_fuse.results.campaign.
            bulk_campaigns`); rows of any other campaign are not returned. None: nothing read.
        :param map_index: only this map index's rows; default all of them.
        :return: one dict per row, keyed by the table's columns, ordered by map index, part and time
            received. Holds phone numbers.
        :raises ResultsStoreError: the database could not be read (names the connection, no value).
        """
        table = self._results_table()
        try:
            rows = table.rows(dag_id, run_id, task_id, campaigns)
        finally:
            table.close()
        if map_index is not None:
            rows = [row for row in rows if row["map_index"] == map_index]
        log.info("Read %d Fuse call outcomes of %s.", len(rows), task_id)
        return rows

    def get_summary(
        self, dag_id: str, run_id: str, task_id: str, campaigns: Collection[str]
    ) -> dict[str, int]:
        """The outcomes stored for one task of one run, in the given campaigns, counted by status.

        :return: ``{"completed", "failed", "canceled", "rejected", "other", "received"}`` (``received``
            is the sum of the others). No personal data.
        :raises ResultsStoreError: the database could not be read.
        """
        table = self._results_table()
        try:
            return table.summary(dag_id, run_id, task_id, campaigns)
        finally:
            table.close()

    def get_task_outcomes(self, ti: Any, bulk_task_id: str) -> list[dict[str, Any]]:
        """The outcomes of the calls ``bulk_task_id`` queued in the run of ``ti``: :meth:`get_outcomes`
        for the campaigns its ``fuse_results`` XComs name (:func:`~airflow_provider_fuse.results.
        campaign.bulk_campaigns`).

        :param ti: the running task instance (``context["ti"]``) of a task of the same run.
        :return: as :meth:`get_outcomes`; empty when the bulk task recorded no campaign.
        :raises ResultsStoreError: the database could not be read.
        """
        return self.get_outcomes(ti.dag_id, ti.run_id, bulk_task_id, bulk_campaigns(ti, bulk_task_id))

    def get_task_summary(self, ti: Any, bulk_task_id: str) -> CampaignSummary:
        """The summary of the calls ``bulk_task_id`` queued in the run of ``ti``, as the results sensor
        pushes it (:data:`~airflow_provider_fuse.results.campaign.SUMMARY_KEYS`), counted now: the
        calls queued and the campaigns are those of its readable ``fuse_results`` XComs
        (:meth:`SentList.from_xcom <airflow_provider_fuse.results.campaign.SentList.from_xcom>`).

        :param ti: the running task instance (``context["ti"]``) of a task of the same run.
        :raises ResultsStoreError: the database could not be read.
        """
        sent = _sent(ti, bulk_task_id)
        counts = self.get_summary(ti.dag_id, ti.run_id, bulk_task_id, {one.campaign for one in sent})
        return summarize(counts, sum(one.expected for one in sent))


def _sent(ti: Any, bulk_task_id: str) -> list[SentList]:
    """The lists the bulk task recorded in the run of ``ti`` (its readable ``fuse_results`` XComs)."""
    sent = []
    for record in sent_records(ti, bulk_task_id):
        try:
            sent.append(SentList.from_xcom(record))
        except UnreadableRecord:
            continue
    return sent
