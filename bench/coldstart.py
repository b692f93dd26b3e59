"""Cold start of the gateway bootstrap, measured against a local Lambda
Runtime API (tests/e2e/harness/lambda_api.py) with DynamoDB, Firehose and
Secrets Manager on a local moto_server. Called by bench/coldstart.sh.

For each run: exec the release bootstrap; time until it asks for its first
invocation (Init, what Lambda reports as Init Duration); then the first
invocation's latency (a redirect: includes the first DynamoDB query) and a
warm one; with events on, also the time until the extension has flushed the
event to Firehose (billed in Lambda: the environment is frozen only after
that)."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from harness.aws_moto import CREDS, SECRET, STREAM, TABLE, MotoAws  # noqa: E402
from harness.lambda_api import LambdaApi  # noqa: E402

RUNS = int(os.environ.get("RUNS", "15"))


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def one_run(binary: str, moto: MotoAws, events: bool, log) -> dict:
    api = LambdaApi().start()
    env = dict(os.environ, **CREDS, AWS_LAMBDA_RUNTIME_API=api.address, AWS_LAMBDA_FUNCTION_NAME="gateway",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_ENDPOINT_URL=moto.url, PULLGATE_TABLE=TABLE, RUST_LOG="warn")
    if events:
        env.update(PULLGATE_FIREHOSE_STREAM=STREAM, PULLGATE_CLIENT_ID_SECRET=SECRET)
    with open(os.path.join(ROOT, "events", "manifest-get.json")) as f:
        payload = json.load(f)
    started = time.monotonic()
    proc = subprocess.Popen([binary], env=env, stdout=log, stderr=log)
    try:
        api.wait_ready()
        init = api.first_next - started
        first = api.invoke(payload)
        assert first.response and first.response["statusCode"] == 307, (first.response, first.error)
        flushed = None
        if events:
            api.wait_extensions_idle()
            flushed = time.monotonic() - first.dispatched
        warm = api.invoke(payload)
        if events:
            api.wait_extensions_idle()
        return {"init": init, "first": first.answered - first.dispatched, "warm": warm.answered - warm.dispatched,
                "flushed": flushed}
    finally:
        proc.terminate()
        proc.wait(10)
        api.stop()


def summary(label: str, values: list) -> str:
    values = sorted(v for v in values if v is not None)
    if not values:
        return ""
    return (f"  {label:<34} median {ms(statistics.median(values)):>7} ms"
            f"   min {ms(values[0]):>7} ms   max {ms(values[-1]):>7} ms")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        moto = MotoAws(tmp).start()
        try:
            moto.create_resources()
            moto.dynamodb.put_item(TableName=TABLE, Item={
                "host": {"S": "images.acme.dev"}, "name": {"S": "app"},
                "upstream": {"S": "docker.io/acme/app"}, "mode": {"S": "redirect"}})
            with open(os.path.join(tmp, "bootstrap.log"), "wb") as log:
                for events in (False, True):
                    results = [one_run(binary, moto, events, log) for _ in range(RUNS)]
                    title = ("events on (Secrets Manager read at init, extension registered)" if events
                             else "events off (no network call during init)")
                    print(f"{title}, {RUNS} cold starts:")
                    print(summary("exec -> first /invocation/next", [r["init"] for r in results]))
                    print(summary("first response (cold mapping read)", [r["first"] for r in results]))
                    print(summary("warm response (cached mapping)", [r["warm"] for r in results]))
                    print(summary("first response -> flush done", [r["flushed"] for r in results]))
        finally:
            moto.stop()


if __name__ == "__main__":
    main()
