#!/usr/bin/env bash
# On a GPU host, after scripts/gpu-bundle.sh: the k-NN benchmark cases of
# docs/BENCHMARKS.md with the PyTorch peer on the same device, logs in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
b=.gpu
out=${OUT:-/tmp/va-out}
mkdir -p "$out"
export VECTOR_ACCELERATE_KERNEL_CACHE=/tmp/vacache PYTHONUNBUFFERED=1
run() { # name, args...
  local name=$1; shift
  $b/vaccel bench knn --n 1000000 "$@" ${VA_EXTRA:-} --json "$out/$name.json" 2>&1 | grep -v '^$' | tee "$out/$name.txt" | grep '^| [gc]'
  if [ "${PEERS:-1}" = 1 ]; then
    python3 bench/peers/torch_knn.py --n 1000000 "$@" --json "$out/torch-$name.json" 2>&1 | tee "$out/torch-$name.txt" | grep -E '^\|' | grep -v -- '---'
  fi
}
head -2 < <($b/vaccel bench knn --n 1000 --dims 8 --queries 1 --verify 0 2>&1)
VA_EXTRA="--precision ${PRECISIONS:-exact,tf32,bf16,f16}" run k10 --dims 128,768 --queries 10000 -k 10 --data both
PEERS=${PEERS_LARGE_K:-0} run k100 --dims 128 --queries 10000 -k 100 --data gaussian
PEERS=${PEERS_LARGE_K:-0} run k1024 --dims 128 --queries 10000 -k 1024 --data gaussian
for q in 1 16 64; do run q$q --dims 768 --queries $q -k 10 --data gaussian --repeats 20; done
# Standalone select over a device-resident [4096 x 1M] matrix, with torch.topk.
$b/vaccel bench select --rows 4096 --n 1000000 -k 100 2>&1 | tee "$out/select.txt" | grep '^| [0-9]'
[ "${PEERS:-1}" = 1 ] && python3 bench/peers/torch_select.py --rows 4096 --n 1000000 -k 100 2>&1 | tee "$out/torch-select.txt" | grep '^| torch'
# A 20 GB host base (39,062,500 x 128) streamed through a 4 GiB budget on
# every call, 1,000 queries: compare base GB/s with the pinned host-to-device
# rate. Ordinary host memory goes through the staging copy; page-locked
# memory (PinnedMatrix) is transferred directly.
if [ "${STREAM:-1}" = 1 ]; then
  for base in host pinned; do
    $b/vaccel bench knn --n 39062500 --dims 128 --queries 1000 -k 10 --data gaussian --base $base --budget-gib 4 --verify 2 --json "$out/stream-$base.json" 2>&1 | grep -v '^$' | tee "$out/stream-$base.txt" | grep -E '^\| [gc]|pinned'
  done
fi
