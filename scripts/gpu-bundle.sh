#!/usr/bin/env bash
# Builds the release binaries here and copies what a GPU host needs into .gpu/
# (ignored by git): the integration-test binary `it` and `vaccel`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p vaccel-cli
it=$(cargo test --release -p vector-accelerate --test it --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "it" and m.get("executable"):
        print(m["executable"])')
mkdir -p .gpu
cp "$it" .gpu/it
cp target/release/vaccel .gpu/vaccel
ls -la .gpu
