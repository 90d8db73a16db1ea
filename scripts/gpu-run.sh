#!/usr/bin/env bash
# On a GPU host, after scripts/gpu-bundle.sh: GPU tests (a missing GPU fails),
# vaccel info and demo, the fp64 end-to-end k-NN check on CPU and CUDA, the
# k-NN benchmark and the PyTorch peer on the same device. Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
b=.gpu
out=${OUT:-/tmp/va-out}
mkdir -p "$out"
export VECTOR_ACCELERATE_KERNEL_CACHE=/tmp/vacache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/nvidia-smi.txt"
VECTOR_ACCELERATE_REQUIRE_GPU=1 $b/it --test-threads=4 --nocapture >"$out/it.log" 2>&1
echo "integration tests rc=$? $(grep 'test result' "$out/it.log")"
echo "tests that ran their CUDA half: $(grep '^\[cuda\]' "$out/it.log" | sort -u | wc -l)"
grep -E 'FAILED|panicked' "$out/it.log" | head -20
$b/vaccel info 2>&1 | tee "$out/info.txt"
$b/vaccel demo 2>&1 | tee "$out/demo.txt"
python3 scripts/knn_check.py $b/vaccel /tmp/knncheck --devices cpu,cuda 2>&1 | tail -3 | tee "$out/knn_check.txt"
$b/vaccel bench knn ${BENCH_ARGS:---n 1000000 --dims 128,768 --queries 10000 -k 10 --data both} \
  --json "$out/bench.json" 2>&1 | tee "$out/bench.txt"
python3 bench/peers/torch_knn.py ${BENCH_ARGS:---n 1000000 --dims 128,768 --queries 10000 -k 10 --data both} \
  --json "$out/torch.json" 2>&1 | tee "$out/torch.txt"
