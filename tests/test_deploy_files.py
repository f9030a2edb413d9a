"""The container and deployment files agree with the code (no Docker engine or cluster is needed).

Docker cannot run here, so these tests read the files: the image's command, port, user and health check,
the settings passed by environment variable, the files the manifests mount, and the Prometheus config.
The HEALTHCHECK one-liner is run for real against a running server. YAML structure is checked when a
parser is at hand (PyYAML, or the `yq` command); the text checks always run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from loadtest.local_server import REPO_ROOT, running_server
from server.config import ENV_PREFIX, ServerConfig, parse_config

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
COMPOSE = REPO_ROOT / "docker-compose.yml"
COMPOSE_GPU = REPO_ROOT / "deploy" / "docker-compose.gpu.yml"
KUBERNETES = REPO_ROOT / "deploy" / "kubernetes" / "marionette.yaml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus.yml"
TURN_CONFIG = REPO_ROOT / "deploy" / "turnserver.conf"
JANUS_DIR = REPO_ROOT / "deploy" / "janus"
KUBERNETES_JANUS = REPO_ROOT / "deploy" / "kubernetes" / "janus.yaml"
PROXY_DIR = REPO_ROOT / "deploy" / "proxy"
COTURN_DOCKERFILE = REPO_ROOT / "deploy" / "coturn" / "Dockerfile"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def instruction(name: str) -> list[str]:
    return [rest for keyword, rest in dockerfile_instructions() if keyword == name]


def image_command() -> list[str]:
    (cmd,) = instruction("CMD")
    return json.loads(cmd)  # exec form, so SIGTERM reaches the server (it closes sessions on it)


def load_yaml_documents(path: Path) -> list[Any]:
    try:
        import yaml  # not a project dependency; used when present
    except ImportError:
        yq = shutil.which("yq")
        if yq is None:
            pytest.skip("no YAML parser here (PyYAML or yq); the text checks still ran")
        out = subprocess.run([yq, "-c", "."], input=path.read_text(), capture_output=True, text=True, check=True)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def env_names(text: str) -> set[str]:
    # Not `window.MARIONETTE_CONFIG` (the page's settings object in the ConfigMap): a variable, not a property.
    return set(re.findall(rf"(?<![.\w]){ENV_PREFIX}[A-Z_]+\b", text))


# ---- Dockerfile ---------------------------------------------------------------------------------------


def test_image_runs_the_server_on_the_exposed_port_as_a_non_root_user() -> None:
    command = image_command()
    assert command[:3] == ["python", "-m", "server"]
    config = parse_config(command[3:])  # the server accepts exactly these flags
    assert config.host == "0.0.0.0"
    assert instruction("EXPOSE") == [str(config.port)]
    users = instruction("USER")
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    assert re.search(rf"useradd .*\b{re.escape(users[-1])}\b", DOCKERFILE)


def test_image_build_fetches_assets_and_copies_what_the_server_needs() -> None:
    (base,) = [rest for keyword, rest in dockerfile_instructions() if keyword == "ARG" and "BASE_IMAGE" in rest]
    assert "nvidia/cuda" in base  # CUDA-capable by default
    assert any("python -m models.asset_fetch" in run for run in instruction("RUN"))
    assert any("-r requirements.txt" in run for run in instruction("RUN"))
    ignored = {line.strip().rstrip("/") for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for copy in instruction("COPY"):
        *sources, _destination = copy.split()
        for source in sources:
            assert (REPO_ROOT / source).exists(), f"COPY {source}: no such path in the repository"
            assert source.rstrip("/") not in ignored, f"COPY {source} is excluded by .dockerignore"
    assert {".venv", ".git", "assets/cache", "test-artifacts"} <= ignored


def test_healthcheck_one_liner_works_against_a_running_server(tmp_path: Path) -> None:
    (healthcheck,) = instruction("HEALTHCHECK")
    assert "/healthz" in healthcheck
    port = parse_config(image_command()[3:]).port
    argv = shlex.split(healthcheck.split(" CMD ", 1)[1])
    assert argv[:2] == ["python", "-c"]
    with running_server(tmp_path, "--generator", "passthrough") as server:
        # The same one-liner, pointed at the test server's port.
        code = argv[2].replace(f"127.0.0.1:{port}/", server.url.removeprefix("http://") + "/")
        assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
    # And it fails once the server is gone.
    assert subprocess.run([sys.executable, "-c", code], timeout=30, capture_output=True).returncode != 0


# ---- settings by environment --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE, KUBERNETES], ids=lambda p: p.name)
def test_environment_settings_name_real_server_flags(path: Path) -> None:
    known = {ENV_PREFIX + f.name.upper() for f in fields(ServerConfig)}
    used = env_names(path.read_text())
    assert used, f"{path.name} sets no {ENV_PREFIX}* variables"
    assert used <= known, f"unknown settings in {path.name}: {sorted(used - known)}"


# ---- docker compose -----------------------------------------------------------------------------------


def test_compose_runs_the_server_and_prometheus_on_its_config() -> None:
    (compose,) = load_yaml_documents(COMPOSE)
    services = compose["services"]
    assert services["marionette"]["build"] == "."
    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    mounts = [volume.split(":")[0] for volume in prometheus["volumes"]]
    assert "./deploy/prometheus.yml" in mounts and PROMETHEUS_CONFIG.exists()
    # Host networking on both, so Prometheus's 127.0.0.1:<port> target is the server.
    assert services["marionette"]["network_mode"] == prometheus["network_mode"] == "host"

    (gpu,) = load_yaml_documents(COMPOSE_GPU)
    devices = gpu["services"]["marionette"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_prometheus_scrapes_the_image_port() -> None:
    port = parse_config(image_command()[3:]).port
    text = PROMETHEUS_CONFIG.read_text()
    assert "metrics_path: /metrics" in text
    assert f"127.0.0.1:{port}" in text
    promtool = shutil.which("promtool")
    if promtool:
        subprocess.run([promtool, "check", "config", str(PROMETHEUS_CONFIG)], check=True, capture_output=True)


# ---- Kubernetes ---------------------------------------------------------------------------------------


def test_kubernetes_deployment_uses_a_gpu_probes_and_the_image_user() -> None:
    documents = {doc["kind"]: doc for doc in load_yaml_documents(KUBERNETES)}
    assert set(documents) == {"ConfigMap", "Deployment", "Service", "Ingress"}
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = parse_config(image_command()[3:]).port
    assert container["ports"][0]["containerPort"] == port
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        assert container[probe]["httpGet"]["port"] in ("http", port)
    uid = re.search(r"useradd .*--uid (\d+)", DOCKERFILE).group(1)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == uid

    # The ConfigMap replaces the demo page's config.js (deployment settings; no TURN password: those come from
    # /api/ice-servers).
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/app/client_web/config.js" and mount["subPath"] == "config.js"
    assert (REPO_ROOT / "client_web" / "config.js").exists()
    assert "config.js" in documents["ConfigMap"]["data"]

    service = documents["Service"]["spec"]
    assert service["selector"] == documents["Deployment"]["spec"]["selector"]["matchLabels"]
    assert service["sessionAffinity"] == "ClientIP"  # session control calls reach the pod that holds it


def test_page_config_scripts_are_valid_javascript(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    scripts = [REPO_ROOT / "client_web" / name for name in ("config.js", "app.js")]
    configmap = next(doc for doc in load_yaml_documents(KUBERNETES) if doc["kind"] == "ConfigMap")
    scripts.append(tmp_path / "configmap-config.js")
    scripts[-1].write_text(configmap["data"]["config.js"])
    for script in scripts:
        result = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


def test_turn_uses_time_limited_credentials_everywhere() -> None:
    """coturn checks the server's REST-API credentials (use-auth-secret); no static password is left anywhere."""
    text = TURN_CONFIG.read_text()
    assert re.search(r"^use-auth-secret\s*$", text, re.M)
    assert not re.search(r"^(user|lt-cred-mech|static-auth-secret)(=|\s|$)", text, re.M)  # no secret in a file
    assert re.search(r"^min-port=\d+", text, re.M) and re.search(r"^max-port=\d+", text, re.M)
    assert re.search(r"^denied-peer-ip=0\.0\.0\.0-255\.255\.255\.255", text, re.M)  # relays to the servers only
    port = re.search(r"^listening-port=(\d+)", text, re.M).group(1)

    configmap = next(doc for doc in load_yaml_documents(KUBERNETES) if doc["kind"] == "ConfigMap")
    for page_config in (configmap["data"]["config.js"], (REPO_ROOT / "client_web" / "config.js").read_text()):
        assert not re.search(r"credential\s*:", page_config)  # no TURN password in what every visitor reads
    deployment = next(doc for doc in load_yaml_documents(KUBERNETES) if doc["kind"] == "Deployment")
    env = {item["name"]: item for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert f":{port}" in env[f"{ENV_PREFIX}TURN_URLS"]["value"]
    assert "secretKeyRef" in env[f"{ENV_PREFIX}TURN_SECRET"]["valueFrom"]  # from a Secret, not the manifest
    parse_config(["--turn-urls", env[f"{ENV_PREFIX}TURN_URLS"]["value"], "--turn-secret", "x"])  # valid URLs


@pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed (scripts/setup.sh --dev)")
def test_turn_config_runs_in_coturn_and_takes_the_servers_credentials(tmp_path: Path) -> None:
    """The example config in Debian's coturn (loopback addresses and a free port swapped in): credentials from
    server.turn are accepted, ones made with another secret are refused."""
    import asyncio

    from aioice.stun import TransactionFailed
    from aioice.turn import create_turn_endpoint

    from server.turn import turn_credential
    from tests.coturn import running_coturn

    async def allocate(port: int, username: str, password: str) -> None:
        transport, _ = await asyncio.wait_for(create_turn_endpoint(
            asyncio.DatagramProtocol, ("127.0.0.1", port), username, password), 10)
        transport.close()

    with running_coturn(tmp_path, secret="deploy-test", config=TURN_CONFIG) as turn:
        good = turn_credential(turn.secret, 600)
        asyncio.run(allocate(turn.port, good.username, good.credential))
        bad = turn_credential("not-the-secret", 600)
        with pytest.raises(TransactionFailed, match="401"):
            asyncio.run(allocate(turn.port, bad.username, bad.credential))


def turn_config_values(name: str) -> list[str]:
    return re.findall(rf"^{name}=(\S+)\s*$", TURN_CONFIG.read_text(), re.M)


def test_turn_relays_udp_only_within_quotas_and_never_into_internal_networks() -> None:
    """The relay is no way past the firewall: no TCP relays (the host's web services), internal ranges and the
    cloud metadata address denied by name, the allocations bounded below the relay ports, and every allowed
    peer in the deploy files an exact address (an allowed range, e.g. a pod CIDR, would win over the denials)."""
    text = TURN_CONFIG.read_text()
    assert re.search(r"^no-tcp-relay\s*$", text, re.M) and re.search(r"^no-multicast-peers\s*$", text, re.M)
    assert not re.search(r"^(allow-loopback-peers|allowed-peer-ip)\b", text, re.M)
    denied = turn_config_values("denied-peer-ip")
    for needed in ("0.0.0.0-255.255.255.255", "127.0.0.0-127.255.255.255", "10.0.0.0-10.255.255.255",
                   "172.16.0.0-172.31.255.255", "192.168.0.0-192.168.255.255", "169.254.0.0-169.254.255.255"):
        assert needed in denied
    ports = int(turn_config_values("max-port")[0]) - int(turn_config_values("min-port")[0]) + 1
    (user_quota,), (total_quota,) = turn_config_values("user-quota"), turn_config_values("total-quota")
    assert 0 < int(user_quota) <= 8 and 0 < int(total_quota) < ports

    (compose,) = load_yaml_documents(COMPOSE)
    allowed = [arg.split("=", 1)[1] for arg in compose["services"]["coturn"]["command"]
               if arg.startswith("--allowed-peer-ip=")]
    assert allowed == ["${PUBLIC_IP:?set PUBLIC_IP}"]  # the host's media address, one address
    for path in (COMPOSE, KUBERNETES, TURN_CONFIG, REPO_ROOT / "README.md"):
        for value in re.findall(r"allowed-peer-ip=(\S+)", path.read_text()):
            assert "-" not in value.split("?")[0] and "/" not in value, f"{path.name}: a range is allowed: {value}"
    # Prometheus (no authentication) listens on loopback only: not reachable through the relay or from outside.
    command = compose["services"]["prometheus"]["command"]
    assert "--web.listen-address=127.0.0.1:9090" in command


@pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed (scripts/setup.sh --dev)")
def test_turn_config_in_coturn_relays_between_relays_and_refuses_the_rest(tmp_path: Path) -> None:
    """deploy/turnserver.conf in Debian's coturn, allowed to relay to its own relay address only (the Kubernetes
    advice; 127.0.0.1 here): a caller's and the server's allocations exchange data relay to relay; permissions
    for a private host, the cloud metadata address or a public host are refused (403, nothing is sent there);
    a TCP relay is refused (no-tcp-relay: 442) and one credential holds at most user-quota allocations (486)."""
    import asyncio

    from aioice import stun
    from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol

    from server.turn import turn_credential
    from tests.coturn import running_coturn

    class Inbox(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.datagrams: asyncio.Queue[tuple[bytes, tuple]] = asyncio.Queue()

        def datagram_received(self, data: bytes, addr: tuple) -> None:
            self.datagrams.put_nowait((data, addr))

    async def exercise(port: int, secret: str) -> None:
        loop = asyncio.get_running_loop()
        server = ("127.0.0.1", port)
        caller_cred, server_cred = turn_credential(secret, 600), turn_credential(secret, 600)
        opened = []

        async def allocate(cred) -> TurnClientUdpProtocol:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: TurnClientUdpProtocol(server, cred.username, cred.credential, 600, 300), remote_addr=server)
            opened.append(transport)
            await asyncio.wait_for(protocol.connect(), 10)
            return protocol

        try:
            caller, ours = await allocate(caller_cred), await allocate(server_cred)
            ours.receiver = inbox = Inbox()
            await ours.send_data(b"hello", caller.relayed_address)  # binds a channel: a permission for the caller
            await caller.send_data(b"media", ours.relayed_address)
            assert await asyncio.wait_for(inbox.datagrams.get(), 5) == (b"media", caller.relayed_address)

            for peer in (("10.0.0.5", 5000), ("169.254.169.254", 8080), ("203.0.113.9", 5000)):
                with pytest.raises(stun.TransactionFailed, match="403"):
                    await caller.channel_bind(0x4001, peer)

            transport, tcp = await loop.create_connection(
                lambda: TurnClientTcpProtocol(server, caller_cred.username, caller_cred.credential, 600, 300),
                *server)
            opened.append(transport)
            request = stun.Message(message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST)
            request.attributes["LIFETIME"] = 600
            request.attributes["REQUESTED-TRANSPORT"] = 6 << 24  # TCP (RFC 6062)
            with pytest.raises(stun.TransactionFailed, match="442"):
                await asyncio.wait_for(tcp.request_with_retry(request), 10)

            quota = int(turn_config_values("user-quota")[0])
            for _ in range(quota - 1):  # the caller's credential holds one already
                await allocate(caller_cred)
            with pytest.raises(stun.TransactionFailed, match="486"):
                await allocate(caller_cred)
        finally:
            for transport in opened:
                transport.close()

    with running_coturn(tmp_path, secret="deploy-test", config=TURN_CONFIG,
                        extra_args=["--allowed-peer-ip=127.0.0.1"]) as turn:
        asyncio.run(exercise(turn.port, turn.secret))


# ---- https: compose proxy, Kubernetes Ingress -------------------------------------------------------------


def debian_image_installs(dockerfile: Path, package: str) -> bool:
    text = dockerfile.read_text()
    return bool(re.search(r"^FROM debian:\S+", text, re.M)) and bool(
        re.search(rf"apt-get install[^\n]*\b{package}\b", text))


def test_compose_puts_an_https_proxy_and_coturn_in_front_of_the_server() -> None:
    (compose,) = load_yaml_documents(COMPOSE)
    services = compose["services"]
    server = services["marionette"]
    command = server["command"]
    assert command[:3] == image_command()[:3]
    config = parse_config(command[3:])
    assert config.host == "127.0.0.1"  # reachable only through the proxy
    port = config.port

    proxy = services["proxy"]
    assert proxy["build"] == "./deploy/proxy" and proxy["network_mode"] == "host"
    assert debian_image_installs(PROXY_DIR / "Dockerfile", "caddy")
    caddyfile = (PROXY_DIR / "Caddyfile").read_text()
    assert re.search(rf"^\s*reverse_proxy 127\.0\.0\.1:{port}\s*$", caddyfile, re.M)
    assert "{$PUBLIC_NAME" in caddyfile and "PUBLIC_NAME" in proxy["environment"]
    caddy = shutil.which("caddy")
    if caddy:  # Debian's caddy, when installed: the file parses and validates
        subprocess.run([caddy, "adapt", "--config", str(PROXY_DIR / "Caddyfile"), "--adapter", "caddyfile",
                        "--validate"], check=True, capture_output=True, env={"PUBLIC_NAME": "avatar.test",
                                                                               "HOME": str(REPO_ROOT)})

    coturn = services["coturn"]
    assert coturn["network_mode"] == "host"
    assert (REPO_ROOT / coturn["build"]["context"] / coturn["build"]["dockerfile"]) == COTURN_DOCKERFILE
    assert debian_image_installs(COTURN_DOCKERFILE, "coturn")
    assert "COPY turnserver.conf /etc/turnserver.conf" in COTURN_DOCKERFILE.read_text()
    assert "turnserver.conf" in COTURN_DOCKERFILE.read_text() and TURN_CONFIG.exists()
    # One secret, from the same variable, for coturn and the server.
    secret_flags = [arg for arg in coturn["command"] if arg.startswith("--static-auth-secret=")]
    assert secret_flags and f"${{{ENV_PREFIX}TURN_SECRET" in secret_flags[0]
    assert server["environment"][f"{ENV_PREFIX}TURN_SECRET"].startswith(f"${{{ENV_PREFIX}TURN_SECRET")
    turn_port = re.search(r"^listening-port=(\d+)", TURN_CONFIG.read_text(), re.M).group(1)
    assert f":{turn_port}" in server["environment"][f"{ENV_PREFIX}TURN_URLS"]
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert "certs" in ignored  # private keys never go into the image


def test_kubernetes_ingress_terminates_tls_for_the_service() -> None:
    documents = {doc["kind"]: doc for doc in load_yaml_documents(KUBERNETES)}
    ingress = documents["Ingress"]
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"]
    (rule,) = ingress["spec"]["rules"]
    assert tls["hosts"] == [rule["host"]]  # the certificate covers the host that is served
    service = documents["Service"]
    for path in rule["http"]["paths"]:
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    # The server answers to the Ingress's host name (the Host check) and nothing else but localhost.
    (container,) = documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert parse_config(["--public-host", env[f"{ENV_PREFIX}PUBLIC_HOST"]]).public_host == (rule["host"],)


def ingress_routes(paths: list[dict], request_path: str) -> bool:
    """Whether one of the Ingress `paths` takes `request_path` (Kubernetes' Exact and Prefix path types: a
    prefix matches whole path elements)."""
    for path in paths:
        wanted = path["path"].rstrip("/") or "/"
        if path["pathType"] == "Exact" and request_path == path["path"]:
            return True
        if path["pathType"] == "Prefix" and (wanted == "/" or request_path == wanted
                                             or request_path.startswith(wanted + "/")):
            return True
    return False


@functools.cache
def server_paths() -> tuple[str, ...]:
    """Every route of the real application (placeholders filled in), from the app build_app makes."""
    from server.app import build_app

    app = build_app(parse_config(["--generator", "passthrough", "--landmarks", "dlib"]))
    paths = [re.sub(r"\{[^}]+\}", "x", resource.canonical) for resource in app.router.resources()]
    return tuple(path + "/app.js" if path == "/static" else path for path in paths)


def test_kubernetes_ingress_routes_only_the_public_paths() -> None:
    from server.app import INTERNAL_PATHS

    ingress = next(doc for doc in load_yaml_documents(KUBERNETES) if doc["kind"] == "Ingress")
    (rule,) = ingress["spec"]["rules"]
    paths = rule["http"]["paths"]
    assert set(INTERNAL_PATHS) <= set(server_paths())
    for path in server_paths():
        assert ingress_routes(paths, path) == (path not in INTERNAL_PATHS), path
    assert ingress_routes(paths, "/") and not ingress_routes(paths, "/api/information")


def test_compose_proxy_answers_404_for_the_internal_paths_and_passes_the_host() -> None:
    """The Caddyfile refuses exactly the server's internal paths; the server is told the proxy's name."""
    from server.app import INTERNAL_PATHS

    caddyfile = (PROXY_DIR / "Caddyfile").read_text()
    matcher = re.search(r"^\s*@internal path (.+)$", caddyfile, re.M)
    assert matcher and set(matcher.group(1).split()) == set(INTERNAL_PATHS)
    assert re.search(r"^\s*respond @internal .* 404$", caddyfile, re.M)
    assert not re.search(r"^\s*header_up Host", caddyfile, re.M)  # Caddy passes the caller's Host on as it is
    (compose,) = load_yaml_documents(COMPOSE)
    services = compose["services"]
    public_name = services["proxy"]["environment"]["PUBLIC_NAME"]
    assert services["marionette"]["environment"][f"{ENV_PREFIX}PUBLIC_HOST"] == public_name
    # Prometheus and the health check ask the server itself, not the proxy.
    assert "127.0.0.1:8080/healthz" in DOCKERFILE and "127.0.0.1:8080" in PROMETHEUS_CONFIG.read_text()


# ---- Janus (avatar rooms through an SFU) --------------------------------------------------------------

JANUS_START = JANUS_DIR / "start.sh"
# What ships as a "secret" in samples and manifests; none of it may appear in a deploy file.
PLACEHOLDERS = re.compile(r"change-?me|janusrocks|janusoverlord|replace-?me|your-?secret", re.I)


def janus_setting(name: str, key: str) -> str:
    found = re.findall(rf'(?m)^\s*{key}\s*=\s*"?([^"\s]*)"?', (JANUS_DIR / name).read_text())
    assert len(found) == 1, f"{key} in {name}: {found}"
    return found[0]


def janus_api_port() -> int:
    return int(janus_setting("janus.transport.websockets.jcfg", "ws_port"))


def deploy_files() -> list[Path]:
    files = [p for p in (REPO_ROOT / "deploy").rglob("*") if p.is_file()]
    return [*files, COMPOSE, REPO_ROOT / "Dockerfile"]


def test_janus_config_keeps_the_api_on_loopback_the_admin_api_off_and_the_videoroom_on() -> None:
    ws = "janus.transport.websockets.jcfg"
    assert janus_setting(ws, "ws") == "true" and janus_setting(ws, "wss") == "false"
    assert janus_setting(ws, "ws_ip") == "127.0.0.1"  # never every interface (start.sh may name another one)
    assert janus_setting(ws, "admin_ws") == "false" and janus_setting(ws, "admin_wss") == "false"
    core = (JANUS_DIR / "janus.jcfg").read_text()
    disabled = re.search(r'(?m)^\s*disable\s*=\s*"([^"]*)"', core.split("plugins:")[1]).group(1)
    assert "libjanus_videoroom.so" not in disabled and "libjanus_echotest.so" in disabled
    transports = re.search(r'(?m)^\s*disable\s*=\s*"([^"]*)"', core.split("transports:")[1]).group(1)
    # The HTTP transport (all interfaces by default, the secret in the long poll's URL) does not load.
    assert "libjanus_http.so" in transports.split(",") and "libjanus_websockets.so" not in transports
    assert not (JANUS_DIR / "janus.transport.http.jcfg").exists()
    assert not re.search(r"(?m)^\s*(admin_secret|api_secret)\b", core)  # no secret in the shipped config
    assert re.search(r'(?m)^\s*@include "/run/marionette-janus/api_secret\.jcfg"', core)  # start.sh writes it
    assert re.search(r'(?m)^\s*rtp_port_range\s*=\s*"\d+-\d+"', core)
    # The image copies exactly these files and starts Janus through start.sh (no secret in its command).
    janus_image = (JANUS_DIR / "Dockerfile").read_text()
    copies = re.findall(r"(?m)^COPY (.+)$", janus_image)
    for copy in copies:
        for name in copy.split()[:-1]:
            assert (JANUS_DIR / name).exists()
    assert "janus.transport.websockets.jcfg" in copies[0] and copies[1].startswith("start.sh ")
    assert re.search(r'(?m)^ENTRYPOINT \["/usr/local/bin/marionette-janus"\]$', janus_image)
    assert f"EXPOSE {janus_api_port()}" in janus_image and "apt-get install" in janus_image


def test_no_deploy_file_ships_a_secret() -> None:
    """No default secret anywhere: no placeholder, no Kubernetes Secret with a value in it, no secret on a
    command line of Janus, and compose stops when one of the secrets is not set."""
    for path in deploy_files():
        text = path.read_text(errors="replace")
        if path != JANUS_START:  # it holds the list of placeholders it refuses
            assert not PLACEHOLDERS.search(text), f"{path.relative_to(REPO_ROOT)}: {PLACEHOLDERS.search(text)[0]!r}"
        assert "--apisecret" not in text, path
    for manifest in (KUBERNETES, KUBERNETES_JANUS):
        kinds = [doc["kind"] for doc in load_yaml_documents(manifest)]
        assert "Secret" not in kinds, f"{manifest.name} ships a Secret: the operator creates it (kubectl create secret)"
        assert "openssl rand" in KUBERNETES_JANUS.read_text()  # and is told how
    (compose,) = load_yaml_documents(COMPOSE)
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if "SECRET" in name:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), f"{name}: {value!r} must be a required variable"


