"""The tests' own token server, the way Docker Hub's auth service works:
RS256 JWTs with an x5c chain the registry trusts. Anonymous users may pull
every repository except private/*; alice (password wonderland) may pull and
push everything, as may the extra users a test passes (a publisher's
account, a client's own). POST is refused with 404, as registries without OAuth do,
so clients fall back to GET."""

import base64
import datetime
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

USER, PASSWORD = "alice", "wonderland"
ISSUER = "pullgate-test-issuer"
SERVICE = "pullgate-test-registry"


def make_signing_cert(cert_path: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pullgate test token issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


class TokenServer:
    def __init__(self, port: int, cert_path: str, users: dict[str, str] | None = None):
        self.port = port
        self.users = {USER: PASSWORD, **(users or {})}
        self.key, self.cert = make_signing_cert(cert_path)
        self.x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests = []  # (method, query, user) for assertions
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                server.requests.append(("POST", self.path, None))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.lower().startswith("basic "):
                    try:
                        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    except Exception:
                        user, password = "", ""
                    if server.users.get(user) != password:
                        server.requests.append(("GET", url.query, "bad-credentials"))
                        body = b'{"details":"incorrect username or password"}'
                        self.send_response(401)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                server.requests.append(("GET", url.query, user))
                token = server.issue(user, query.get("service", [""])[0], query.get("scope", []))
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def issue(self, user, service: str, scopes: list[str]) -> str:
        access = []
        for value in scopes:
            for scope in value.split(" "):
                parts = scope.split(":")
                if len(parts) != 3 or not parts[0].startswith("repository"):
                    continue
                rtype, name, actions = parts
                wanted = [a for a in actions.split(",") if a]
                if user in self.users:
                    granted = wanted
                elif name.startswith("private/"):
                    granted = []
                else:
                    granted = [a for a in wanted if a == "pull"]
                access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": ISSUER, "sub": user or "", "aud": service, "exp": now + 300,
            "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [self.x5c]})

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
