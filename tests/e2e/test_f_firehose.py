"""The Firehose sink through the real AWS SDK against moto_server on
loopback: events arrive in the S3 bucket Firehose delivers to, all of them
and once each; with the server stopped they are logged for replay, and
`pullgate replay` delivers them once it is back."""

import json
import os
import re
import subprocess

import pytest

from conftest import _build_pullgate
from harness.aws_moto import CREDS, STREAM, MotoAws


def replay(moto_url, path):
    env = dict(os.environ, AWS_ENDPOINT_URL=moto_url, **CREDS)
    return subprocess.run([_build_pullgate(), "replay", "--firehose-stream", STREAM, path],
                          capture_output=True, text=True, env=env, timeout=300)


def write_events(path, n, tag):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"v": 1, "time": "2026-11-22T10:00:00.000Z", "request_id": f"{tag}-{i}",
                                "host": "images.acme.dev", "method": "GET", "kind": "manifest", "status": 307,
                                "runtime": "docker", "ua": "docker/24.0.7 " + "x" * 200, "duration_us": 5}) + "\n")


@pytest.fixture
def moto(env):
    m = MotoAws(env.tmp).start()
    m.create_resources()
    yield m
    m.stop()


def test_events_arrive_in_s3_once_each(env, moto):
    path = os.path.join(env.tmp, "events-a.jsonl")
    write_events(path, 5000, "a")
    result = replay(moto.url, path)
    assert result.returncode == 0, result.stderr
    keys, events = moto.delivered()
    ids = [e["request_id"] for e in events]
    assert len(ids) == 5000 and len(set(ids)) == 5000, f"{len(ids)} delivered, {len(set(ids))} distinct"
    # Firehose's own layout: prefix/YYYY/MM/dd/HH/
    assert all(len(k.split("/")) == 6 and k.startswith("events/20") for k in keys), keys[:3]
    # Many events per record (Firehose bills records in 5 KB steps): as
    # few records as 1,000 KiB each allow.
    records = int(re.search(r"in (\d+) records", result.stderr).group(1))
    assert records == -(-os.path.getsize(path) // (1000 * 1024)), result.stderr


def test_stopped_firehose_logs_events_for_replay_and_replay_delivers_them(env, moto):
    path = os.path.join(env.tmp, "events-b.jsonl")
    write_events(path, 300, "b")
    moto.stop()
    result = replay(moto.url, path)
    assert result.returncode != 0
    logged = os.path.join(env.tmp, "undelivered.log")
    with open(logged, "w") as f:
        f.write(result.stderr)
    assert result.stderr.count("PULLGATE_UNDELIVERED_EVENT") == 300, result.stderr[-2000:]
    moto.start().create_resources()
    again = replay(moto.url, logged)
    assert again.returncode == 0, again.stderr
    _, events = moto.delivered()
    ids = sorted(e["request_id"] for e in events)
    assert ids == sorted(f"b-{i}" for i in range(300))
