"""A small Janus client over its WebSocket API: one connection, one Janus session, plugin handles.

Why WebSocket and not Janus's HTTP transport: the HTTP transport delivers events only through a long-poll
GET, and Janus 1.1 reads that GET's API secret from the query string alone (janus_http.c looks up the
`apisecret` URL argument; no header is read), so the secret would travel in a URL. Over the WebSocket
transport every request is a JSON message carrying `apisecret` in its body, and Janus pushes replies
and events down the same connection: no URL ever holds the secret, and there is no poll.

Every request carries a transaction; its replies come back with it. Requests Janus answers at once
(create, attach, the VideoRoom's synchronous requests such as `list`) get a `success` (or `error`);
asynchronous plugin requests (`join`, `publish`, `start`) get an `ack`, then an `event` with the same
transaction. Messages with no pending transaction (another publisher joined, left, a hangup) go to the
handle's listener.

When the connection closes, Janus stops answering, or Janus forgets our session (it restarted), `on_lost`
runs once and the client starts a fresh connection and Janus session on the next request. Janus itself
destroys the sessions of a connection that closes, so a server process that dies takes its feeds out of
the rooms at once; a `keepalive` every few seconds covers the case where the connection stays open but
nothing is said (Janus's `session_timeout`, deploy/janus/janus.jcfg), and notices a Janus that hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp

log = logging.getLogger(__name__)
VIDEOROOM = "janus.plugin.videoroom"
PROTOCOL = "janus-protocol"  # the WebSocket subprotocol Janus's transport requires
NO_SUCH_SESSION = 458
KEEPALIVE_MISSES = 2  # unanswered keepalives in a row before Janus counts as gone (one may meet a busy moment)
EventListener = Callable[[dict[str, Any]], None]


class JanusError(Exception):
    """Janus (or its VideoRoom plugin) refused a request, or could not be reached (code 0)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusClient:
    def __init__(self, url: str, api_secret: str | None, request_timeout_s: float = 10.0,
                 keepalive_s: float = 5.0) -> None:
        self.url = url
        self._secret = api_secret
        self._timeout = request_timeout_s
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connect_lock = asyncio.Lock()
        self._session_id: int | None = None
        self._session_lock = asyncio.Lock()
        self._reader_task: asyncio.Task | None = None
        self._keepalive_s = keepalive_s
        self._keepalive_task: asyncio.Task | None = None
        self._replies: dict[str, asyncio.Queue[dict]] = {}  # transaction -> its replies (ack, then the event)
        self._listeners: dict[int, EventListener] = {}
        self.on_lost: list[Callable[[str], None]] = []  # called with the reason when the Janus session dies
        self.errors = 0  # requests Janus refused or that failed

    async def info(self) -> dict:
        """Janus's `info` (no session or secret needed): the start-up check that the URL answers as Janus."""
        reply = await self._call({"janus": "info"}, secret=False)
        if reply.get("janus") != "server_info":
            raise JanusError(0, f"{self.url} did not answer as Janus does")
        return reply

    # ---- the connection ---------------------------------------------------------------------------

    async def _connection(self) -> aiohttp.ClientWebSocketResponse:
        async with self._connect_lock:
            if self._ws is None or self._ws.closed:
                if self._http is None or self._http.closed:
                    self._http = aiohttp.ClientSession()
                try:
                    ws = await asyncio.wait_for(self._http.ws_connect(
                        self.url, protocols=(PROTOCOL,), timeout=aiohttp.ClientWSTimeout(ws_close=2.0)), self._timeout)
                except (aiohttp.ClientError, TimeoutError, OSError) as error:
                    self.errors += 1
                    raise JanusError(0, f"Janus at {self.url} did not answer ({type(error).__name__})") from error
                self._ws = ws
                self._reader_task = asyncio.create_task(self._read(ws))
            return self._ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            with contextlib.suppress(ValueError):
                message = json.loads(frame.data)
                if isinstance(message, dict):
                    self._dispatch(message)
        if self._ws is ws:  # not an old connection we already dropped
            self._ws = None
            self._fail_waiting(f"Janus at {self.url} closed the connection")
            self._lose(f"Janus at {self.url} closed the connection")

    async def _call(self, message: dict[str, Any], secret: bool = True) -> dict:
        """Send one request and wait for its first reply (`ack`, `success`, `error`, ...)."""
        replies = await self._send(message, secret)
        try:
            return await self._next_reply(message, replies)
        finally:
            self._replies.pop(message["transaction"], None)

    async def _send(self, message: dict[str, Any], secret: bool = True) -> asyncio.Queue[dict]:
        ws = await self._connection()
        message["transaction"] = secrets.token_hex(8)
        if secret and self._secret:
            message["apisecret"] = self._secret  # in the message body, never in a URL
        replies: asyncio.Queue[dict] = asyncio.Queue()
        self._replies[message["transaction"]] = replies
        try:
            await ws.send_str(json.dumps(message))
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as error:
            self._replies.pop(message["transaction"], None)
            self.errors += 1
            raise JanusError(0, f"Janus at {self.url} did not answer ({type(error).__name__})") from error
        return replies

    async def _next_reply(self, message: dict[str, Any], replies: asyncio.Queue[dict]) -> dict:
        try:
            reply = await asyncio.wait_for(replies.get(), self._timeout)
        except TimeoutError as error:
            self.errors += 1
            what = message.get("body", {}).get("request") or message["janus"]
            raise JanusError(0, f"Janus at {self.url} did not answer {what!r} in time") from error
        if reply.get("janus") == "error":
            self.errors += 1
            error = reply.get("error", {})
            current = self._session_id
            if error.get("code") == NO_SUCH_SESSION and current is not None and message.get("session_id") == current:
                self._lose("Janus forgot our session (it restarted)")  # not for an old session's late answer
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "?")))
        return reply

    # ---- sessions and handles ---------------------------------------------------------------------

    async def session(self) -> int:
        async with self._session_lock:
            if self._session_id is None:
                reply = await self._call({"janus": "create"})
                self._session_id = int(reply["data"]["id"])
                self._keepalive_task = asyncio.create_task(self._keepalive(self._session_id))
                log.info("Janus session %d on %s", self._session_id, self.url)
            return self._session_id

    async def attach(self, listener: EventListener | None = None) -> int:
        session = await self.session()
        reply = await self._call({"janus": "attach", "plugin": VIDEOROOM, "session_id": session})
        handle = int(reply["data"]["id"])
        if listener is not None:
            self._listeners[handle] = listener
        return handle

    async def detach(self, handle: int) -> None:
        self._listeners.pop(handle, None)
        if self._session_id is None:
            return  # the session is gone, and its handles with it
        with contextlib.suppress(JanusError):
            await self._call({"janus": "detach", "session_id": self._session_id, "handle_id": handle})

    async def request(self, handle: int, body: dict[str, Any]) -> dict:
        """A synchronous VideoRoom request (create, list, listparticipants, destroy): its plugin data."""
        session = await self.session()
        reply = await self._call({"janus": "message", "session_id": session, "handle_id": handle, "body": body})
        return _plugin_data(reply)

    async def message(self, handle: int, body: dict[str, Any], jsep: dict | None = None) -> tuple[dict, dict | None]:
        """An asynchronous VideoRoom request (join, publish, start): its event's plugin data and JSEP."""
        session = await self.session()
        message: dict[str, Any] = {"janus": "message", "session_id": session, "handle_id": handle, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        replies = await self._send(message)
        try:
            while True:
                reply = await self._next_reply(message, replies)
                if reply.get("janus") != "ack":  # the event (or an answer at once)
                    return _plugin_data(reply), reply.get("jsep")
        finally:
            self._replies.pop(message["transaction"], None)

    async def _keepalive(self, session: int) -> None:
        """Janus times a session out after `session_timeout` without a request on it: say we are alive well
        within any timeout we ship (15 s); a Janus that leaves keepalives unanswered is gone."""
        misses = 0
        while self._session_id == session:
            await asyncio.sleep(self._keepalive_s)
            if self._session_id != session:
                return
            try:
                await self._call({"janus": "keepalive", "session_id": session})
                misses = 0
            except JanusError as error:  # 458 drops the session in _next_reply
                if error.code != 0:
                    continue
                misses += 1
                if misses >= KEEPALIVE_MISSES:
                    self._lose(f"Janus at {self.url} stopped answering")
                    return

    def _dispatch(self, message: dict[str, Any]) -> None:
        replies = self._replies.get(message.get("transaction", ""))
        if replies is not None:
            replies.put_nowait(message)
            return
        if message.get("janus") == "error" and message.get("error", {}).get("code") == NO_SUCH_SESSION:
            self._lose("Janus forgot our session (it restarted)")
            return
        listener = self._listeners.get(message.get("sender", 0))
        if listener is not None:
            try:
                listener(message)
            except Exception:  # a listener's bug must not stop the reader of every room
                log.exception("Janus event listener failed")

    def _fail_waiting(self, reason: str) -> None:
        for replies in self._replies.values():
            replies.put_nowait({"janus": "error", "error": {"code": 0, "reason": reason}})
        self._replies.clear()

    def _lose(self, reason: str) -> None:
        if self._session_id is None:
            return
        log.warning("%s: dropping Janus session %d", reason, self._session_id)
        self._session_id = None
        self._listeners.clear()
        self._fail_waiting(reason)
        # Janus destroys the sessions of a connection that closes: if it is in fact alive (a network blip, a
        # busy moment), closing ours takes our old feeds out of the rooms now, not after its session timeout.
        ws, self._ws = self._ws, None
        if ws is not None:
            asyncio.get_running_loop().create_task(ws.close())
        for callback in self.on_lost:
            try:
                callback(reason)
            except Exception:
                log.exception("Janus on-lost hook failed")

    async def close(self) -> None:
        session, self._session_id = self._session_id, None
        if session is not None and self._ws is not None:
            with contextlib.suppress(JanusError):
                await self._call({"janus": "destroy", "session_id": session})
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        for task in (self._reader_task, self._keepalive_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._http is not None:
            await self._http.close()


def _plugin_data(reply: dict) -> dict:
    data = reply.get("plugindata", {}).get("data", {})
    if "error_code" in data:
        raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "?")))
    return data


async def startup_problem(url: str, api_secret: str | None) -> str | None:
    """Why a server pointed at this Janus cannot start (None: it answers and accepts our secret)."""
    client = JanusClient(url, api_secret, request_timeout_s=5.0)
    try:
        await client.info()
        await client.session()  # needs the API secret, unlike info
    except JanusError as error:
        if error.code == 403:
            return (f"Janus at {url} refused our API secret (MARIONETTE_SFU_SECRET must match Janus's api_secret, "
                    "deploy/janus)")
        return f"cannot reach Janus at {url}: {error.reason} (start Janus, see deploy/janus, or fix --sfu-url)"
    finally:
        await client.close()
    return None
