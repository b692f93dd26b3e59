"""The gateway Lambda against Lambda's and API Gateway's limits, with the
real bootstrap binary on the local Runtime API and AWS on moto_server (as
test_g_lambda.py): Firehose going away in the middle of a burst, a Helm
index over the 6 MB response limit, an upstream slower than the upstream
timeout, a panic in the handler and an invocation that is no API Gateway
request, the already-decoded paths API Gateway hands over, and a proxied
manifest HEAD whose response carries the manifest's length."""

import base64
import gzip
import hashlib
import json
import socket
import threading
import time

import pytest

from harness import procs
from harness.aws_moto import TABLE, CountingRelay, MotoAws
from harness.staticserver import StaticServer
from test_g_lambda import Function, body_of, header, load_event, pullgate_map

# Lambda's synchronous response limit, as the function's JSON reaches it.
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


@pytest.fixture
def moto(tmp_path):
    moto = MotoAws(str(tmp_path)).start()
    moto.create_resources()
    yield moto
    moto.stop()


def add(moto, *args):
    result = pullgate_map(moto.url, "--table", TABLE, "add", *args)
    assert result.returncode == 0, result.stderr


def request(path: str, method: str = "GET", request_id: str = "r", **headers) -> dict:
    """A sample API Gateway payload for `path` on images.acme.dev, as API
    Gateway builds it: `rawPath` and `http.path` already percent-decoded."""
    payload = load_event("manifest-get")
    payload["rawPath"] = payload["requestContext"]["http"]["path"] = path
    payload["requestContext"]["http"]["method"] = method
    payload["requestContext"]["requestId"] = request_id
    for name, value in headers.items():
        payload["headers"][name.replace("_", "-")] = value
    if "user_agent" in headers:
        payload["requestContext"]["http"]["userAgent"] = headers["user_agent"]
    return payload


def held_after(fn: Function, inv) -> float:
    """Seconds from the function's answer to the moment its extension asks
    for the next event: how long Lambda keeps the environment (and bills
    it) after the response."""
    fn.api.wait_extensions_idle(timeout=60)
    return time.monotonic() - inv.answered


def test_a_firehose_outage_in_a_burst_loses_nothing_and_holds_no_invocation_past_the_bound(tmp_path, moto):
    add(moto, "images.acme.dev/app", "docker.io/acme/app", "--mode", "redirect")
    firehose = CountingRelay(moto.port).start()
    flush_timeout = 1.0
    fn = Function(str(tmp_path), moto, moto.url, AWS_ENDPOINT_URL_FIREHOSE=firehose.url,
                  PULLGATE_FLUSH_MAX_AGE_MS="200", PULLGATE_FLUSH_TIMEOUT_MS=str(int(flush_timeout * 1000)))
    ids, held = [], []
    try:
        def burst(phase, n):
            for i in range(n):
                rid = f"{phase}-{i:03d}"
                inv = fn.api.invoke(request("/v2/app/manifests/1.0", request_id=rid))
                assert inv.error is None and inv.response["statusCode"] == 307, inv.error or inv.response
                ids.append(rid)
                held.append(held_after(fn, inv))
                time.sleep(0.01)

        burst("before", 60)
        firehose.stop()  # Firehose unreachable: every flush fails until it is back
        burst("outage", 120)
        firehose.start()
        burst("after", 60)
        assert fn.proc.stop() == 0  # SIGTERM: the rest goes out
    finally:
        fn.stop()
        firehose.stop()
    delivered = [e["request_id"] for e in moto.delivered_events()]
    longest = max(held)
    print(f"\n{len(ids)} invocations, Firehose down for 120: {len(delivered)} events delivered "
          f"({len(delivered) - len(set(delivered))} twice); longest hold after a response "
          f"{longest * 1000:.0f} ms, median {sorted(held)[len(held) // 2] * 1000:.0f} ms "
          f"(flush bound {flush_timeout * 1000:.0f} ms)")
    assert set(delivered) == set(ids), f"lost: {sorted(set(ids) - set(delivered))[:10]}"
    # The bound plus the time to hand the answer over and re-queue: never
    # the 29 s of the function timeout.
    assert longest < flush_timeout + 2.0, f"an invocation was held {longest:.2f} s"
    log = fn.proc.log_text()
    assert "PULLGATE_UNDELIVERED_EVENT" not in log, "kept for the next flush, not logged for replay"


