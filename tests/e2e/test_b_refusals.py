"""Hostile and unsupported requests sent over a raw socket to the running
pullgate: the right status and OCI error, and never a redirect."""

import json
import socket

import pytest

SHA = "sha256:" + "a" * 64


def raw_request(port: int, data: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def request(env, method: str, path: str, extra: str = "") -> tuple[int, dict, bytes]:
    host = env.hosts[("token", "redirect", "unchanged")]
    data = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: e2e\r\n{extra}Connection: close\r\n\r\n"
    return raw_request(env.pullgate_port, data.encode())


CASES = [
    ("GET", "/v2/unmapped/manifests/single", 404, "NAME_UNKNOWN"),
    ("GET", "/v2/_catalog", 403, "DENIED"),
    ("POST", "/v2/app/blobs/uploads/", 405, "UNSUPPORTED"),
    ("PUT", "/v2/app/manifests/single", 405, "UNSUPPORTED"),
    ("PATCH", "/v2/app/blobs/uploads/1", 405, "UNSUPPORTED"),
    ("DELETE", f"/v2/app/manifests/{SHA}", 405, "UNSUPPORTED"),
    ("GET", "/v2/App/manifests/single", 400, "NAME_INVALID"),
    ("GET", "/v2/app/../acme/app/manifests/single", 400, "NAME_INVALID"),
    ("GET", "/v2/app%2F..%2Facme%2Fapp/manifests/single", 400, "NAME_INVALID"),
    ("GET", "/v2/app/manifests/%0d%0aLocation:%20http://evil", 400, "NAME_INVALID"),
    ("GET", "/v2/app/manifests/sha256:1234", 400, "DIGEST_INVALID"),
    # A malformed tag names no manifest: 404, the spec's answer for end-3.
    ("GET", "/v2/app/manifests/-bad", 404, "MANIFEST_UNKNOWN"),
    ("GET", "/v2/app/manifests/" + "t" * 129, 404, "MANIFEST_UNKNOWN"),
    ("GET", "/v2/app/blobs/not-a-digest", 400, "DIGEST_INVALID"),
    ("GET", "/v2/app/manifests/" + "t" * 3000, 414, "NAME_INVALID"),
]


@pytest.mark.parametrize("method,path,status,code", CASES, ids=[f"{m} {p[:40]}" for m, p, _, _ in CASES])
def test_refusal(env, method, path, status, code):
    got, headers, body = request(env, method, path)
    assert got == status, body
    assert "location" not in headers
    assert json.loads(body)["errors"][0]["code"] == code


def test_unknown_host_is_refused(env):
    data = b"GET /v2/app/manifests/single HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    status, headers, body = raw_request(env.pullgate_port, data)
    assert status == 404 and "location" not in headers
    assert json.loads(body)["errors"][0]["code"] == "NAME_UNKNOWN"


def test_raw_cr_lf_in_the_path_never_redirects(env):
    host = env.hosts[("token", "redirect", "unchanged")]
    data = f"GET /v2/app/manifests/single\rX HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    status, headers, _ = raw_request(env.pullgate_port, data)
    assert status == 400 and "location" not in headers


def test_oversized_headers_are_refused(env):
    status, headers, body = request(env, "GET", "/v2/app/manifests/single", "X-Padding: " + "a" * 20000 + "\r\n")
    assert status == 431 and "location" not in headers
    assert json.loads(body)["errors"][0]["code"] == "SIZE_INVALID"
    # Past the HTTP layer's own bound the connection is refused outright.
    status, headers, _ = request(env, "GET", "/v2/app/manifests/single", "X-Padding: " + "a" * 200000 + "\r\n")
    assert status in (0, 431) and "location" not in headers


def test_redirect_carries_no_store(env):
    status, headers, _ = request(env, "GET", "/v2/app/manifests/single")
    assert status == 307
    assert headers["cache-control"] == "no-store"
    assert headers["location"].startswith(f"http://127.0.0.1:{env.upstream_ports['token']}/v2/app/manifests/single")
