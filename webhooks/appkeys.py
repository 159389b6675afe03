"""Typed keys of the aiohttp application (re-exported by `webhooks.server`)."""

from __future__ import annotations

from aiohttp import web

from core.deps import Deps

#: the Deps of the running service: `request.app[DEPS_KEY]`
DEPS_KEY: web.AppKey[Deps] = web.AppKey("deps", Deps)
