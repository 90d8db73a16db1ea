"""The Python binding's overhead: `va.knn` timed from Python against the bare
library call on the same (already converted) data, timed inside the library.

    python bench/python_overhead.py [--large-base N]

Prints, per case, the median of each and the overhead per call and as a
fraction of the call (targets: at most 20 microseconds per call, at most 5%
at 10,000 queries). With PyTorch and a GPU it also times CUDA tensors in and
out (DLPack) against the same call.
"""
import argparse
import statistics
import time

import numpy as np

import vector_accelerate as va


def median_seconds(f, repeats):
    f()  # warm: kernels compiled, memory pooled
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def case(name, xq, xb, k, repeats, call=None):
    lib = statistics.median(va._knn_call_seconds(xq, xb, k, repeats + 1)[1:])
    py = median_seconds(call or (lambda: va.knn(xq, xb, k)), repeats)
    extra = py - lib
    print(f"{name:<44} library {lib * 1e3:9.3f} ms   python {py * 1e3:9.3f} ms   "
          f"overhead {extra * 1e6:8.1f} us/call ({100 * extra / lib:+.2f}%)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--large-base", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    r = np.random.default_rng(0)
    print(f"vector_accelerate {va.__version__} on {va.get_device()!r}")
    tiny_b, tiny_q = r.standard_normal((1000, 64), np.float32), r.standard_normal((1, 64), np.float32)
    case("1 query x 1,000 x 64, k 10 (numpy)", tiny_q, tiny_b, 10, 201)
    big_b = r.standard_normal((a.large_base, 128), np.float32)
    big_q = r.standard_normal((10_000, 128), np.float32)
    case(f"10,000 queries x {a.large_base:,} x 128, k 10 (numpy)", big_q, big_b, 10, a.repeats)
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available() or not va.device().startswith("cuda"):
        return
    for name, q, b, reps in [("1 query x 1,000 x 64", tiny_q, tiny_b, 201),
                             (f"10,000 queries x {a.large_base:,} x 128", big_q, big_b, a.repeats)]:
        tq, tb = torch.from_numpy(q).cuda(), torch.from_numpy(b).cuda()

        def call(tq=tq, tb=tb):
            D, I = va.knn(tq, tb, 10)
            torch.cuda.synchronize()
        case(name + ", k 10 (torch cuda, results on device)", tq, tb, 10, reps, call)


if __name__ == "__main__":
    main()
