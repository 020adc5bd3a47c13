#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, taken from the framing test tables: every
Swift string literal in them that looks like a request head, a response head, a chunked body
or an admin JSON body becomes one seed file, so the seeds grow with the tables."""
import hashlib
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TABLES = [
    "Tests/DSHTTP1Tests/RequestCorpusTests.swift",
    "Tests/DSHTTP1Tests/HeadParserTests.swift",
    "Tests/DSHTTP1Tests/ResponseFramingTests.swift",
    "Tests/DSHTTP1Tests/ChunkedScannerTests.swift",
    "Tests/IntegrationTests/SmugglingCorpusTests.swift",
    "Tests/DSControlTests/ScaleCommandTests.swift",
    "Tests/IntegrationTests/LoadBalancerAdminTests.swift",
]
LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
RAW_LITERAL = re.compile(r'#"(.*?)"#')
ESCAPE = re.compile(r'\\(u\{([0-9a-fA-F]+)\}|.)')


def unescape(text):
    def one(m):
        if m.group(2):
            return chr(int(m.group(2), 16))
        return {"r": "\r", "n": "\n", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}.get(m.group(1), m.group(0))
    return ESCAPE.sub(one, text).encode("utf-8")


def kind(data):
    if re.match(rb"^(\r\n)*[A-Z]+ \S+ HTTP/", data):
        return "request-head"
    if data.startswith(b"HTTP/"):
        return "response-head"
    if re.match(rb"^[0-9a-fA-F]+[;\r ]", data):
        return "chunked"
    if data.lstrip().startswith((b"{", b"[")):
        return "admin-json"
    return None


def main(out):
    written = 0
    for table in TABLES:
        path = os.path.join(ROOT, table)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            source = f.read()
        raw = [m.group(1).encode("utf-8") for m in RAW_LITERAL.finditer(source)]
        plain = [unescape(m.group(1)) for m in LITERAL.finditer(RAW_LITERAL.sub("", source))
                 if "\\(" not in m.group(1)]  # an interpolated literal is not a value
        for data in raw + plain:
            k = kind(data)
            if not k:
                continue
            d = os.path.join(out, k)
            os.makedirs(d, exist_ok=True)
            name = hashlib.sha1(data).hexdigest()
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            written += 1
    print(f"seeds: {written} literals into {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".build-fuzz/seeds")
