"""Reading what a client sends, with bounds: JSON bodies capped and parsed with every failure a 400, and
client-chosen strings quoted back only when short."""

from __future__ import annotations

import ipaddress
import json

from aiohttp import web

from server.errors import ApiError

QUOTE_MAX = 64  # longer client strings are not repeated in error messages


def client_address(request: web.Request, trust_forwarded_for: bool) -> str:
    """Who is calling, for per-client limits. Behind a reverse proxy on this host every request comes from
    loopback: then (when trusted) the address the proxy appended last to X-Forwarded-For is the caller's;
    entries before it are whatever the client claimed, and a remote peer's header is never believed."""
    remote = request.remote or "?"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if trust_forwarded_for and forwarded and _is_loopback(remote):
        return forwarded.split(",")[-1].strip()[:QUOTE_MAX] or remote
    return remote


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a unix socket or unknown peer


def require_json(request: web.Request) -> None:
    """415 unless the request says Content-Type: application/json. Browsers send text/plain or form bodies
    cross-site without asking (no CORS preflight); application/json they send only to their own origin or
    where CORS allows it, so a JSON endpoint must not read any other type."""
    if request.content_type == "application/json":
        return
    given = request.headers.get("Content-Type")
    said = "no Content-Type" if given is None else f"Content-Type {quoted(given)}"
    raise ApiError(415, f"send the request as JSON with Content-Type: application/json (this one has {said})")


async def json_body(request: web.Request, max_bytes: int) -> dict:
    """The request's JSON object: 415 unless sent as application/json, 413 past `max_bytes` (read no
    further), 400 for anything not a JSON object."""
    require_json(request)
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"request body too large: JSON bodies are limited to {max_bytes // 1024} KB")
    data = bytearray()
    while chunk := await request.content.read(64 * 1024):
        data.extend(chunk)
        if len(data) > max_bytes:
            raise ApiError(413, f"request body too large: JSON bodies are limited to {max_bytes // 1024} KB")
    try:
        body = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise ApiError(400, "the request body is not valid JSON") from error
    except RecursionError as error:
        raise ApiError(400, "the request body is nested too deeply to be a request") from error
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def quoted(value: str) -> str:
    """`value` in quotes for an error message when short and printable, otherwise a placeholder."""
    if len(value) <= QUOTE_MAX and value.isprintable():
        return repr(value)
    return f"(a {len(value)}-character string)"
