"""`serve` as operators run it: the mapping file reloaded on SIGHUP and when
it changes (a broken file refused, the old mappings kept), and the AWS
adapters in a server: mappings from the DynamoDB table `pullgate map`
writes, events to Firehose, the client-id key from Secrets Manager — all
on moto_server."""

import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from conftest import _build_pullgate, serve_argv
from harness import procs
from harness.aws_moto import CREDS, SECRET, STREAM, TABLE, MotoAws

HOST = "127.0.0.1"


def mapping(name: str, upstream: str) -> str:
    return f'[[mappings]]\nhost = "{HOST}"\nname = "{name}"\nupstream = "{upstream}"\nmode = "redirect"\n'


def status(port: int, name: str) -> int:
    """The status of a manifest HEAD for NAME (307 mapped, 404 not)."""
    request = urllib.request.Request(f"http://{HOST}:{port}/v2/{name}/manifests/1.0", method="HEAD")
    opener = urllib.request.build_opener(NoRedirect)
    try:
        return opener.open(request, timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return time.time()
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def replace_file(path: str, text: str):
    """Written beside and renamed over, as deploy tools do."""
    with open(path + ".new", "w") as f:
        f.write(text)
    os.rename(path + ".new", path)


def test_the_mapping_file_reloads_on_change_and_on_sighup_and_a_broken_one_is_refused(tmp_path):
    port = procs.free_port()
    path = str(tmp_path / "mappings.toml")
    with open(path, "w") as f:
        f.write(mapping("app", "docker.io/acme/app"))
    p = procs.Proc("serve-reload", [*serve_argv(), "--mappings", path, "--listen", f"{HOST}:{port}",
                                    "--events", "off", "--access-log", "off"], str(tmp_path))
    try:
        procs.wait_port(port, p.popen)
        assert status(port, "app") == 307

        # A change of the file: the new mapping serves, the removed one 404s.
        replace_file(path, mapping("tools", "docker.io/acme/tools"))
        wait_for(lambda: status(port, "tools") == 307, 10, "the new mapping serves")
        assert status(port, "app") == 404

        # A broken file: refused with the reason, the old set keeps serving.
        replace_file(path, '[[mappings]]\nhost = "127.0.0.1"\nname = "x"\n')
        wait_for(lambda: "new mapping file refused" in p.log_text(), 10, "the broken file is refused")
        refused = next(line for line in p.log_text().splitlines() if "new mapping file refused" in line)
        print(f"\n{refused}")
        assert "error=" in refused and path in refused, refused
        assert status(port, "tools") == 307

        # SIGHUP alone: the fixed file loads on change; then it is rewritten
        # in place with the same size, inode and modification time, so only
        # the signal can make the new content load.
        replace_file(path, mapping("tools", "docker.io/acme/tools"))
        wait_for(lambda: p.log_text().count("mappings reloaded") >= 2, 10, "the fixed file reloads")
        same_size = mapping("tool2", "docker.io/acme/tool2")
        before = os.stat(path)
        assert len(same_size) == before.st_size
        with open(path, "r+") as f:
            f.write(same_size)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        time.sleep(2.5)
        assert status(port, "tool2") == 404, "reloaded without a signal"
        os.killpg(p.popen.pid, signal.SIGHUP)
        wait_for(lambda: status(port, "tool2") == 307, 5, "SIGHUP reloads")
        assert "trigger=Signal" in p.log_text()
    finally:
        code = p.stop(sig=signal.SIGINT)
    assert code == 0, p.log_text()[-2000:]


@pytest.fixture
def moto(tmp_path):
    aws = MotoAws(str(tmp_path)).start()
    aws.create_resources()
    yield aws
    aws.stop()


def pullgate_map(moto_url: str, *args):
    env = dict(os.environ, AWS_ENDPOINT_URL=moto_url, **CREDS)
    return procs.run([_build_pullgate(), "map", "--table", TABLE, *args], env=env, timeout=120)


def test_serve_on_dynamodb_and_firehose_serves_a_mapping_added_with_pullgate_map(tmp_path, moto):
    port = procs.free_port()
    env = dict(os.environ, AWS_ENDPOINT_URL=moto.url, **CREDS)
    ttl = 2
    p = procs.Proc("serve-aws", [*serve_argv(), "--mappings", f"dynamodb:{TABLE}", "--events", f"firehose:{STREAM}",
                                 "--client-id-secret", SECRET, "--mapping-ttl-secs", str(ttl),
                                 "--negative-ttl-secs", str(ttl), "--listen", f"{HOST}:{port}",
                                 "--data-dir", str(tmp_path / "data")], str(tmp_path), env=env)
    try:
        procs.wait_port(port, p.popen)
        assert status(port, "app") == 404  # not in the table yet (remembered for the negative TTL)
        pullgate_map(moto.url, "add", f"{HOST}/app", "docker.io/acme/app", "--mode", "redirect")
        added = time.time()
        served = wait_for(lambda: status(port, "app") == 307, ttl + 3, "the added mapping serves")
        print(f"\nmapping added with `pullgate map add` served after {served - added:.1f}s (TTL {ttl}s)")
        assert served - added <= ttl + 1
        for _ in range(5):
            assert status(port, "app") == 307
    finally:
        code = p.stop(sig=signal.SIGINT)
    assert code == 0, p.log_text()[-2000:]
    assert "events flushed to Firehose" in p.log_text()
    events = moto.delivered_events()
    redirects = [e for e in events if e["status"] == 307 and e["name"] == "app"]
    assert len(redirects) >= 6, f"{len(redirects)} redirect events delivered of {len(events)}"
    assert len({e["request_id"] for e in events}) == len(events), "an event was delivered twice"
    # The key came from the secret, not a file in the data directory.
    assert not os.path.exists(tmp_path / "data" / "client-id.key")


def readyz(admin_port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{admin_port}/readyz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_readyz_fails_while_the_firehose_stream_refuses_and_recovers_when_it_takes_events_again(tmp_path, moto):
    port, admin = procs.free_port(), procs.free_port()
    mappings = tmp_path / "mappings.toml"
    mappings.write_text(mapping("app", "docker.io/acme/app"))
    env = dict(os.environ, AWS_ENDPOINT_URL=moto.url, **CREDS)
    p = procs.Proc("serve-readyz", [*serve_argv(), "--mappings", str(mappings), "--events", f"firehose:{STREAM}",
                                    "--admin-listen", f"{HOST}:{admin}", "--listen", f"{HOST}:{port}",
                                    "--data-dir", str(tmp_path / "data"), "--client-id-key", "e2e-test-key"],
                   str(tmp_path), env=env)

    def request_until(want: int, what: str, timeout: float) -> str:
        """Requests (each an event to flush) until /readyz answers `want`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert status(port, "app") == 307
            code, body = readyz(admin)
            if code == want:
                return body
            time.sleep(0.2)
        raise AssertionError(f"/readyz not {want} within {timeout}s: {what}")

    try:
        procs.wait_port(port, p.popen)
        procs.wait_port(admin, p.popen)
        request_until(200, "ready with mappings and a stream that takes events", 10)
        # The stream goes away: every PutRecordBatch fails from the next flush on.
        moto.firehose.delete_delivery_stream(DeliveryStreamName=STREAM)
        body = request_until(503, "the stream refuses", 30)
        assert "event sink not accepting" in body, body
        # It comes back: the next batch gets in and the server is ready again.
        moto.create_stream()
        request_until(200, "the stream takes events again", 60)
    finally:
        code = p.stop(sig=signal.SIGINT)
    assert code == 0, p.log_text()[-2000:]
    assert "PutRecordBatch failed" in p.log_text()
