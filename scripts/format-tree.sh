#!/usr/bin/env bash
# Formats the tree with .swift-format, then lints it as `make lint` does and prints what is left:
# what the formatter cannot fix (a rule's finding) needs a hand edit or, for a layout that must
# stay as written, a `// swift-format-ignore` on the declaration (CONTRIBUTING.md, Formatting).
# `make format` runs it; `make lint` (first step of `make test`) is the lint alone.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
paths=(Sources Tests Package.swift)

if ! "$SWIFT" format --version >/dev/null 2>&1; then
  echo "format-tree: '$SWIFT format' is missing; it ships with the Swift 6 toolchain (/opt/swift/usr/bin)" >&2
  exit 1
fi

"$SWIFT" format format --in-place --recursive --parallel "${paths[@]}"
if git rev-parse --git-dir >/dev/null 2>&1; then
  changed=$(git diff --shortstat -- "${paths[@]}")
  echo "format-tree: uncommitted changes now:${changed:- none}"
fi

if findings=$("$SWIFT" format lint --strict --recursive --parallel "${paths[@]}" 2>&1); then
  echo "format-tree: swift format lint --strict: clean"
else
  printf '%s\n' "$findings" | sed "s|^$PWD/||"
  echo "format-tree: $(printf '%s\n' "$findings" | grep -c ': error: ') finding(s) left for a hand edit (above)" >&2
  exit 1
fi
