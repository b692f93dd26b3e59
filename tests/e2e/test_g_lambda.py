"""The gateway Lambda as Lambda runs it: the real bootstrap binary against a
local Lambda Runtime API, fed every API Gateway HTTP API v2 payload in
events/, with its mappings in DynamoDB, its client-id key in Secrets
Manager and its events going through Firehose to S3 — all on moto_server.
Then the faults: DynamoDB gone while the function is warm, scanners on
unknown hosts, and `pullgate map` against the table."""

import base64
import glob
import json
import os
import subprocess
import time

import pytest

from conftest import _build_pullgate
from harness import procs
from harness.aws_moto import CREDS, SECRET, STREAM, TABLE, CountingRelay, MotoAws
from harness.lambda_api import LambdaApi

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EVENTS = os.path.join(ROOT, "events")
DOCKER_HUB = "https://registry-1.docker.io"
# The address API Gateway reports in every sample payload, and the one the
# client claims in X-Forwarded-For: neither may reach storage; only the
# /24 prefix of the first may.
SOURCE_IP = "203.0.113.7"
FORGED_IP = "198.51.100.1"

# What each sample payload must get: status, Location (redirects) or OCI
# error code (refusals). Every file in events/ must be listed here.
EXPECTED = {
    "ping": (401, None, None),  # the host has a proxied mapping: our own challenge
    "manifest-get": (307, f"{DOCKER_HUB}/v2/acme/app/manifests/1.0", None),
    "manifest-head": (307, f"{DOCKER_HUB}/v2/acme/app/manifests/1.0", None),
    "blob": (307, f"{DOCKER_HUB}/v2/acme/app/blobs/sha256:{'a' * 64}", None),
    "token": (502, None, "UNAVAILABLE"),  # tools' upstream is a closed loopback port
    "unmapped-name": (404, None, "NAME_UNKNOWN"),
    "unknown-host": (404, None, "NAME_UNKNOWN"),
    "push": (405, None, "UNSUPPORTED"),
}


def gateway_bin() -> str:
    path = os.environ.get("PULLGATE_GATEWAY_BIN")
    if path:
        return path
    subprocess.run(["cargo", "build", "--locked", "-p", "gateway"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "debug", "gateway")


def load_event(name: str) -> dict:
    with open(os.path.join(EVENTS, f"{name}.json")) as f:
        return json.load(f)


def pullgate_map(moto_url, *args, env_extra=None):
    env = dict(os.environ, AWS_ENDPOINT_URL=moto_url, **CREDS)
    env.pop("PULLGATE_TABLE", None)
    env.update(env_extra or {})
    return subprocess.run([_build_pullgate(), "map", *args], capture_output=True, text=True, env=env, timeout=120)


class Function:
    """The bootstrap binary running against the local Runtime API."""

    def __init__(self, tmp, moto: MotoAws, dynamodb_url: str, **env):
        self.api = LambdaApi().start()
        self.env = dict(
            os.environ, **CREDS,
            AWS_LAMBDA_RUNTIME_API=self.api.address,
            AWS_LAMBDA_FUNCTION_NAME="gateway", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="local",
            AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/gateway",
            AWS_ENDPOINT_URL=moto.url, AWS_ENDPOINT_URL_DYNAMODB=dynamodb_url,
            PULLGATE_TABLE=TABLE, PULLGATE_FIREHOSE_STREAM=STREAM, PULLGATE_CLIENT_ID_SECRET=SECRET,
            RUST_LOG="info", **env)
        self.proc = procs.Proc(f"gateway-{self.api.port}", [gateway_bin()], tmp, env=self.env)
        self.api.wait_ready()

    def invoke(self, payload: dict) -> dict:
        inv = self.api.invoke(payload)
        assert inv.error is None, f"invocation error: {inv.error}\n{self.proc.log_text()[-3000:]}"
        return inv.response

    def stop(self):
        self.proc.stop()
        self.api.stop()


def body_of(response: dict) -> str:
    body = response.get("body") or ""
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body


def header(response: dict, name: str):
    for k, v in (response.get("headers") or {}).items():
        if k.lower() == name:
            return v
    for k, v in (response.get("multiValueHeaders") or {}).items():
        if k.lower() == name:
            return v[0]
    return None


@pytest.fixture
def aws(tmp_path):
    moto = MotoAws(str(tmp_path)).start()
    moto.create_resources()
    relay = CountingRelay(moto.port).start()
    for args in (["add", "images.acme.dev/app", "docker.io/acme/app", "--mode", "redirect"],
                 ["add", "images.acme.dev/tools", "http://127.0.0.1:9/tools", "--mode", "proxy"]):
        result = pullgate_map(moto.url, "--table", TABLE, *args)
        assert result.returncode == 0, result.stderr
    yield moto, relay
    relay.stop()
    moto.stop()


def test_every_sample_event_through_the_handler_and_events_to_s3(tmp_path, aws):
    moto, relay = aws
    names = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(EVENTS, "*.json")))
    assert set(names) == set(EXPECTED), f"events/ and EXPECTED differ: {set(names) ^ set(EXPECTED)}"
    fn = Function(str(tmp_path), moto, relay.url)
    try:
        request_ids = []
        for name in names:
            status, location, code = EXPECTED[name]
            event = load_event(name)
            response = fn.invoke(event)
            request_ids.append(event["requestContext"]["requestId"])
            assert response["statusCode"] == status, (name, response)
            if location:
                assert header(response, "location") == location, (name, response)
                assert header(response, "cache-control") == "no-store", (name, response)
            else:
                assert header(response, "location") is None, (name, response)
            if code:
                errors = json.loads(body_of(response))["errors"]
                assert errors[0]["code"] == code, (name, response)
            if name == "ping":
                assert header(response, "www-authenticate").startswith(
                    'Bearer realm="https://images.acme.dev/token"'), response
            if name == "push":
                assert header(response, "allow") == "GET, HEAD", response
        # Events are batched (a second's window by default): the SIGTERM
        # Lambda sends before it shuts the environment down flushes the rest.
        fn.api.wait_extensions_idle()
        assert fn.proc.stop() == 0
        events = moto.delivered_events()
    finally:
        fn.stop()
    assert sorted(e["request_id"] for e in events) == sorted(request_ids), events
    raw = json.dumps(events)
    assert SOURCE_IP not in raw and FORGED_IP not in raw, "a client address reached storage"
    by_id = {e["request_id"]: e for e in events}
    manifest = by_id["manifest-get-0001"]
    assert manifest["status"] == 307 and manifest["kind"] == "manifest", manifest
    assert manifest.get("mapping") == "images.acme.dev/app", manifest
    assert manifest.get("runtime") == "docker", manifest
    assert "203.0.113." in json.dumps(manifest), f"the /24 of sourceIp is the network prefix: {manifest}"
    assert manifest.get("client_id"), "client id hashed with the key from Secrets Manager"


