"""The admin listener (`--admin-listen`) of a pullgate server of its own:
`/metrics` parsed with the Prometheus client's own parser, whose request
counters move by exactly the requests made; `/healthz`; `/readyz` failing
until the mappings have loaded (the mapping file is a FIFO the test
writes when it chooses); the admin paths answered 404 on the public port;
an admin address the public listener takes refused at start. Needs no
registry: every request here is answered from the mapping alone.

`/readyz` 503 "event sink not accepting" needs a sink that can refuse:
the Firehose one, in test_l_serve_sources.py (its stream deleted, then
recreated)."""

import os
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import serve_argv
from harness import procs

HOST = "127.0.0.1"
MAPPINGS = (
    '[[mappings]]\nhost = "127.0.0.1"\nname = "library/alpine"\n'
    'upstream = "docker.io/library/alpine"\nmode = "redirect"\n'
)
MANIFEST = "/v2/library/alpine/manifests/3.20"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url, method="GET", host=None):
    """(status, content type, body); redirects are not followed."""
    request = urllib.request.Request(url, method=method)
    if host:
        request.add_header("Host", host)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


class Server:
    def __init__(self, tmp, name, config):
        self.port = procs.free_port()
        self.admin_port = procs.free_port()
        self.proc = procs.Proc(name, serve_argv() + [
            "--config", config,
            "--listen", f"{HOST}:{self.port}",
            "--admin-listen", f"{HOST}:{self.admin_port}",
            "--data-dir", os.path.join(tmp, f"{name}-data"),
            "--access-log", "off",
        ], str(tmp))

    def public(self, path):
        return f"http://{HOST}:{self.port}{path}"

    def admin(self, path):
        return f"http://{HOST}:{self.admin_port}{path}"

    def requests(self) -> Counter:
        """pullgate_requests_total as (kind, status, path) -> value."""
        status, content_type, text = fetch(self.admin("/metrics"))
        assert status == 200 and content_type == "text/plain; version=0.0.4", (status, content_type)
        counts = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "pullgate_requests_total":
                    labels = sample.labels
                    counts[(labels["kind"], labels["status"], labels["path"])] += int(sample.value)
        return counts

    def families(self) -> set:
        return {f.name for f in text_string_to_metric_families(fetch(self.admin("/metrics"))[2])}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("admin")
    config = tmp / "mappings.toml"
    config.write_text(MAPPINGS)
    s = Server(tmp, "pullgate-admin", str(config))
    procs.wait_port(s.port, s.proc.popen)
    procs.wait_port(s.admin_port, s.proc.popen)
    yield s
    code = s.proc.stop()
    assert code == 0, s.proc.log_text()[-2000:]


def test_healthz_and_readyz_answer_on_the_admin_port(server):
    assert fetch(server.admin("/healthz"))[::2] == (200, "ok")
    assert fetch(server.admin("/readyz"))[::2] == (200, "ready")
    for path, method in [("/", "GET"), ("/metricsx", "GET"), ("/v2/", "GET"), ("/metrics", "POST")]:
        assert fetch(server.admin(path), method=method)[0] == 404, (method, path)


def test_request_counters_move_by_exactly_the_requests_made(server):
    made = [
        # (method, host, path, status, counted as (kind, status, path))
        *[("GET", HOST, MANIFEST, 307, ("manifest", "307", "redirect"))] * 3,
        *[("HEAD", HOST, MANIFEST, 307, ("manifest", "307", "redirect"))] * 2,
        *[("GET", HOST, "/v2/library/unmapped/manifests/1", 404, ("manifest", "404", "local"))] * 2,
        ("GET", "unknown.example", MANIFEST, 404, ("manifest", "404", "local")),
        ("GET", HOST, "/v2/", 307, ("ping", "307", "redirect")),
        ("PUT", HOST, MANIFEST, 405, ("other", "405", "local")),
        ("GET", HOST, "/v2/_catalog", 403, ("other", "403", "local")),
    ]
    before = server.requests()
    for method, host, path, status, _ in made:
        assert fetch(server.public(path), method=method, host=host)[0] == status, (method, host, path)
    after = server.requests()
    moved = after - before
    assert moved == Counter(counted for *_, counted in made), moved
    assert sum(moved.values()) == len(made)
    # Scraping counts nothing: the admin listener is not the router.
    assert server.requests() == after
    # The other metrics of the list are exposed from zero.
    assert {"pullgate_upstream_errors", "pullgate_upstream_request_duration_seconds"} <= server.families()


def test_the_public_port_never_answers_admin_paths(server):
    before = server.requests()
    for path in ["/metrics", "/healthz", "/readyz"]:
        status, _, body = fetch(server.public(path), host=HOST)
        assert status == 404, (path, status)
        assert "NAME_UNKNOWN" in body and "pullgate_" not in body and "# TYPE" not in body, body
    # They are file paths to the router, refused like any unmapped one.
    assert server.requests() - before == Counter({("file", "404", "local"): 3})


def test_readyz_fails_until_the_mappings_have_loaded(tmp_path):
    fifo = tmp_path / "mappings.toml"
    os.mkfifo(fifo)
    s = Server(tmp_path, "pullgate-admin-fifo", str(fifo))
    try:
        # The admin listener is up while the server waits on the mapping file.
        procs.wait_port(s.admin_port, s.proc.popen)
        assert fetch(s.admin("/readyz"))[::2] == (503, "mappings not loaded")
        assert fetch(s.admin("/healthz"))[::2] == (200, "ok")

        def write():
            with open(fifo, "w") as f:
                f.write(MAPPINGS)
        # Daemon: should the server die first, nothing is left waiting on it.
        threading.Thread(target=write, daemon=True).start()
        procs.wait_port(s.port, s.proc.popen)
        assert fetch(s.admin("/readyz"))[::2] == (200, "ready")
        assert fetch(s.public(MANIFEST), host=HOST)[0] == 307
    finally:
        # Still waiting on the FIFO, SIGTERM's default action ends it.
        code = s.proc.stop()
    assert code == 0, s.proc.log_text()[-2000:]


def test_an_admin_address_the_public_listener_takes_is_refused(tmp_path):
    config = tmp_path / "mappings.toml"
    config.write_text(MAPPINGS)
    port = procs.free_port()
    result = procs.run(serve_argv() + [
        "--config", str(config), "--listen", f"{HOST}:{port}", "--admin-listen", f"0.0.0.0:{port}",
        "--data-dir", str(tmp_path / "data"),
    ], timeout=30, check=False)
    assert result.returncode != 0
    assert f"--admin-listen 0.0.0.0:{port} overlaps the public --listen {HOST}:{port}" in result.stderr, result.stderr
