"""The gateway's HTTP app: /api/v1/home, then a catch-all that verifies and forwards by path prefix."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPBearer
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from petportal_runtime.auth import CurrentParent, current_parent, current_staff
from petportal_runtime.logging import get_logger
from petportal_runtime.ratelimit import RateLimiter
from petportal_runtime.routes import ParentRoute

from ..adapters.upstreams import (
    FORWARDED_REQUEST_HEADERS,
    UnforwardableRequest,
    UpstreamSend,
    UpstreamTimeout,
    UpstreamUnavailable,
    request_headers,
)
from ..bootstrap import Gateway, bootstrap
from ..domain.home import HomeScreen
from ..domain.openapi import merge
from ..domain.requests import RejectedRequest, check_headers, check_target
from ..domain.routing import Auth, resolve
from ..service_layer.home import compose_home
from ..settings import GatewaySettings

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Sent with every 503/504 for an upstream, so clients back off instead of retrying at once.
RETRY_AFTER_SECONDS = 2
_bearer = HTTPBearer(auto_error=False)
log = get_logger(__name__)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# The home screen, asked for on every visit: answered without FastAPI's per-request dependency
# resolution (see ParentRoute), like the proxy below.
home_router = APIRouter(tags=["home"], route_class=ParentRoute)


@home_router.get("/api/v1/home", response_model=HomeScreen)
async def home(request: Request, _parent: CurrentParent) -> Response:
    headers = request_headers(request.headers, _client_ip(request))
    gateway = _gateway(request)
    screen = await compose_home(gateway.upstreams, headers, gateway.settings.upstream_timeout_seconds)
    # The documented model, serialised once here (FastAPI would validate a returned model again).
    return Response(screen.model_dump_json(), media_type="application/json")


async def authorize(request: Request, auth: Auth) -> None:
    """The same checks the services make (401 no/bad token, 403 wrong role), before any forwarding."""
    if auth == "none":
        return
    credentials = await _bearer(request)
    if auth == "parent":
        await current_parent(request, credentials)
    else:
        await current_staff(request, credentials)


def _too_large() -> HTTPException:
    # Closing the connection stops uvicorn from reading the rest of the body.
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, detail="request body too large", headers={"Connection": "close"}
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large()
    return bytes(body)


async def proxy(request: Request) -> Response:
    path: str = request.scope["path"]
    # Resolved once: by UpstreamRoute when it matched the request, here otherwise.
    route = request.scope.get(RESOLVED) or resolve(path)
    if route is None:
        web_dir = _gateway(request).settings.web_dir
        if web_dir is not None and request.method in ("GET", "HEAD") and (page := web_file(web_dir, path)):
            return page
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="not found")
    if route.upstream == "gateway":  # a path the gateway answers itself
        if path.endswith("/"):
            query = request.scope.get("query_string", b"").decode("latin-1")
            location = path.rstrip("/") + (f"?{query}" if query else "")
            return RedirectResponse(location, status.HTTP_308_PERMANENT_REDIRECT)
        raise HTTPException(
            status.HTTP_405_METHOD_NOT_ALLOWED, detail="method not allowed", headers={"Allow": "GET"}
        )
    await authorize(request, route.auth)
    gateway = _gateway(request)
    body = await read_body(request, gateway.settings.max_body_bytes)
    raw_path: bytes = request.scope.get("raw_path") or quote(path).encode()
    if query := request.scope.get("query_string", b""):
        raw_path += b"?" + query
    upstream = await gateway.upstreams.forward(
        route.upstream,
        request.method,
        raw_path,
        request_headers(request.headers, _client_ip(request)),
        body,
    )
    response = Response(content=upstream.content, status_code=upstream.status_code)
    response.raw_headers += [(n.encode("latin-1"), v.encode("latin-1")) for n, v in upstream.headers]
    return response


# The web portal's pages: its own files only, from its own origin (no inline scripts or styles).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
API_PREFIXES = ("/api/", "/clinic/", "/pims/", "/webhooks/", "/internal/")


def web_file(web_dir: Path, path: str) -> Response | None:
    """A file of the built portal (hashed assets cached for a year, the rest revalidated), or its
    index.html for the portal's own routes (/pets/…); None for API paths and missing files."""
    if path.startswith(API_PREFIXES):
        return None
    root = web_dir.resolve()
    relative = path.lstrip("/")
    candidate = (root / relative).resolve()
    if relative and candidate.is_relative_to(root) and candidate.is_file():
        immutable = relative.startswith("assets/")
        cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
        return FileResponse(candidate, headers={"Cache-Control": cache, **PAGE_HEADERS})
    if "." in relative.rsplit("/", 1)[-1] or not (root / "index.html").is_file():
        return None  # a file that is not there
    return FileResponse(root / "index.html", headers={"Cache-Control": "no-cache", **PAGE_HEADERS})


