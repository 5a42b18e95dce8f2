"""``fuse-sandbox``: run the Fuse sandbox in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from airflow_provider_fuse.sandbox.assumptions import SandboxAssumptions
from airflow_provider_fuse.sandbox.requirements import SandboxExtraMissing, require_sandbox_extra

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def _deployment(value: str) -> tuple[int, int]:
    application, sep, deployment = value.partition(":")
    if not sep or not application.isdigit() or not deployment.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected APPLICATION_ID:DEPLOYMENT_ID, e.g. 101:202, not {value!r}"
        )
    return int(application), int(deployment)


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``fuse-sandbox`` (every assumption switch is an option).

    :raises SandboxExtraMissing: without the ``sandbox`` extra.
    """
    # Here, not at the top: importing this module must work without the extra, so main can say
    # what to install.
    from airflow_provider_fuse.sandbox.settings import DEFAULT_MAX_UPLOAD_BYTES

    parser = argparse.ArgumentParser(
        prog="fuse-sandbox",
        description="A local fake of Plum Fuse's outbound API (bulk_queue, queue, outbound, cancel)."
        " It never places a real call and only talks to loopback addresses.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8123, help="port to bind; 0 picks a free one (default 8123)"
    )
    parser.add_argument("--email", default="sandbox@example.com", help="account login to accept")
    parser.add_argument("--developer-key", help="Developer Key to accept (default: random, printed at start)")
    parser.add_argument("--state-file", help="SQLite file to keep state in across restarts (default: memory)")
    parser.add_argument(
        "--time-scale", type=_positive_float, default=1.0, help="sandbox seconds per real second (default 1)"
    )
    parser.add_argument(
        "--deployment",
        action="append",
        type=_deployment,
        metavar="APP:DEP",
        help="a deployment that exists (repeatable; default 101:202)",
    )
    parser.add_argument(
        "--deleted-deployment",
        action="append",
        type=_deployment,
        default=[],
        metavar="APP:DEP",
        help="a deployment answered 409, previously deleted (repeatable)",
    )
    group = parser.add_argument_group("assumptions (readings of undocumented behaviour; see docs/sandbox.md)")
    for name, choices in SandboxAssumptions.choices().items():
        group.add_argument(
            f"--{name.replace('_', '-')}", choices=choices, default=choices[0], help=f"default {choices[0]}"
        )
    group.add_argument(
        "--max-rows", type=int, default=None, help="reject CSVs with more data rows (default: none)"
    )
    parser.add_argument(
        "--allow-external-callbacks",
        action="store_true",
        help="also POST result_url callbacks to non-loopback hosts (off: the sandbox talks to loopback only)",
    )
    parser.add_argument(
        "--max-upload-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_UPLOAD_BYTES,
        metavar="N",
        help=f"answer 413 to a body over N bytes, keeping none of it (default {DEFAULT_MAX_UPLOAD_BYTES})",
    )
    parser.add_argument(
        "--ready-file", help="write the connection JSON here once the server answers (removed at exit)"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    return parser


def _write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def _port_in_use(host: str, port: int) -> str:
    """What to do when ``host:port`` is taken: another port, or a free one read back."""
    return (
        f"port {port} on {host} is already in use. Pass --port N for another port, or --port 0 for a "
        "free one: the connection line printed at start (and the file given with --ready-file) has "
        "the port it got."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGINT/SIGTERM; return the exit status (0 clean, 1 failed to start or
    the ``sandbox`` extra is not installed)."""
    try:
        require_sandbox_extra()
    except SandboxExtraMissing as exc:
        print(f"fuse-sandbox: {exc}", file=sys.stderr)
        return 1
    from airflow_provider_fuse.sandbox.server import FuseSandbox
    from airflow_provider_fuse.sandbox.settings import SandboxSettings

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    assumptions = SandboxAssumptions(
        **{name: getattr(args, name) for name in SandboxAssumptions.choices()}, max_rows=args.max_rows
    )
    if args.ready_file:
        with contextlib.suppress(FileNotFoundError):
            os.remove(args.ready_file)
    settings = SandboxSettings(
        email=args.email,
        developer_key=args.developer_key,
        state_file=args.state_file,
        time_scale=args.time_scale,
        deployments=args.deployment or [(101, 202)],
        deleted_deployments=args.deleted_deployment,
        assumptions=assumptions,
        allow_external_callbacks=args.allow_external_callbacks,
        max_upload_bytes=args.max_upload_bytes,
    )
    sandbox = FuseSandbox(settings, host=args.host, port=args.port, log_level=args.log_level)
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sandbox.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                print(f"fuse-sandbox: cannot start: {_port_in_use(args.host, args.port)}", file=sys.stderr)
            else:
                print(f"fuse-sandbox: cannot start: {exc}", file=sys.stderr)
            return 1
        except RuntimeError as exc:
            print(f"fuse-sandbox: cannot start: {exc}", file=sys.stderr)
            return 1
        deployments = ", ".join(f"{a}:{d}" for a, d in sorted(set(args.deployment or [(101, 202)])))
        print(f"Fuse sandbox serving {sandbox.url} (deployments {deployments}; time scale {args.time_scale})")
        print(f"login: {sandbox.email}  developer key: {sandbox.developer_key}")
        print(f"AIRFLOW_CONN_FUSE_DEFAULT='{sandbox.connection_json()}'", flush=True)
        if args.ready_file:
            _write_atomically(args.ready_file, sandbox.connection_json() + "\n")
        while not stopping.wait(0.5):
            if not sandbox.running:
                print("fuse-sandbox: the server stopped unexpectedly", file=sys.stderr)
                return 1
        return 0
    finally:
        sandbox.stop()
        if args.ready_file:
            with contextlib.suppress(FileNotFoundError):
                os.remove(args.ready_file)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
