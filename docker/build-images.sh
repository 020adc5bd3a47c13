#!/usr/bin/env bash
# `make images`: builds ds-server:latest and ds-lb:latest FROM scratch, without any registry.
# The binaries link the Swift runtime statically (--static-swift-stdlib, as `make install` does),
# so an image holds them plus glibc, libstdc++ and libsystemd only. SCRATCH is the SwiftPM scratch
# path; the default is the one `make install` uses, so `make test` builds this release once.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
scratch=${SCRATCH:-.build-install}
flags=(-c release --static-swift-stdlib --scratch-path "$scratch")
"$SWIFT" build "${flags[@]}" --product ds-server
"$SWIFT" build "${flags[@]}" --product ds-lb
bin=$("$SWIFT" build "${flags[@]}" --show-bin-path)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
docker/make-rootfs.sh "$work/ds-server" "$bin/ds-server"
docker/make-rootfs.sh "$work/ds-lb" "$bin/ds-lb" "$bin/ds-server"
# The classic builder: COPY from a local folder needs nothing else (no BuildKit, no registry).
export DOCKER_BUILDKIT=0
docker build -q -f docker/Dockerfile.ds-server -t ds-server:latest "$work/ds-server"
docker build -q -f docker/Dockerfile.ds-lb -t ds-lb:latest "$work/ds-lb"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^ds-(server|lb):latest '
