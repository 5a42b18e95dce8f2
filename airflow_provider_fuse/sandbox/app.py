"""The sandbox's FastAPI application: Fuse's outbound API under ``/api``, inspection under ``/_sandbox``.

Every ``/api`` answer is Fuse-shaped (JSON, or XML when ``Accept`` asks for it), including the
framework's own 404/405: FastAPI's ``{"detail": ...}`` never leaks, and form fields are read by
hand so no 422 can occur.

A request body is read only once its credentials have been checked from the headers, and never
beyond the service's ``max_upload_bytes``: a larger body is answered 413 (at once when its
``Content-Length`` says so, otherwise as soon as the streamed count passes the cap), and nothing
of a refused request is stored. What the app leaves unread, uvicorn discards.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from airflow_provider_fuse.sandbox.faults import ConnectionDropped, DroppedResponse, fault_response
from airflow_provider_fuse.sandbox.models import Call, Fault, Upload
from airflow_provider_fuse.sandbox.render import error_response, fuse_response, wants_xml
from airflow_provider_fuse.sandbox.service import Answer, FuseService, Submission
from airflow_provider_fuse.sandbox.settings import DEFAULT_EMAIL as DEFAULT_EMAIL
from airflow_provider_fuse.sandbox.settings import DEFAULT_MAX_UPLOAD_BYTES as DEFAULT_MAX_UPLOAD_BYTES
from airflow_provider_fuse.sandbox.settings import settings_from

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from starlette.types import ASGIApp, Message, Receive, Scope, Send
    from typing_extensions import Unpack

    from airflow_provider_fuse.sandbox.settings import SandboxOptions, SandboxSettings

__all__ = ["create_app"]

_ENDPOINT_PATHS: tuple[tuple[re.Pattern[str], str, frozenset[str]], ...] = (
    (re.compile(r"/api/apps/[^/]+/[^/]+/bulk_queue"), "bulk_queue", frozenset({"POST"})),
    (re.compile(r"/api/apps/[^/]+/[^/]+/queue"), "queue", frozenset({"POST"})),
    (re.compile(r"/api/apps/[^/]+/[^/]+/cancel"), "cancel", frozenset({"DELETE"})),
    (re.compile(r"/api/outbound/[^/]+"), "outbound", frozenset({"GET"})),
)
_STATE_FAULT = "fuse_fault"


class BodyTooLarge(StarletteHTTPException):
    """A request body over the sandbox's cap: answered 413, Fuse-shaped, by the exception handler."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"The request body is larger than the sandbox accepts ({cap} bytes).")


def _declared_length(scope: Scope) -> int | None:
    """The ``Content-Length`` of a request, when it declares a valid one."""
    raw = _header(scope, b"content-length")
    return int(raw) if raw is not None and raw.strip().isdigit() else None


def _capped(receive: Receive, cap: int) -> Receive:
    """``receive``, raising :class:`BodyTooLarge` once the body read so far passes ``cap`` bytes.

    Counts what arrives, so a chunked body (no ``Content-Length``) is cut off too.
    """
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                raise BodyTooLarge(cap)
        return message

    return capped_receive


def _classify(method: str, path: str) -> tuple[str | None, bool]:
    """The endpoint a path names (or ``None``) and whether a handler serves this method there."""
    for pattern, endpoint, methods in _ENDPOINT_PATHS:
        if pattern.fullmatch(path):
            return endpoint, method in methods
    return None, False


