"""`http` mappings (a classic Helm repository) and `pullgate serve` over TLS,
each against their own small pullgate instance."""

import datetime
import os
import ssl
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import _build_pullgate
from harness import procs
from harness.staticserver import StaticServer

INDEX = """apiVersion: v1
entries:
  app:
  - name: app
    version: 1.0.0
    urls:
    - {base}/app-1.0.0.tgz
"""


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url, context=None):
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture(scope="module")
def helm(env):
    root = os.path.join(env.tmp, "charts")
    os.makedirs(root)
    static = StaticServer(procs.free_port(), root)
    base = f"http://127.0.0.1:{static.port}/stable"
    os.makedirs(os.path.join(root, "stable"))
    with open(os.path.join(root, "stable", "index.yaml"), "w") as f:
        f.write(INDEX.format(base=base))
    static.start()
    port = procs.free_port()
    config = os.path.join(env.tmp, "helm.toml")
    with open(config, "w") as f:
        f.write(f'[[mappings]]\nhost = "127.0.0.1:{port}"\nname = "charts"\nkind = "http"\nupstream = "{base}"\n')
    p = procs.Proc("pullgate-helm", [_build_pullgate(), "serve", "--config", config, "--listen",
                                     f"127.0.0.1:{port}", "--events", "off", "--access-log", "off"], env.tmp)
    procs.wait_port(port, p.popen)
    yield port, base
    p.stop()
    static.stop()


def test_helm_index_is_rewritten_to_come_back_through_pullgate(helm):
    port, base = helm
    status, _, body = fetch(f"http://127.0.0.1:{port}/charts/index.yaml")
    assert status == 200
    assert f"http://127.0.0.1:{port}/charts/app-1.0.0.tgz" in body
    assert base not in body
    status, headers, _ = fetch(f"http://127.0.0.1:{port}/charts/app-1.0.0.tgz")
    assert status == 307
    assert headers["location"] == f"{base}/app-1.0.0.tgz"
    assert headers["cache-control"] == "no-store"
    status, headers, _ = fetch(f"http://127.0.0.1:{port}/charts/../secret")
    assert status == 404 and "location" not in {k.lower() for k in headers}


