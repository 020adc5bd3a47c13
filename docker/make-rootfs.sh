#!/usr/bin/env bash
# Assembles a minimal root filesystem for an image: release binaries plus exactly the shared
# libraries they load (from ldd, at the paths ldd resolved) and the dynamic loader, so the image
# builds FROM scratch with no registry.
# Usage: docker/make-rootfs.sh OUTDIR BINARY...   (BINARY: a path to an already built executable)
# Then:  docker build -f docker/Dockerfile.<name> OUTDIR
set -euo pipefail
out=${1:?usage: docker/make-rootfs.sh OUTDIR BINARY...}
shift
(($#)) || { echo "make-rootfs: give at least one binary" >&2; exit 2; }
rm -rf "$out" && mkdir -p "$out/usr/local/bin" "$out/tmp" "$out/var/lib/ds-lb" "$out/etc"
chmod 1777 "$out/tmp"
for bin in "$@"; do
  cp "$bin" "$out/usr/local/bin/$(basename "$bin")"
  strip "$out/usr/local/bin/$(basename "$bin")" 2>/dev/null || true
  # "libx.so => /path (addr)" and the loader "/lib64/ld-linux-x86-64.so.2 (addr)".
  ldd "$bin" | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}'
done | sort -u | while read -r lib; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
# Name lookups (getpwuid, "localhost") work without NSS modules thanks to these two files.
printf 'root:x:0:0:root:/:/usr/local/bin/ds-lb\nnobody:x:65534:65534:nobody:/:/usr/local/bin/ds-lb\n' > "$out/etc/passwd"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$out/etc/hosts"
echo "make-rootfs: $out ($(du -sh "$out" | cut -f1)) for $*"
