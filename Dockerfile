# pullgate's container image: pullgate-serve (with the AWS adapters:
# DynamoDB mappings, Firehose events) as a static binary in an otherwise
# empty image: the binary, a CA bundle, a passwd/group entry for uid 65532,
# and /data, the data volume, owned by that user.
#
# Two ways to build the same image:
#
#   With network (pulls rust:1-bookworm and compiles inside it):
#       docker build -t pullgate .
#
#   Offline, from a binary built on this machine (nothing is pulled:
#   every stage up to from-host starts FROM scratch):
#       deploy/image/build-static.sh target/image
#       docker build --target from-host -t pullgate .
#
# The stage order is what makes the offline path work: the classic builder
# (DOCKER_BUILDKIT=0, docker without buildx) builds every stage before the
# --target one, so the stages that pull come after from-host. For the same
# reason `docker build .` on a classic builder also builds from-host and
# needs target/image staged; BuildKit (docker >= 23 with buildx, the usual
# case) builds only the stages the last one uses.
#
# Run:  docker run -p 8080:8080 -v pullgate-data:/data pullgate
# (deploy/compose/compose.yaml mounts a mapping directory and adds hardening.)

# --- base: what every variant shares, all from this repository ---------------
FROM scratch AS base
COPY deploy/image/etc/ /etc/
# Listen on every address of the container by default, as an environment
# variable rather than a CMD, so that `docker run pullgate --mappings FILE`
# (arguments replace CMD) still listens there and not on the binary's own
# default, 127.0.0.1, which nothing outside the container reaches. --listen
# on the command line wins. Events and the client-id key go to /data. The
# AWS SDK's HTTPS client (rustls-native-certs) would find the CA bundle at
# this path anyway; say it.
ENV PULLGATE_LISTEN=0.0.0.0:8080 \
    PULLGATE_DATA_DIR=/data \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# pullgate-serve drains requests in flight (10 s at most) and closes the
# event files on SIGTERM or SIGINT; give `docker stop` more than that
# (`docker stop -t 20`, compose's stop_grace_period).
STOPSIGNAL SIGTERM
EXPOSE 8080
USER 65532:65532
# Without --mappings: the embedded examples/mappings.toml. Mount a
# directory holding your file and set PULLGATE_MAPPINGS (or pass
# --mappings); `--mappings dynamodb:TABLE` and `--events firehose:STREAM`
# read the AWS credentials the task role or environment provides.
ENTRYPOINT ["/usr/local/bin/pullgate-serve"]

# --- offline: the binary from the build context ------------------------------
# target/image is staged by deploy/image/build-static.sh (or stage.sh).
FROM base AS from-host
COPY target/image/rootfs/ /
# /data must exist in the image, owned by the gateway's user, before VOLUME:
# a new named volume takes the ownership of the directory it covers (an
# absent one would be root's, and the gateway could not write its events).
COPY --chown=65532:65532 target/image/volume/ /
VOLUME ["/data"]

# --- with network: compile in rust:1-bookworm ---------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the workspace needs to build (every member's Cargo.toml must be
# there for cargo to load the workspace).
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY functions functions
COPY examples examples
COPY deploy/image deploy/image
RUN deploy/image/build-static.sh /out

# --- the image (default target) -----------------------------------------------
FROM base
COPY --from=build /out/rootfs/ /
COPY --from=build --chown=65532:65532 /out/volume/ /
VOLUME ["/data"]
