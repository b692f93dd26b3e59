"""Upstream credentials (issue 13) against real servers: a token-auth
distribution behind the tests' token server (the Docker Hub way), a
Basic-auth distribution (htpasswd, bcrypt) standing for an account-only
registry and for ECR's registry API (user `AWS`, the token
`ecr:GetAuthorizationToken` hands out as password), and moto_server for
ECR and Secrets Manager. pullgate-serve (with the `aws` feature) proxies:

- an anonymous client gets a token asked with the mapping's account; a
  client with credentials of its own (skopeo --creds) gets one asked with
  those, as the token server's record of the Basic user shows;
- `env:`, `file:`, `secretsmanager:` and `ecr` credentials each pull an
  image from the Basic-auth registry with a real client, bytes verified;
- a token request naming a repository outside the mapping is refused, and
  the publisher's account is never sent for it;
- the gateway Lambda (its bootstrap on the local Runtime API) does the
  same for `secretsmanager:` and `ecr` mappings that `pullgate map add
  --credentials` wrote to DynamoDB;
- no password or token used appears in pullgate's log, access log, event
  files or any response body of the run.

Needs no session environment: it starts its own registries (no podman,
containerd or docker)."""

import base64
import glob
import gzip
import hashlib
import json
import os
import secrets
import signal
import tempfile
import urllib.error
import urllib.request
from urllib.parse import parse_qs

import bcrypt
import boto3
import pytest

from conftest import registry_config, serve_argv
from harness import images, procs
from harness.aws_moto import CREDS, MotoAws
from harness.tokenserver import PASSWORD, USER, TokenServer

PUBLISHER = "publisher"
CLIENT = "bob"
# The Basic-auth registry's accounts, one per credential source.
ENV_USER, FILE_USER, SM_USER, ECR_USER = "carol", "erin", "dave", "AWS"
SECRET_ID = "pullgate/upstream-dave"


def random_password() -> str:
    return "pw-" + secrets.token_hex(12)


