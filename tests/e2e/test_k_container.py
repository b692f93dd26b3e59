"""The container image (the repository's Dockerfile) and the deployment
examples under deploy/.

The image is built the offline way, the only one this machine has (nothing
can be pulled): the static binary (PULLGATE_IMAGE_BIN, built by
tests/run.sh, else built here) staged into target/image, then `docker build
--target from-host` with the repository as the context, on a dockerd of this
module's own (no registries or other servers of the session's `env`). The
classic builder is used on purpose: it builds every stage before --target,
so a stage that pulled an image ahead of from-host would fail here.

Containers run with --network host (that dockerd has no bridge) on free
loopback ports. A missing docker or dockerd fails, it never skips."""

import functools
import gzip
import glob
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from harness import clients, procs

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = "pullgate-e2e:container"
UID = 65532
DOCKER_UA = "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64"
# The context is the sources (~1 MB), the staged binary (~20 MB) and the CA
# bundle: more means .dockerignore let target/ or .venv in.
MAX_CONTEXT_BYTES = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def docker(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("container"))
    try:
        daemon = clients.Docker(work)
    except clients.DockerUnavailable as error:
        pytest.fail(f"dockerd cannot start, the image cannot be tested: {error}")
    yield daemon
    daemon.stop()


def docker_env(daemon):
    # The daemon's own client config; no BuildKit: the docker CLI here has no
    # buildx, and the classic builder is the stricter test of the stage order.
    return dict(os.environ, DOCKER_CONFIG=daemon.config, DOCKER_BUILDKIT="0")


def run_docker(daemon, *args, check=True, timeout=300):
    return procs.run(["docker", "-H", daemon.host, *args], env=docker_env(daemon), check=check, timeout=timeout)


@functools.cache
def image_binary() -> str:
    binary = os.environ.get("PULLGATE_IMAGE_BIN")
    if binary:
        return binary
    out = procs.run([os.path.join(REPO, "deploy", "image", "build-static.sh")], timeout=3600)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def image(docker):
    """Builds the image; returns the `docker build` output."""
    stage = os.path.join(REPO, "target", "image")
    procs.run([os.path.join(REPO, "deploy", "image", "stage.sh"), image_binary(), stage])
    built = run_docker(docker, "build", "--target", "from-host", "-t", IMAGE, REPO, timeout=600)
    yield built.stdout + built.stderr
    run_docker(docker, "rmi", "-f", IMAGE, check=False)


def inspect(docker, kind, name, fmt="{{json .}}"):
    return json.loads(run_docker(docker, kind, "inspect", "--format", fmt, name).stdout)


