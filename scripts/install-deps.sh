#!/usr/bin/env bash
# Installs what building and testing ds-lb needs on Debian 12, only what is missing.
# Usage: scripts/install-deps.sh [build|test|bench]
set -euo pipefail
profile=${1:-build}

# libssl-dev: OpenSSL 3 for TLS termination (the COpenSSL system library, pkg-config openssl).
packages=(pkg-config libsystemd-dev libssl-dev)
case "$profile" in
  build) ;;
  # python3-matplotlib: ds-bench analysis draws its charts with bench/plot.py under /usr/bin/python3.
  # etcd-server: the DSEtcd tests start real etcd members on 127.0.0.1 ports; iproute2: the
  # cluster tests put three etcd members and ds-lb nodes in network namespaces (ip netns).
  # chromium, chromium-driver: the dashboard tests drive a headless browser over WebDriver.
  # openssl, testssl.sh: the TLS tests make their certificates with openssl req, talk to ds-lb
  # with s_client, and run testssl against it (TestSSLTests).
  # iptables, util-linux (setpriv): an etcd test cuts one member off from its peers by the
  # owner of its connections (EtcdPartition).
  test) packages+=(curl python3-matplotlib etcd-server iproute2 chromium chromium-driver openssl testssl.sh iptables util-linux) ;;
  bench) packages+=(curl wrk apache2-utils haproxy nginx python3-matplotlib) ;;
  *) echo "install-deps: unknown profile '$profile' (use build, test or bench)" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v swift >/dev/null; then
  for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    [ -x "$d/swift" ] && { echo "install-deps: swift found at $d; add it to PATH" >&2; exit 1; }
  done
  echo "install-deps: Swift 6 is required (https://www.swift.org/install/linux/)" >&2
  exit 1
fi
