"""The simulated Fuse account: credentials, deployments, and what each endpoint does.

HTTP-free: :mod:`airflow_provider_fuse.sandbox.app` turns requests into calls of
:class:`FuseService` and its :class:`Answer` s into Fuse-shaped responses.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_fuse.sandbox.assumptions import SandboxAssumptions as SandboxAssumptions
from airflow_provider_fuse.sandbox.clock import SandboxClock
from airflow_provider_fuse.sandbox.faults import FaultQueue
from airflow_provider_fuse.sandbox.lifecycle import CallbackDelivery, Simulator
from airflow_provider_fuse.sandbox.models import Call, SandboxCallStatus
from airflow_provider_fuse.sandbox.render import call_details
from airflow_provider_fuse.sandbox.settings import DEFAULT_EMAIL, DEFAULT_MAX_UPLOAD_BYTES, SandboxSettings
from airflow_provider_fuse.sandbox.store import Store
from airflow_provider_fuse.sandbox.validation import (
    QueueParams,
    SandboxError,
    bad_rows_message,
    count_rows,
    parse_call_parameters,
    parse_destination,
    parse_id,
    read_contacts,
    validate_params,
)

__all__ = [
    "DEFAULT_EMAIL",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "NO_DEPLOYMENT",
    "Answer",
    "FuseService",
    "Submission",
]

NO_DEPLOYMENT = "No deployment was found by that application id and deployment id."
DELETED_DEPLOYMENT = "The deployment or its application was previously deleted."
BAD_AUTH = "Authentication headers invalid or the account is inactive."
NO_CALL = "No outbound call was found by that call id."
_CLOCK_KEY = "sandbox_clock"


@dataclass(frozen=True)
class Answer:
    """What an endpoint answers: a status, a payload (``None``: empty body) and extra headers."""

    status_code: int
    payload: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """A ``bulk_queue`` request body as read: fields, the ``csv`` file part, or why it is unreadable."""

    fields: dict[str, str]
    csv: bytes | None = None
    filename: str | None = None
    content_type: str | None = None
    form_error: str | None = None


class FuseService:
    """One simulated Fuse account and its outbound deployments.

    :param settings: the account, its deployments, its clock and its limits (default: the
        defaults of :class:`~airflow_provider_fuse.sandbox.settings.SandboxSettings`).
    """

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        settings = settings if settings is not None else SandboxSettings()
        if settings.developer_key is None:
            settings = dataclasses.replace(settings, developer_key=secrets.token_urlsafe(24))
        self.settings = settings
        self.max_upload_bytes = settings.max_upload_bytes
        self.email = settings.email
        self.developer_key = str(settings.developer_key)
        self.assumptions = settings.assumptions
        self.deployments: set[tuple[int, int]] = set(settings.deployments)
        self.deleted_deployments: set[tuple[int, int]] = set(settings.deleted_deployments)
        self.store = Store(settings.state_file)
        saved = self.store.get_meta(_CLOCK_KEY)
        # A restarted sandbox resumes from the time it had reached: its clock never runs backwards.
        start = None if saved is None else max(float(saved), time.time())
        self.clock = SandboxClock(settings.time_scale, start=start)
        self.faults = FaultQueue()
        self.callbacks = CallbackDelivery(self.store, allow_external=settings.allow_external_callbacks)
        self.simulator = Simulator(self.store, self.clock, self._ended)
        self._running = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the simulator and callback threads (idempotent)."""
        if not self._running:
            self.callbacks.start()
            self.simulator.start()
            self._running = True

    def stop(self) -> None:
        """Stop and join the threads and save the clock; the service can be started again."""
        if self._running:
            self.simulator.stop()
            self.callbacks.stop()
            self._running = False
        self.store.set_meta(_CLOCK_KEY, repr(self.clock.now()))

    def close(self) -> None:
        """:meth:`stop`, then close the database."""
        self.stop()
        self.store.close()

    def _ended(self, call: Call) -> None:
        self.callbacks.submit(call, call_details(call, self.assumptions.call_details_types))

    # -- checks --------------------------------------------------------------------------------

    def authorized(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries this account's Basic credentials."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and (
            secrets.compare_digest(user.encode(), self.email.encode())
            & secrets.compare_digest(password.encode(), self.developer_key.encode())
        )

    def deployment(self, application_raw: str, deployment_raw: str) -> tuple[int, int]:
        """The numeric ids of an existing deployment.

        :raises SandboxError: 400 non-numeric ids, 404 unknown deployment, 409 deleted deployment.
        """
        key = (parse_id(application_raw), parse_id(deployment_raw))
        if key in self.deleted_deployments:
            raise SandboxError(409, DELETED_DEPLOYMENT)
        if key not in self.deployments:
            raise SandboxError(404, NO_DEPLOYMENT)
        return key

    def add_deployment(self, application_id: int, deployment_id: int, deleted: bool = False) -> None:
        """Make a deployment exist (or exist as deleted, answered 409)."""
        key = (int(application_id), int(deployment_id))
        if deleted:
            self.deployments.discard(key)
            self.deleted_deployments.add(key)
        else:
            self.deleted_deployments.discard(key)
            self.deployments.add(key)

    # -- endpoints -----------------------------------------------------------------------------

    def bulk_queue(
        self, application_raw: str, deployment_raw: str, authorized: bool, submission: Submission
    ) -> tuple[Answer, int | None]:
        """``POST /apps/{application_id}/{deployment_id}/bulk_queue``; records an authenticated upload.

        A request without this account's credentials is answered 401 and not recorded: nothing a
        stranger sends is kept (the app does not even read its body).

        :returns: the answer and the ``upload_id`` of the recorded upload (``None``: not recorded).
        """
        calls_queued: int | None = None
        if not authorized:
            return Answer(401, {"error": BAD_AUTH}), None
        try:
            application_id, deployment_id = self.deployment(application_raw, deployment_raw)
            if submission.form_error:
                raise SandboxError(400, submission.form_error)
            now = self.clock.now()
            params = validate_params(submission.fields, now, self.assumptions)
            if submission.csv is None:
                raise SandboxError(400, "The csv parameter must be supplied as a file.")
            contacts = read_contacts(submission.csv, self.assumptions)
            if contacts.bad_rows and self.assumptions.bad_rows == "reject":
                raise SandboxError(400, bad_rows_message(contacts.bad_rows))
            answer = Answer(200, {"calls_queued": 0})
        except SandboxError as error:
            answer = Answer(error.status_code, {"error": error.message})
        upload_id = self.record_upload(
            application_raw, deployment_raw, submission, status_code=answer.status_code, fault=None
        )
        if answer.status_code == 200:
            queued_at = int(now)
            rows = [
                self._call_row(
                    application_id, deployment_id, destination, variables, params, queued_at, upload_id
                )
                for _, destination, variables in contacts.contacts
            ]
            self.store.add_calls(rows)
            calls_queued = len(rows)
            self.store.update_upload(upload_id, calls_queued=calls_queued)
            self.simulator.wake()
            answer = Answer(200, {"calls_queued": calls_queued})
        return answer, upload_id

    def record_upload(
        self,
        application_raw: str,
        deployment_raw: str,
        submission: Submission,
        status_code: int | None,
        fault: str | None,
    ) -> int:
        """Record a ``bulk_queue`` request as it arrived; ``calls_queued`` is set once calls are queued.

        ``fault`` names the injected fault that answered it, if one did.
        """
        return self.store.add_upload(
            application_id=_maybe_id(application_raw),
            deployment_id=_maybe_id(deployment_raw),
            fields=submission.fields,
            filename=submission.filename,
            content_type=submission.content_type,
            csv=submission.csv or b"",
            rows=count_rows(submission.csv or b""),
            calls_queued=None,
            status_code=status_code,
            fault=fault,
        )

    def queue(
        self,
        application_raw: str,
        deployment_raw: str,
        authorized: bool,
        fields: dict[str, str],
        base_url: str,
        form_error: str | None = None,
    ) -> Answer:
        """``POST /apps/{application_id}/{deployment_id}/queue``: queue one call.

        :param base_url: the ``/api`` URL the client used, for the ``Link`` header.
        :param form_error: why the body could not be read as a form, if it could not.
        """
        try:
            if not authorized:
                raise SandboxError(401, BAD_AUTH)
            application_id, deployment_id = self.deployment(application_raw, deployment_raw)
            if form_error:
                raise SandboxError(400, form_error)
            now = self.clock.now()
            params = validate_params(fields, now, self.assumptions)
            phone_number = fields.get("phone_number", "")
            if phone_number == "":
                raise SandboxError(400, "The phone_number parameter must be supplied.")
            if parse_destination(phone_number) is None:
                raise SandboxError(400, "The phone_number parameter is not a valid phone number.")
            variables = parse_call_parameters(fields.get("call_parameters", ""))
        except SandboxError as error:
            return Answer(error.status_code, {"error": error.message})
        row = self._call_row(application_id, deployment_id, phone_number, variables, params, int(now), None)
        (call_id,) = self.store.add_calls([row])
        self.simulator.wake()
        link = {"Link": f"<{base_url.rstrip('/')}/outbound/{call_id}>"}
        if self.assumptions.queue_response == "link_only":
            return Answer(200, {"calls_queued": 1}, link)
        return Answer(200, {"call_id": call_id}, link)

    def outbound(self, call_id: str, authorized: bool) -> Answer:
        """``GET /outbound/{call_id}``: the call's ``call_details``."""
        if not authorized:
            return Answer(401, {"error": BAD_AUTH})
        self.simulator.catch_up()
        call = self.store.call(call_id)
        if call is None:
            return Answer(404, {"error": NO_CALL})
        return Answer(200, {"call_details": call_details(call, self.assumptions.call_details_types)})

    def cancel(self, application_raw: str, deployment_raw: str, authorized: bool) -> Answer:
        """``DELETE /apps/{application_id}/{deployment_id}/cancel``: cancel the deployment's pending calls."""
        try:
            if not authorized:
                raise SandboxError(401, BAD_AUTH)
            application_id, deployment_id = self.deployment(application_raw, deployment_raw)
        except SandboxError as error:
            return Answer(error.status_code, {"error": error.message})
        self.cancel_calls(application_id, deployment_id)
        return Answer(202, None)

    # -- Python API helpers --------------------------------------------------------------------

    def cancel_calls(self, application_id: int, deployment_id: int) -> list[Call]:
        """Cancel the deployment's calls within ``cancel_scope``; return them as canceled."""
        scope = (
            (SandboxCallStatus.QUEUED, SandboxCallStatus.DIALING, SandboxCallStatus.CONNECTED)
            if self.assumptions.cancel_scope == "unfinished"
            else (SandboxCallStatus.QUEUED,)
        )
        with self.store.batch():
            self.simulator.catch_up()
            calls = self.store.calls(
                application_id=application_id, deployment_id=deployment_id, statuses=scope
            )
            return self.simulator.cancel(calls)

    def calls(self, status: str | None = None) -> list[Call]:
        """Every call (or those with ``status``), brought up to the sandbox clock first."""
        self.simulator.catch_up()
        return self.store.calls(status=status)

    def advance(self, seconds: float) -> float:
        """Move the sandbox clock forward and apply what became due; return the new time."""
        now = self.clock.advance(seconds)
        self.simulator.catch_up()
        self.simulator.wake()
        return now

    def reset(self) -> None:
        """Forget uploads, calls, requests and pending faults (credentials and deployments stay)."""
        self.faults.clear()
        self.store.reset()

    def info(self) -> dict[str, Any]:
        """A summary for ``GET /_sandbox/info``."""
        return {
            "email": self.email,
            "deployments": sorted(self.deployments),
            "deleted_deployments": sorted(self.deleted_deployments),
            "assumptions": self.assumptions.as_dict(),
            "time_scale": self.clock.time_scale,
            "now": self.clock.now(),
            "state_file": self.store.path,
            "unfinished_calls": sum(1 for c in self.calls() if c.status not in SandboxCallStatus.TERMINAL),
        }

    def _call_row(
        self,
        application_id: int,
        deployment_id: int,
        destination: str,
        variables: dict[str, Any],
        params: QueueParams,
        queued_at: int,
        upload_id: int | None,
    ) -> dict[str, Any]:
        return {
            "application_id": application_id,
            "deployment_id": deployment_id,
            "upload_id": upload_id,
            "destination": destination,
            "phone_number": parse_destination(destination) or destination,
            "variables": variables,
            "queued_timestamp": queued_at,
            "start_timestamp": params.start_timestamp,
            "end_timestamp": params.end_timestamp,
            "max_attempts": params.max_attempts,
            "reattempt_wait": params.reattempt_wait,
            "result_url": params.result_url,
            "is_pci": params.is_pci,
            **self.simulator.queue_state(queued_at, params.start_timestamp),
        }


def _maybe_id(raw: str) -> int | None:
    try:
        return parse_id(raw)
    except SandboxError:
        return None