async def _drain(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("type") == "http.request" and bool(message.get("more_body"))


async def _fault_answer(fault: Fault, xml: bool) -> Response:
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.drop:
        return DroppedResponse(fault.status or 200)
    return fault_response(fault, xml)


class _ApiLog:
    """Pure ASGI middleware: logs every ``/api`` request, picks its fault, answers unrouted faults.

    The request is logged on arrival and its status filled in when the response starts, so a test
    sees a request even while a delayed answer is pending. A dropped connection keeps status ``None``.
    """

    def __init__(self, app: ASGIApp, service: FuseService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/api" or path.startswith("/api/")):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        store = self.service.store
        request_id = await run_in_threadpool(store.add_request, method, path)
        cap = self.service.max_upload_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > cap:
            # Refused before a byte of the body is read, and before a fault is used up.
            store.finish_request(request_id, 413, None)
            xml = wants_xml(_header(scope, b"accept"))
            await _too_large(cap, xml)(scope, receive, send)
            return
        receive = _capped(receive, cap)
        endpoint, routed = _classify(method, path)
        fault = self.service.faults.take(endpoint, method)
        fault_kind = fault.kind if fault else None
        status: list[int] = []

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                store.finish_request(request_id, status[0], fault_kind)
            await send(message)

        try:
            if fault is not None and not routed:
                # No handler will see this request (unknown path or wrong method): answer the fault here.
                try:
                    await _drain(receive)
                except BodyTooLarge:
                    await _too_large(cap, wants_xml(_header(scope, b"accept")))(scope, receive, logged_send)
                    return
                if fault.preempts:
                    xml = wants_xml(_header(scope, b"accept"))
                    response = await _fault_answer(fault, xml)
                    await response(scope, receive, logged_send)
                    return
                await asyncio.sleep(fault.delay)
            scope.setdefault("state", {})[_STATE_FAULT] = fault if routed else None
            await self.app(scope, receive, logged_send)
        except ConnectionDropped:
            store.finish_request(request_id, None, "drop")
            raise
        except Exception:
            if not status:
                store.finish_request(request_id, 500, fault_kind)
            raise


def _too_large(cap: int, xml: bool) -> Response:
    return error_response(413, str(BodyTooLarge(cap).detail), xml)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _service(request: Request) -> FuseService:
    service: FuseService = request.app.state.fuse
    return service


def _fault(request: Request) -> Fault | None:
    fault: Fault | None = request.scope.get("state", {}).get(_STATE_FAULT)
    return fault


def _xml(request: Request) -> bool:
    return wants_xml(request.headers.get("accept"))


def _render(answer: Answer, xml: bool) -> Response:
    headers = dict(answer.headers)
    if answer.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Fuse"'
    return fuse_response(answer.status_code, answer.payload, xml, headers)


#: What is read of a request without this account's credentials: nothing.
_STRANGER = Submission(fields={})


async def _read_submission(request: Request) -> Submission:
    """Read a form body: the string fields (first value wins) and the ``csv`` file part.

    Starlette streams the body through python-multipart; the middleware's cap raises
    :class:`BodyTooLarge` mid-stream, which is let through (answered 413). Call it only for a
    request whose credentials were checked: reading is what stores a stranger's bytes.
    """
    try:
        form = await request.form()
    except BodyTooLarge:
        raise
    except Exception:
        return Submission(fields={}, form_error="The request body must be multipart/form-data.")
    fields: dict[str, str] = {}
    csv: bytes | None = None
    filename = content_type = None
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key == "csv" and csv is None:
                    csv = await value.read()
                    filename, content_type = value.filename, value.content_type
            else:
                fields.setdefault(key, value)
    finally:
        await form.close()
    return Submission(fields=fields, csv=csv, filename=filename, content_type=content_type)


async def _serve(request: Request, work: Callable[[], Answer]) -> Response:
    """Run an endpoint's ``work`` under the request's fault, if any."""
    fault, xml = _fault(request), _xml(request)
    if fault is not None and fault.preempts and not fault.after_queue:
        return await _fault_answer(fault, xml)
    answer = await run_in_threadpool(work)
    if fault is not None and fault.preempts:
        return await _fault_answer(fault, xml)
    if fault is not None:
        await asyncio.sleep(fault.delay)
    return _render(answer, xml)


def _api_router() -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.post("/apps/{application_id}/{deployment_id}/bulk_queue")
    async def bulk_queue(request: Request, application_id: str, deployment_id: str) -> Response:
        service, fault, xml = _service(request), _fault(request), _xml(request)
        # Credentials first, from the headers: a stranger's body is never parsed, let alone stored.
        authorized = service.authorized(request.headers.get("authorization"))
        submission = await _read_submission(request) if authorized else _STRANGER
        if fault is not None and fault.preempts and not fault.after_queue:
            status = None if fault.drop else fault.status
            if authorized:
                await run_in_threadpool(
                    service.record_upload, application_id, deployment_id, submission, status, fault.kind
                )
            return await _fault_answer(fault, xml)
        answer, upload_id = await run_in_threadpool(
            service.bulk_queue, application_id, deployment_id, authorized, submission
        )
        if fault is not None:
            status = None if fault.drop else (fault.status or answer.status_code)
            if upload_id is not None:
                service.store.update_upload(upload_id, status_code=status, fault=fault.kind)
            if fault.preempts:
                return await _fault_answer(fault, xml)
            await asyncio.sleep(fault.delay)
        return _render(answer, xml)

    @router.post("/apps/{application_id}/{deployment_id}/queue")
    async def queue(request: Request, application_id: str, deployment_id: str) -> Response:
        service = _service(request)
        authorized = service.authorized(request.headers.get("authorization"))
        submission = await _read_submission(request) if authorized else _STRANGER
        base_url = f"{str(request.base_url).rstrip('/')}/api"
        return await _serve(
            request,
            lambda: service.queue(
                application_id, deployment_id, authorized, submission.fields, base_url, submission.form_error
            ),
        )

    @router.get("/outbound/{call_id}")
    async def outbound(request: Request, call_id: str) -> Response:
        service = _service(request)
        authorized = service.authorized(request.headers.get("authorization"))
        return await _serve(request, lambda: service.outbound(call_id, authorized))

    @router.delete("/apps/{application_id}/{deployment_id}/cancel")
    async def cancel(request: Request, application_id: str, deployment_id: str) -> Response:
        service = _service(request)
        authorized = service.authorized(request.headers.get("authorization"))
        # The body means nothing to cancel: left unread, uvicorn discards it.
        return await _serve(request, lambda: service.cancel(application_id, deployment_id, authorized))

    return router


# -- inspection ---------------------------------------------------------------------------------


def upload_dict(upload: Upload, include_csv: bool = False) -> dict[str, Any]:
    """An :class:`Upload` as JSON for ``GET /_sandbox/uploads`` (CSV text only on request)."""
    data = asdict(upload)
    data.pop("csv")
    data["csv_size"] = upload.size
    data["csv_sha256"] = upload.sha256
    if include_csv:
        data["csv"] = upload.csv.decode("utf-8", errors="replace")
    return data


def call_dict(call: Call) -> dict[str, Any]:
    """A :class:`Call` as JSON for ``GET /_sandbox/calls``."""
    data = asdict(call)
    data["events"] = [{"event": e.event, "timestamp": e.timestamp} for e in call.events]
    return data


def _is_local(request: Request) -> bool:
    host = request.client.host if request.client else None
    if host in (None, "testclient", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise StarletteHTTPException(400, "The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise StarletteHTTPException(400, "The body must be a JSON object.")
    return data


def fault_from_dict(data: dict[str, Any]) -> Fault:
    """Build a :class:`Fault` from inspection-API JSON (``raw`` is text, encoded as UTF-8).

    :raises ValueError: for unknown keys or invalid values.
    """
    allowed = set(Fault.__dataclass_fields__)
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    values = dict(data)
    if isinstance(values.get("raw"), str):
        values["raw"] = values["raw"].encode("utf-8")
    return Fault(**values)


def _inspection_router() -> APIRouter:
    router = APIRouter(prefix="/_sandbox")

    def guard(request: Request) -> FuseService:
        if not _is_local(request):
            raise StarletteHTTPException(403, "The sandbox inspection API answers loopback clients only.")
        return _service(request)

    @router.get("/info")
    async def info(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(guard(request).info))

    @router.get("/uploads")
    async def uploads(request: Request, include_csv: str = "0") -> JSONResponse:
        service = guard(request)
        wanted = include_csv.lower() in ("1", "true", "yes")
        return JSONResponse([upload_dict(u, wanted) for u in service.store.uploads()])

    @router.get("/calls")
    async def calls(request: Request, status: str | None = None) -> JSONResponse:
        service = guard(request)
        found = await run_in_threadpool(service.calls, status)
        return JSONResponse([call_dict(c) for c in found])

    @router.get("/requests")
    async def requests_(request: Request) -> JSONResponse:
        return JSONResponse([asdict(r) for r in guard(request).store.requests()])

    @router.get("/faults")
    async def faults(request: Request) -> JSONResponse:
        pending = guard(request).faults.pending()
        return JSONResponse([{**f.as_dict(), "remaining": left} for f, left in pending])

    @router.post("/faults")
    async def add_fault(request: Request) -> JSONResponse:
        service = guard(request)
        try:
            fault = fault_from_dict(await _json_body(request))
        except (TypeError, ValueError) as exc:
            raise StarletteHTTPException(400, str(exc)) from None
        service.faults.add(fault)
        return JSONResponse(fault.as_dict(), status_code=201)

    @router.delete("/faults")
    async def clear_faults(request: Request) -> Response:
        guard(request).faults.clear()
        return Response(status_code=204)

    @router.post("/reset")
    async def reset(request: Request) -> Response:
        await run_in_threadpool(guard(request).reset)
        return Response(status_code=204)

    @router.post("/advance")
    async def advance(request: Request) -> JSONResponse:
        service = guard(request)
        seconds = (await _json_body(request)).get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise StarletteHTTPException(400, "seconds must be a non-negative number.")
        return JSONResponse({"now": await run_in_threadpool(service.advance, float(seconds))})

    @router.post("/deployments")
    async def deployments(request: Request) -> JSONResponse:
        service = guard(request)
        body = await _json_body(request)
        try:
            application_id, deployment_id = int(body["application_id"]), int(body["deployment_id"])
        except (KeyError, TypeError, ValueError):
            raise StarletteHTTPException(
                400, "application_id and deployment_id are required integers."
            ) from None
        service.add_deployment(application_id, deployment_id, deleted=bool(body.get("deleted", False)))
        return JSONResponse(
            {"deployments": sorted(service.deployments), "deleted": sorted(service.deleted_deployments)}
        )

    return router


# -- errors -------------------------------------------------------------------------------------

_HTTP_MESSAGES = {
    404: "The requested resource was not found.",
    405: "Invalid HTTP method supplied.",
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code) or str(exc.detail)
    return error_response(exc.status_code, message, _xml(request), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    return error_response(400, "Supplied data improperly formatted or invalid.", _xml(request))


async def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "A database error occurred.", _xml(request))


def create_app(
    service: FuseService | None = None,
    *,
    settings: SandboxSettings | None = None,
    **options: Unpack[SandboxOptions],
) -> FastAPI:
    """Build the sandbox ASGI application.

    Pass a ready :class:`FuseService`, or the :class:`SandboxSettings` to build one (or their fields
    as keywords, as :class:`~airflow_provider_fuse.sandbox.FuseSandbox` takes them). The service is
    ``app.state.fuse``; the app's lifespan starts and stops its simulator and callback threads, so
    run it with lifespan on (uvicorn's default; ``with TestClient(app)``).

    :raises TypeError: settings given both as an object and as keywords, or beside a service.
    """
    if service is None:
        service = FuseService(settings_from(settings, options))
    elif settings is not None or options:
        raise TypeError("a ready service brings its own settings")
    fuse = service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        fuse.start()
        try:
            yield
        finally:
            await run_in_threadpool(fuse.stop)

    app = FastAPI(
        title="Fuse sandbox",
        description="A local fake of Plum Fuse's outbound API. It never places a real call.",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        exception_handlers={
            StarletteHTTPException: _http_error,
            RequestValidationError: _validation_error,
            Exception: _server_error,
        },
    )
    app.state.fuse = fuse
    app.include_router(_api_router())
    app.include_router(_inspection_router())
    app.add_middleware(_ApiLog, service=fuse)
    return app
