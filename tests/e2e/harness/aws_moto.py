"""moto_server on loopback with the resources the gateway Lambda uses (the
mapping table, the event stream to S3, the client-id key secret), and a
request-counting TCP relay to put in front of one service: the tests stop
"DynamoDB" by stopping the relay, and count the DynamoDB calls the gateway
makes by reading the requests that cross it."""

import json
import os
import re
import signal
import socket
import sys
import threading
import uuid

import boto3

from harness import procs
from harness.relay import pipe

TABLE = "pullgate-mappings"
STREAM = "pullgate-events"
BUCKET = "pullgate-events-bucket"
SECRET = "pullgate/client-id-key"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
         "AWS_REGION": "us-east-1"}


class MotoAws:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = procs.free_port()
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
        assert os.path.exists(moto), "moto_server missing: run tests/install-deps.sh"
        self.proc = procs.Proc(f"moto-{uuid.uuid4().hex[:6]}", [moto, "-H", "127.0.0.1", "-p", str(self.port)],
                               self.tmp)
        procs.wait_port(self.port, self.proc.popen)
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name="us-east-1")
        self.s3 = session.client("s3", endpoint_url=self.url)
        self.dynamodb = session.client("dynamodb", endpoint_url=self.url)
        self.firehose = session.client("firehose", endpoint_url=self.url)
        self.secrets = session.client("secretsmanager", endpoint_url=self.url)
        return self

    def create_resources(self):
        # The same key schema as template.yaml's MappingTable.
        self.dynamodb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "host", "AttributeType": "S"},
                                  {"AttributeName": "name", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "host", "KeyType": "HASH"},
                       {"AttributeName": "name", "KeyType": "RANGE"}])
        self.s3.create_bucket(Bucket=BUCKET)
        self.create_stream()
        self.secrets.create_secret(Name=SECRET, SecretString="k" * 48)

    def create_stream(self):
        self.firehose.create_delivery_stream(
            DeliveryStreamName=STREAM, DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": f"arn:aws:s3:::{BUCKET}",
                # moto does not expand !{timestamp:...}: plain prefix.
                "Prefix": "events/", "ErrorOutputPrefix": "errors/"})

    def stop(self):
        if self.proc:
            self.proc.stop(sig=signal.SIGKILL)

    def delivered(self):
        """(object keys, events) under the stream's `events/` prefix."""
        keys, events = [], []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="events/"):
            for obj in page.get("Contents", []):
                keys.append(obj["Key"])
                body = self.s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()
                events += [json.loads(line) for line in body.splitlines() if line]
        return keys, events

    def delivered_events(self):
        return self.delivered()[1]


class CountingRelay:
    """TCP relay that counts the DynamoDB operations crossing it
    (`X-Amz-Target: DynamoDB_20120810.<Operation>` request headers)."""

    TARGET = re.compile(rb"x-amz-target:\s*DynamoDB_20120810\.(\w+)", re.IGNORECASE)

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = procs.free_port()
        self.lock = threading.Lock()
        self.streams: list[bytearray] = []
        self.conns: list[socket.socket] = []
        self.sock = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, args=(self.sock,), daemon=True).start()
        return self

    def stop(self):
        """Refuses new connections and cuts the open ones: the service is gone."""
        with self.lock:
            sock, self.sock = self.sock, None
            conns, self.conns = self.conns, []
        if sock:
            # shutdown wakes the thread blocked in accept(); close alone
            # would leave the socket listening until accept returns.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def operations(self) -> list[str]:
        with self.lock:
            return [m.decode() for s in self.streams for m in self.TARGET.findall(bytes(s))]

    def _accept(self, sock):
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            if self.sock is not sock:
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            stream = bytearray()
            with self.lock:
                self.streams.append(stream)
                self.conns += [client, upstream]
            threading.Thread(target=pipe, args=(client, upstream, self._recorder(stream)), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    def _recorder(self, stream: bytearray):
        def record(data: bytes):
            with self.lock:
                stream.extend(data)
        return record
