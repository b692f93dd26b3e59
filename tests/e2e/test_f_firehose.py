"""The Firehose sink through the real AWS SDK against moto_server on
loopback: events arrive in the S3 bucket Firehose delivers to, all of them
and once each; with the server stopped they are logged for replay, and
`pullgate replay` delivers them once it is back."""

import json
import os
import signal
import subprocess
import sys
import uuid

import boto3
import pytest

from conftest import _build_pullgate
from harness import procs

STREAM = "pullgate-events"
BUCKET = "pullgate-events-bucket"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
         "AWS_REGION": "us-east-1"}


class Moto:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = procs.free_port()
        self.proc = None

    def start(self):
        moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
        assert os.path.exists(moto), "moto_server missing: run tests/install-deps.sh"
        self.proc = procs.Proc(f"moto-{uuid.uuid4().hex[:6]}", [moto, "-H", "127.0.0.1", "-p", str(self.port)], self.tmp)
        procs.wait_port(self.port, self.proc.popen)
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name="us-east-1")
        self.s3 = session.client("s3", endpoint_url=self.url)
        self.firehose = session.client("firehose", endpoint_url=self.url)
        self.s3.create_bucket(Bucket=BUCKET)
        self.firehose.create_delivery_stream(
            DeliveryStreamName=STREAM,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": f"arn:aws:s3:::{BUCKET}",
                "Prefix": "events/",
                "ErrorOutputPrefix": "errors/",
            },
        )

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc:
            self.proc.stop(sig=signal.SIGKILL)

    def delivered(self):
        events = []
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="events/"):
            for obj in page.get("Contents", []):
                keys.append(obj["Key"])
                body = self.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()
                events += [json.loads(line) for line in body.splitlines() if line]
        return keys, events


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
    m = Moto(env.tmp)
    m.start()
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
    import re
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
    moto.start()
    again = replay(moto.url, logged)
    assert again.returncode == 0, again.stderr
    _, events = moto.delivered()
    ids = sorted(e["request_id"] for e in events)
    assert ids == sorted(f"b-{i}" for i in range(300))
