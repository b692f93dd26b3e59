"""Real clients pulling through pullgate. Each driver pulls HOST/NAME:TAG
over plain HTTP and returns the manifest digest the client recorded; every
client verifies blob digests itself, so a returned digest means the bytes
arrived intact."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from . import procs

CREDS = ("alice", "wonderland")


class Client:
    name = "?"

    def pull(self, ref: str, multi: bool, creds: bool) -> str:
        raise NotImplementedError


class Skopeo(Client):
    name = "skopeo"

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.auth = os.path.join(workdir, "skopeo-auth.json")
        with open(self.auth, "w") as f:
            f.write("{}")

    def pull(self, ref, multi, creds):
        dest = tempfile.mkdtemp(dir=self.workdir, prefix="skopeo-")
        argv = ["skopeo", "copy", "--src-tls-verify=false", "--authfile", self.auth]
        # creds: False (anonymous), True (alice) or a (user, password) pair.
        user_password = creds if isinstance(creds, tuple) else CREDS
        argv += ["--src-creds", ":".join(user_password)] if creds else ["--src-no-creds"]
        if multi:
            argv.append("--all")
        procs.run(argv + [f"docker://{ref}", f"oci:{dest}:pulled"])
        with open(os.path.join(dest, "index.json")) as f:
            digest = json.load(f)["manifests"][0]["digest"]
        shutil.rmtree(dest, ignore_errors=True)
        return digest


class Podman(Client):
    name = "podman"

    def __init__(self, workdir: str):
        self.root = os.path.join(workdir, "podman-root")
        self.runroot = os.path.join(workdir, "podman-run")
        self.auth = os.path.join(workdir, "podman-auth.json")
        with open(self.auth, "w") as f:
            f.write("{}")

    def _podman(self, *args):
        return ["podman", "--root", self.root, "--runroot", self.runroot,
                "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none", *args]

    def pull(self, ref, multi, creds):
        argv = self._podman("pull", "--tls-verify=false", "--authfile", self.auth)
        if creds:
            argv += ["--creds", ":".join(CREDS)]
        procs.run(argv + [ref])
        out = procs.run(self._podman("image", "inspect", "--format", "{{.Digest}}", ref)).stdout.strip()
        procs.run(self._podman("rmi", "-f", ref), check=False)
        return out


class Buildah(Client):
    name = "buildah"

    def __init__(self, workdir: str):
        self.root = os.path.join(workdir, "buildah-root")
        self.runroot = os.path.join(workdir, "buildah-run")
        self.auth = os.path.join(workdir, "buildah-auth.json")
        with open(self.auth, "w") as f:
            f.write("{}")

    def _buildah(self, *args):
        return ["buildah", "--root", self.root, "--runroot", self.runroot, "--storage-driver", "vfs", *args]

    def pull(self, ref, multi, creds):
        argv = self._buildah("pull", "--policy", "always", "--tls-verify=false", "--authfile", self.auth)
        if creds:
            argv += ["--creds", ":".join(CREDS)]
        procs.run(argv + [ref])
        out = procs.run(self._buildah("images", "--digests", "--format", "{{.Name}}:{{.Tag}} {{.Digest}}")).stdout
        digest = next((line.split()[1] for line in out.splitlines() if line.split()[0] == ref), "")
        procs.run(self._buildah("rmi", "-f", ref), check=False)
        return digest


class Ctr(Client):
    """containerd's own client, the resolver kubelet uses through the CRI."""

    name = "ctr"

    def __init__(self, workdir: str):
        self.dir = os.path.join(workdir, "containerd")
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "containerd.sock")
        config = os.path.join(self.dir, "config.toml")
        with open(config, "w") as f:
            f.write(f'''version = 2
root = "{self.dir}/root"
state = "{self.dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  address = "{self.socket}.debug"
''')
        self.proc = procs.Proc("containerd", ["containerd", "--config", config], workdir)
        deadline = time.time() + 30
        while not os.path.exists(self.socket):
            if self.proc.popen.poll() is not None or time.time() > deadline:
                raise RuntimeError("containerd did not start:\n" + self.proc.log_text()[-3000:])
            time.sleep(0.1)

    def _ctr(self, *args):
        return ["ctr", "--address", self.socket, "--namespace", "pullgate-e2e", *args]

    def pull(self, ref, multi, creds, keep=False):
        """keep: leave the image and its content in place, so that the next
        pull of it finds everything and only resolves the tag."""
        argv = self._ctr("images", "pull", "--plain-http", "--snapshotter", "native")
        if creds:
            argv += ["--user", ":".join(CREDS)]
        procs.run(argv + [ref])
        out = procs.run(self._ctr("images", "ls")).stdout
        digest = ""
        for line in out.splitlines():
            cols = line.split()
            if cols and cols[0] == ref:
                digest = next(c for c in cols if c.startswith("sha256:"))
        if not keep:
            procs.run(self._ctr("images", "rm", ref), check=False)
            procs.run(self._ctr("content", "prune", "references"), check=False)
        return digest

    def stop(self):
        self.proc.stop()


class DockerUnavailable(Exception):
    pass


class Docker(Client):
    name = "docker"

    def __init__(self, workdir: str):
        for tool in ("dockerd", "docker"):
            if shutil.which(tool) is None:
                raise DockerUnavailable(f"{tool} is not installed")
        self.dir = tempfile.mkdtemp(prefix="pgd-", dir="/tmp")  # unix socket paths must be short
        try:
            self._start(workdir)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _start(self, workdir: str):
        self.socket = os.path.join(self.dir, "docker.sock")
        self.config = os.path.join(self.dir, "config")
        os.makedirs(self.config)
        self.host = f"unix://{self.socket}"
        argv = ["dockerd", "--storage-driver=vfs", "--iptables=false", "--ip-masq=false",
                "--bridge=none", f"--data-root={self.dir}/data", f"--exec-root={self.dir}/exec",
                f"--pidfile={self.dir}/docker.pid", "-H", self.host]
        self.proc = procs.Proc("dockerd", argv, workdir)
        deadline = time.time() + 40
        while True:
            if self.proc.popen.poll() is not None:
                self.proc.stop()
                raise DockerUnavailable(self.proc.log_text()[-2000:])
            if os.path.exists(self.socket):
                ok = subprocess.run(["docker", "-H", self.host, "version"], capture_output=True)
                if ok.returncode == 0:
                    break
            if time.time() > deadline:
                self.proc.stop()
                raise DockerUnavailable("dockerd did not answer in 40 s:\n" + self.proc.log_text()[-2000:])
            time.sleep(0.2)

    def _docker(self, *args):
        return ["docker", "-H", self.host, *args]

    def pull(self, ref, multi, creds):
        env = dict(os.environ, DOCKER_CONFIG=self.config)
        host = ref.split("/")[0]
        procs.run(self._docker("logout", host), env=env, check=False)
        if creds:
            procs.run(self._docker("login", "-u", CREDS[0], "-p", CREDS[1], host), env=env)
        procs.run(self._docker("pull", ref), env=env)
        out = procs.run(self._docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref), env=env).stdout
        digests = [d.split("@", 1)[1] for d in json.loads(out) if d.startswith(ref.rsplit(":", 1)[0] + "@")]
        procs.run(self._docker("rmi", "-f", ref), env=env, check=False)
        if creds:
            procs.run(self._docker("logout", host), env=env, check=False)
        return digests[0] if digests else ""

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