def test_batched_events_are_flushed_on_shutdown(tmp_path, aws):
    """With a flush age, a warm gateway holds events; Lambda's SIGTERM before
    it shuts the environment down sends them."""
    moto, relay = aws
    fn = Function(str(tmp_path), moto, relay.url, PULLGATE_FLUSH_MAX_AGE_MS="600000")
    try:
        manifest = load_event("manifest-get")
        for _ in range(3):
            assert fn.invoke(manifest)["statusCode"] == 307
        fn.api.wait_extensions_idle()
        assert moto.delivered_events() == [], "held until the flush age or shutdown"
        assert fn.proc.stop() == 0  # SIGTERM, as Lambda sends at shutdown
    finally:
        fn.stop()
    events = moto.delivered_events()
    assert [e["request_id"] for e in events] == ["manifest-get-0001"] * 3, events


def test_events_are_enriched_from_files_in_a_layer(tmp_path, aws):
    """In AWS the enrichment files come from a layer (under /opt), named by
    PULLGATE_IP_MMDB & co: here the real ip-location-db country database
    from npm, and clients at Google's public resolver addresses."""
    mmdb = os.path.join(ROOT, ".cache", "ip-location-db", "country-mmdb", "geo-whois-asn-country.mmdb")
    assert os.path.exists(mmdb), "ip-location-db MMDB missing: run tests/install-deps.sh"
    moto, relay = aws
    fn = Function(str(tmp_path), moto, relay.url, PULLGATE_IP_MMDB=mmdb)
    try:
        for n, source in enumerate(("8.8.8.8", "2001:4860:4860::8888")):
            payload = load_event("manifest-get")
            payload["requestContext"]["http"]["sourceIp"] = source
            payload["requestContext"]["requestId"] = f"enriched-{n}"
            assert fn.invoke(payload)["statusCode"] == 307
        fn.api.wait_extensions_idle()
        assert fn.proc.stop() == 0  # the SIGTERM flush
    finally:
        fn.stop()
    events = {e["request_id"]: e for e in moto.delivered_events()}
    for n, (source, prefix) in enumerate((("8.8.8.8", "8.8.8.0/24"), ("2001:4860:4860::8888", "2001:4860:4860::/48"))):
        event = events[f"enriched-{n}"]
        assert (event.get("country"), event.get("prefix")) == ("US", prefix), event
        assert source not in json.dumps(event), event


def test_warm_gateway_answers_from_cache_while_dynamodb_is_down(tmp_path, aws):
    moto, relay = aws
    fn = Function(str(tmp_path), moto, relay.url, PULLGATE_MAPPING_TTL_SECS="1",
                  PULLGATE_STORE_TIMEOUT_MS="500")
    try:
        manifest = load_event("manifest-get")
        assert fn.invoke(manifest)["statusCode"] == 307
        relay.stop()  # DynamoDB is gone
        time.sleep(1.2)  # the cached copy has expired
        for _ in range(5):
            response = fn.invoke(manifest)
            assert response["statusCode"] == 307, response
            assert header(response, "location") == f"{DOCKER_HUB}/v2/acme/app/manifests/1.0"
        # A host never seen before has no copy to fall back on: 502, not a redirect.
        cold = load_event("manifest-get")
        cold["headers"]["host"] = "other.acme.dev"
        response = fn.invoke(cold)
        assert response["statusCode"] == 502, response
        assert json.loads(body_of(response))["errors"][0]["code"] == "UNAVAILABLE"
        assert "serving the last good copy" in fn.proc.log_text()
    finally:
        fn.stop()


