"""The one aiohttp app (`blanklogo web`): every HTTP part mounts itself with `setup(app, deps)`.

Parts, in mounting order: the intake API (`webhooks.intake`, `/v1/jobs…`), its OpenAPI
document (`webhooks.openapi`), signed local downloads (`webhooks.files`), health and
metrics (`webhooks.health`), and the Slack / Telegram endpoints when those channels are
configured. A part whose module does not exist yet is skipped with a warning, so the app
still starts while the service is being assembled.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
from collections.abc import Iterator

from aiohttp import web

from core.deps import Deps
from core.settings import Settings
from webhooks.appkeys import DEPS_KEY
from webhooks.errors import json_errors

__all__ = ["DEPS_KEY", "add_arguments", "build_app", "run"]

logger = logging.getLogger(__name__)

#: room for the multipart envelope and text fields around an upload of MAX_UPLOAD_MB
UPLOAD_OVERHEAD_BYTES = 1024 * 1024


def _parts(settings: Settings) -> Iterator[str]:
    yield "webhooks.intake"
    yield "webhooks.openapi"
    yield "webhooks.files"
    yield "webhooks.health"
    if settings.slack_enabled:
        yield "bots.slack"
    if settings.telegram_enabled:
        yield "bots.telegram"


def _import_part(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # only the part itself being absent is forgiven; a broken import inside it is a bug
        if exc.name is None or not name.startswith(exc.name):
            raise
        logger.warning("%s is not installed yet; its routes are not mounted", name)
        return None


def build_app(deps: Deps) -> web.Application:
    """The aiohttp application with every available part mounted."""
    settings = deps.settings
    parts = [(name, _import_part(name)) for name in _parts(settings)]
    middlewares = []
    # request metrics: the ops helper's webhooks.health may offer a `metrics_middleware`;
    # it goes outermost so it also sees the status of errors turned into JSON below it
    health = dict(parts).get("webhooks.health")
    metrics_middleware = getattr(health, "metrics_middleware", None)
    if metrics_middleware is not None:
        middlewares.append(metrics_middleware)
    middlewares.append(json_errors)
    app = web.Application(
        # uploads are streamed by webhooks.intake (never read whole); this only bounds
        # handlers that read a body whole (request.read/json/post)
        client_max_size=settings.max_upload_bytes + UPLOAD_OVERHEAD_BYTES,
        middlewares=middlewares,
    )
    app[DEPS_KEY] = deps
    for name, module in parts:
        if module is None:
            continue
        setup = getattr(module, "setup", None)
        if setup is None:
            logger.warning("%s has no setup(app, deps); its routes are not mounted", name)
            continue
        setup(app, deps)
    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `blanklogo web`."""
    parser.add_argument("--host", help="address to listen on (default: HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 8080)")


def _display_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def run(args: argparse.Namespace) -> int:
    """Run the HTTP server until interrupted."""
    from core import deps as deps_module  # the composition root; imported when serving only

    overrides = {k: v for k in ("host", "port") if (v := getattr(args, k, None)) is not None}
    settings = Settings(**overrides)

    async def make_app() -> web.Application:
        deps = await deps_module.build(settings)
        app = build_app(deps)

        async def close_deps(_: web.Application) -> None:
            await deps.close()

        app.on_cleanup.append(close_deps)
        return app

    url = _display_url(settings.host, settings.port)
    print(f"BlankLogo web: {url}  (intake API {url}/v1/jobs, docs {url}/openapi.json)", flush=True)
    if settings.public_base_url.rstrip("/") != url:
        print(f"public URL: {settings.public_base_url}", flush=True)
    try:
        web.run_app(make_app(), host=settings.host, port=settings.port, print=None, access_log=None)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    return 0