def htpasswd(path: str, users: dict[str, str]):
    """distribution's htpasswd auth takes bcrypt entries only."""
    with open(path, "w") as f:
        for user, password in users.items():
            f.write(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n")


class Run:
    """Everything the module starts, and every text the run produced that
    must not hold a secret."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        self.servers = []
        self.bodies = []  # response bodies and client output of the run

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        for s in self.servers:
            s.stop()


def push(layout, dest: str, creds: str) -> str:
    procs.run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout.root}:single", dest])
    raw = procs.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, dest]).stdout.encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.fixture(scope="module")
def run():
    with procs.scratch_dir("pullgate-creds-") as tmp:
        r = Run(tmp)
        try:
            _start(r)
            yield r
        finally:
            r.close()


def _start(r: Run):
    tmp = r.tmp
    r.passwords = {PUBLISHER: random_password(), CLIENT: random_password(), ENV_USER: random_password(),
                   FILE_USER: random_password(), SM_USER: random_password()}

    # moto: the ECR token (as ECR's registry would take it) and the secret.
    r.moto = MotoAws(tmp).start()
    r.procs.append(r.moto.proc)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    ecr = session.client("ecr", endpoint_url=r.moto.url)
    r.ecr_token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, r.passwords[ECR_USER] = base64.b64decode(r.ecr_token).decode().partition(":")
    assert user == ECR_USER
    r.moto.secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps(
        {"username": SM_USER, "password": r.passwords[SM_USER]}))

    # The token-auth registry: anonymous may not pull private/*, the
    # publisher and the client may.
    token = TokenServer(procs.free_port(), f"{tmp}/token-cert.pem",
                        users={PUBLISHER: r.passwords[PUBLISHER], CLIENT: r.passwords[CLIENT]})
    token.start()
    r.servers.append(token)
    r.token = token
    token_port = procs.free_port()
    registry_config(f"{tmp}/token.yml", token_port, f"{tmp}/token-data",
                    auth={"realm": f"http://127.0.0.1:{token.port}/token", "cert": f"{tmp}/token-cert.pem"})
    p = procs.Proc("registry-token", ["docker-registry", "serve", f"{tmp}/token.yml"], tmp)
    r.procs.append(p)
    procs.wait_port(token_port, p.popen)

    # Basic-auth registries (htpasswd), one per credential source, each
    # knowing only that source's account: a pull through a mapping proves
    # its own credentials were sent.
    r.basic = {}
    for user in (ENV_USER, FILE_USER, SM_USER, ECR_USER):
        port = procs.free_port()
        htpasswd(f"{tmp}/htpasswd-{user}", {user: r.passwords[user]})
        registry_config(f"{tmp}/basic-{user}.yml", port, f"{tmp}/basic-{user}-data")
        with open(f"{tmp}/basic-{user}.yml", "a") as f:
            f.write(f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {tmp}/htpasswd-{user}\n")
        p = procs.Proc(f"registry-basic-{user}", ["docker-registry", "serve", f"{tmp}/basic-{user}.yml"], tmp)
        r.procs.append(p)
        procs.wait_port(port, p.popen)
        r.basic[user] = f"127.0.0.1:{port}"

    layout = images.build(f"{tmp}/layout")
    r.pushed = {
        "private": push(layout, f"docker://127.0.0.1:{token_port}/private/app:single", f"{USER}:{PASSWORD}"),
        "public": push(layout, f"docker://127.0.0.1:{token_port}/app:single", f"{USER}:{PASSWORD}"),
    }
    for user, upstream in r.basic.items():
        r.pushed[user] = push(layout, f"docker://{upstream}/basic/app:single", f"{user}:{r.passwords[user]}")

    # pullgate-serve: one host per upstream (one listener each, the port
    # is part of the host).
    file_creds = f"{tmp}/erin.json"
    with open(file_creds, "w") as f:
        json.dump({"username": FILE_USER, "password": r.passwords[FILE_USER]}, f)
    os.chmod(file_creds, 0o600)
    r.token_host = f"127.0.0.1:{procs.free_port()}"
    r.basic_host = f"127.0.0.1:{procs.free_port()}"
    token_up = f"http://127.0.0.1:{token_port}"
    r.token_upstream = f"127.0.0.1:{token_port}"
    entries = [
        (r.token_host, "private/app", f"{token_up}/private/app", "env:PUBLISHER"),
        (r.token_host, "app", f"{token_up}/app", None),
        (r.basic_host, "env/app", f"http://{r.basic[ENV_USER]}/basic/app", "env:CAROL"),
        (r.basic_host, "file/app", f"http://{r.basic[FILE_USER]}/basic/app", f"file:{file_creds}"),
        (r.basic_host, "sm/app", f"http://{r.basic[SM_USER]}/basic/app", f"secretsmanager:{SECRET_ID}"),
        (r.basic_host, "ecr/app", f"http://{r.basic[ECR_USER]}/basic/app", "ecr"),
    ]
    with open(f"{tmp}/mappings.toml", "w") as f:
        for host, name, upstream, credentials in entries:
            f.write(f'[[mappings]]\nhost = "{host}"\nname = "{name}"\nupstream = "{upstream}"\nmode = "proxy"\n')
            if credentials:
                f.write(f'credentials = "{credentials}"\n')
            f.write("\n")
    environment = {**os.environ, **CREDS, "AWS_ENDPOINT_URL": r.moto.url, "PULLGATE_LOG": "debug",
                   "PUBLISHER_USERNAME": PUBLISHER, "PUBLISHER_PASSWORD": r.passwords[PUBLISHER],
                   "CAROL_USERNAME": ENV_USER, "CAROL_PASSWORD": r.passwords[ENV_USER]}
    r.data_dir = f"{tmp}/data"
    r.access_log = f"{tmp}/access.log"
    r.pullgate = procs.Proc("pullgate-creds", [
        *serve_argv(), "--mappings", f"{tmp}/mappings.toml", "--listen", r.token_host, "--listen", r.basic_host,
        "--data-dir", r.data_dir, "--access-log", r.access_log, "--client-id-key", "e2e-test-key",
    ], tmp, env=environment)
    r.procs.append(r.pullgate)
    for host in (r.token_host, r.basic_host):
        procs.wait_port(int(host.rsplit(":", 1)[1]), r.pullgate.popen)


def pull(r: Run, ref: str, creds: tuple[str, str] | None = None) -> str:
    """skopeo copy to an OCI layout; every blob's bytes checked against its
    digest; the manifest's digest returned."""
    dest = tempfile.mkdtemp(dir=r.tmp, prefix="pulled-")
    argv = ["skopeo", "copy", "--src-tls-verify=false", "--authfile", f"{r.tmp}/no-auth.json"]
    if not os.path.exists(f"{r.tmp}/no-auth.json"):
        with open(f"{r.tmp}/no-auth.json", "w") as f:
            f.write("{}")
    argv += ["--src-creds", ":".join(creds)] if creds else ["--src-no-creds"]
    result = procs.run(argv + [f"docker://{ref}", f"oci:{dest}:pulled"])
    r.bodies.append(result.stdout + result.stderr)
    for path in glob.glob(f"{dest}/blobs/sha256/*"):
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == os.path.basename(path), path
    with open(f"{dest}/index.json") as f:
        return json.load(f)["manifests"][0]["digest"]


def get(r: Run, url: str, headers=None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read().decode(errors="replace")
    r.bodies.append(body)
    return status, body


def token_requests(r: Run, user) -> list[str]:
    return [query for _, query, who in r.token.requests if who == user]


def test_an_anonymous_client_gets_a_token_asked_with_the_publisher_s_account(run):
    # Without pullgate, anonymous gets nothing of private/*.
    direct = procs.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--no-creds",
                        f"docker://{run.token_upstream}/private/app:single"], check=False)
    assert direct.returncode != 0, direct.stdout
    before = len(token_requests(run, PUBLISHER))
    assert pull(run, f"{run.token_host}/private/app:single") == run.pushed["private"]
    asked = token_requests(run, PUBLISHER)[before:]
    print(f"\nanonymous pull of private/app: the token server saw {len(asked)} request(s) as {PUBLISHER!r}: {asked}")
    assert asked, run.token.requests
    # The mapping's repository, pull only.
    for query in asked:
        assert parse_qs(query)["scope"] == ["repository:private/app:pull"], query