def context_bytes(build_output: str) -> float:
    size = re.search(r"Sending build context to Docker daemon\s+([\d.]+)([kMG]?B)", build_output)
    assert size, build_output[-2000:]
    return float(size.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[size.group(2)]


def test_image_holds_only_the_binary_certificates_and_user(docker, image, capsys):
    assert context_bytes(image) < MAX_CONTEXT_BYTES, "build context too big: check .dockerignore"
    config = inspect(docker, "image", IMAGE, "{{json .Config}}")
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["/usr/local/bin/pullgate-serve"]
    # No CMD: the listen address is an environment default, which arguments
    # given to `docker run` do not replace.
    assert not config.get("Cmd")
    assert {"PULLGATE_LISTEN=0.0.0.0:8080", "PULLGATE_DATA_DIR=/data"} <= set(config["Env"])
    assert list(config["ExposedPorts"]) == ["8080/tcp"]
    assert list(config["Volumes"]) == ["/data"]

    # Its files, read from an exported container: nothing but what the
    # Dockerfile puts there (docker itself adds the mount points and .dockerenv).
    name = "pullgate-e2e-files"
    run_docker(docker, "create", "--name", name, IMAGE)
    try:
        exported = subprocess.run(["docker", "-H", docker.host, "export", name], env=docker_env(docker),
                                  capture_output=True, check=True, timeout=120).stdout
    finally:
        run_docker(docker, "rm", name, check=False)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
        passwd = tar.extractfile("etc/passwd").read().decode()
    docker_made = {".dockerenv", "dev", "dev/console", "dev/pts", "dev/shm", "proc", "sys",
                   "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab"}
    files = {n for n, m in members.items() if not m.isdir()} - docker_made
    assert files == {"usr/local/bin/pullgate-serve", "etc/ssl/certs/ca-certificates.crt",
                     "etc/passwd", "etc/group", "etc/nsswitch.conf"}, files
    binary = members["usr/local/bin/pullgate-serve"]
    assert (binary.uid, binary.mode & 0o7777) == (0, 0o755), "the binary must not be the gateway user's"
    data = members["data"]
    assert (data.uid, data.gid, data.mode & 0o777) == (UID, UID, 0o700)
    assert f"pullgate:x:{UID}:{UID}:" in passwd

    size = int(run_docker(docker, "image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    with capsys.disabled():
        print(f"\nimage {IMAGE}: {size} bytes ({size / 1e6:.1f} MB), build context "
              f"{context_bytes(image) / 1e6:.1f} MB")
    # A bound, not a target: about 19 MB now; something else got in if far over.
    assert size < 64 * 1024 * 1024


class Container:
    """A detached container on the host network; stopped (gracefully, like
    `docker stop` in production) and removed at the end."""

    def __init__(self, docker, name, port, options, args=()):
        self.docker, self.name, self.port = docker, name, port
        run_docker(docker, "rm", "-f", name, check=False)
        run_docker(docker, "run", "-d", "--name", name, "--network", "host", *options, IMAGE, *args)
        try:
            procs.wait_port(port, timeout=30)
        except TimeoutError:
            raise AssertionError(f"container did not listen:\n{self.logs()}")

    def logs(self) -> str:
        out = run_docker(self.docker, "logs", self.name, check=False)
        return out.stdout + out.stderr

    def pid(self) -> int:
        return inspect(self.docker, "container", self.name, "{{json .State.Pid}}")

    def stop(self) -> int:
        """docker stop (SIGTERM, the image's STOPSIGNAL), with longer than the
        gateway's 10 s drain before SIGKILL; returns the exit code."""
        run_docker(self.docker, "stop", "-t", "30", self.name, timeout=60)
        return inspect(self.docker, "container", self.name, "{{json .State.ExitCode}}")

    def remove(self):
        run_docker(self.docker, "rm", "-f", self.name, check=False)


def get(port, path, host=None, ua="pullgate-e2e"):
    """One GET without following redirects: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}", "User-Agent": ua})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def read_events(data_dir):
    assert not glob.glob(os.path.join(data_dir, "events", "dt=*", "*.part")), "unfinished event files"
    events = []
    for path in glob.glob(os.path.join(data_dir, "events", "dt=*", "*.json.gz")):
        events += [json.loads(line) for line in gzip.open(path).read().decode().splitlines()]
    return events


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_embedded_mappings_served_as_uid_65532_events_in_the_volume_after_stop(docker, image):
    volume = "pullgate-e2e-data"
    run_docker(docker, "volume", "rm", "-f", volume, check=False)
    run_docker(docker, "volume", "create", volume)
    port = procs.free_port()
    # The hardening compose.yaml uses: read-only root, no capabilities.
    c = Container(docker, "pullgate-e2e-embedded", port,
                  ["-v", f"{volume}:/data", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"],
                  ["--listen", f"127.0.0.1:{port}"])
    try:
        status = proc_status(c.pid())
        assert status["Uid"].split() == [str(UID)] * 4, status["Uid"]
        assert status["Gid"].split() == [str(UID)] * 4, status["Gid"]
        assert int(status["CapEff"], 16) == 0 and status["NoNewPrivs"] == "1", status

        # examples/mappings.toml, embedded: localhost/library/alpine is Docker
        # Hub's, name unchanged, so docker is redirected there.
        host = f"localhost:{port}"
        code, _, body = get(port, "/v2/", host=host, ua=DOCKER_UA)
        assert (code, body) == (200, b"{}")
        code, headers, _ = get(port, "/v2/library/alpine/manifests/3.20", host=host, ua=DOCKER_UA)
        assert code == 307, headers
        assert headers["location"] == "https://registry-1.docker.io/v2/library/alpine/manifests/3.20"
        code, _, _ = get(port, "/v2/not-mapped/manifests/latest", host=host, ua=DOCKER_UA)
        assert code == 404
        assert c.stop() == 0, c.logs()
    finally:
        logs = c.logs()
        c.remove()

    mountpoint = inspect(docker, "volume", volume, "{{json .Mountpoint}}")
    events = read_events(mountpoint)
    run_docker(docker, "volume", "rm", "-f", volume, check=False)
    assert sorted((e["kind"], e["status"]) for e in events) == [
        ("manifest", 307), ("manifest", 404), ("ping", 200)], events
    redirect = next(e for e in events if e["status"] == 307)
    assert (redirect["mode"], redirect["runtime"], redirect["mapping"]) == (
        "redirect", "docker", "localhost/library/alpine"), redirect
    assert "event files closed events=3" in logs, logs[-2000:]


class Upstream:
    """A registry stand-in serving one manifest, by tag or digest, to HEAD
    and GET (the gateway resolves a tag with a HEAD first); records the Host
    header of every request."""

    MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
    DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()

    def __init__(self):
        self.hosts = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                outer.hosts.append(self.headers.get("Host"))
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Content-Length", str(len(Upstream.MANIFEST)))
                self.send_header("Docker-Content-Digest", Upstream.DIGEST)
                self.end_headers()

            def do_GET(self):
                self.do_HEAD()
                self.wfile.write(Upstream.MANIFEST)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def mapping(self, name, upstream_name):
        # The upstream by name: the container must resolve localhost.
        return (f'[[mappings]]\nhost = "127.0.0.1"\nname = "{name}"\n'
                f'upstream = "http://localhost:{self.port}/{upstream_name}"\nmode = "proxy"\n\n')

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_mounted_mappings_proxy_to_an_upstream_named_localhost_and_reload(docker, image, tmp_path):
    """The static glibc binary resolves names in FROM scratch: the upstream
    is called localhost, found through the container's /etc/hosts. The
    mappings come from a read-only directory mount named by --mappings (with
    PULLGATE_LISTEN still in force), as compose.yaml has it, and a file
    renamed over the old one there is reloaded. /data is a host directory."""
    upstream = Upstream()
    port = procs.free_port()
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "mappings.toml").write_text(upstream.mapping("app", "acme/app"))
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, UID, UID)  # a bind mount keeps the host's owner
    c = Container(docker, "pullgate-e2e-mounted", port,
                  ["--read-only", "-v", f"{config_dir}:/etc/pullgate:ro", "-v", f"{data}:/data",
                   "-e", f"PULLGATE_LISTEN=127.0.0.1:{port}"],
                  ["--mappings", "/etc/pullgate/mappings.toml"])
    try:
        code, headers, body = get(port, "/v2/app/manifests/v1", ua=DOCKER_UA)
        assert (code, body) == (200, Upstream.MANIFEST), (code, headers, body, c.logs()[-2000:])
        assert upstream.hosts and set(upstream.hosts) == {f"localhost:{upstream.port}"}, upstream.hosts

        # Written beside, renamed over: a new inode, seen through the
        # directory mount (the watcher looks every second).
        (config_dir / "mappings.toml.new").write_text(
            upstream.mapping("app", "acme/app") + upstream.mapping("tools", "acme/tools"))
        os.replace(config_dir / "mappings.toml.new", config_dir / "mappings.toml")
        deadline = time.time() + 15
        while get(port, "/v2/tools/manifests/v1", ua=DOCKER_UA)[0] != 200:
            assert time.time() < deadline, "renamed mapping file not reloaded:\n" + c.logs()[-2000:]
            time.sleep(0.3)
        assert c.stop() == 0, c.logs()
    finally:
        c.remove()
        upstream.stop()
    events = read_events(str(data))
    served = sorted((e["kind"], e["mode"], e["upstream_name"]) for e in events if e["status"] == 200)
    assert served == [("manifest", "proxy", "acme/app"), ("manifest", "proxy", "acme/tools")], events
    assert os.stat(data / "client-id.key").st_uid == UID


def test_compose_file():
    """deploy/compose/compose.yaml: what compose itself makes of it
    (docker-compose, Debian's, reads it without a daemon), and what it must
    say for the image."""
    compose = os.path.join(REPO, "deploy", "compose", "compose.yaml")
    assert shutil.which("docker-compose"), "docker-compose missing (run tests/install-deps.sh)"
    out = procs.run(["docker-compose", "-f", compose, "config"])
    service = yaml.safe_load(out.stdout)["services"]["pullgate"]
    assert service["build"]["context"] == REPO
    mounts = {m["target"]: m for m in service["volumes"]}
    # A directory mount (a file mount would hide a renamed file from the
    # reload), holding the file PULLGATE_MAPPINGS names.
    config = mounts["/etc/pullgate"]
    assert config["read_only"] and os.path.isdir(config["source"]), config
    assert service["environment"]["PULLGATE_MAPPINGS"] == "/etc/pullgate/mappings.toml"
    assert os.path.isfile(os.path.join(config["source"], "mappings.toml"))
    assert (mounts["/data"]["type"], mounts["/data"]["source"]) == ("volume", "pullgate-data")
    assert service["read_only"] and service["cap_drop"] == ["ALL"]
    # Longer than the gateway's 10 s drain, or SIGKILL may cut the event files.
    assert int(service["stop_grace_period"].rstrip("s")) > 10


def test_systemd_unit_verifies(tmp_path):
    """deploy/systemd/pullgate.service passes `systemd-analyze verify` (with
    ExecStart pointed at a real binary: verify checks it exists)."""
    assert shutil.which("systemd-analyze"), "systemd-analyze missing (run tests/install-deps.sh)"
    with open(os.path.join(REPO, "deploy", "systemd", "pullgate.service")) as f:
        unit = f.read()
    assert "KillSignal=SIGTERM" in unit and "StateDirectory=pullgate" in unit
    binary = image_binary()
    path = tmp_path / "pullgate.service"
    path.write_text(unit.replace("/usr/local/bin/pullgate-serve", binary))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
