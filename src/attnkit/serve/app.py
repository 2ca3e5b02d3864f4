"""The explorer's web application (FastAPI): one page, its assets, and a JSON API.

API (every error is JSON ``{"error": "..."}`` with a 4xx status):

- ``GET /api/models``: ``[{"name", "kind", "transformer"}]``, the checkpoints named at start;
- ``GET /api/models/{name}``: the model card (config, task, metrics, sizes);
- ``POST /api/predict`` with ``{"model": name, "text": "...", "beam": 1}``: the prediction
  and its attention (see :mod:`attnkit.serve.models` for the fields of each kind).

Limits: bodies over :data:`MAX_BODY` bytes are refused (413), inputs over
:data:`~attnkit.serve.models.MAX_INPUT` characters (422); the client names models, never paths.
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

__all__ = ["CSP", "MAX_BODY", "create_app"]

MAX_BODY = 16_384
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

    @app.middleware("http")
    async def limits_and_headers(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            response = error(413, f"the request body is over {MAX_BODY} bytes")
        elif request.method == "POST" and length is None:
            response = error(411, "a POST needs a Content-Length")
        else:
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

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

    return app
