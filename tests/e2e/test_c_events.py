"""After the matrix: pullgate is stopped gracefully and its event files are
read back. Every request any client made (one access-log line each) is
exactly one event, with the runtime of the client that made it, and the
client address pullgate saw appears nowhere in the files."""

import gzip
import glob
import json
import os

from conftest import CLIENT_SOURCE_IP

RUNTIMES = {"skopeo", "podman", "buildah", "containerd", "docker", "unknown"}


def test_every_request_is_one_event_and_no_raw_address_is_stored(env):
    # At least one pull of our own, so the test stands alone under -k.
    host = env.hosts[("token", "auto", "renamed")]
    env.clients["skopeo"].pull(f"{host}/app:single", multi=False, creds=False)
    assert env.stop_pullgate() == 0, env.pullgate.log_text()[-3000:]
    files = glob.glob(os.path.join(env.data_dir, "events", "dt=*", "*.json.gz"))
    assert files, "no event files written"
    assert not glob.glob(os.path.join(env.data_dir, "events", "dt=*", "*.part")), "unfinished event files"
    events = []
    for path in files:
        raw = gzip.open(path).read()
        assert CLIENT_SOURCE_IP.encode() not in raw, f"raw client address stored in {path}"
        events += [json.loads(line) for line in raw.decode().splitlines()]
    with open(env.access_log) as f:
        requests = [line for line in f if line.strip()]
    assert len(events) == len(requests), f"{len(events)} events for {len(requests)} requests"
    ids = {e["request_id"] for e in events}
    assert len(ids) == len(events), "duplicate request ids"
    for e in events:
        assert e["v"] == 1
        assert e["prefix"] == "127.0.0.0/24"
        assert e["client_id"] and e["network_id"]
        assert e["runtime"] in RUNTIMES, e
        assert e["kind"] in {"ping", "token", "manifest", "blob", "tags", "referrers", "file", "invalid"}, e
    # Versions as each client reports itself (podman keeps containers/image's
    # default user agent, which carries the library's version, not podman's).
    for e in events:
        if e["runtime"] in ("skopeo", "buildah", "containerd", "docker"):
            assert e.get("runtime_version"), e
        if e["runtime"] == "docker":
            assert (e.get("os"), e.get("arch")) == ("linux", "amd64"), e
    seen = {e["runtime"] for e in events}
    runtime_of = {"ctr": "containerd"}
    expected = {runtime_of.get(c, c) for c in env.pulled_with}
    assert expected <= seen, seen
    # auto mode took the path the README's table says, for every request.
    for (upstream, mode, naming), host in env.hosts.items():
        if mode != "auto":
            continue
        for e in events:
            if e["host"] != host or e["kind"] != "manifest":
                continue
            redirected = e["runtime"] == "containerd" or (e["runtime"] == "docker" and naming == "unchanged")
            assert e["mode"] == ("redirect" if redirected else "proxy"), e
