#!/usr/bin/env bash
# Builds the libFuzzer targets into $FUZZ_DIR (default .build-fuzz) with swiftc
# directly: SwiftPM has no fuzzer product type, and `-sanitize=fuzzer,address` must instrument
# the code under test, not only the entry point. DSHTTP1 is built once as an instrumented static
# library the targets import, so they see only its public API.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFTC=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
OUT=${FUZZ_DIR:-.build-fuzz}
# One package name for the library and the targets: DSHTTP1 declares its API `package`.
FLAGS=(-O -sanitize=fuzzer,address -parse-as-library -swift-version 6 -package-name ds_lb)
mkdir -p "$OUT/lib"

# The gold linker warns once per ASan helper symbol; only real errors are worth showing.
quiet() { "$@" 2> >(grep -v "Cannot export local symbol" >&2); }

quiet "$SWIFTC" "${FLAGS[@]}" -module-name DSHTTP1 -emit-library -static -emit-module \
    -emit-module-path "$OUT/lib/DSHTTP1.swiftmodule" -o "$OUT/lib/libDSHTTP1.a" Sources/DSHTTP1/*.swift

# Every target is its own file plus FuzzSupport.swift (the libFuzzer entry, the failure path);
# the two head targets share their properties in FuzzHeadSupport.swift.
for target in RequestHead ResponseHead; do
    quiet "$SWIFTC" "${FLAGS[@]}" -module-name "Fuzz$target" -I "$OUT/lib" -L "$OUT/lib" -lDSHTTP1 \
        fuzz/Fuzz$target.swift fuzz/FuzzHeadSupport.swift fuzz/FuzzSupport.swift -o "$OUT/fuzz-$(echo $target | sed 's/\([a-z]\)\([A-Z]\)/\1-\2/g' | tr A-Z a-z)"
done
quiet "$SWIFTC" "${FLAGS[@]}" -module-name FuzzChunked -I "$OUT/lib" -L "$OUT/lib" -lDSHTTP1 \
    fuzz/FuzzChunked.swift fuzz/FuzzSupport.swift -o "$OUT/fuzz-chunked"
# ScaleCommand is internal to DSControl, whose other files need the whole data plane: its one
# file (DSHTTP1's JSON parser only) is compiled into the target.
# The admin body parser names the weight bound DSHashing keeps.
quiet "$SWIFTC" "${FLAGS[@]}" -module-name DSHashing -emit-library -static -emit-module \
    -emit-module-path "$OUT/lib/DSHashing.swiftmodule" -o "$OUT/lib/libDSHashing.a" Sources/DSHashing/*.swift
quiet "$SWIFTC" "${FLAGS[@]}" -module-name FuzzAdminJSON -I "$OUT/lib" -L "$OUT/lib" -lDSHTTP1 -lDSHashing \
    Sources/DSControl/AdminCommand.swift fuzz/FuzzAdminJSON.swift fuzz/FuzzSupport.swift -o "$OUT/fuzz-admin-json"

python3 fuzz/seeds.py "$OUT/seeds"
ls "$OUT"/fuzz-*
