"""Whether our own results receiver is there and takes a token: :func:`probe_results_receiver`.

Not a Fuse endpoint: the receiver is this provider's own (:mod:`airflow_provider_fuse.results.receiver`),
asked by the bulk operator before it gives Fuse a ``result_url``, and by the results trigger. The
probe goes over the sync path's adapter and watchdog, so it reads answers by the same rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests

from airflow_provider_fuse.hooks.client_logs import keep_answers_out_of_client_logs
from airflow_provider_fuse.hooks.connection import request_headers
from airflow_provider_fuse.hooks.limits import PROBE_CONNECT_TIMEOUT, PROBE_DEADLINE, PROBE_READ_BYTES
from airflow_provider_fuse.hooks.requests_client import FuseAdapter, Watchdog, request_and_read
from airflow_provider_fuse.results.tokens import NOT_CONFIGURED_DETAIL, REFUSED_DETAIL

__all__ = [
    "NO_RECEIVER_STATUSES",
    "PROBE_CONNECT_TIMEOUT",
    "PROBE_DEADLINE",
    "PROBE_READ_BYTES",
    "RECEIVER_NOT_CONFIGURED",
    "RECEIVER_REFUSES_TOKEN",
    "RECEIVER_SETUP_HINT",
    "ProbeAnswer",
    "probe_results_receiver",
]

#: The ``detail`` of the results receiver's JSON answer (403) to a token it refuses: malformed,
#: signed with another key, or expired (:mod:`airflow_provider_fuse.results.receiver`).
RECEIVER_REFUSES_TOKEN = REFUSED_DETAIL
#: The ``detail`` of the results receiver's JSON answer (503) while its ``[fuse]`` options are
#: missing or unusable (:mod:`airflow_provider_fuse.results.receiver`).
RECEIVER_NOT_CONFIGURED = NOT_CONFIGURED_DETAIL
#: The answers that say nothing at the probed URL is the results receiver.
NO_RECEIVER_STATUSES = frozenset({404, 405, 410})
#: What to check when the receiver is missing or not configured: said by the bulk operator's check
#: before dialing and by the results sensor (no value, no secret in it).
RECEIVER_SETUP_HINT = (
    "Check [fuse] results_base_url: the api-server's root URL as Fuse reaches it, without /fuse (the "
    "provider adds /fuse/results/<token>); and that the api-server has this provider installed (its "
    "plugin mounts the receiver), has the same [fuse] options as the workers, and was restarted after "
    "they were set"
)


@dataclass(frozen=True)
class ProbeAnswer:
    """What our own results receiver answered to :func:`probe_results_receiver`.

    :param status_code: the answer's HTTP status; ``None`` when no whole answer came (the receiver
        out of this worker's reach, or not answering within :data:`PROBE_DEADLINE`, or a broken
        answer). 400 is the receiver taking the token and refusing the empty body.
    :param refuses_token: the answer is the receiver's own refusal of the token: a 403 whose body is
        exactly its JSON ``{"detail": RECEIVER_REFUSES_TOKEN}``. A 403 of anything else (a proxy,
        another application at that path) is not.
    :param not_configured: the answer is the receiver's own "not configured": a 503 whose body is
        exactly its JSON ``{"detail": RECEIVER_NOT_CONFIGURED}`` (its ``[fuse]`` options missing or
        unusable: it refuses every outcome). Any other 503 (a database briefly locked, a proxy) is not.
    :param connection_refused: no answer because the URL's host refused the connection: nothing
        listens at that host and port, as seen from this worker. A proxy refusing the connection, a
        timeout, a name that does not resolve or a broken answer is not.
    """

    status_code: int | None
    refuses_token: bool = False
    not_configured: bool = False
    connection_refused: bool = False

    @property
    def no_receiver(self) -> bool:
        """Nothing at the URL is the results receiver: it answered 404, 405 or 410 (no such path,
        or a server without the receiver's POST route), so every outcome posted there is lost."""
        return self.status_code in NO_RECEIVER_STATUSES


def probe_results_receiver(
    url: str, *, connect_timeout: float = PROBE_CONNECT_TIMEOUT, deadline: float = PROBE_DEADLINE
) -> ProbeAnswer:
    """Ask our own results receiver whether it accepts a token, before Fuse is given it.

    POSTs an empty JSON body to ``url`` (a ``result_url`` this worker signed, not Fuse's). The
    receiver checks the token before it reads a body: it refuses it with a 403 of its own
    (:class:`ProbeAnswer` ``refuses_token``), or takes it and refuses the empty body (400), storing
    nothing. No redirect is followed; proxies and CA bundles come from the environment, as for any
    ``requests`` call. The whole of it ends within ``deadline`` seconds however the answer trickles
    (the hook's watchdog), and at most :data:`PROBE_READ_BYTES` of the answer are read.

    Nothing is logged, and no failure is raised: a URL holds the token (and so do the exceptions
    that quote it), so every failure to get a whole answer is ``ProbeAnswer(None)``, with
    ``connection_refused`` when the URL's host refused the connection. What the bulk operator's check
    before dialing does with each answer: 400 sends; the receiver's own 403 (``refuses_token``), its
    own 503 (``not_configured``), 404/405/410 (``no_receiver``) and a refused connection to a
    loopback host fail the task before anything is sent; anything else is a warning.
    """
    watchdog = Watchdog()
    try:
        with requests.Session() as session, watchdog.watch(deadline):
            adapter = FuseAdapter(watchdog)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            keep_answers_out_of_client_logs()
            headers = {
                **request_headers("python-requests", requests.__version__),
                "Content-Type": "application/json",
            }
            response, body, complete = request_and_read(
                session,
                watchdog,
                "POST",
                url,
                limit=PROBE_READ_BYTES,
                data=b"",
                headers=headers,
                timeout=(connect_timeout, deadline),
            )
    except Exception as error:  # the deadline passed, or a failure whose text may quote the URL: none is kept
        return ProbeAnswer(None, connection_refused=_is_connection_refused(error))
    status = int(response.status_code)
    return ProbeAnswer(
        status,
        refuses_token=status == 403 and complete and _is_receivers_own(body, RECEIVER_REFUSES_TOKEN),
        not_configured=status == 503 and complete and _is_receivers_own(body, RECEIVER_NOT_CONFIGURED),
    )


def _is_connection_refused(error: BaseException) -> bool:
    """Whether ``error`` (what ``requests`` raised) comes of the URL's own host refusing the
    connection; a proxy's refusal is not (``requests`` raises :class:`~requests.exceptions.ProxyError`)."""
    if isinstance(error, requests.exceptions.ProxyError):
        return False
    seen: BaseException | None = error
    for _ in range(8):  # requests' ConnectionError -> urllib3's MaxRetryError -> ... -> the OSError
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else (seen.__cause__ or seen.__context__)
    return False


def _is_receivers_own(body: bytes, detail: str) -> bool:
    """Whether ``body`` is the results receiver's JSON answer ``{"detail": detail}``, and nothing else."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return bool(answer == {"detail": detail})
