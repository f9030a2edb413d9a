"""The container and deployment files agree with the code (no Docker engine or cluster is needed).

Docker cannot run here, so these tests read the files: the image's command, port, user and health check,
the settings passed by environment variable, the files the manifests mount, and the Prometheus config.
The HEALTHCHECK one-liner is run for real against a running server. YAML structure is checked when a
parser is at hand (PyYAML, or the `yq` command); the text checks always run.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import fields
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
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    service = documents["Service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}


# ---- Janus (avatar rooms through an SFU) --------------------------------------------------------------


def janus_http_port() -> int:
    return int(re.search(r"(?m)^\s*port\s*=\s*(\d+)", (JANUS_DIR / "janus.transport.http.jcfg").read_text()).group(1))


def test_janus_config_keeps_the_admin_api_off_and_the_videoroom_on() -> None:
    http = (JANUS_DIR / "janus.transport.http.jcfg").read_text()
    assert re.search(r"(?m)^\s*admin_http\s*=\s*false", http) and re.search(r"(?m)^\s*http\s*=\s*true", http)
    core = (JANUS_DIR / "janus.jcfg").read_text()
    disabled = re.search(r'(?m)^\s*disable\s*=\s*"([^"]*)"', core.split("plugins:")[1]).group(1)
    assert "libjanus_videoroom.so" not in disabled and "libjanus_echotest.so" in disabled
    assert not re.search(r"(?m)^\s*admin_secret", core)  # no admin API, so no admin secret to leak
    assert re.search(r'(?m)^\s*rtp_port_range\s*=\s*"\d+-\d+"', core)
    # The image copies exactly these files and passes the shared secret as Janus's API secret.
    janus_image = (JANUS_DIR / "Dockerfile").read_text()
    (copy,) = re.findall(r"(?m)^COPY (.+)$", janus_image)
    for name in copy.split()[:-1]:
        assert (JANUS_DIR / name).exists()
    assert "--apisecret \\\"$JANUS_API_SECRET\\\"" in janus_image and "apt-get install" in janus_image


def test_compose_runs_janus_for_the_servers_rooms() -> None:
    (compose,) = load_yaml_documents(COMPOSE)
    services = compose["services"]
    janus, server = services["janus"], services["marionette"]
    assert janus["build"] == "deploy/janus" and janus["network_mode"] == "host"
    env = server["environment"]
    config = parse_config([])
    assert env["MARIONETTE_SFU"] == "janus" and "janus" in server["depends_on"]
    assert env["MARIONETTE_SFU_URL"] == f"http://127.0.0.1:{janus_http_port()}/janus"
    assert env["MARIONETTE_SFU_SECRET"] == janus["environment"]["JANUS_API_SECRET"]  # one shared secret
    assert config.sfu == "none"  # the image's own default stays the built-in relay


def test_kubernetes_janus_is_internal_and_shares_the_secret() -> None:
    documents = {doc["kind"]: doc for doc in load_yaml_documents(KUBERNETES_JANUS)}
    assert set(documents) == {"Secret", "Deployment", "Service"}
    service = documents["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == janus_http_port()
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/janus/info"
    uid = re.search(r"useradd .*--uid (\d+)", (JANUS_DIR / "Dockerfile").read_text()).group(1)
    assert str(pod["securityContext"]["runAsUser"]) == uid and pod["hostNetwork"] is True  # UDP media range
    secret_ref = container["env"][0]["valueFrom"]["secretKeyRef"]
    assert secret_ref["name"] == documents["Secret"]["metadata"]["name"]
    assert secret_ref["key"] in documents["Secret"]["stringData"]

    server_doc = next(doc for doc in load_yaml_documents(KUBERNETES) if doc["kind"] == "Deployment")
    (server,) = server_doc["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in server["env"]}
    assert env["MARIONETTE_SFU"]["value"] == "janus"
    name = service["metadata"]["name"]
    assert env["MARIONETTE_SFU_URL"]["value"] == f"http://{name}:{port['port']}/janus"
    assert env["MARIONETTE_SFU_SECRET"]["valueFrom"]["secretKeyRef"] == secret_ref
