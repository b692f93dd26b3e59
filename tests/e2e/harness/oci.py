"""A few direct registry requests (no client, no gateway), for checks of the
upstreams themselves: anonymous bearer tokens and blob redirects."""

import hashlib
import http.client
import json
import re
from urllib.parse import urlencode, urlsplit

ACCEPT = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
]


def request(url: str, headers=None, method: str = "GET") -> tuple[int, dict, bytes]:
    """One request, redirects NOT followed. Header names come back lower-case."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        path = u.path + (f"?{u.query}" if u.query else "")
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or []):
            conn.putheader(name, value)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def bearer_challenge(header: str) -> dict:
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def anonymous_token(registry: str, name: str) -> str:
    """The token an anonymous client gets for pulling `name` (challenge → realm)."""
    status, headers, _ = request(f"{registry}/v2/")
    assert status == 401, f"{registry}/v2/ answered {status}, expected a token challenge"
    challenge = bearer_challenge(headers["www-authenticate"])
    query = urlencode({"service": challenge["service"], "scope": f"repository:{name}:pull"})
    status, _, body = request(f"{challenge['realm']}?{query}")
    assert status == 200, f"token server answered {status}: {body[:300]!r}"
    return json.loads(body)["token"]


def manifest(registry: str, name: str, ref: str, token: str | None) -> dict:
    headers = [("Accept", a) for a in ACCEPT]
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    status, _, body = request(f"{registry}/v2/{name}/manifests/{ref}", headers)
    assert status == 200, f"manifest {name}:{ref} answered {status}: {body[:300]!r}"
    return json.loads(body)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
