"""OCI image layouts built without a daemon: a single-arch image and a
two-platform index, each layer a few MiB of random bytes (so a layer that
crossed the gateway would show in its byte counts)."""

import gzip
import hashlib
import io
import json
import os
import tarfile

LAYER_BYTES = 4 * 1024 * 1024

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Layout:
    def __init__(self, root: str):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.refs = []

    def blob(self, data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.root, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def tag(self, descriptor: dict, tag: str) -> None:
        d = dict(descriptor)
        d["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.refs.append(d)
        with open(os.path.join(self.root, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": self.refs}, f)


def _layer(seed: str) -> bytes:
    payload = os.urandom(LAYER_BYTES)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(f"data-{seed}.bin")
        info.size = len(payload)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _image(layout: Layout, arch: str, seed: str) -> dict:
    tar = _layer(seed)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    layer = layout.blob(gzip.compress(tar, compresslevel=1, mtime=0), OCI_LAYER)
    config = layout.blob(json.dumps({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/data.bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
    return layout.blob(json.dumps(manifest).encode(), OCI_MANIFEST)


def build(root: str) -> Layout:
    """Tags `single` (linux/amd64) and `multi` (linux/amd64 + linux/arm64)."""
    layout = Layout(root)
    layout.tag(_image(layout, "amd64", "single"), "single")
    amd = _image(layout, "amd64", "multi-amd64")
    arm = _image(layout, "arm64", "multi-arm64")
    amd["platform"] = {"architecture": "amd64", "os": "linux"}
    arm["platform"] = {"architecture": "arm64", "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd, arm]}
    layout.tag(layout.blob(json.dumps(index).encode(), OCI_INDEX), "multi")
    return layout
