"""Security headers on every response: the demo page loads only its own scripts and styles and talks only to
this server, and no other site may frame it (clickjacking the Start button or the camera permission)."""

from __future__ import annotations

from aiohttp import web

# Fitted to client_web/: no inline scripts or styles, images from /api/targets/... and the page's data: icon,
# videos from MediaStreams (srcObject, which media-src does not govern), fetch() to this server only.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob: mediastream:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a room link in the address bar never leaks to another site
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: runs for every response, static files and errors included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
