"""Bounded load with many connections (ApacheBench sends exactly N
requests): pullgate must leave exactly N events, one per request id, and
none of them lost at shutdown."""

import glob
import gzip
import json
import os
import re
import signal
import shutil

from conftest import _build_pullgate
from harness import procs

N = int(os.environ.get("PULLGATE_LOAD_REQUESTS", "200000"))
CONNECTIONS = 64


def test_exactly_one_event_per_request_under_load(env):
    assert shutil.which("ab"), "ApacheBench missing: run tests/install-deps.sh (apache2-utils)"
    port = procs.free_port()
    data = os.path.join(env.tmp, "load-data")
    config = os.path.join(env.tmp, "load.toml")
    with open(config, "w") as f:
        f.write('[[mappings]]\nhost = "127.0.0.1"\nname = "library/alpine"\nupstream = "docker.io/library/alpine"\nmode = "redirect"\n')
    p = procs.Proc("pullgate-load", [_build_pullgate(), "serve", "--config", config, "--listen", f"127.0.0.1:{port}",
                                     "--data-dir", data, "--access-log", "off"], env.tmp)
    procs.wait_port(port, p.popen)
    result = procs.run(["ab", "-q", "-k", "-n", str(N), "-c", str(CONNECTIONS), "-H", "User-Agent: containerd/1.7.13",
                        f"http://127.0.0.1:{port}/v2/library/alpine/manifests/3.20"], timeout=900)
    code = p.stop(sig=signal.SIGINT, timeout=300)
    assert code == 0, f"exit {code}: {p.log_text()[-2000:]}"
    complete = int(re.search(r"Complete requests:\s+(\d+)", result.stdout).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", result.stdout).group(1))
    rate = re.search(r"Requests per second:\s+([\d.]+)", result.stdout).group(1)
    assert (complete, failed) == (N, 0), result.stdout
    ids = set()
    count = 0
    for path in glob.glob(os.path.join(data, "events", "dt=*", "*.json.gz")):
        for line in gzip.open(path):
            event = json.loads(line)
            assert event["status"] == 307 and event["runtime"] == "containerd"
            ids.add(event["request_id"])
            count += 1
    print(f"\n{N} requests at {rate} req/s over {CONNECTIONS} connections -> {count} events")
    assert count == N, f"{count} events for {N} requests"
    assert len(ids) == N, "request ids are not unique"
