"""A fake Telegram Bot API on an ephemeral loopback port, speaking its wire format.

The real python-telegram-bot `Bot` talks to it through TELEGRAM_API_BASE_URL
(`http://127.0.0.1:<port>/bot`) and the file base URL (`.../file/bot`). It records
every call, serves files registered with `add_file`, and can be told to answer a
method with 429 retry_after or a 400 description (`fail`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token"
BOT_USER = {
    "id": 123456,
    "is_bot": True,
    "first_name": "BlankLogo",
    "username": "blanklogo_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class Upload:
    """One file part of a multipart request."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Call:
    """One Bot API request as the fake received it."""

    method: str
    params: dict[str, str]
    files: dict[str, Upload] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    #: what the fake answered (a Message dict for send/edit methods)
    result: Any = None

    def json_param(self, name: str) -> Any:
        """A parameter PTB sent JSON-encoded (ids, reply_parameters, commands)."""
        return json.loads(self.params[name])


@dataclass
class StoredFile:
    data: bytes
    file_path: str
    file_size: int | None


class FakeBotApi:
    """The fake server: start(), then point Settings at `api_base_url` / `file_base_url`."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.files: dict[str, StoredFile] = {}
        self.updates: list[dict[str, Any]] = []
        self.file_downloads = 0
        #: method -> queued canned failures, each (http status, json body)
        self._failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        #: method -> seconds to wait before answering (simulates a slow Telegram)
        self.delays: dict[str, float] = {}
        self.download_delay: dict[str, float] = {}
        self._message_ids = itertools.count(1000)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.changed = asyncio.Event()

    # -- life cycle ------------------------------------------------------------------
    async def start(self) -> FakeBotApi:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- test controls ---------------------------------------------------------------
    def add_file(
        self, file_id: str, data: bytes, *, file_path: str | None = None, file_size: int | None = -1
    ) -> None:
        """Serve `data` for `file_id` (file_path may be absolute, as a local server gives)."""
        self.files[file_id] = StoredFile(
            data=data,
            file_path=file_path or f"videos/{file_id}.mp4",
            file_size=len(data) if file_size == -1 else file_size,
        )

    def fail(
        self,
        method: str,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        status: int = 400,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail (429 retry_after, or status+description)."""
        if retry_after is not None:
            status, body = (
                429,
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                },
            )
        else:
            body = {"ok": False, "error_code": status, "description": description or "Bad Request"}
        self._failures.setdefault(method, []).extend([(status, body)] * times)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition"
    ) -> None:
        """Wait until `predicate()` holds for the recorded calls."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                methods = [call.method for call in self.calls]
                raise AssertionError(f"timed out waiting for {what}; calls so far: {methods}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass

    # -- wire format -----------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method=method, params=params, files=files)
        self.calls.append(call)
        self.changed.set()
        if delay := self.delays.get(method):
            await asyncio.sleep(delay)
        queued = self._failures.get(method)
        if queued:
            status, body = queued.pop(0)
            return web.json_response(body, status=status)
        if method == "getUpdates" and not self._pending_updates(call):
            await asyncio.sleep(0.05)  # a real server holds the long poll open
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result = handler(call)
        if isinstance(result, web.Response):
            return result
        call.result = result
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        for file_id, stored in self.files.items():
            if stored.file_path == path:
                if delay := self.download_delay.get(file_id):
                    await asyncio.sleep(delay)
                self.file_downloads += 1
                self.changed.set()
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return _error(404, "Not Found")

    def _m_getMe(self, call: Call) -> dict[str, Any]:
        return BOT_USER

    def _m_getFile(self, call: Call) -> dict[str, Any] | web.Response:
        stored = self.files.get(call.params.get("file_id", ""))
        if stored is None:
            return _error(400, "Bad Request: invalid file_id")
        if stored.file_size is not None and stored.file_size > 20 * 1024 * 1024:
            if not stored.file_path.startswith("/"):
                return _error(400, "Bad Request: file is too big")
        return {
            "file_id": call.params["file_id"],
            "file_unique_id": f"u{call.params['file_id']}",
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    def _message(self, call: Call, **content: Any) -> dict[str, Any]:
        chat_id = int(call.params["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": BOT_USER,
            **content,
        }
        if "reply_parameters" in call.params:
            reply = call.json_param("reply_parameters")
            message["reply_to_message"] = {
                "message_id": reply["message_id"],
                "date": int(time.time()),
                "chat": message["chat"],
            }
        return message

    def _m_sendMessage(self, call: Call) -> dict[str, Any]:
        return self._message(call, text=call.params["text"])

    def _m_editMessageText(self, call: Call) -> dict[str, Any]:
        message = self._message(call, text=call.params["text"])
        message["message_id"] = int(call.params["message_id"])
        message["edit_date"] = int(time.time())
        return message

    def _m_sendVideo(self, call: Call) -> dict[str, Any] | web.Response:
        upload = call.files.get("video")
        if upload is None:
            return _error(400, "Bad Request: there is no video in the request")
        video = {
            "file_id": f"sent{len(self.calls)}",
            "file_unique_id": f"usent{len(self.calls)}",
            "width": int(call.params.get("width", 0)),
            "height": int(call.params.get("height", 0)),
            "duration": int(call.params.get("duration", 0)),
            "mime_type": upload.content_type,
            "file_size": len(upload.data),
        }
        return self._message(call, video=video, caption=call.params.get("caption"))

    def _m_setMyCommands(self, call: Call) -> bool:
        return True

    def _m_setWebhook(self, call: Call) -> bool:
        return True

    def _m_deleteWebhook(self, call: Call) -> bool:
        return True

    def _pending_updates(self, call: Call) -> list[dict[str, Any]]:
        offset = int(call.params.get("offset", 0))
        return [update for update in self.updates if update["update_id"] >= offset]

    def _m_getUpdates(self, call: Call) -> list[dict[str, Any]]:
        return self._pending_updates(call)


async def _read_params(request: web.Request) -> tuple[dict[str, str], dict[str, Upload]]:
    params: dict[str, str] = {}
    files: dict[str, Upload] = {}
    if request.content_type == "application/json":
        body = await request.json()
        for key, value in body.items():
            params[key] = value if isinstance(value, str) else json.dumps(value)
        return params, files
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = Upload(value.filename, value.content_type, value.file.read())
            else:
                params[key] = str(value)
    else:
        params.update(request.query)
    return params, files


def _error(status: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": status, "description": description}, status=status
    )
