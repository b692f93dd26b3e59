"""A rate-limiting front in front of a registry, enforcing Docker Hub's
documented rule ("Usage and limits"): manifest GETs (`/v2/*/manifests/*`)
that the registry answers are pulls (a 401 challenge is none), limited per source address for anonymous clients and per
account for authenticated ones, each over its own window; HEAD requests
are free; past the limit, 429 with Docker Hub's TOOMANYREQUESTS body, its
RateLimit headers and Retry-After. Everything else is relayed as is.

The account is the `sub` claim of the Bearer JWT the registry's token
server issued (empty for anonymous tokens), as Docker Hub's limit is per
Docker ID."""

import base64
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Docker Hub's body past the limit, as documented.
TOO_MANY = json.dumps({"errors": [{
    "code": "TOOMANYREQUESTS",
    "message": "You have reached your pull rate limit. You may increase the limit by authenticating "
               "and upgrading: https://www.docker.com/increase-rate-limit",
}]}).encode()
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


def account_of(authorization: str) -> str:
    """The `sub` of a Bearer JWT; "" for none, an anonymous token or a
    token that is no JWT."""
    if not authorization.lower().startswith("bearer "):
        return ""
    parts = authorization[7:].strip().split(".")
    if len(parts) != 3:
        return ""
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        return json.loads(base64.urlsafe_b64decode(payload)).get("sub") or ""
    except (ValueError, json.JSONDecodeError):
        return ""


class RateLimitFront:
    def __init__(self, port: int, upstream_port: int, anonymous_limit: int, account_limit: int,
                 window_secs: int = 3600):
        self.port = port
        self.upstream_port = upstream_port
        self.limits = {"anonymous": anonymous_limit, "account": account_limit}
        self.window = window_secs
        self.lock = threading.Lock()
        self.used = {}  # ("ip", addr) | ("account", sub) -> [window start, count]
        self.manifest_gets = 0
        self.manifest_heads = 0
        self.refused = 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                if "/manifests/" in self.path:
                    with front.lock:
                        front.manifest_heads += 1
                self.relay()

            def do_GET(self):
                key = None
                if "/manifests/" in self.path:
                    key, refusal = front.check(self.client_address[0], self.headers.get("Authorization", ""))
                    if refusal is not None:
                        limit, retry_after = refusal
                        self.send_response(429)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(TOO_MANY)))
                        self.send_header("RateLimit-Limit", f"{limit};w={front.window}")
                        self.send_header("RateLimit-Remaining", f"0;w={front.window}")
                        self.send_header("Retry-After", str(retry_after))
                        self.end_headers()
                        self.wfile.write(TOO_MANY)
                        return
                status = self.relay()
                if key is not None and 200 <= status < 300:
                    front.count(key)

            def relay(self) -> int:
                upstream = http.client.HTTPConnection("127.0.0.1", front.upstream_port, timeout=60)
                # Header by header: registries need every Accept line.
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        upstream.putheader(k, v)
                upstream.endheaders()
                response = upstream.getresponse()
                body = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                # HEAD answers keep the registry's Content-Length (the
                # manifest's size); GET answers say what was read.
                length = response.getheader("Content-Length") if self.command == "HEAD" else str(len(body))
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                upstream.close()
                return response.status

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def check(self, address: str, authorization: str):
        """The counter a manifest GET is charged to, and (limit, retry-after
        seconds) when that counter is at its limit, else None."""
        account = account_of(authorization)
        key = ("account", account) if account else ("ip", address)
        limit = self.limits["account" if account else "anonymous"]
        now = time.time()
        with self.lock:
            start, used = self.used.get(key, (now, 0))
            if now - start >= self.window:
                start, used = now, 0
            self.used[key] = (start, used)
            if used >= limit:
                self.refused += 1
                return key, (limit, int(self.window - (now - start)) + 1)
            return key, None

    def count(self, key):
        """One pull charged: a manifest GET the registry answered."""
        with self.lock:
            start, used = self.used[key]
            self.used[key] = (start, used + 1)
            self.manifest_gets += 1

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
