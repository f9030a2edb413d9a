"""Entry point: python -m server --help"""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop
from aiohttp import web

from server.app import build_app
from server.config import ServerConfig, parse_config
from server.janus import startup_problem

log = logging.getLogger("server")


async def serve(config: ServerConfig) -> None:
    if config.sfu == "janus":
        problem = await startup_problem(config.sfu_url, config.sfu_secret or None)
        if problem:
            log.error("%s", problem)
            raise SystemExit(2)
        if not config.sfu_secret:
            log.warning("--sfu janus without --sfu-secret: anyone who reaches Janus's API can join the rooms")
    runner = web.AppRunner(build_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    log.info(
        "MarioNETte Live on http://%s:%d (generator %s)", config.host, config.port, config.generator)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    config = parse_config()
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(max(logging.WARNING, logging.getLogger().level))  # per-candidate noise
    uvloop.run(serve(config))


if __name__ == "__main__":
    main()
