"""HTTP edge: error bodies, body-size limit, body parsing, OpenAPI request schemas."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.errors import BadRequest, ConsoleError, PayloadTooLarge, RateLimited, Unavailable

__all__ = [
    "BodyLimit",
    "error_response",
    "install_error_handlers",
    "install_openapi",
    "json_response",
    "parse",
]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def json_response(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(), status, headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    import json

    return Response(json.dumps({"error": message}), status, headers, media_type="application/json")


def describe(exc: ValidationError | RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    more = len(exc.errors()) - 3
    return "invalid request: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


async def parse(request: Request, model: type[M]) -> M:
    """Read and validate a JSON body; malformed JSON or a schema violation is a 400."""
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None


class BodyLimit:
    """Refuse bodies above ``max_bytes`` with 413 before they are read or parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await error_response(400, "malformed Content-Length header")(scope, receive, send)
                    return
                if length > self.max_bytes:
                    await error_response(413, f"request body larger than {self.max_bytes} bytes")(
                        scope, receive, send
                    )
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(f"request body larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


def install_error_handlers(app: FastAPI) -> None:
    async def console_error(_req: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleError)
        headers = None
        if isinstance(exc, RateLimited | Unavailable):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
        return error_response(exc.status, exc.message, headers)

    async def validation_error(_req: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, describe(exc))

    async def http_error(_req: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    async def db_error(_req: Request, exc: Exception) -> Response:
        if isinstance(exc, IntegrityError):
            return error_response(409, "conflicts with stored data")
        if isinstance(exc, DataError):
            return error_response(400, "value not storable")
        log.warning("database busy or unavailable: %s", exc)
        return error_response(503, "database busy, retry", {"Retry-After": "1"})

    async def internal_error(_req: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal server error")

    app.add_exception_handler(ConsoleError, console_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(IntegrityError, db_error)
    app.add_exception_handler(DataError, db_error)
    app.add_exception_handler(OperationalError, db_error)
    app.add_exception_handler(Exception, internal_error)


_PRINTABLE = r"^[\x21-\x7e]{1,128}$"


def install_openapi(
    app: FastAPI,
    *,
    headers: dict[tuple[str, str], tuple[str, ...]],
    bodies: dict[tuple[str, str], type[BaseModel]],
) -> None:
    """Document the headers and request bodies that handlers read themselves (auth before parsing).

    Every ``/api`` operation takes ``X-API-Key``; ``headers`` lists the others per operation.
    """

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        _, defs = models_json_schema(
            [(m, "validation") for m in bodies.values()], ref_template="#/components/schemas/{model}"
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(defs.get("$defs", {}))
        components["securitySchemes"] = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        for path, item in schema["paths"].items():
            for method, op in item.items():
                if not path.startswith("/api/"):
                    continue
                names = ("X-API-Key", *headers.get((path, method), ()))
                op.setdefault("parameters", []).extend(
                    {
                        "name": n,
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": _PRINTABLE},
                    }
                    for n in names
                )
        for (path, method), model in bodies.items():
            op = schema["paths"][path][method]
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
                },
            }
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]


Handler = Callable[..., Awaitable[Response]]
