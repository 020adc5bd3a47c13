#!/usr/bin/env python3
"""RSS growth per idle keep-alive client connection (bench/compare).

Usage: idle_conns.py [--tls] HOST PORT PID [COUNT]

Warms the proxy up with a few requests, reads VmRSS of PID and all its descendants, opens COUNT
(default 10000) client connections, sends one keep-alive GET /home?id=12345 on each and reads
the whole response, so every connection has been through a full request and now sits idle in
keep-alive. Waits 2 s, reads VmRSS again, checks how many connections are still open, closes
them all and prints one JSON line. With --tls every connection is a TLS connection (full
handshake, certificate not verified: the run made it itself; protocol and suite are whatever
OPENSSL_CONF pins) and the JSON also names the negotiated protocol and cipher. Loopback only;
standard library only.
"""
import json
import os
import socket
import ssl
import sys
import time

REQUEST = b"GET /home?id=12345 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: idle_conns\r\n\r\n"


def descendants(pid):
    """pid and every process below it (nginx: the master and its workers)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return found


def rss_kib(pid):
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def exchange(sock):
    """Sends one request and reads one whole response (Content-Length framing)."""
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the response body")
        body += chunk
    return status


def connector(tls):
    """A function opening one client connection, plain or TLS."""
    if not tls:
        return lambda host, port: socket.create_connection((host, port), timeout=5)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])

    def connect(host, port):
        raw = socket.create_connection((host, port), timeout=5)
        try:
            return context.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
    return connect


def main():
    args = sys.argv[1:]
    tls = "--tls" in args
    args = [a for a in args if a != "--tls"]
    host, port, pid = args[0], int(args[1]), int(args[2])
    count = int(args[3]) if len(args) > 3 else 10000
    connect = connector(tls)

    # Warm-up: a few connections, 50 requests each, then closed.
    for _ in range(4):
        with connect(host, port) as s:
            for _ in range(50):
                exchange(s)
    time.sleep(1)
    before = rss_kib(pid)

    socks, errors, non2xx = [], 0, 0
    started = time.monotonic()
    for _ in range(count):
        try:
            s = connect(host, port)
        except OSError:
            errors += 1
            continue
        try:
            if exchange(s) // 100 != 2:
                non2xx += 1
            socks.append(s)
        except (OSError, ValueError, ConnectionError):
            errors += 1
            s.close()
    opened_in = time.monotonic() - started
    negotiated = {"tls": f"{socks[0].version()} {socks[0].cipher()[0]}"} if tls and socks else {}
    time.sleep(2)
    after = rss_kib(pid)

    still_open = 0
    for s in socks:
        s.setblocking(False)
        try:
            still_open += s.recv(1) != b""  # b"" = closed by the proxy; data would be odd
        except (BlockingIOError, ssl.SSLWantReadError):
            still_open += 1
        except OSError:
            pass
    for s in socks:
        s.close()

    held = len(socks)
    print(json.dumps({**negotiated,
        "connections": held, "still_open": still_open, "errors": errors, "non2xx": non2xx,
        "rss_before_kib": before, "rss_after_kib": after,
        "per_conn_bytes": round((after - before) * 1024 / held) if held else None,
        "open_seconds": round(opened_in, 2),
    }))


if __name__ == "__main__":
    main()
