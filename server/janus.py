"""A small Janus client over its HTTP API: one Janus session, plugin handles, long-poll for events.

Requests Janus answers at once (create, attach, the VideoRoom's synchronous requests such as `list`)
come back in the POST's reply; asynchronous plugin requests (`join`, `publish`, `start`) are acked and
their answer arrives on the long-poll with the same transaction. Events with no pending transaction
(another publisher joined, left, a hangup) go to the handle's listener.

When Janus stops answering or forgets our session (it restarted), `on_lost` runs once and the client
starts a fresh Janus session on the next request.

A live client sends a `keepalive` every few seconds besides its long poll, so Janus's `session_timeout`
can be short: when a server process dies, Janus drops its session, and with it that server's feeds from
the rooms, within that timeout (deploy/janus/janus.jcfg).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp

log = logging.getLogger(__name__)
VIDEOROOM = "janus.plugin.videoroom"
NO_SUCH_SESSION = 458
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
        self.url = url.rstrip("/")
        self._secret = api_secret
        self._timeout = request_timeout_s
        self._http: aiohttp.ClientSession | None = None
        self._session_id: int | None = None
        self._session_lock = asyncio.Lock()
        self._poll_task: asyncio.Task | None = None
        self._keepalive_s = keepalive_s
        self._keepalive_task: asyncio.Task | None = None
        self._pending: dict[str, asyncio.Future[dict]] = {}
        self._listeners: dict[int, EventListener] = {}
        self.on_lost: list[Callable[[str], None]] = []  # called with the reason when the Janus session dies
        self.errors = 0  # requests Janus refused or that failed

    async def info(self) -> dict:
        """Janus's /info (no session needed): the start-up check that the URL answers."""
        async with self._client().get(f"{self.url}/info", timeout=aiohttp.ClientTimeout(total=self._timeout)) as r:
            body = await r.json(content_type=None)
        if not isinstance(body, dict) or body.get("janus") != "server_info":
            raise JanusError(0, f"{self.url}/info did not answer as Janus does")
        return body

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def _post(self, path: str, message: dict[str, Any], transaction: str | None = None) -> dict:
        body = {**message, "transaction": transaction or secrets.token_hex(8)}
        if self._secret:
            body["apisecret"] = self._secret
        try:
            async with self._client().post(f"{self.url}{path}", json=body,
                                           timeout=aiohttp.ClientTimeout(total=self._timeout)) as response:
                reply = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            self.errors += 1
            raise JanusError(0, f"Janus at {self.url} did not answer ({type(error).__name__})") from error
        if reply.get("janus") == "error":
            self.errors += 1
            error = reply.get("error", {})
            current = self._session_id
            if error.get("code") == NO_SUCH_SESSION and current is not None and path.startswith(f"/{current}"):
                self._lose("Janus forgot our session (it restarted)")  # not for an old session's late answer
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "?")))
        return reply

    async def session(self) -> int:
        async with self._session_lock:
            if self._session_id is None:
                reply = await self._post("", {"janus": "create"})
                self._session_id = int(reply["data"]["id"])
                self._poll_task = asyncio.create_task(self._poll(self._session_id))
                self._keepalive_task = asyncio.create_task(self._keepalive(self._session_id))
                log.info("Janus session %d on %s", self._session_id, self.url)
            return self._session_id

    async def attach(self, listener: EventListener | None = None) -> int:
        session = await self.session()
        reply = await self._post(f"/{session}", {"janus": "attach", "plugin": VIDEOROOM})
        handle = int(reply["data"]["id"])
        if listener is not None:
            self._listeners[handle] = listener
        return handle

    async def detach(self, handle: int) -> None:
        self._listeners.pop(handle, None)
        if self._session_id is None:
            return  # the session is gone, and its handles with it
        with contextlib.suppress(JanusError):
            await self._post(f"/{self._session_id}/{handle}", {"janus": "detach"})

    async def request(self, handle: int, body: dict[str, Any]) -> dict:
        """A synchronous VideoRoom request (create, list, listparticipants, destroy): its plugin data."""
        reply = await self._post(f"/{await self.session()}/{handle}", {"janus": "message", "body": body})
        return _plugin_data(reply)

    async def message(self, handle: int, body: dict[str, Any], jsep: dict | None = None) -> tuple[dict, dict | None]:
        """An asynchronous VideoRoom request (join, publish, start): its event's plugin data and JSEP."""
        session = await self.session()
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        transaction = secrets.token_hex(8)
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        try:
            reply = await self._post(f"/{session}/{handle}", message, transaction)
            if reply.get("janus") != "ack":  # answered at once
                return _plugin_data(reply), reply.get("jsep")
            event = await asyncio.wait_for(future, self._timeout)
        except TimeoutError as error:
            self.errors += 1
            raise JanusError(0, f"Janus at {self.url} did not answer {body.get('request')!r} in time") from error
        finally:
            self._pending.pop(transaction, None)
        return _plugin_data(event), event.get("jsep")

    async def _poll(self, session: int) -> None:
        """Long-poll: Janus holds each GET up to 30 s (then answers a keepalive). A waiting GET does not count
        as activity for Janus 1.1's session timeout (a poll-only session timed out at 15 s): _keepalive does."""
        params = {"maxev": "10"}
        if self._secret:
            params["apisecret"] = self._secret
        failures = 0
        while self._session_id == session:
            try:
                async with self._client().get(f"{self.url}/{session}", params=params,
                                              timeout=aiohttp.ClientTimeout(total=45)) as response:
                    events = await response.json(content_type=None)
                failures = 0
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                failures += 1
                if failures >= 2:  # one retry: a single dropped poll is not a dead Janus
                    self._lose(f"Janus at {self.url} stopped answering ({type(error).__name__})")
                    return
                await asyncio.sleep(0.5)
                continue
            if self._session_id != session:
                return  # a late answer for a session we already dropped
            for event in events if isinstance(events, list) else [events]:
                if isinstance(event, dict):  # an empty body (Janus going away) parses as None
                    self._dispatch(event)

    async def _keepalive(self, session: int) -> None:
        """Janus times a session out after `session_timeout` without a request on it, and a long poll that
        waits for events is not one: say we are alive well within any timeout we ship (15 s)."""
        while self._session_id == session:
            await asyncio.sleep(self._keepalive_s)
            if self._session_id != session:
                return
            with contextlib.suppress(JanusError):  # 458 drops the session in _post; no answer: the poll decides
                await self._post(f"/{session}", {"janus": "keepalive"})

    def _dispatch(self, event: dict[str, Any]) -> None:
        if event.get("janus") == "error" and event.get("error", {}).get("code") == NO_SUCH_SESSION:
            self._lose("Janus forgot our session (it restarted)")
            return
        future = self._pending.get(event.get("transaction", ""))
        if future is not None and event.get("janus") == "event" and not future.done():
            future.set_result(event)
            return
        listener = self._listeners.get(event.get("sender", 0))
        if listener is not None:
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the event loop of every room
                log.exception("Janus event listener failed")

    def _lose(self, reason: str) -> None:
        if self._session_id is None:
            return
        log.warning("%s: dropping Janus session %d", reason, self._session_id)
        # If Janus is in fact alive (a network blip), its copy of the session would keep our old feeds in the
        # rooms until its session timeout: destroy it, best effort.
        asyncio.get_running_loop().create_task(self._destroy_quietly(self._session_id))
        self._session_id = None
        self._listeners.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusError(0, reason))
        self._pending.clear()
        for callback in self.on_lost:
            try:
                callback(reason)
            except Exception:
                log.exception("Janus on-lost hook failed")

    async def _destroy_quietly(self, session: int) -> None:
        with contextlib.suppress(JanusError):
            await self._post(f"/{session}", {"janus": "destroy"})

    async def close(self) -> None:
        session, self._session_id = self._session_id, None
        if session is not None:
            with contextlib.suppress(JanusError):
                await self._post(f"/{session}", {"janus": "destroy"})
        for task in (self._poll_task, self._keepalive_task):
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
        await client.session()  # needs the API secret, unlike /info
    except JanusError as error:
        if error.code == 403:
            return f"Janus at {url} refused our API secret (--sfu-secret must match janus --apisecret)"
        return f"cannot reach Janus at {url}: {error.reason} (start Janus, see deploy/janus, or fix --sfu-url)"
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return f"cannot reach Janus at {url}: {type(error).__name__} (start Janus, see deploy/janus, or fix --sfu-url)"
    finally:
        await client.close()
    return None
