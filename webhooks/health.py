"""`GET /health`, `GET /metrics`, and the middleware that counts HTTP requests.

`setup(app, deps)` mounts both routes and keeps this app's `core.metrics.Metrics` at
`app[METRICS_KEY]`. `metrics_middleware` counts every request by route pattern (never
the raw path, so ids do not explode the label set), method and status; webhooks.server
installs it outermost, so it also sees errors that inner middlewares turned into
responses. When an app was built without it, `setup` appends it (innermost).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from core.health import check_health
from core.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from core.deps import Deps

METRICS_KEY = web.AppKey("blanklogo_metrics", Metrics)
UNMATCHED_ROUTE = "unmatched"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_of(request: web.Request) -> str:
    """The route pattern that matched ('/v1/jobs/{id}'), or 'unmatched'."""
    route = getattr(request.match_info, "route", None)
    resource = getattr(route, "resource", None)
    canonical = getattr(resource, "canonical", None)
    return canonical or UNMATCHED_ROUTE


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request by route, method and status (500 for an escaping exception)."""
    metrics = request.config_dict.get(METRICS_KEY)
    if metrics is None:
        return await handler(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.observe_http(
            route_of(request), request.method, status, time.perf_counter() - started
        )


def setup(app: web.Application, deps: Deps) -> None:
    """Mount GET /health and GET /metrics, with this app's metrics registry."""
    metrics = Metrics()
    app[METRICS_KEY] = metrics
    if metrics_middleware not in app.middlewares:
        app.middlewares.append(metrics_middleware)

    async def health(request: web.Request) -> web.Response:
        body = await check_health(deps)
        status = 503 if body["status"] == "down" else 200
        return web.Response(
            status=status,
            text=json.dumps(body, default=str),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def metrics_view(request: web.Request) -> web.Response:
        await metrics.refresh(deps)
        return web.Response(
            body=metrics.exposition(),
            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"},
        )

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_view)