def test_a_client_s_own_credentials_are_the_ones_the_token_server_sees(run):
    before = {user: len(token_requests(run, user)) for user in (PUBLISHER, CLIENT)}
    digest = pull(run, f"{run.token_host}/private/app:single", creds=(CLIENT, run.passwords[CLIENT]))
    assert digest == run.pushed["private"]
    by_client = token_requests(run, CLIENT)[before[CLIENT]:]
    print(f"\nskopeo --src-creds {CLIENT}:…: the token server saw {len(by_client)} request(s) as {CLIENT!r}")
    assert by_client
    assert len(token_requests(run, PUBLISHER)) == before[PUBLISHER], "the publisher's account was used for a client with its own"


def test_a_scope_outside_the_mapping_is_refused_and_the_publisher_s_account_not_sent(run):
    before = len(run.token.requests)
    base = f"http://{run.token_host}/token?service=pullgate"
    status, body = get(run, f"{base}&scope=repository:private/app:pull&scope=repository:app:pull")
    print(f"\nscopes private/app + app, anonymous: {status} {body.strip()}")
    assert status == 403 and "DENIED" in body, (status, body)
    assert len(run.token.requests) == before, run.token.requests[before:]
    # Inside the mapping a push is asked as a pull.
    status, body = get(run, f"{base}&scope=repository:private/app:pull,push")
    assert status == 200, (status, body)
    asked = run.token.requests[before:]
    assert [(who, parse_qs(q)["scope"]) for _, q, who in asked] == [(PUBLISHER, ["repository:private/app:pull"])], asked
    # An unmapped name only: no token either.
    status, body = get(run, f"{base}&scope=repository:elsewhere/x:pull")
    assert status in (401, 403) and "DENIED" in body, (status, body)
    assert len(run.token.requests) == before + 1


@pytest.mark.parametrize("name,user", [("env/app", ENV_USER), ("file/app", FILE_USER), ("sm/app", SM_USER),
                                       ("ecr/app", ECR_USER)])
