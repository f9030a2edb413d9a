"""Entry point: python -m server --help"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys

import uvloop
from aiohttp import web

from rtc.ice_scope import IceScope, install_ice_scope
from server.app import build_app
from server.config import ServerConfig, parse_config
from server.janus import startup_problem
from server.tls import TlsError, server_ssl_context

log = logging.getLogger("server")


async def serve(config: ServerConfig, ssl_context: ssl.SSLContext | None) -> None:
    if config.sfu == "janus":
        problem = await startup_problem(config.sfu_url, config.sfu_secret)  # the secrets were checked by rules()
        if problem:
            log.error("%s", problem)
            raise SystemExit(2)
    runner = web.AppRunner(build_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context).start()
    scheme = "https" if ssl_context else "http"
    log.info("MarioNETte Live on %s://%s:%d (generator %s)", scheme, config.host, config.port, config.generator)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    config = parse_config()
    ssl_context = None
    if config.tls_cert is not None and config.tls_key is not None:
        try:  # before anything loads: a bad certificate is a one-line message, not a traceback after warm-up
            ssl_context = server_ssl_context(config.tls_cert, config.tls_key)
        except TlsError as error:
            sys.exit(f"python -m server: error: {error}")
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(max(logging.WARNING, logging.getLogger().level))  # per-candidate noise
    # Process-wide (aioice has no per-connection setting): every peer connection of the server, callers' and
    # Janus's, gathers and checks within it (rtc.ice_scope).
    install_ice_scope(IceScope.of(config.ice_host_addresses, config.ice_allowed_peers))
    log.info("ICE gathers on %s; remote candidates allowed in %s", ",".join(config.ice_host_addresses) or "every "
             "interface", ",".join(config.ice_allowed_peers) or "any network (ports >= 1024, no link-local)")
    uvloop.run(serve(config, ssl_context))


if __name__ == "__main__":
    main()
