#!/usr/bin/env bash
# Assembles a minimal root filesystem for the ds-server image: the release binary plus exactly
# the shared libraries it loads (from ldd), so the image builds FROM scratch with no registry.
# Usage: docker/make-rootfs.sh OUTDIR   (then: docker build -f docker/Dockerfile.ds-server OUTDIR)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: docker/make-rootfs.sh OUTDIR}
swift build -c release --product ds-server >/dev/null
bin=.build/release/ds-server
rm -rf "$out" && mkdir -p "$out/usr/local/bin"
cp "$bin" "$out/usr/local/bin/ds-server"
# Every library ldd resolves, at the same path, plus the dynamic loader itself.
ldd "$bin" | awk '/=> \// {print $3} /^\s*\/lib/ {print $1}' | sort -u | while read -r lib; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
cp docker/Dockerfile.ds-server "$out/Dockerfile"
echo "rootfs for ds-server in $out ($(du -sh "$out" | cut -f1))"
