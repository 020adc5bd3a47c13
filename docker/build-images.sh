#!/usr/bin/env bash
# `make images`: builds ds-server:latest and ds-lb:latest FROM scratch, without any registry.
# SCRATCH (default .build) is the SwiftPM scratch path of the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
scratch=${SCRATCH:-.build}
"$SWIFT" build -c release --scratch-path "$scratch" --product ds-server
"$SWIFT" build -c release --scratch-path "$scratch" --product ds-lb
bin=$("$SWIFT" build -c release --scratch-path "$scratch" --show-bin-path)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
docker/make-rootfs.sh "$work/ds-server" "$bin/ds-server"
docker/make-rootfs.sh "$work/ds-lb" "$bin/ds-lb" "$bin/ds-server"
# The classic builder: COPY from a local folder needs nothing else (no BuildKit, no registry).
export DOCKER_BUILDKIT=0
docker build -q -f docker/Dockerfile.ds-server -t ds-server:latest "$work/ds-server"
docker build -q -f docker/Dockerfile.ds-lb -t ds-lb:latest "$work/ds-lb"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^ds-(server|lb):latest '
