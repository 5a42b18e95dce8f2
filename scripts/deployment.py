"""`make test-deployment`: the examples on the topology production runs, on one machine, on loopback.

Postgres (metadata database), Redis (Celery broker), moto's S3 server (object storage for the CSVs,
used through the Amazon provider's ``s3://`` paths), the Fuse sandbox, and Airflow's api-server,
scheduler, dag-processor, triggerer and two Celery workers. Each worker runs in its own mount and
UTS namespace with a private ``/tmp`` and its own host name, so the two cannot see each other's
local files, as two machines could not. Everything binds 127.0.0.1 on free ports.

Through the REST API it then runs the examples and checks what a platform team would check (see
``docs/deployment.md``): every run's outcome, what the sandbox received, what is left in storage and
on the workers' disks, and that no phone number and no developer key reached a log, XCom, a
rendered field, a run's conf or the event log.

Run it inside the virtualenv the Makefile builds (``.venv-deployment``: the built wheel, Airflow
with the celery, postgres and amazon extras, celery 5.6.3, moto). It installs Debian's postgresql
and redis-server when they are missing (that, the private mounts and running Postgres as its own
user need root). Every process it starts is stopped by its PID (and process group) on the way out,
whatever happened; every wait is bounded.

Its parts, in ``scripts/deployment_test/``: ``topology`` (starting and stopping the deployment),
``api`` (the REST API), ``examples`` (what the examples dial and should end with), ``scenarios``
(one per example), ``decisions`` (questions answered as a person would in Required Actions: the
approval example, and an unknown outcome of the DAG in ``dags/``), ``receiver`` (the results receiver
under load and a locked table), ``leaks`` (the scans for personal data and secrets) and ``report``
(the checks and the closing table). The processes are run by the harness the tests share
(``scripts/harness.py``).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from deployment_test.api import Deployment
from deployment_test.decisions import approval_run, unknown_outcome_run
from deployment_test.leaks import check_nothing_leaked, check_worker_disks
from deployment_test.receiver import check_least_privilege, locked_database, receiver_burst, slowest_requests
from deployment_test.report import Failed, Report, print_table, say
from deployment_test.scenarios import (
    bulk_runs,
    campaign_results,
    check_connection_form,
    clear_successful_upload,
    handover_run,
    single_calls,
    unknown_deployment_run,
)
from deployment_test.topology import (
    API_WORKERS,
    BUCKET,
    EXPORT_BASE,
    ROOT,
    Processes,
    airflow_env,
    ensure_system_packages,
    prepare_results_database,
    read_receiver_facts,
    start_airflow,
    start_postgres,
    start_redis,
    start_s3,
)
from harness import free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, data) afterwards")
    parser.add_argument(
        "--export-base",
        default=EXPORT_BASE,
        help="the bulk example's export base (default %(default)s); a worker-local file:///tmp/... base"
        " shows what the harness catches when the CSV does not travel between workers",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    ensure_system_packages()
    base = ROOT / ".deployment"
    base.mkdir(exist_ok=True)
    for previous_run in base.glob("run-*"):  # a failed run's logs are kept until the next run
        shutil.rmtree(previous_run, ignore_errors=True)
    run = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    (run / "logs").mkdir()
    processes = Processes(run / "logs")
    # Postgres runs as its own user, which must reach its data directory: not under the checkout,
    # whose parents (a home directory, say) it may not be allowed to traverse.
    postgres_home = Path(tempfile.mkdtemp(prefix="fuse-deployment-postgres-", dir="/var/tmp"))
    postgres_home.chmod(0o755)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in previous:
        signal.signal(sig, interrupted)
    from airflow_provider_fuse.sandbox import FuseSandbox

    report = Report()
    sandbox = FuseSandbox(time_scale=0.001, log_level="warning")
    try:
        say(f"run directory {run}")
        database = start_postgres(processes, postgres_home)
        broker = start_redis(processes, run)
        s3 = start_s3(processes)
        import boto3

        boto3.client(
            "s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        ).create_bucket(Bucket=BUCKET)
        sandbox.start()
        say(f"Fuse sandbox on {sandbox.url}")
        api_port = free_port()
        password = secrets.token_urlsafe(16)
        env = airflow_env(
            run,
            database=database,
            broker=broker,
            s3=s3,
            api_port=api_port,
            fuse_connection=sandbox.connection_json(),
            password=password,
            export_base=args.export_base,
            signing_key=secrets.token_hex(32),
            results_password=secrets.token_hex(16),
        )
        worker_tmps = {}
        for name in ("fuse-worker-1", "fuse-worker-2"):
            worker_tmps[name] = run / f"{name}-tmp"
            worker_tmps[name].mkdir(mode=0o1777)
            worker_tmps[name].chmod(0o1777)
        deployment = Deployment(run, env, f"http://127.0.0.1:{api_port}", password, worker_tmps, processes)
        facts = read_receiver_facts(deployment)
        prepare_results_database(deployment, facts)
        start_airflow(processes, deployment)
        say(f"deployment up after {time.monotonic() - started:.0f} s")
        report.measured.append(
            f"api-server: {API_WORKERS} uvicorn workers, all started and answering "
            f"{deployment.api_startup:.0f} s after it was started"
        )
        check_connection_form(deployment, report)
        run_ids = bulk_runs(deployment, sandbox, s3, report)
        handover_run(deployment, sandbox, s3, report)
        unknown_deployment_run(deployment, sandbox, s3, report)
        clear_successful_upload(deployment, sandbox, s3, report, run_ids[0])
        single_calls(deployment, sandbox, report)
        campaign_results(deployment, sandbox, report)
        approval_run(deployment, sandbox, s3, report)
        unknown_outcome_run(deployment, sandbox, s3, report)
        check_least_privilege(deployment, report)
        receiver_burst(deployment, report)
        locked_database(deployment, facts, report)
        processes.check_alive()
        report.measured.append(slowest_requests(deployment))
        check_worker_disks(deployment, report)
        check_nothing_leaked(deployment, sandbox, report)
    except (Exception, KeyboardInterrupt) as error:
        if not isinstance(error, (Failed, KeyboardInterrupt)):
            traceback.print_exc()
        print(processes.tails(), file=sys.stderr)
        print_table(report, started)
        print(f"\nFAILED: {error}\nlogs: {run / 'logs'}", file=sys.stderr)
        return 1
    finally:
        for sig in (*previous, signal.SIGINT):  # a second signal must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        say("stopping every process the harness started")
        alive = processes.stop_all()
        sandbox.stop()
        shutil.rmtree(postgres_home, ignore_errors=True)
        for sig, handler in {**previous, signal.SIGINT: signal.default_int_handler}.items():
            signal.signal(sig, handler)
    if alive:
        print(f"FAILED: still running after SIGKILL: {alive}", file=sys.stderr)
        return 1
    report.checks.append("every process the harness started has stopped")
    print_table(report, started)
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
