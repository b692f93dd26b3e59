"""The end-to-end matrix: every client pulls every image through every
mode, against a no-auth and a token-auth upstream, with the repository name
unchanged and renamed (app -> acme/app). A pull passes only when the digest
the client recorded equals the pushed one (clients verify every blob's
digest themselves) and pullgate sent far fewer bytes than one layer.

expected_failure() is the measured table the README quotes: plain redirects
break containers/image clients against token-auth upstreams, and break
docker when the name changes (containerd takes the scope from the upstream's
challenge and copes). `auto` and `proxy` must pass everywhere."""

import pytest

from conftest import DOCKER_BANNER, MODES, NAMINGS, UPSTREAMS
from harness import images, oci

CLIENTS = ["skopeo", "podman", "buildah", "ctr", "docker"]
IMAGES = ["single", "multi"]


def expected_failure(upstream, mode, naming, client):
    if mode != "redirect" or upstream != "token":
        return None
    if client in ("skopeo", "podman", "buildah"):
        return "containers/image drops Authorization on a cross-host redirect and does not re-authenticate"
    if naming == "renamed" and client == "docker":
        return "docker asks the upstream for a token scoped to the public name"
    return None


def cases():
    for upstream in UPSTREAMS:
        for mode in MODES:
            for naming in NAMINGS:
                for image in IMAGES:
                    for client in CLIENTS:
                        reason = expected_failure(upstream, mode, naming, client)
                        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                        yield pytest.param(upstream, mode, naming, image, client, False,
                                           id=f"{upstream}-{mode}-{naming}-{image}-{client}", marks=marks)
    # Credentials through the gateway: a repository only alice may pull.
    for mode in ["proxy", "auto"]:
        for image in IMAGES:
            for client in CLIENTS:
                yield pytest.param("token", mode, "private", image, client, True,
                                   id=f"token-{mode}-private-creds-{image}-{client}")


def test_token_upstream_sends_blobs_to_a_cdn_that_needs_no_authorization(env):
    """The premise of the token rows: distribution's `redirect` storage
    middleware answers a blob GET with a 307 to the file server over its
    storage root, and that URL serves the right bytes without credentials,
    as Docker Hub's, GHCR's or an S3-backed registry's storage URLs do."""
    registry = f"http://127.0.0.1:{env.upstream_ports['token']}"
    token = oci.anonymous_token(registry, "app")
    layer = oci.manifest(registry, "app", "single", token)["layers"][0]
    blob_url = f"{registry}/v2/app/blobs/{layer['digest']}"
    status, _, body = oci.request(blob_url)
    assert status == 401, f"blob without a token answered {status}: {body[:200]!r}"
    status, headers, body = oci.request(blob_url, [("Authorization", f"Bearer {token}")])
    assert status == 307, f"blob GET answered {status}, not a redirect: is the redirect middleware built in? {body[:200]!r}"
    hexdigest = layer["digest"].split(":", 1)[1]
    expected = f"http://127.0.0.1:{env.static.port}/docker/registry/v2/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"
    assert headers["location"] == expected
    status, _, data = oci.request(headers["location"])
    assert status == 200, f"CDN answered {status}"
    assert (oci.sha256(data), len(data)) == (layer["digest"], layer["size"])
    # The no-auth registry serves blobs itself: the other kind of upstream.
    registry = f"http://127.0.0.1:{env.upstream_ports['noauth']}"
    layer = oci.manifest(registry, "app", "single", None)["layers"][0]
    status, _, data = oci.request(f"{registry}/v2/app/blobs/{layer['digest']}")
    assert (status, oci.sha256(data)) == (200, layer["digest"])


def client_for(env, name):
    if name == "docker" and "docker" not in env.clients:
        message = f"dockerd cannot start on this machine, docker is NOT in the matrix: {env.docker_error}"
        if message not in DOCKER_BANNER:
            DOCKER_BANNER.append(message)
        pytest.skip(message)
    return env.clients[name]


@pytest.mark.matrix
@pytest.mark.parametrize("upstream,mode,naming,image,client_name,creds", list(cases()))
def test_pull(env, upstream, mode, naming, image, client_name, creds):
    client = client_for(env, client_name)
    if naming == "private":
        host = env.hosts[(upstream, mode, "unchanged")]
        name, pushed_as = "private/app", "private/app"
    else:
        host = env.hosts[(upstream, mode, naming)]
        name, pushed_as = "app", ("app" if naming == "unchanged" else "acme/app")
    relay = env.relays[(upstream, mode, "unchanged" if naming == "private" else naming)]
    storage = env.storage[upstream]
    relay.take_count()
    storage.take_count()
    digest = client.pull(f"{host}/{name}:{image}", multi=(image == "multi"), creds=creds)
    env.pulled_with.add(client_name)
    sent = relay.take_count()
    downloaded = storage.take_count()
    assert digest == env.pushed[(upstream, pushed_as, image)], (
        f"{client_name} recorded {digest!r}, pushed {env.pushed[(upstream, pushed_as, image)]}"
    )
    # A layer is LAYER_BYTES of random data; manifests and tokens are a few KiB.
    assert sent < images.LAYER_BYTES // 8, f"pullgate sent {sent} bytes: blob bytes crossed the gateway"
    # ...and the layer really was downloaded, from the upstream's storage.
    assert downloaded >= images.LAYER_BYTES, (
        f"{client_name} fetched only {downloaded} bytes from the {upstream} upstream's storage: "
        "a cached layer hid the blob path"
    )


@pytest.mark.parametrize("upstream,mode", [("noauth", "proxy"), ("token", "redirect")])
def test_repeat_pull_of_an_image_the_client_has(env, upstream, mode):
    """containerd resolves the tag (HEAD) and, holding the content, fetches
    nothing more: an update check, which the report counts as one
    (test_c_report.py). Against a token upstream in redirect mode the first
    HEAD is refused upstream and repeated: still one check."""
    host = env.hosts[(upstream, mode, "unchanged")]
    ctr = client_for(env, "ctr")
    pushed = env.pushed[(upstream, "app", "multi")]
    assert ctr.pull(f"{host}/app:multi", multi=True, creds=False, keep=True) == pushed
    assert ctr.pull(f"{host}/app:multi", multi=True, creds=False) == pushed


@pytest.mark.parametrize("mode", ["proxy", "auto"])
def test_private_repository_needs_the_credentials(env, mode):
    """The credentials rows prove something only if anonymous pulls of
    private/app are refused through the same host."""
    host = env.hosts[("token", mode, "unchanged")]
    with pytest.raises(AssertionError) as failed:
        env.clients["skopeo"].pull(f"{host}/private/app:single", multi=False, creds=False)
    assert "requested access to the resource is denied" in str(failed.value), failed.value
    # A wrong password is refused by the upstream's token server, through pullgate's.
    with pytest.raises(AssertionError) as failed:
        env.clients["skopeo"].pull(f"{host}/private/app:single", multi=False, creds=("alice", "wrong"))
    assert "incorrect username or password" in str(failed.value), failed.value
