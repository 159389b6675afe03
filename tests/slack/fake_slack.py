"""A fake Slack on a loopback port: the Web API methods the bot calls, file hosting, uploads.

It speaks Slack's wire format (bearer token, form / JSON / query arguments, `{"ok": …}`
bodies, HTTP 429 with Retry-After) so the real slack_sdk client talks to it through
SLACK_API_BASE_URL, and it records everything it received for the tests to assert on.
Shaped after bolt-python's tests/mock_web_api_server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-1234-5678-fake"
APP_TOKEN = "xapp-1-A0BLANKLOGO-1234-fake"
BOT_USER_ID = "UBOTBLANK"
BOT_ID = "BBOTBLANK"
TEAM_ID = "T0TEST"


@dataclass
class HostedFile:
    """A file someone shared, as files.slack.com would serve it."""

    id: str
    name: str
    content: bytes
    mimetype: str
    filetype: str
    #: what the download answers with (a login page answers text/html whatever the file is)
    content_type: str
    #: what Slack says the size is (defaults to the content's length)
    size: int | None = None
    #: seconds to stall between chunks while serving (a slow download)
    chunk_delay_s: float = 0.0


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class Upload:
    """A file shared by files.completeUploadExternal, with the bytes sent to its upload URL."""

    file_id: str
    filename: str
    title: str | None
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None
    content: bytes


@dataclass
class _Failure:
    status: int
    error: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack:
    """Start with `await fake.start()`; point SLACK_API_BASE_URL at `fake.api_base_url`."""

    def __init__(self, token: str = BOT_TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.files: dict[str, HostedFile] = {}
        self.downloads: list[tuple[str, str | None]] = []  # (file id, Authorization header)
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.uploads: list[Upload] = []
        self.responses: list[dict[str, Any]] = []  # bodies POSTed to response_url
        self.socket_acks: list[dict[str, Any]] = []  # what Socket Mode clients sent back
        #: URLs the next apps.connections.open calls hand out instead of the fake's own socket
        self.socket_urls: list[str] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._pending_uploads: dict[str, tuple[str, int, bytes | None]] = {}
        self._failures: dict[str, list[_Failure]] = defaultdict(list)
        #: False: the app lacks files:read, so downloads end on the login page as in a browser
        self.files_read_scope = True
        #: statuses the next downloads answer with before serving the file (e.g. [503, 503])
        self.download_failures: list[int] = []
        #: statuses the next POSTs to upload URLs answer with
        self.upload_failures: list[int] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.root = ""

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{team_file}/{name}", self._download)
        app.router.add_get("/login", self._login_page)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_post("/commands/{id}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.root = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base_url(self) -> str:
        return f"{self.root}/api/"

    # --- what the tests set up -----------------------------------------------------------

    def host_file(
        self,
        content: bytes,
        name: str = "clip.mp4",
        *,
        mimetype: str = "video/mp4",
        filetype: str = "mp4",
        content_type: str | None = None,
        size: int | None = None,
        chunk_delay_s: float = 0.0,
    ) -> dict[str, Any]:
        """Host a file and return its object as it appears in an event's `files`."""
        file_id = f"F{next(self._ids):08d}"
        hosted = HostedFile(
            id=file_id,
            name=name,
            content=content,
            mimetype=mimetype,
            filetype=filetype,
            content_type=content_type or mimetype,
            size=size,
            chunk_delay_s=chunk_delay_s,
        )
        self.files[file_id] = hosted
        return self.file_object(hosted)

    def file_object(self, hosted: HostedFile) -> dict[str, Any]:
        url = f"{self.root}/files-pri/{TEAM_ID}-{hosted.id}/{hosted.name}"
        return {
            "id": hosted.id,
            "created": int(time.time()),
            "name": hosted.name,
            "title": hosted.name,
            "mimetype": hosted.mimetype,
            "filetype": hosted.filetype,
            "pretty_type": hosted.filetype.upper(),
            "user": "U0SENDER",
            "mode": "hosted",
            "is_external": False,
            "size": hosted.size if hosted.size is not None else len(hosted.content),
            "url_private": url,
            "url_private_download": url + "?download=1",
            "permalink": f"https://fake.slack.com/files/U0SENDER/{hosted.id}/{hosted.name}",
        }

    def fail(
        self, method: str, *, status: int = 200, error: str = "ratelimited", times: int = 1
    ) -> None:
        """Make the next `times` calls of `method` fail (status 429 gets a Retry-After)."""
        headers = {"Retry-After": "1"} if status == 429 else {}
        self._failures[method].extend(_Failure(status, error, headers) for _ in range(times))

    # --- what the tests assert on ------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Messages the bot posted in a thread, in order, as they read now."""
        found = [
            m
            for (c, _), m in self.messages.items()
            if c == channel and m.get("thread_ts") == thread_ts
        ]
        return sorted(found, key=lambda m: float(m["ts"]))

    def uploads_in(self, channel: str, thread_ts: str) -> list[Upload]:
        return [u for u in self.uploads if u.channel_id == channel and u.thread_ts == thread_ts]

    # --- Web API --------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        self.calls.append(Call(method, args, token))
        if self._failures[method]:
            failure = self._failures[method].pop(0)
            return web.json_response(
                {"ok": False, "error": failure.error},
                status=failure.status,
                headers=failure.headers,
            )
        expected = APP_TOKEN if method == "apps.connections.open" else self.token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(args))

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "blanklogo",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_urls:
            return {"ok": True, "url": self.socket_urls.pop(0)}
        return {"ok": True, "url": self.root.replace("http://", "ws://") + "/socket"}

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ids):06d}"

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "text": args.get("text", ""),
            "ts": ts,
            "thread_ts": args.get("thread_ts"),
            "edits": 0,
        }
        self.messages[(args["channel"], ts)] = message
        return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self.messages.get((args.get("channel", ""), args.get("ts", "")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message["text"] = args.get("text", "")
        message["edits"] += 1
        return {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": message["text"]}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("user"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        hosted = self.files.get(args.get("file", ""))
        if hosted is None:
            return {"ok": False, "error": "file_not_found"}
        return {
            "ok": True,
            "file": self.file_object(hosted),
            "comments": [],
            "response_metadata": {},
        }

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            length = int(args.get("length", ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not args.get("filename") or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"FUP{next(self._ids):06d}"
        self._pending_uploads[file_id] = (args["filename"], length, None)
        return {"ok": True, "upload_url": f"{self.root}/upload/v1/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(args.get("files", ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        shared = []
        for item in files:
            pending = self._pending_uploads.pop(item.get("id", ""), None)
            if pending is None or pending[2] is None:
                return {"ok": False, "error": "file_not_found"}
            filename, _, content = pending
            self.uploads.append(
                Upload(
                    file_id=item["id"],
                    filename=filename,
                    title=item.get("title"),
                    channel_id=args.get("channel_id"),
                    thread_ts=args.get("thread_ts"),
                    initial_comment=args.get("initial_comment"),
                    content=content,
                )
            )
            shared.append(
                {"id": item["id"], "title": item.get("title") or filename, "name": filename}
            )
        return {"ok": True, "files": shared}

    # --- file hosting, uploads, response_url ------------------------------------------

    async def _download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["team_file"].split("-", 1)[-1]
        auth = request.headers.get("Authorization")
        self.downloads.append((file_id, auth))
        hosted = self.files.get(file_id)
        if hosted is None:
            return web.Response(status=404, text="not found")
        if auth != f"Bearer {self.token}" or not self.files_read_scope:
            # what files.slack.com does without a usable token: send the browser to log in
            raise web.HTTPFound(f"{self.root}/login?redir={request.path}")
        if self.download_failures:
            return web.Response(status=self.download_failures.pop(0), text="upstream trouble")
        response = web.StreamResponse(headers={"Content-Type": hosted.content_type})
        response.content_length = len(hosted.content)
        await response.prepare(request)
        for start in range(0, len(hosted.content), 64 * 1024):
            if hosted.chunk_delay_s:
                await asyncio.sleep(hosted.chunk_delay_s)
            await response.write(hosted.content[start : start + 64 * 1024])
        await response.write_eof()
        return response

    async def _login_page(self, request: web.Request) -> web.Response:
        return web.Response(
            text="<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>",
            content_type="text/html",
        )

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if self.upload_failures:
            return web.Response(status=self.upload_failures.pop(0), text="upload failed")
        pending = self._pending_uploads.get(file_id)
        if pending is None:
            return web.Response(status=404, text="unknown upload")
        body = await request.read()
        filename, length, _ = pending
        if len(body) != length:
            return web.Response(status=400, text=f"length {len(body)} != declared {length}")
        self._pending_uploads[file_id] = (filename, length, body)
        return web.Response(text=f"OK - {len(body)}")

    async def _response_url(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0BLANKLOGO"},
            }
        )
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(message.data))
        return ws

    async def send_over_socket(self, payload: dict[str, Any], kind: str = "events_api") -> str:
        """Push an envelope to the connected Socket Mode client; return its envelope_id."""
        for _ in range(500):
            if self._sockets:
                break
            await asyncio.sleep(0.01)
        envelope_id = f"env-{next(self._ids)}"
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "payload": payload,
                "type": kind,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

    def response_url(self) -> str:
        return f"{self.root}/commands/{next(self._ids)}"


async def _arguments(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        args.update({k: v for k, v in body.items()})
    elif request.method == "POST":
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args
