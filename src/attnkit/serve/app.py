"""The explorer's web application (FastAPI): one page, its assets, and a JSON API.

API (every error is JSON ``{"error": "..."}`` with a 4xx status):

- ``GET /api/models``: ``[{"name", "kind", "transformer"}]``, the checkpoints named at start;
- ``GET /api/models/{name}``: the model card (config, task, metrics, sizes);
- ``POST /api/predict`` with ``{"model": name, "text": "...", "beam": 1}``: the prediction
  and its attention (see :mod:`attnkit.serve.models` for the fields of each kind).

Limits: bodies over :data:`MAX_BODY` bytes are refused (413) by counting the bytes received,
whatever the framing (a Content-Length, chunked, or none), and a request that carries both a
Content-Length and a Transfer-Encoding is refused (400: the two framings could be read
differently by a proxy in front); a POST without either gets 411; inputs over
:data:`~attnkit.serve.models.MAX_INPUT` characters get 422. The client names models, never
paths.
Every response carries a Content-Security-Policy that allows the page's own scripts, styles and
images only, and no connection anywhere but this server.

    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app({}))
    >>> client.get("/api/models").json()
    []
    >>> client.post("/api/predict", json={"model": "x", "text": "1"}).status_code
    404
"""

from importlib import resources
from typing import Any

from .models import MAX_BEAM, MAX_INPUT, Served

__all__ = ["CSP", "MAX_BODY", "MAX_HEADERS", "Guard", "create_app", "server"]

MAX_BODY = 16_384
MAX_HEADERS = 16_384  # bytes of a request line and headers (h11 refuses more with 431 / 400)
KEEP_ALIVE = 5  # seconds an idle connection stays open
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
STATIC = ("index.html", "app.js", "style.css")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class Guard:
    """ASGI middleware in front of the application: the security headers on every response, and
    the body limit counted on the bytes received. The body is read (at most ``limit`` bytes,
    then refused) before the application sees the request, and replayed to it; a refused
    request's connection is closed, so the rest of an oversized body is never read."""

    def __init__(self, app: Any, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length, coding = headers.get(b"content-length"), headers.get(b"transfer-encoding")
        if length is not None and coding is not None:
            await _refuse(
                send_guarded,
                400,
                "a request may not carry both a Content-Length and a Transfer-Encoding",
            )
            return
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _refuse(send_guarded, 413, f"the request body is over {self.limit} bytes")
            return
        if scope["method"] == "POST" and length is None and coding is None:
            await _refuse(send_guarded, 411, "a POST needs a Content-Length")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await _refuse(send_guarded, 413, f"the request body is over {self.limit} bytes")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()  # the client's disconnect, if any
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send_guarded)


async def _refuse(send: Any, status: int, message: str) -> None:
    import json

    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _asset(name: str) -> bytes:
    return resources.files("attnkit.serve").joinpath("static", name).read_bytes()


def create_app(models: dict[str, Served]) -> Any:
    """The application serving ``models`` (name -> loaded checkpoint)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from pydantic import BaseModel, Field
    from starlette.exceptions import HTTPException

    class PredictRequest(BaseModel):
        model: str = Field(min_length=1, max_length=200)
        text: str = Field(max_length=MAX_INPUT)
        beam: int = Field(default=1, ge=1, le=MAX_BEAM)

    app = FastAPI(title="attnkit explorer", docs_url=None, redoc_url=None, openapi_url=None)
    assets = {name: _asset(name) for name in STATIC}

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(x for x in first.get("loc", ()) if isinstance(x, str) and x != "body")
        return error(422, f"{where}: {first.get('msg', 'invalid request')}".strip(": "))

    @app.get("/")
    def index() -> Response:
        return Response(assets["index.html"], media_type=TYPES[".html"])

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in assets:
            return error(404, f"no asset {name!r}")
        return Response(assets[name], media_type=TYPES["." + name.rsplit(".", 1)[-1]])

    @app.get("/api/models")
    def list_models() -> list[dict[str, Any]]:
        return [
            {"name": m.name, "kind": m.kind, "transformer": m.is_transformer}
            for m in models.values()
        ]

    @app.get("/api/models/{name}")
    def card(name: str):
        if name not in models:
            return error(404, f"no model {name!r}")
        return models[name].card()

    @app.post("/api/predict")
    def predict(req: PredictRequest):
        if req.model not in models:
            return error(404, f"no model {req.model!r}")
        try:
            return models[req.model].predict(req.text, req.beam)
        except ValueError as err:
            return error(422, str(err))

    return Guard(app)


def server(models: dict[str, Served], host: str = "127.0.0.1", port: int = 8000) -> Any:
    """The uvicorn server of the explorer with its limits: a request's headers
    (:data:`MAX_HEADERS`), idle connections (:data:`KEEP_ALIVE` seconds). ``.run()`` serves
    until stopped."""
    import uvicorn

    config = uvicorn.Config(
        create_app(models),
        host=host,
        port=port,
        log_level="warning",
        http="h11",
        h11_max_incomplete_event_size=MAX_HEADERS,
        timeout_keep_alive=KEEP_ALIVE,
    )
    return uvicorn.Server(config)