class OpenApiDocuments:
    """Merges the services' documents on request; each is kept for a minute, and the last good copy
    of a service's stands in while that service is down (none yet: 503)."""

    TTL = 60.0

    def __init__(self, app: FastAPI, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}

    async def _document(self, service: str) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._documents.get(service)
        if cached and now - cached[0] < self.TTL:
            return cached[1]
        try:
            answer = await self.gateway.upstreams.forward(
                service, "GET", b"/openapi.json", {"accept": "application/json"}
            )
            if answer.status_code == 200:
                document: dict[str, Any] = json.loads(answer.content)
                self._documents[service] = (now, document)
                return document
        except (UpstreamUnavailable, UpstreamTimeout, ValueError):
            pass
        return cached[1] if cached else None

    async def answer(self) -> Response:
        services = [name for name in self.gateway.settings.upstream_urls()]
        found = await asyncio.gather(*(self._document(name) for name in services))
        missing = [name for name, document in zip(services, found, strict=True) if document is None]
        if missing:
            raise UpstreamUnavailable(missing[0])
        documents = {name: document for name, document in zip(services, found, strict=True) if document}
        merged, clashes = merge(self.app.openapi(), documents)
        if clashes:
            log.warning("OpenAPI schema names clash", clashes=clashes)
        return JSONResponse(merged, headers={"Cache-Control": "public, max-age=60"})


RESOLVED = "petportal.upstream_route"


class ProxyRoute(Route):
    """The catch-all: every path and method the gateway does not answer itself goes to `proxy`.

    A plain Starlette route rather than a FastAPI one: `proxy` takes the request and returns a
    response, so FastAPI's endpoint machinery (resolving dependencies for a lone Request, checking
    the returned value) would only cost time on every proxied request. Like an APIRoute it names
    itself in scope["route"]: its template is the route of the request log, the HTTP metrics and
    the server span.
    """

    def __init__(self) -> None:
        super().__init__("/{path:path}", proxy, methods=PROXIED_METHODS, include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match != Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class UpstreamRoute(ProxyRoute):
    """The first route: a path the routing table gives to a service goes to `proxy` at once, without
    being tried against each of the gateway's own routes (the docs, /openapi.json, the routers'
    routes) first. Nothing the gateway answers itself is in the table under a service's name, so the
    answer is the one the catch-all at the end would give; the rest fall through to the routes."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        route = resolve(scope["path"])
        if route is None or route.upstream == "gateway":
            return Match.NONE, {}
        match, child_scope = super().matches(scope)
        if match != Match.NONE:
            child_scope[RESOLVED] = route
        return match, child_scope


class RequestHygieneMiddleware:
    """A specific 4xx for a request target or forwarded header the gateway cannot pass on as it is
    (`domain.requests`), before anything looks at it."""

    FORWARDED = frozenset(name.encode() for name in FORWARDED_REQUEST_HEADERS)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                check_target(scope.get("raw_path") or quote(scope["path"]).encode(), scope["query_string"])
                check_headers(scope["headers"], self.FORWARDED)
            except RejectedRequest as exc:
                log.info("request refused", method=scope["method"], status=exc.status, reason=exc.detail)
                await JSONResponse({"detail": exc.detail}, exc.status)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RateLimitMiddleware:
    """429 with Retry-After once a client IP spends its per-minute budget (probes are exempt)."""

    EXEMPT = frozenset({"/healthz", "/readyz"})

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.EXEMPT:
            client = scope.get("client")
            retry_after = await self.limiter.hit(client[0] if client else "unknown")
            if retry_after is not None:
                response = JSONResponse(
                    {"detail": "too many requests"},
                    status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                    headers={"Retry-After": str(retry_after)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _unavailable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UpstreamUnavailable)
    return JSONResponse(
        {"detail": f"{exc.service} is unavailable"},
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _unforwardable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnforwardableRequest)
    log.info("request refused", status=400, reason="cannot be forwarded")
    return JSONResponse({"detail": "the request cannot be forwarded"}, status.HTTP_400_BAD_REQUEST)


async def _timed_out(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UpstreamTimeout)
    return JSONResponse(
        {"detail": f"{exc.service} timed out"},
        status.HTTP_504_GATEWAY_TIMEOUT,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def create_app(
    settings: GatewaySettings | None = None,
    *,
    send: UpstreamSend | None = None,
) -> FastAPI:
    gateway = bootstrap(settings, send=send)
    app = gateway.runtime.create_app(
        title="Pet Portal gateway",
        routers=[home_router],
        on_startup=[gateway.upstreams.start],
        on_shutdown=[gateway.upstreams.close],
    )
    app.state.gateway = gateway
    # /openapi.json is the merged document of every route the gateway serves (FastAPI's own has only
    # the gateway's few).
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != "/openapi.json"]
    documents = OpenApiDocuments(app, gateway)
    app.add_api_route("/openapi.json", documents.answer, methods=["GET"], include_in_schema=False)
    # After create_app: the services' paths first, the catch-all after /healthz, /readyz and /api/v1/home.
    app.router.routes.insert(0, UpstreamRoute())
    app.router.routes.append(ProxyRoute())
    app.add_exception_handler(UpstreamUnavailable, _unavailable)
    app.add_exception_handler(UpstreamTimeout, _timed_out)
    app.add_exception_handler(UnforwardableRequest, _unforwardable)
    app.add_middleware(RequestHygieneMiddleware)
    app.add_middleware(RateLimitMiddleware, limiter=gateway.rate_limiter)
    if gateway.settings.cors_allowed_origins:
        # Outermost, so refusals (429, 413…) carry the headers a browser needs to read them. Tokens
        # travel in the Authorization header, never in cookies: no credentials mode.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=gateway.settings.cors_allowed_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    return app