def test_serve_over_tls(env):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(env.tmp, "tls.crt"), os.path.join(env.tmp, "tls.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    port = procs.free_port()
    config = os.path.join(env.tmp, "tls.toml")
    with open(config, "w") as f:
        f.write('[[mappings]]\nhost = "localhost"\nname = "app"\nupstream = "ghcr.io/acme/app"\nmode = "proxy"\n')
    p = procs.Proc("pullgate-tls", [_build_pullgate(), "serve", "--config", config, "--listen", f"127.0.0.1:{port}",
                                    "--tls-cert", cert_path, "--tls-key", key_path, "--events", "off"], env.tmp)
    try:
        procs.wait_port(port, p.popen)
        context = ssl.create_default_context(cafile=cert_path)
        status, headers, _ = fetch(f"https://localhost:{port}/v2/", context)
        assert status == 401
        assert headers["www-authenticate"] == f'Bearer realm="https://localhost:{port}/token",service="localhost:{port}"'
    finally:
        p.stop()


def test_slow_clients_are_disconnected(env):
    """Slow-loris guard: a connection that sends half a request head and
    then nothing is closed after --idle-timeout."""
    import socket
    import time

    port = procs.free_port()
    config = os.path.join(env.tmp, "idle.toml")
    with open(config, "w") as f:
        f.write('[[mappings]]\nhost = "localhost"\nname = "app"\nupstream = "ghcr.io/acme/app"\n')
    p = procs.Proc("pullgate-idle", [_build_pullgate(), "serve", "--config", config, "--listen", f"127.0.0.1:{port}",
                                     "--events", "off", "--idle-timeout", "2"], env.tmp)
    try:
        procs.wait_port(port, p.popen)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: local")
            started = time.time()
            assert s.recv(1024) == b"", "connection should be closed, not answered"
            assert 1.5 <= time.time() - started <= 6
    finally:
        p.stop()


def test_events_are_enriched_with_real_data_behind_a_trusted_proxy(env):
    """pullgate serve with the ip-location-db data and one trusted proxy:
    the event carries AS, country and kind of the forwarded address, and
    neither that address nor the spoofed entry left of it is stored."""
    import glob
    import gzip
    import json
    import signal
    import urllib.request

    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ipdb = os.environ.get("PULLGATE_IPDB_DIR", os.path.join(root, ".cache", "ip-location-db"))
    assert os.path.exists(f"{ipdb}/asn/asn-ipv4.csv"), "run tests/install-deps.sh (ip-location-db data)"
    port = procs.free_port()
    data = os.path.join(env.tmp, "enriched-data")
    config = os.path.join(env.tmp, "enriched.toml")
    with open(config, "w") as f:
        f.write('[[mappings]]\nhost = "127.0.0.1"\nname = "app"\nupstream = "ghcr.io/acme/app"\nmode = "redirect"\n')
    p = procs.Proc("pullgate-enriched", [
        _build_pullgate(), "serve", "--config", config, "--listen", f"127.0.0.1:{port}", "--data-dir", data,
        "--trusted-proxies", "1", "--ip-asn", f"{ipdb}/asn/asn-ipv4.csv", "--ip-asn", f"{ipdb}/asn/asn-ipv6.csv",
        "--ip-country", f"{ipdb}/country/geo-whois-asn-country-ipv4.csv"], env.tmp)
    procs.wait_port(port, p.popen, timeout=60)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/app/manifests/v1", headers={
        "X-Forwarded-For": "6.6.6.6, 8.8.8.8", "User-Agent": "containerd/1.7.13"})
    status, headers, _ = fetch_request(request)
    assert status == 307
    assert p.stop(sig=signal.SIGINT) == 0
    raw = b"".join(gzip.open(f).read() for f in glob.glob(f"{data}/events/dt=*/*.json.gz"))
    events = [json.loads(line) for line in raw.splitlines()]
    assert len(events) == 1
    e = events[0]
    assert (e["asn"], e["country"], e["org_kind"], e["prefix"]) == (15169, "US", "cloud", "8.8.8.0/24"), e
    assert b"8.8.8.8" not in raw and b"6.6.6.6" not in raw


def fetch_request(request):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_refresh_ranges_from_a_mirror_keeps_old_copies_on_bad_downloads(env):
    root = os.path.join(env.tmp, "mirror")
    os.makedirs(root)
    files = {
        "aws.json": '{"syncToken":"1","prefixes":[{"ip_prefix":"3.5.140.0/22"}],"ipv6_prefixes":[]}',
        "gcp.json": '{"prefixes":[{"ipv4Prefix":"34.80.0.0/15"}]}',
        "meta.json": '{"actions":["4.148.0.0/16"]}',
        "broken.json": '{"actions": [',
    }
    for name, text in files.items():
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    mirror = StaticServer(procs.free_port(), root)
    mirror.start()
    out = os.path.join(env.tmp, "ranges")
    base = f"http://127.0.0.1:{mirror.port}"
    try:
        sources = ["--source", f"aws-ip-ranges.json={base}/aws.json", "--source", f"gcp-cloud.json={base}/gcp.json"]
        ok = procs.run([_build_pullgate(), "refresh-ranges", out, *sources,
                        "--source", f"github-meta.json={base}/meta.json"])
        assert "github-meta.json: 1 ranges" in ok.stdout, ok.stdout
        before = open(os.path.join(out, "github-meta.json")).read()
        bad = procs.run([_build_pullgate(), "refresh-ranges", out, *sources,
                         "--source", f"github-meta.json={base}/broken.json"], check=False)
        assert bad.returncode != 0 and "github-meta.json: not refreshed" in bad.stderr, bad.stderr
        assert open(os.path.join(out, "github-meta.json")).read() == before
        assert not [f for f in os.listdir(out) if f.endswith(".part")]
    finally:
        mirror.stop()