def test_compose_runs_janus_for_the_servers_rooms() -> None:
    (compose,) = load_yaml_documents(COMPOSE)
    services = compose["services"]
    janus, server = services["janus"], services["marionette"]
    assert janus["build"] == "deploy/janus" and janus["network_mode"] == "host"
    env = server["environment"]
    assert env["MARIONETTE_SFU"] == "janus" and "janus" in server["depends_on"]
    assert env["MARIONETTE_SFU_URL"] == f"ws://127.0.0.1:{janus_api_port()}"
    assert env["MARIONETTE_SFU_SECRET"] == janus["environment"]["JANUS_API_SECRET"]  # one shared secret
    assert "ROOM_KEY" in env["MARIONETTE_ROOM_KEY_SECRET"] and "ROOM_KEY" not in str(janus["environment"])
    assert "JANUS_API_IP" not in janus["environment"]  # same host: the API stays on loopback
    assert "command" not in janus  # the image's start.sh, with the secret from the environment
    assert parse_config([]).sfu == "none"  # the image's own default stays the built-in relay


def test_kubernetes_janus_is_internal_and_shares_the_secret() -> None:
    documents = {doc["kind"]: doc for doc in load_yaml_documents(KUBERNETES_JANUS)}
    assert set(documents) == {"Deployment", "Service"}
    service = documents["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == janus_api_port()
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["tcpSocket"]["port"] == "janus-api"
    uid = re.search(r"useradd .*--uid (\d+)", (JANUS_DIR / "Dockerfile").read_text()).group(1)
    assert str(pod["securityContext"]["runAsUser"]) == uid and pod["hostNetwork"] is True  # UDP media range
    env = {item["name"]: item for item in container["env"]}
    secret_ref = env["JANUS_API_SECRET"]["valueFrom"]["secretKeyRef"]
    # hostNetwork: the API listens on the node's internal address only, not on every interface.
    assert env["JANUS_API_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/run/marionette-janus"  # the running config with the secret file: in memory
    (volume,) = pod["volumes"]
    assert volume["name"] == mount["name"] and volume["emptyDir"]["medium"] == "Memory"
    assert f"--from-literal={secret_ref['key']}=" in KUBERNETES_JANUS.read_text()

    server_doc = next(doc for doc in load_yaml_documents(KUBERNETES) if doc["kind"] == "Deployment")
    (server,) = server_doc["spec"]["template"]["spec"]["containers"]
    server_env = {item["name"]: item for item in server["env"]}
    assert server_env["MARIONETTE_SFU"]["value"] == "janus"
    name = service["metadata"]["name"]
    assert server_env["MARIONETTE_SFU_URL"]["value"] == f"ws://{name}:{port['port']}"
    assert server_env["MARIONETTE_SFU_SECRET"]["valueFrom"]["secretKeyRef"] == secret_ref
    room_keys = server_env["MARIONETTE_ROOM_KEY_SECRET"]["valueFrom"]["secretKeyRef"]
    assert room_keys["name"] != secret_ref["name"]  # Janus's pod never sees the room keys
    assert f"{room_keys['name']} --from-literal={room_keys['key']}=" in KUBERNETES_JANUS.read_text()


def run_start_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(JANUS_START)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "JANUS_CONFIG_DIR": str(JANUS_DIR),
                               "JANUS_RUN_DIR": str(tmp_path / "run"), **env})


