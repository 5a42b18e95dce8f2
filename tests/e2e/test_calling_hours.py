"""End to end: the bulk operator's calling hours and suppression list through real Airflow and the
sandbox, whose record of each upload is read back: every part's window against its rows' zones."""

from __future__ import annotations

from pathlib import Path

from tests.operators.test_fuse_calling_hours import HOURS, inside_hours

NEW_YORK = ["6175551234", "2125551234", "6175550001"]
OTHERS = ["4155551234", "3125551234", "8085551234", "9075551234"]
SUPPRESSED = "16175550002"
TOLL_FREE = "8005551234"


def test_each_upload_holds_one_zone_group_in_a_window_inside_its_local_hours(airflow_env, sandbox, tmp_path):
    contacts = tmp_path / "contacts.csv"
    every = [*NEW_YORK, *OTHERS, SUPPRESSED, TOLL_FREE]
    contacts.write_text("destination,n\n" + "".join(f"{number},{i}\n" for i, number in enumerate(every)))
    Path(f"{contacts}.suppressed.csv").write_text(f"destination\ntel:+{SUPPRESSED}\n")
    run = airflow_env.dags_test(
        "e2e_bulk_queue_calling_hours", connection=sandbox.connection_json(), conf={"csv_path": str(contacts)}
    )
    assert run.task_state == "success", run.output[-3000:]
    uploads = sandbox.uploads()
    sent = []
    for upload in uploads:
        numbers = [line.split(",")[0] for line in upload.csv.decode().splitlines()[1:]]
        start, end = int(upload.fields["start_timestamp"]), int(upload.fields["end_timestamp"])
        assert all(inside_hours(number, start, end, HOURS) for number in numbers), upload.fields
        assert len(numbers) <= 2
        sent += numbers
    assert sorted(sent) == sorted([*NEW_YORK, *OTHERS])
    assert len(uploads) == 6  # New York's three rows in two parts, one part for each other zone
    assert run.xcom == len(sent)
    assert "not sent: 1 suppressed, 1 with no time zone found, 0 outside calling hours" in run.output
    assert SUPPRESSED not in run.output
    assert TOLL_FREE not in run.output
