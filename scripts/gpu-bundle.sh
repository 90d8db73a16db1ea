#!/usr/bin/env bash
# Builds the release binaries here and copies what a GPU host needs into .gpu/
# (ignored by git): the integration-test binaries `it` and `interrupt`, and
# `vaccel`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vaccel-cli
mkdir -p .gpu
for t in it interrupt; do
  exe=$(cargo test --release -p vector-accelerate --test "$t" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$t")
  cp "$exe" ".gpu/$t"
done
cp target/release/vaccel .gpu/vaccel
ls -la .gpu
