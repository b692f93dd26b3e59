#!/bin/sh
# Stages what the image copies besides deploy/image/etc:
#
#   DIR/rootfs/usr/local/bin/pullgate-serve        the static binary
#   DIR/rootfs/etc/ssl/certs/ca-certificates.crt   this machine's CA bundle
#   DIR/volume/data/                               empty: becomes /data
#
# The Dockerfile's build stage stages into /out; for the offline path
# (`docker build --target from-host`) stage into target/image, which is the
# only part of target/ that .dockerignore lets into the build context.
#
#   deploy/image/stage.sh BINARY DIR
set -eu
[ $# -eq 2 ] || { echo "usage: $0 BINARY DIR" >&2; exit 2; }
binary=$1
dir=$2
ca=/etc/ssl/certs/ca-certificates.crt

[ -f "$binary" ] || { echo "no binary at $binary" >&2; exit 1; }
# A dynamic binary starts nowhere in FROM scratch ("no such file or
# directory" from the kernel, about the missing loader): refuse it here.
if readelf -l "$binary" | grep -q 'program interpreter'; then
    echo "$binary is dynamically linked: build it with deploy/image/build-static.sh" >&2
    exit 1
fi
[ -f "$ca" ] || { echo "no CA bundle at $ca (Debian: apt-get install ca-certificates)" >&2; exit 1; }

rm -rf "$dir/rootfs" "$dir/volume"
mkdir -p "$dir/rootfs/usr/local/bin" "$dir/rootfs/etc/ssl/certs" "$dir/volume/data"
cp "$binary" "$dir/rootfs/usr/local/bin/pullgate-serve"
cp "$ca" "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0755 "$dir/rootfs/usr/local/bin/pullgate-serve"
chmod 0644 "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
# The data volume holds the client-id key: only the gateway's user reads it
# (the Dockerfile gives it to uid 65532). A directory of its own under
# volume/, because COPY keeps the mode of what it copies but creates its
# destination 0755.
chmod 0700 "$dir/volume/data"
echo "staged $(du -sh "$dir" | cut -f1) in $dir"
