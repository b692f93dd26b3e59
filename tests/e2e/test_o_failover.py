"""Automatic failover: two distribution registries with the same images,
one mapping per mode with the first as primary and the second as
fallback. Every client pulls; the primary is stopped between pulls; every
client's pulls keep succeeding through the fallback — proxied requests are
retried on it at once, redirected clients are sent to it as soon as the
probe of the primary's /v2/ fails — and go back to the primary once it
answers again. The events say which upstream served and that it was a
failover."""

import glob
import gzip
import json
import os
import signal
import time

from conftest import registry_config, serve_argv
from harness import procs

CLIENTS = ["skopeo", "podman", "buildah", "ctr", "docker"]
MODES = ["proxy", "redirect"]
PROBE_SECS = 1


def push(env, port):
    for tag in ("single", "multi"):
        argv = ["skopeo", "copy", "-q", "--dest-tls-verify=false"] + (["--all"] if tag == "multi" else [])
        procs.run(argv + [f"oci:{env.tmp}/layout:{tag}", f"docker://127.0.0.1:{port}/app:{tag}"])


class Registry:
    """A distribution registry that can be stopped and started again on
    its port, its storage kept."""

    def __init__(self, tmp, name):
        self.tmp, self.name = tmp, name
        self.port = procs.free_port()
        self.config = os.path.join(tmp, f"{name}.yml")
        registry_config(self.config, self.port, os.path.join(tmp, f"{name}-data"))
        self.proc = None

    def start(self):
        self.proc = procs.Proc(f"{self.name}-{int(time.time() * 1000)}", ["docker-registry", "serve", self.config],
                               self.tmp)
        procs.wait_port(self.port, self.proc.popen)

    def stop(self):
        self.proc.stop(sig=signal.SIGKILL)


def events(data):
    out = []
    for path in glob.glob(os.path.join(data, "events", "dt=*", "*.json.gz")):
        out += [json.loads(line) for line in gzip.open(path)]
    return out


def wait_log(proc, text, timeout):
    deadline = time.time() + timeout
    while text not in proc.log_text():
        assert time.time() < deadline, f"{text!r} not logged within {timeout}s:\n{proc.log_text()[-2000:]}"
        time.sleep(0.1)


def test_pulls_go_on_through_the_fallback_while_the_primary_is_down(env, tmp_path):
    assert "docker" in env.clients, f"docker is needed here: {env.docker_error}"
    tmp = str(tmp_path)
    primary, fallback = Registry(tmp, "primary"), Registry(tmp, "fallback")
    primary.start()
    fallback.start()
    push(env, primary.port)
    push(env, fallback.port)
    expected = env.pushed[("noauth", "app", "single")]

    ports = {mode: procs.free_port() for mode in MODES}
    hosts = {mode: f"127.0.0.1:{port}" for mode, port in ports.items()}
    mappings = os.path.join(tmp, "mappings.toml")
    with open(mappings, "w") as f:
        for mode, host in hosts.items():
            f.write(f'[[mappings]]\nhost = "{host}"\nname = "app"\nmode = "{mode}"\n'
                    f'upstream = "http://127.0.0.1:{primary.port}/app"\n'
                    f'fallback = "http://127.0.0.1:{fallback.port}/app"\n\n')
    data = os.path.join(tmp, "data")
    listen = [arg for port in ports.values() for arg in ("--listen", f"127.0.0.1:{port}")]
    p = procs.Proc("pullgate-failover", [
        *serve_argv(), "--mappings", mappings, *listen, "--data-dir", data, "--access-log", "off",
        "--client-id-key", "e2e-test-key", "--health-probe-secs", str(PROBE_SECS),
    ], tmp)
    for port in ports.values():
        procs.wait_port(port, p.popen)

    def pull_all(phase):
        for mode in MODES:
            for name in CLIENTS:
                digest = env.clients[name].pull(f"{hosts[mode]}/app:single", False, False)
                assert digest == expected, f"{phase}, {mode}, {name}: {digest}"

    try:
        pull_all("primary up")
        # The probe has seen the primary answer (it is watched from the
        # first request): a stop is now a switch, not an unknown.
        time.sleep(PROBE_SECS * 2)
        primary.stop()
        stopped = time.time()
        # Proxied pulls right away: the failed request is retried on the
        # fallback. Redirected clients talk to the primary themselves, so
        # they are sent to the fallback once the probe has seen it fail.
        for name in CLIENTS:
            assert env.clients[name].pull(f"{hosts['proxy']}/app:single", False, False) == expected, name
        wait_log(p, "upstream failing", PROBE_SECS * 3)
        print(f"\nprimary stopped: proxied pulls served by the fallback at once; "
              f"the probe switched redirects {time.time() - stopped:.1f}s after the stop")
        pull_all("primary down")
        primary.start()
        wait_log(p, "upstream answers again", PROBE_SECS * 5)
        back = time.time()
        pull_all("primary back")
    finally:
        code = p.stop(sig=signal.SIGINT, timeout=30)
        fallback.stop()
        if primary.proc.popen.poll() is None:
            primary.stop()
    assert code == 0, p.log_text()[-2000:]

    served = [e for e in events(data) if e["kind"] == "manifest" and e["status"] in (200, 307)]
    primary_base, fallback_base = f"http://127.0.0.1:{primary.port}", f"http://127.0.0.1:{fallback.port}"
    by_fallback = [e for e in served if e["upstream"] == fallback_base]
    assert by_fallback and all(e.get("failover") == "auto" for e in by_fallback), by_fallback[:2]
    assert {e["mode"] for e in by_fallback} == set(MODES)
    assert {e["runtime"] for e in by_fallback} >= {"skopeo", "podman", "buildah", "containerd", "docker"}
    after = [e for e in served if e["time"] > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(back + 1))]
    assert after and all(e["upstream"] == primary_base and "failover" not in e for e in after), after[:2]
    print(f"{len(by_fallback)} manifest answers by the fallback (failover=auto), "
          f"{len(served) - len(by_fallback)} by the primary")
