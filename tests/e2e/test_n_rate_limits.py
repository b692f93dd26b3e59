"""In front of a registry that limits pulls the way Docker Hub does
(`harness/ratelimit.py`: 10 anonymous manifest GETs per source address per
window, HEAD free): 200 pulls of one tag by every client, all through
pullgate in proxy mode — so all from pullgate's one address — succeed with
intact digests, because proxied manifests are resolved with a HEAD and
served from the manifest cache; the front prints how few manifest GETs
reached it. With the cache off, the limit reaches the clients as
TOOMANYREQUESTS and the events record the 429s."""

import glob
import gzip
import json
import os
import signal
import threading

from conftest import serve_argv
from harness import procs
from harness.ratelimit import RateLimitFront

ANONYMOUS_LIMIT = 10
ACCOUNT_LIMIT = 100
PULLS_PER_CLIENT = 40
CLIENTS = ["skopeo", "podman", "buildah", "ctr", "docker"]


def start_pullgate(env, tmp, front_port, *extra):
    port = procs.free_port()
    host = f"127.0.0.1:{port}"
    mappings = os.path.join(tmp, "mappings.toml")
    with open(mappings, "w") as f:
        f.write(f'[[mappings]]\nhost = "{host}"\nname = "app"\n'
                f'upstream = "http://127.0.0.1:{front_port}/app"\nmode = "proxy"\n')
    data = os.path.join(tmp, "data")
    p = procs.Proc(f"pullgate-limits-{port}", [
        *serve_argv(), "--mappings", mappings, "--listen", host, "--data-dir", data,
        "--access-log", os.path.join(tmp, f"access-{port}.log"), "--client-id-key", "e2e-test-key", *extra,
    ], tmp)
    procs.wait_port(port, p.popen)
    return p, host, data


def events(data):
    out = []
    for path in glob.glob(os.path.join(data, "events", "dt=*", "*.json.gz")):
        out += [json.loads(line) for line in gzip.open(path)]
    return out


def test_200_pulls_of_one_tag_through_the_manifest_cache_stay_under_the_limit(env, tmp_path):
    assert "docker" in env.clients, f"docker is needed here: {env.docker_error}"
    front = RateLimitFront(procs.free_port(), env.upstream_ports["token"], ANONYMOUS_LIMIT, ACCOUNT_LIMIT).start()
    p, host, data = start_pullgate(env, str(tmp_path), front.port)
    expected = env.pushed[("token", "app", "single")]
    failures, digests = [], {}

    def pulls(name):
        client = env.clients[name]
        got = []
        for _ in range(PULLS_PER_CLIENT):
            try:
                got.append(client.pull(f"{host}/app:single", False, False))
            except AssertionError as error:  # procs.run's failure, with the client's output
                failures.append(f"{name}: {error}")
                return
        digests[name] = got

    try:
        threads = [threading.Thread(target=pulls, args=(name,)) for name in CLIENTS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        code = p.stop(sig=signal.SIGINT, timeout=30)
        front.stop()
    assert not failures, failures[0][-3000:]
    for name in CLIENTS:
        assert digests[name] == [expected] * PULLS_PER_CLIENT, f"{name}: {digests[name][:3]}"
    print(f"\n{len(CLIENTS) * PULLS_PER_CLIENT} pulls of one tag ({', '.join(CLIENTS)}) through pullgate in proxy mode: "
          f"{front.manifest_gets} manifest GETs and {front.manifest_heads} HEADs reached the rate-limited upstream "
          f"(limit {ANONYMOUS_LIMIT} anonymous GETs per address), {front.refused} refused")
    assert code == 0, p.log_text()[-2000:]
    assert front.refused == 0
    assert front.manifest_gets <= ANONYMOUS_LIMIT
    # Every client request is still an event: the counting is ours.
    manifest_events = [e for e in events(data) if e["kind"] == "manifest" and e["status"] == 200]
    assert len(manifest_events) >= len(CLIENTS) * PULLS_PER_CLIENT


def test_without_the_cache_the_limit_reaches_clients_as_toomanyrequests(env, tmp_path):
    front = RateLimitFront(procs.free_port(), env.upstream_ports["token"], ANONYMOUS_LIMIT, ACCOUNT_LIMIT).start()
    p, host, data = start_pullgate(env, str(tmp_path), front.port, "--manifest-cache-mib", "0")
    refusal = None
    try:
        for attempt in range(ANONYMOUS_LIMIT + 5):
            try:
                env.clients["skopeo"].pull(f"{host}/app:single", False, False)
            except AssertionError as error:
                refusal = (attempt, str(error))
                break
    finally:
        code = p.stop(sig=signal.SIGINT, timeout=30)
        front.stop()
    assert code == 0, p.log_text()[-2000:]
    assert refusal is not None, f"{ANONYMOUS_LIMIT + 5} pulls without the cache and no refusal"
    attempt, output = refusal
    print(f"\nwithout the cache, pull {attempt + 1} was refused by the limit; skopeo said: "
          f"{[line for line in output.splitlines() if 'toomanyrequests' in line.lower()][:1]}")
    assert "toomanyrequests" in output.lower(), output[-2000:]
    assert front.refused >= 1 and attempt <= ANONYMOUS_LIMIT
    limited = [e for e in events(data) if e["status"] == 429]
    assert limited and all(e["kind"] == "manifest" for e in limited), limited[:2]