def test_a_helm_index_over_the_response_limit_is_served_gzipped(tmp_path, moto):
    charts = tmp_path / "charts"
    charts.mkdir()
    port = procs.free_port()
    base = f"http://127.0.0.1:{port}/charts"
    entries = "".join(
        f"  chart{i}:\n  - name: chart{i}\n    version: 1.{i}.0\n    digest: {hashlib.sha256(str(i).encode()).hexdigest()}\n"
        f"    urls:\n    - {base}/chart{i}-1.{i}.0.tgz\n" for i in range(40_000))
    index = f"apiVersion: v1\nentries:\n{entries}"
    (charts / "index.yaml").write_text(index)
    assert len(index) > LAMBDA_RESPONSE_LIMIT
    static = StaticServer(port, str(tmp_path))
    static.start()
    add(moto, "images.acme.dev/charts", base, "--kind", "http")
    fn = Function(str(tmp_path), moto, moto.url)
    try:
        response = fn.invoke(request("/charts/index.yaml", accept_encoding="gzip", user_agent="Helm/3.14.0"))
        refused = fn.invoke(request("/charts/index.yaml", user_agent="curl/8.5.0"))
    finally:
        fn.stop()
        static.stop()
    size = len(json.dumps(response))
    assert response["statusCode"] == 200, response.get("body", "")[:500]
    assert size < LAMBDA_RESPONSE_LIMIT, f"{size} bytes returned to Lambda"
    assert header(response, "content-encoding") == "gzip"
    text = gzip.decompress(base64.b64decode(response["body"])).decode()
    assert f"{base}/" not in text and "https://images.acme.dev/charts/chart7-1.7.0.tgz" in text
    print(f"\nhelm index {len(index):,} bytes rewritten to {len(text):,}; Lambda response "
          f"{size:,} bytes gzipped and base64-encoded")
    # A client that takes no gzip: an error that says why, not a bare 500.
    assert refused["statusCode"] == 502, refused
    error = json.loads(body_of(refused))["errors"][0]
    assert error["code"] == "UNSUPPORTED" and "6 MB" in error["message"], error