def test_a_basic_auth_upstream_serves_with_each_credential_source(run, name, user):
    # The registry knows only this source's account, and refuses anonymous
    # and other accounts' requests.
    status, _ = get(run, f"http://{run.basic[user]}/v2/basic/app/manifests/single")
    assert status == 401
    other = next(u for u in run.basic if u != user)
    basic = base64.b64encode(f"{other}:{run.passwords[other]}".encode()).decode()
    status, _ = get(run, f"http://{run.basic[user]}/v2/basic/app/manifests/single", {"Authorization": f"Basic {basic}"})
    assert status == 401
    assert pull(run, f"{run.basic_host}/{name}:single") == run.pushed[user]


def test_the_gateway_lambda_proxies_with_secretsmanager_and_ecr_credentials(run, tmp_path):
    """The Lambda entry point's wiring: mappings written with
    `pullgate map add --credentials` into DynamoDB, the bootstrap binary
    on the local Runtime API, its secret and its ECR token from moto."""
    from test_g_lambda import Function, body_of, load_event, pullgate_map
    from harness.aws_moto import TABLE

    run.moto.create_resources()
    host = "images.creds.test"
    for name, user, ref in (("sm/app", SM_USER, f"secretsmanager:{SECRET_ID}"), ("ecr/app", ECR_USER, "ecr")):
        added = pullgate_map(run.moto.url, "--table", TABLE, "add", f"{host}/{name}",
                             f"http://{run.basic[user]}/basic/app", "--mode", "proxy", "--credentials", ref)
        assert added.returncode == 0, added.stderr
        run.bodies.append(added.stdout + added.stderr)
    fn = Function(str(tmp_path), run.moto, run.moto.url)
    try:
        for name, user in (("sm/app", SM_USER), ("ecr/app", ECR_USER)):
            payload = load_event("manifest-get")
            path = f"/v2/{name}/manifests/single"
            payload["rawPath"] = payload["requestContext"]["http"]["path"] = path
            payload["headers"]["host"] = payload["requestContext"]["domainName"] = host
            payload["headers"]["accept"] = "application/vnd.oci.image.manifest.v1+json"
            # An anonymous client that cannot follow a redirect: proxied.
            payload["headers"]["user-agent"] = payload["requestContext"]["http"]["userAgent"] = "skopeo/1.9.3"
            response = fn.invoke(payload)
            body = body_of(response)
            run.bodies.append(body)
            assert response["statusCode"] == 200, (response, fn.proc.log_text()[-3000:])
            assert "sha256:" + hashlib.sha256(body.encode()).hexdigest() == run.pushed[user]
    finally:
        fn.stop()
        run.bodies.append(fn.proc.log_text())


def test_no_password_or_token_is_in_any_log_event_or_body(run):
    code = run.pullgate.stop(sig=signal.SIGINT, timeout=30)
    assert code == 0, run.pullgate.log_text()[-2000:]
    secrets_used = {}
    for user, password in run.passwords.items():
        secrets_used[f"{user} password"] = password
        secrets_used[f"{user} Basic"] = base64.b64encode(f"{user}:{password}".encode()).decode()
    secrets_used["ECR token"] = run.ecr_token
    texts = {"pullgate log": run.pullgate.log_text(), "access log": open(run.access_log).read()}
    events = 0
    for path in glob.glob(f"{run.data_dir}/**/*", recursive=True):
        if os.path.isfile(path):
            data = open(path, "rb").read()
            if path.endswith(".gz"):
                data = gzip.decompress(data)
                events += data.count(b"\n")
            texts[path] = data.decode(errors="replace")
    for i, body in enumerate(run.bodies):
        texts[f"body {i}"] = body
    found = [(what, where) for what, value in secrets_used.items() for where, text in texts.items() if value in text]
    print(f"\n{len(secrets_used)} secrets looked for in {len(texts)} texts "
          f"({len(texts['pullgate log'].splitlines())} log lines at debug, {events} events, "
          f"{len(run.bodies)} bodies and client outputs): found {len(found)}")
    assert events > 0
    assert not found, found