@pytest.mark.parametrize("secret, words", [
    (None, "JANUS_API_SECRET is not set"), ("", "JANUS_API_SECRET is not set"),
    ("0123456789", "is 10 characters long"), ("change-me-change-me-0000", "looks like a placeholder"),
    ("janusrocks0123456789", "looks like a placeholder"), ('0123456789"abcdef01', "must not hold quotes"),
])
def test_janus_start_refuses_a_missing_short_or_placeholder_secret(tmp_path: Path, secret: str | None,
                                                                 words: str) -> None:
    result = run_start_script(tmp_path, **({} if secret is None else {"JANUS_API_SECRET": secret}))
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_janus_start_refuses_an_api_address_the_host_lacks(tmp_path: Path) -> None:
    # Janus would bind every interface for it (janus_websockets.c falls back to no interface).
    result = run_start_script(tmp_path, JANUS_API_SECRET=secrets.token_hex(16), JANUS_API_IP="192.0.2.254")
    assert result.returncode == 2 and "is not an address of this host" in result.stderr, result.stderr


def listening_addresses(pid: int) -> set[str]:
    """The local addresses of every listening TCP socket of the process (from /proc: no traffic needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:  # its own namespace
            fields_ = line.split()
            if fields_[3] == "0A" and fields_[9] in inodes:  # 0A: LISTEN
                address, port = fields_[1].split(":")
                if table == "tcp":
                    address = socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1])
                else:
                    address = socket.inet_ntop(socket.AF_INET6, b"".join(
                        bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, 32, 8)))
                found.add(f"{address}:{int(port, 16)}")
    return found


@pytest.mark.skipif(shutil.which("janus") is None, reason="Debian's janus is not installed (scripts/setup.sh)")
def test_janus_start_keeps_the_secret_off_the_command_line_and_the_api_on_one_address(tmp_path: Path) -> None:
    from loadtest.local_janus import running_janus

    with running_janus(tmp_path) as janus:
        pid = janus.process.pid  # start.sh execs janus: the same process
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert argv[0] == b"janus" and janus.secret.encode() not in b" ".join(argv)
        assert janus.secret.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
        secret_file = janus.run_dir / "api_secret.jcfg"
        assert janus.secret in secret_file.read_text()
        assert secret_file.stat().st_mode & 0o777 == 0o600 and janus.run_dir.stat().st_mode & 0o777 == 0o700
        for name in ("janus.jcfg", "janus.transport.websockets.jcfg"):
            assert janus.secret not in (janus.run_dir / name).read_text()
        # The one API socket, on JANUS_API_IP (here the test namespace's address); no HTTP transport.
        assert listening_addresses(pid) == {janus.url.removeprefix("ws://")}
        # Every request needs the secret, carried in the message body.
        assert janus.request({"janus": "create"})["janus"] == "success"
        refused = replace(janus, secret="not-the-secret").request({"janus": "create"})
        assert refused["janus"] == "error" and refused["error"]["code"] == 403
