"""Which contact list the bulk operator sends: the CSV artifact, copied once, checked, cut into parts.

Everything here works on a private copy of the artifact (:func:`snapshot`) in the task's temporary
directory, so exactly the checked bytes are sent. The CSV rules themselves are the preflight's
(:mod:`airflow_provider_fuse.preflight`); this module adds what an Airflow task needs around them:
resolving object storage and Assets, logging what the preflight found (counts, never values), and
failing the task on repeated destinations when asked to.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_provider_fuse._compat import AirflowFailException
from airflow_provider_fuse.exceptions import FuseValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_fuse.operators.base import Log
    from airflow_provider_fuse.preflight import CsvPart, CsvSummary

__all__ = [
    "ON_DUPLICATE_DESTINATIONS",
    "check_duplicates",
    "describe_repeats",
    "parts",
    "preflight",
    "snapshot",
    "spool",
]

#: What ``on_duplicate_destinations`` may say.
ON_DUPLICATE_DESTINATIONS = ("warn", "fail", "drop")


def snapshot(csv_path: object, workdir: str, log: Log) -> str:
    """Copy the CSV artifact into ``workdir`` and return the copy's path: what is checked and sent.

    The preflight, the fingerprint, the parts and the upload all read this private copy, so
    whatever happens to the artifact afterwards (appended to, rewritten, replaced, moved,
    deleted) exactly the checked bytes are sent. A local file is read through one descriptor
    and must not change while it is copied; only regular files are read. An object storage URI,
    an ``ObjectStoragePath`` or an Asset naming the CSV is resolved here, at execute time.

    :raises FuseCsvError: the artifact is missing, not a regular file, unreadable, or changed
        while it was copied.
    :raises FuseValidationError: ``csv_path`` rendered to something that names no file.
    """
    source: Any = csv_path
    directory = os.path.join(workdir, "source")
    os.mkdir(directory, 0o700)
    if _is_remote_source(source):
        from airflow.sdk import Asset, ObjectStoragePath

        if isinstance(source, Asset):
            source = source.uri
        if isinstance(source, str):
            source = ObjectStoragePath(source.strip())
        if source.protocol not in ("file", "local"):
            return spool(source, directory, log)
        source = str(source.path)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source.strip() or source.strip() == "None":
        raise FuseValidationError("csv_path", f"must be the path of the contact CSV, got {source!r}")
    from airflow_provider_fuse.snapshot import copy_regular_file

    copy = os.path.join(directory, os.path.basename(source) or "contacts.csv")
    copy_regular_file(source, copy)
    return copy


def spool(source: Any, directory: str, log: Log) -> str:
    """Copy a remote object into ``directory`` in blocks (memory stays flat); return the local path."""
    import shutil

    from airflow_provider_fuse.exceptions import FuseCsvError

    local = os.path.join(directory, source.name or "contacts.csv")
    log.info("Reading %s into a temporary file for the preflight and the upload", source)
    try:
        with source.open("rb") as remote, open(local, "wb") as copy:
            shutil.copyfileobj(remote, copy, 1 << 20)
    except FileNotFoundError:
        raise FuseCsvError(f"no such object: {source}") from None
    except IsADirectoryError:
        raise FuseCsvError(f"is a directory, not a CSV object: {source}") from None
    return local


def preflight(path: str, log: Log) -> CsvSummary:
    """Run the preflight on the copy and log what it found.

    :raises FuseCsvError: the CSV breaks a rule of the preflight (rows named by number only).
    """
    from airflow_provider_fuse.preflight import preflight_csv

    summary = preflight_csv(path)
    log.info(
        "CSV preflight passed: %d contacts, %d columns, %d bytes",
        summary.rows,
        summary.columns,
        summary.size,
    )
    if summary.has_bom:
        log.warning("The CSV starts with a UTF-8 byte-order mark; it is sent as it is.")
    if summary.destination_column != 1:
        log.warning(
            "'destination' is column %d, not the first; Plum's older documentation wants it first.",
            summary.destination_column,
        )
    return summary


def check_duplicates(summary: CsvSummary, on_duplicate_destinations: str, log: Log) -> None:
    """Say how many rows repeat an earlier row's destination (their row numbers, never the numbers).

    :raises AirflowFailException: when there are repeats and ``on_duplicate_destinations="fail"``.
    """
    if not summary.duplicate_rows:
        return
    described = _repeats(summary)
    if on_duplicate_destinations == "fail":
        raise AirflowFailException(
            f"Nothing was sent to Fuse: {described}; on_duplicate_destinations='fail'."
        )
    if on_duplicate_destinations == "drop":
        log.warning("%s: dropping them, the first row of each number is sent.", described)
    else:
        log.warning("%s: each would be called once per row.", described)


def describe_repeats(summary: CsvSummary, on_duplicate_destinations: str) -> str:
    """Rows repeating an earlier row's destination and what the policy does with them (row numbers,
    never the numbers), as an approval shows it."""
    if not summary.duplicate_rows:
        return "none"
    if on_duplicate_destinations == "drop":
        return f"{_repeats(summary)}: dropped, the first row of each number is sent"
    return f"{_repeats(summary)}: each called once per row (on_duplicate_destinations='warn')"


def _repeats(summary: CsvSummary) -> str:
    rows = ", ".join(str(number) for number in summary.duplicate_row_numbers)
    more = "" if summary.duplicate_rows <= len(summary.duplicate_row_numbers) else ", …"
    return (
        f"{summary.duplicate_rows} of {summary.rows} rows repeat the destination of an earlier row "
        f"(rows {rows}{more}; the header is row 1)"
    )


def parts(
    path: str,
    summary: CsvSummary,
    workdir: str,
    *,
    chunk_size: int | None,
    on_duplicate_destinations: str,
    route: Callable[[int, int], tuple[str, ...] | None] | None = None,
) -> list[CsvPart]:
    """The files to send: the CSV itself, or parts written into ``workdir`` (chunks, repeats dropped,
    rows routed by ``route``: suppressed rows left out, zone groups in parts of their own)."""
    from airflow_provider_fuse.preflight import CsvPart, write_csv_parts

    drop = on_duplicate_destinations == "drop" and summary.duplicate_rows > 0
    if chunk_size is None and not drop and route is None:
        return [CsvPart(path=path, rows=summary.rows, first_row=2, last_row=summary.rows + 1)]
    return write_csv_parts(
        path, workdir, chunk_size=chunk_size, drop_duplicate_destinations=drop, route=route
    )


def _is_remote_source(source: object) -> bool:
    """Whether ``csv_path`` names an object storage path or an Asset rather than a local path."""
    if isinstance(source, str):
        return "://" in source
    # Checked by name so that parsing a DAG with a local path never imports the object-storage stack.
    return any(cls.__name__ in ("ObjectStoragePath", "Asset") for cls in type(source).__mro__)
