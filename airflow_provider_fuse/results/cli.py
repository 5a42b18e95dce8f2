"""``fuse-results serve``: the results receiver outside Airflow's api-server, on uvicorn.

For teams who would rather not expose the api-server to Fuse. The app is the one the plugin mounts
(:func:`.receiver.create_app`), under the same ``/fuse`` prefix, so ``[fuse] results_base_url`` is
this server's base URL. It reads the same ``[fuse]`` configuration and connection as Airflow does
(``airflow.cfg``, ``AIRFLOW__FUSE__*``, ``AIRFLOW_CONN_*``, a secrets backend). Before serving, it
checks the signing key and creates the results table when missing: a broken setup exits non-zero,
naming what is wrong, instead of answering every callback 503.

Plain http off loopback carries phone numbers in clear: give ``--ssl-certfile``/``--ssl-keyfile``,
or put a TLS-terminating proxy in front.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.applications import Starlette

__all__ = ["DEFAULT_PORT", "build_app", "build_parser", "main"]

DEFAULT_PORT = 8791


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``fuse-results``."""
    parser = argparse.ArgumentParser(
        prog="fuse-results",
        description="The Fuse results receiver (POST /fuse/results/<token>) outside Airflow's api-server.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the receiver with uvicorn until SIGINT or SIGTERM",
        description="Serve POST /fuse/results/<token> with uvicorn, storing call outcomes in the "
        "[fuse] results_conn_id connection's results_table.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to bind (default {DEFAULT_PORT})"
    )
    serve.add_argument("--ssl-certfile", help="serve https with this certificate (PEM)")
    serve.add_argument("--ssl-keyfile", help="the certificate's private key (PEM)")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default info; the access log shows /fuse/results/***, never a token)",
    )
    return parser


def build_app() -> Starlette:
    """The receiver mounted at ``/fuse``, its lifespan (closing the table) run by the parent app."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_provider_fuse.results.plugin import URL_PREFIX
    from airflow_provider_fuse.results.receiver import create_app

    receiver = create_app()

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        async with receiver.router.lifespan_context(receiver):
            yield

    return Starlette(routes=[Mount(URL_PREFIX, app=receiver)], lifespan=lifespan)


def _check_setup() -> str | None:
    """What stops the receiver from storing anything (config, key, table), or ``None``."""
    from airflow_provider_fuse.results.config import ResultsConfig, ResultsConfigError
    from airflow_provider_fuse.results.table import ResultsStoreError, ResultsTable

    try:
        config = ResultsConfig.load()
        config.require_signing_key()
    except ResultsConfigError as error:
        return str(error)
    try:
        ResultsTable.ready(config.conn_id, config.table).close()
    except (ResultsStoreError, ValueError) as error:
        return f"the results table ({config.conn_id!r} connection) is not usable: {error}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fuse-results``; returns the exit status (1: the setup is broken, nothing served)."""
    args = build_parser().parse_args(argv)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        print("fuse-results: --ssl-certfile and --ssl-keyfile go together", file=sys.stderr)
        return 2
    problem = _check_setup()
    if problem is not None:
        print(f"fuse-results: {problem}", file=sys.stderr)
        return 1
    from airflow_provider_fuse.results.config import is_loopback

    if not args.ssl_certfile and not is_loopback(args.host):
        print(
            f"fuse-results: WARNING: serving plain http on {args.host}: call outcomes carry phone "
            "numbers; use --ssl-certfile/--ssl-keyfile or a TLS-terminating proxy",
            file=sys.stderr,
        )
    import uvicorn

    scheme = "https" if args.ssl_certfile else "http"
    print(f"fuse-results: receiving call outcomes at {scheme}://{args.host}:{args.port}/fuse/results/<token>")
    sys.stdout.flush()
    uvicorn.run(
        build_app(),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
