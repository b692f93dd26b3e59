"""The end-to-end environment, built once per session: two real
distribution registries (no auth; token auth with blob downloads
redirected to a file server, like a CDN), the tests' own token server,
images pushed to both, pullgate with one host per (upstream, mode, naming)
behind byte-counting relays, and the real clients."""

import hashlib
import os
import shutil

import pytest

from harness import clients, images, procs
from harness.relay import Relay
from harness.staticserver import StaticServer
from harness.tokenserver import SERVICE, ISSUER, TokenServer

UPSTREAMS = ["noauth", "token"]
MODES = ["redirect", "proxy", "auto"]
NAMINGS = ["unchanged", "renamed"]
# pullgate sees every client connection from this address: it must never
# reach the event files.
CLIENT_SOURCE_IP = "127.0.0.77"
REQUIRED_TOOLS = ["docker-registry", "skopeo", "podman", "buildah", "ctr", "containerd", "umoci"]


def pytest_configure(config):
    config.addinivalue_line("markers", "matrix: end-to-end pulls through pullgate")


def registry_config(path, port, root, auth=None, redirect_base=None):
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root}",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    if redirect_base:
        lines += ["middleware:", "  storage:", "    - name: redirect", "      options:", f"        baseurl: {redirect_base}"]
    if auth:
        lines += ["auth:", "  token:", f"    realm: {auth['realm']}", f"    service: {SERVICE}",
                  f"    issuer: {ISSUER}", f"    rootcertbundle: {auth['cert']}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


class Env:
    def __init__(self, tmp: str):
        self.tmp = tmp
        self.procs = []
        self.servers = []
        self.relays = {}
        self.hosts = {}
        self.pushed = {}
        self.docker_error = None
        self.clients = {}
        # Clients that pulled through pullgate (the event test checks each
        # shows up with its runtime).
        self.pulled_with = {"skopeo"}
        # Every pull a client completed through pullgate, as
        # (client, host, name, tag, multi, "pull" | "check"): the report test
        # (test_c_report.py) counts them back from the events. A pull of an
        # image the client kept from its previous pull only checks the tag.
        self.pulls = []
        self.kept = set()

    def close(self):
        for client in self.clients.values():
            if hasattr(client, "stop"):
                client.stop()
        for relay in self.relays.values():
            relay.stop()
        for p in reversed(self.procs):
            p.stop()
        for s in self.servers:
            s.stop()

    def stop_pullgate(self) -> int:
        """Graceful stop (SIGINT), so event files are closed."""
        import signal
        return self.pullgate.stop(sig=signal.SIGINT, timeout=30)


def _build_pullgate() -> str:
    binary = os.environ.get("PULLGATE_BIN")
    if binary:
        return binary
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    procs.run(["cargo", "build", "-p", "pullgate-cli", "--bin", "pullgate"], timeout=1800)
    return os.path.join(root, "target", "debug", "pullgate")


def serve_argv() -> list[str]:
    """The command that runs the gateway server: the lean `pullgate-serve`
    (PULLGATE_SERVE_BIN, what the README builds first; with the `aws`
    feature in tests/run.sh), else the full CLI's `pullgate serve`."""
    binary = os.environ.get("PULLGATE_SERVE_BIN")
    if binary:
        return [binary]
    return [_build_pullgate(), "serve"]


@pytest.fixture(scope="session")
def env():
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    assert not missing, f"missing tools (run tests/install-deps.sh): {missing}"
    with procs.scratch_dir("pullgate-e2e-") as tmp:
        e = Env(tmp)
        try:
            _start(e)
            yield e
        finally:
            e.close()


def _start(e: Env):
    tmp = e.tmp
    # Upstream 1: distribution, no auth, serving blobs itself.
    noauth_port = procs.free_port()
    registry_config(f"{tmp}/noauth.yml", noauth_port, f"{tmp}/noauth-data")
    p = procs.Proc("registry-noauth", ["docker-registry", "serve", f"{tmp}/noauth.yml"], tmp)
    e.procs.append(p)
    procs.wait_port(noauth_port, p.popen)

    # Upstream 2: distribution with token auth; blob GETs redirect to a
    # file server over its storage (no Authorization needed there).
    token = TokenServer(procs.free_port(), f"{tmp}/token-cert.pem")
    token.start()
    e.servers.append(token)
    e.token = token
    static = StaticServer(procs.free_port(), f"{tmp}/token-data")
    os.makedirs(f"{tmp}/token-data", exist_ok=True)
    static.start()
    e.servers.append(static)
    e.static = static
    token_port = procs.free_port()
    registry_config(
        f"{tmp}/token.yml", token_port, f"{tmp}/token-data",
        auth={"realm": f"http://127.0.0.1:{token.port}/token", "cert": f"{tmp}/token-cert.pem"},
        redirect_base=f"http://127.0.0.1:{static.port}/",
    )
    p = procs.Proc("registry-token", ["docker-registry", "serve", f"{tmp}/token.yml"], tmp)
    e.procs.append(p)
    procs.wait_port(token_port, p.popen)
    e.upstream_ports = {"noauth": noauth_port, "token": token_port}

    # Where blob bytes come from, counted per pull: the no-auth registry
    # serves blobs itself, so pullgate is pointed at it through a counting
    # relay; the token registry sends blobs to the static "CDN". Each pull
    # must download its layer from there (no client-side cache hid the path).
    noauth_storage = Relay(procs.free_port(), noauth_port, "127.0.0.1")
    noauth_storage.start()
    e.servers.append(noauth_storage)
    e.storage = {"noauth": noauth_storage, "token": static}
    e.mapped_upstream_ports = {"noauth": noauth_storage.listen_port, "token": token_port}

    # Images, pushed under the names the mappings use.
    layout = images.build(f"{tmp}/layout")
    for upstream, port in e.upstream_ports.items():
        names = ["app", "acme/app"] + (["private/app"] if upstream == "token" else [])
        for name in names:
            for tag in ["single", "multi"]:
                dest = f"docker://127.0.0.1:{port}/{name}:{tag}"
                argv = ["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "alice:wonderland"]
                if tag == "multi":
                    argv.append("--all")
                procs.run(argv + [f"oci:{layout.root}:{tag}", dest])
                raw = procs.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                                 "alice:wonderland", dest]).stdout.encode()
                e.pushed[(upstream, name, tag)] = "sha256:" + hashlib.sha256(raw).hexdigest()

    # pullgate: one host per (upstream, mode, naming), each behind a relay.
    pullgate_port = procs.free_port()
    mappings = []
    for upstream in UPSTREAMS:
        for mode in MODES:
            for naming in NAMINGS:
                relay = Relay(procs.free_port(), pullgate_port, CLIENT_SOURCE_IP)
                host = f"127.0.0.1:{relay.listen_port}"
                e.relays[(upstream, mode, naming)] = relay
                e.hosts[(upstream, mode, naming)] = host
                target = "app" if naming == "unchanged" else "acme/app"
                base = f"http://127.0.0.1:{e.mapped_upstream_ports[upstream]}"
                mappings.append((host, "app", f"{base}/{target}", mode))
                if upstream == "token" and naming == "unchanged":
                    mappings.append((host, "private/app", f"{base}/private/app", mode))
    with open(f"{tmp}/mappings.toml", "w") as f:
        for host, name, up, mode in mappings:
            f.write(f'[[mappings]]\nhost = "{host}"\nname = "{name}"\nupstream = "{up}"\nmode = "{mode}"\n\n')
    e.data_dir = f"{tmp}/pullgate-data"
    e.access_log = f"{tmp}/access.log"
    binary = _build_pullgate()
    e.pullgate_bin = binary
    e.pullgate = procs.Proc("pullgate", [
        binary, "serve", "--config", f"{tmp}/mappings.toml", "--listen", f"127.0.0.1:{pullgate_port}",
        "--data-dir", e.data_dir, "--access-log", e.access_log, "--client-id-key", "e2e-test-key",
    ], tmp)
    e.procs.append(e.pullgate)
    procs.wait_port(pullgate_port, e.pullgate.popen)
    e.pullgate_port = pullgate_port
    for relay in e.relays.values():
        relay.start()

    # Clients.
    work = f"{tmp}/clients"
    os.makedirs(work)
    e.clients["skopeo"] = clients.Skopeo(work)
    e.clients["podman"] = clients.Podman(work)
    e.clients["buildah"] = clients.Buildah(work)
    e.clients["ctr"] = clients.Ctr(work)
    for name, client in e.clients.items():
        _record_pulls(e, name, client)
    try:
        e.clients["docker"] = clients.Docker(work)
        _record_pulls(e, "docker", e.clients["docker"])
    except clients.DockerUnavailable as error:
        e.docker_error = str(error).strip()
        DOCKER_BANNER.append(f"dockerd cannot start on this machine, docker is NOT in the matrix: {e.docker_error}")


def _record_pulls(e: Env, name: str, client):
    pull = client.pull

    def recorded(ref, multi, creds, **options):
        digest = pull(ref, multi, creds, **options)
        host, rest = ref.split("/", 1)
        repo, tag = rest.rsplit(":", 1)
        kind = "check" if (name, ref) in e.kept else "pull"
        (e.kept.add if options.get("keep") else e.kept.discard)((name, ref))
        e.pulls.append((name, host, repo, tag, multi, kind))
        return digest

    client.pull = recorded


DOCKER_BANNER = []


def pytest_terminal_summary(terminalreporter):
    for message in DOCKER_BANNER[:1]:
        terminalreporter.write_sep("!", "DOCKER WAS NOT TESTED", red=True, bold=True)
        terminalreporter.write_line(message, red=True)
        terminalreporter.write_sep("!", red=True, bold=True)