def test_unknown_hosts_and_names_are_cached_negatively(tmp_path, aws):
    moto, relay = aws
    fn = Function(str(tmp_path), moto, relay.url)
    try:
        before = len(relay.operations())
        scanner = load_event("unknown-host")
        for _ in range(25):
            assert fn.invoke(scanner)["statusCode"] == 404
        reads = relay.operations()[before:]
        assert reads == ["Query"], f"25 requests for an unknown host cost {reads}"
        # Unknown names under a known host: one read of the host, then none.
        before = len(relay.operations())
        for i in range(25):
            probe = load_event("unmapped-name")
            probe["rawPath"] = probe["requestContext"]["http"]["path"] = f"/v2/probe{i}/manifests/latest"
            assert fn.invoke(probe)["statusCode"] == 404
        reads = relay.operations()[before:]
        assert reads == ["Query"], f"25 unknown names cost {reads}"
    finally:
        fn.stop()


def test_pullgate_map_round_trips_against_dynamodb(tmp_path, aws):
    moto, _ = aws
    url = moto.url

    def ok(*args):
        result = pullgate_map(url, "--table", TABLE, *args)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    out = ok("add", "Images.Acme.dev", "ghcr.io/acme", "--mode", "auto")
    assert "images.acme.dev -> ghcr.io/acme (auto)" in out
    item = moto.dynamodb.get_item(TableName=TABLE, Key={"host": {"S": "images.acme.dev"}, "name": {"S": "/"}})
    assert item["Item"]["upstream"]["S"] == "ghcr.io/acme", item
    listed = ok("list").splitlines()
    assert listed == ["images.acme.dev -> ghcr.io/acme (auto)",
                      "images.acme.dev/app -> docker.io/acme/app (redirect)",
                      "images.acme.dev/tools -> http://127.0.0.1:9/tools (proxy)"], listed
    shown = ok("show", "images.acme.dev/app")
    assert 'upstream = "docker.io/acme/app"' in shown and 'mode = "redirect"' in shown, shown
    exported = ok("export")
    path = tmp_path / "exported.toml"
    path.write_text(exported)
    # The export is a valid mapping file, and reads back into a file store the same.
    check = subprocess.run([_build_pullgate(), "check-mappings", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    local = tmp_path / "local.toml"
    assert pullgate_map(url, "--file", str(local), "import", str(path)).returncode == 0
    assert pullgate_map(url, "--file", str(local), "export").stdout == exported
    ok("rm", "images.acme.dev/app")
    assert "images.acme.dev/app " not in ok("list")
    refused = pullgate_map(url, "--table", TABLE, "import", str(path))
    assert refused.returncode == 1 and "already exists" in refused.stderr and "nothing was written" in refused.stderr
    assert "images.acme.dev/app " not in ok("list")
    ok("import", "--replace", str(path))
    assert ok("export") == exported


@pytest.mark.parametrize("args,message", [
    (["add", "images.acme.dev/Bad", "docker.io/acme/app"], "invalid public name"),
    (["add", "images.acme.dev/app2", "ftp://example.com/x"], "invalid upstream"),
    (["add", "bad host/app", "docker.io/acme/app"], "invalid host"),
    (["add", "images.acme.dev/app2", "docker.io/acme/app", "--mode", "yolo"], "invalid mode"),
    (["add", "images.acme.dev/app2", "docker.io/acme/app", "--down"], "no fallback"),
    (["add", "images.acme.dev/app2", "docker.io/acme/app", "--kind", "zip"], "invalid kind"),
    (["add", "images.acme.dev/app", "docker.io/acme/other"], "already exists"),
    (["rm", "images.acme.dev/nothing"], "no mapping images.acme.dev/nothing"),
    (["show", "images.acme.dev/nothing"], "no mapping images.acme.dev/nothing"),
])
def test_pullgate_map_refuses_bad_input(aws, args, message):
    moto, _ = aws
    result = pullgate_map(moto.url, "--table", TABLE, *args)
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pullgate: ") and message in lines[0], result.stderr
    # Nothing was written.
    listed = pullgate_map(moto.url, "--table", TABLE, "list").stdout
    assert "app2" not in listed and "/Bad" not in listed
    assert "docker.io/acme/other" not in listed


def test_pullgate_map_needs_a_store(aws, tmp_path):
    moto, _ = aws
    result = pullgate_map(moto.url, "list")
    assert result.returncode == 2 and "--table" in result.stderr, result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[[mappings]]\nhost = "h"\nupstream = "ftp://x"\n')
    result = pullgate_map(moto.url, "--table", TABLE, "import", str(bad))
    assert result.returncode == 1 and "invalid upstream" in result.stderr, result.stderr
