"""The compose proxy (deploy/proxy/Caddyfile) in Debian's caddy for tests: loopback only, the test's
certificate and free ports swapped in."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from loadtest.local_server import REPO_ROOT, free_port, stop_process

CADDY = shutil.which("caddy")
CADDYFILE = REPO_ROOT / "deploy" / "proxy" / "Caddyfile"


@contextlib.contextmanager
def running_caddy(tmp_dir: Path, upstream_port: int, cert: Path, key: Path, public_name: str) -> Iterator[int]:
    """The compose proxy's Caddyfile with the test's upstream port, certificate and free ports swapped in (its
    state kept in `tmp_dir`), serving `public_name` (PUBLIC_NAME); yields the https port."""
    assert CADDY is not None, "Debian's caddy is not installed (scripts/setup.sh --dev)"
    text = CADDYFILE.read_text()
    swaps = {"reverse_proxy 127.0.0.1:8080": f"reverse_proxy 127.0.0.1:{upstream_port}",
             "# tls /certs/cert.pem /certs/key.pem": f"tls {cert} {key}"}
    for old, new in swaps.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    https_port = free_port()
    caddyfile = tmp_dir / "Caddyfile"
    caddyfile.write_text(f"{{\n\tadmin off\n\thttp_port {free_port()}\n\thttps_port {https_port}\n"
                         f"\tskip_install_trust\n}}\n\n{text}")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_dir), "XDG_DATA_HOME": str(tmp_dir),
           "XDG_CONFIG_HOME": str(tmp_dir), "PUBLIC_NAME": public_name}
    with open(tmp_dir / "caddy.log", "wb") as log:
        process = subprocess.Popen([CADDY, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", https_port)) == 0:
                    break
            assert process.poll() is None and time.monotonic() < deadline, (tmp_dir / "caddy.log").read_text()
            time.sleep(0.1)
        yield https_port
    finally:
        stop_process(process, timeout=10)
