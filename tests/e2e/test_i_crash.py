"""Crash safety of the event files: N requests, `kill -9` shortly after the
last answer, a restart on the same data directory. The restart recovers
the `.part` the killed run left; every request's event is then in a
`.json.gz` at most once, and only those answered within the stated bound
before the kill (one flush interval plus the collect interval) may be
missing. Needs no registry: a redirect mapping answers without upstream."""

import glob
import gzip
import http.client
import json
import os
import re
import signal
import threading
import time
import zlib

from conftest import serve_argv
from harness import procs

N = int(os.environ.get("PULLGATE_CRASH_REQUESTS", "20000"))
CONNECTIONS = 4
# The file sink's stated bound (crates/local/src/file_sink/mod.rs): a
# crash loses at most the events of the last flush interval plus the
# collect interval.
FLUSH_EVERY = 1.0
COLLECT_EVERY = 0.020
# How long after the last answer the process is killed: well inside the
# flush interval, so the bound is what is tested, not a lucky flush.
KILL_AFTER = 0.3
MAPPING = ('[[mappings]]\nhost = "127.0.0.1"\nname = "library/alpine"\n'
           'upstream = "docker.io/library/alpine"\nmode = "redirect"\n')


def serve(tmp, name, config, data, port):
    argv = serve_argv() + ["--config", config, "--listen", f"127.0.0.1:{port}",
                           "--data-dir", data, "--access-log", "off", "--threads", "2"]
    p = procs.Proc(name, argv, tmp)
    procs.wait_port(port, p.popen)
    return p


def load(port, answered):
    """Sends requests for tags t0..t{N-1} over a few keep-alive
    connections; `answered[i]` is when the answer to tag t{i} arrived."""
    errors = []

    def client(first):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for i in range(first, N, CONNECTIONS):
                conn.request("HEAD", f"/v2/library/alpine/manifests/t{i}",
                             headers={"User-Agent": "containerd/1.7.13"})
                response = conn.getresponse()
                response.read()
                answered[i] = time.monotonic()
                assert response.status == 307, response.status
            conn.close()
        except Exception as error:  # reported by the test, not lost in a thread
            errors.append(error)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def read_events(data):
    """Tags of every event in the complete files (what readers read)."""
    tags = []
    for path in glob.glob(os.path.join(data, "events", "dt=*", "*.json.gz")):
        with gzip.open(path) as f:
            for line in f:
                event = json.loads(line)
                assert event["status"] == 307 and event["kind"] == "manifest", event
                tags.append(event["reference"])
    return tags


def test_kill_9_loses_at_most_the_last_flush_interval(tmp_path):
    tmp = str(tmp_path)
    config = os.path.join(tmp, "crash.toml")
    with open(config, "w") as f:
        f.write(MAPPING)
    data = os.path.join(tmp, "data")
    port = procs.free_port()

    first = serve(tmp, "pullgate-crash-1", config, data, port)
    answered = [None] * N
    started = time.monotonic()
    load(port, answered)
    last = max(answered)
    time.sleep(max(0.0, last + KILL_AFTER - time.monotonic()))
    killed_at = time.monotonic()
    os.killpg(first.popen.pid, signal.SIGKILL)
    first.popen.wait(timeout=10)
    first.log.close()
    parts = glob.glob(os.path.join(data, "events", "dt=*", "*.part"))
    assert parts, "the killed run left no .part"
    # What the killed run left readable before any recovery: a reader of
    # the .part as it is gets the lines up to the last flush.
    readable = 0
    for part in parts:
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
        with open(part, "rb") as f:
            readable += decoder.decompress(f.read()).count(b"\n")

    second = serve(tmp, "pullgate-crash-2", config, data, port)
    # The server listens a moment before its SIGINT handler is in place
    # (crates/server/src/lib.rs): a SIGINT in between kills it outright.
    time.sleep(0.5)
    code = second.stop(sig=signal.SIGINT, timeout=30)
    log = second.log_text()
    assert code == 0, f"exit {code}: {log[-2000:]}"
    recovered = re.search(r".*event files left by an earlier run recovered.*", log)
    assert recovered, f"no recovery line in the log:\n{log[-2000:]}"
    recovered_line = recovered.group(0)
    recovered_count = int(re.search(r"events_recovered=(\d+)", recovered_line).group(1))

    tags = read_events(data)
    found = set(tags)
    window = FLUSH_EVERY + COLLECT_EVERY
    allowed = sum(1 for t in answered if t > killed_at - window)
    rate = N / (last - started)
    missing = [answered[i] for i in range(N) if f"t{i}" not in found]
    lost_window = (f"the earliest missing one was answered {killed_at - min(missing):.3f} s before the kill"
                   if missing else "none missing: a flush came between the last answer and the kill")
    print(f"\n{N} requests at {rate:.0f} req/s over {CONNECTIONS} connections, kill -9 "
          f"{killed_at - last:.2f} s after the last answer: {len(tags)} events found "
          f"({readable} readable in the .part before recovery), {N - len(found)} missing, "
          f"bound {allowed} (answered in the last {window:.2f} s before the kill); {lost_window}\n"
          f"recovery: {recovered_line.strip()}")
    assert len(tags) == len(found), f"{len(tags) - len(found)} events appear twice"
    assert found <= {f"t{i}" for i in range(N)}
    assert len(found) >= N - allowed, f"{N - len(found)} events lost, the bound allows {allowed}"
    assert recovered_count == len(tags), "every event found came from the recovered .part"
    assert not glob.glob(os.path.join(data, "events", "**", "*.part"), recursive=True)
    assert not glob.glob(os.path.join(data, "events", "**", "*.recovering"), recursive=True)