class SilentUpstream:
    """Accepts connections and never answers: an upstream slower than any
    timeout."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_an_upstream_slower_than_the_upstream_timeout_gets_an_oci_error_and_an_event(tmp_path, moto):
    slow = SilentUpstream()
    add(moto, "images.acme.dev/slow", f"http://127.0.0.1:{slow.port}/slow", "--mode", "proxy")
    fn = Function(str(tmp_path), moto, moto.url, PULLGATE_UPSTREAM_TIMEOUT_SECS="1",
                  PULLGATE_FLUSH_MAX_AGE_MS="0")
    try:
        started = time.monotonic()
        response = fn.invoke(request("/v2/slow/manifests/1.0", request_id="slow-1", user_agent="skopeo/1.13.3"))
        took = time.monotonic() - started
        fn.api.wait_extensions_idle()
    finally:
        fn.stop()
        slow.close()
    assert response["statusCode"] in (502, 504), response
    assert json.loads(body_of(response))["errors"][0]["code"] == "UNAVAILABLE"
    assert took < 10, f"answered after {took:.1f} s"
    events = {e["request_id"]: e for e in moto.delivered_events()}
    assert events["slow-1"]["status"] == response["statusCode"], events


def test_a_panic_or_a_payload_that_is_no_request_ends_the_extensions_wait(tmp_path, moto):
    add(moto, "images.acme.dev/app", "docker.io/acme/app", "--mode", "redirect")
    fn = Function(str(tmp_path), moto, moto.url, PULLGATE_DEBUG_PANIC_PATH="/v2/app/manifests/panic",
                  PULLGATE_FLUSH_MAX_AGE_MS="0")
    try:
        held = {}
        for name, payload in (("panic", request("/v2/app/manifests/panic", request_id="panic")),
                              ("not a request", {"hello": "world"})):
            inv = fn.api.invoke(payload)
            assert inv.error is not None, f"{name}: {inv.response}"
            held[name] = held_after(fn, inv)
        # The environment still serves, and its extension follows along.
        inv = fn.api.invoke(request("/v2/app/manifests/1.0", request_id="after"))
        assert inv.response["statusCode"] == 307
        held["next request"] = held_after(fn, inv)
    finally:
        fn.stop()
    print("\nextension held after: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in held.items()))
    # Without the guard, the wait lasted until the invocation's deadline.
    assert all(v < 5 for v in held.values()), held
    assert "after" in {e["request_id"] for e in moto.delivered_events()}


# Paths as API Gateway hands them to Lambda, already percent-decoded: what
# the client typed, what the function gets, and what it must answer.
# lambda_http then builds the request URI with the WHATWG URL rules
# (url::Url), which resolve `..` segments: a dot-dot cannot be refused
# there, and cannot climb out either; it lands on another path of the host.
DECODED_PATHS = [
    # %2F is a slash by then: the name is what it spells, under the mapping.
    ("/v2/app%2Fx/manifests/1.0", "/v2/app/x/manifests/1.0", 307,
     "https://registry-1.docker.io/v2/acme/app/x/manifests/1.0"),
    # %2e%2e: resolved away before the router sees the path.
    ("/v2/app/%2e%2e/manifests/1.0", "/v2/app/../manifests/1.0", 404, "UNSUPPORTED"),
    ("/v2/%2e%2e/app/manifests/1.0", "/v2/../app/manifests/1.0", 404, "NAME_UNKNOWN"),
    # Upper case and other bytes that are no name characters.
    ("/v2/App/manifests/1.0", "/v2/App/manifests/1.0", 400, "NAME_INVALID"),
    ("/v2/app%20x/manifests/1.0", "/v2/app x/manifests/1.0", 400, "NAME_INVALID"),
    # A tag that is not one, and a digest that is not one.
    ("/v2/app/manifests/1.0%3Bx", "/v2/app/manifests/1.0;x", 404, "MANIFEST_UNKNOWN"),
    ("/v2/app/blobs/sha256%3Axyz", "/v2/app/blobs/sha256:xyz", 400, "DIGEST_INVALID"),
]


@pytest.mark.parametrize("typed,decoded,status,expected", DECODED_PATHS, ids=[p[0] for p in DECODED_PATHS])
def test_decoded_paths_are_refused_or_matched_as_they_read(tmp_path, moto, typed, decoded, status, expected):
    add(moto, "images.acme.dev/app", "docker.io/acme/app", "--mode", "redirect")
    fn = Function(str(tmp_path), moto, moto.url)
    try:
        response = fn.invoke(request(decoded))
    finally:
        fn.stop()
    assert response["statusCode"] == status, (typed, response)
    if status == 307:
        # Built from the mapping: the upstream repository and below.
        assert header(response, "location") == expected, (typed, response)
    else:
        assert json.loads(body_of(response))["errors"][0]["code"] == expected, (typed, response)
        assert header(response, "location") is None, "never a redirect"


def test_a_proxied_manifest_head_carries_its_length_to_api_gateway(tmp_path, moto, env):
    """docker and containerd size a manifest from its HEAD's Content-Length;
    API Gateway computes the length of what the function returns. The
    function returns the manifest with the HEAD answer: the length is the
    manifest's, and API Gateway does not send a HEAD's body on."""
    port = env.upstream_ports["noauth"]
    add(moto, "images.acme.dev/reg", f"http://127.0.0.1:{port}/app", "--mode", "proxy")
    fn = Function(str(tmp_path), moto, moto.url)
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    try:
        head = fn.invoke(request("/v2/reg/manifests/single", "HEAD", accept=accept, user_agent="skopeo/1.13.3"))
        get = fn.invoke(request("/v2/reg/manifests/single", accept=accept, user_agent="skopeo/1.13.3"))
    finally:
        fn.stop()
    digest = env.pushed[("noauth", "app", "single")]
    for response in (head, get):
        assert response["statusCode"] == 200, response
        body = base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"].encode()
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
        assert int(header(response, "content-length")) == len(body), response
        assert header(response, "docker-content-digest") == digest
    print(f"\nHEAD: {len(body)} bytes of manifest in the function's answer, Content-Length {header(head, 'content-length')}")
