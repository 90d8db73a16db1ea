"""The Python binding's overhead: `va.knn` timed from Python against the bare
library call on the same (already converted) data, timed inside the library.

    python bench/python_overhead.py [--large-base N] [--repeats R]

Each repeat times one bare library call and one Python call back to back
(so drift of the machine hits both); the overhead is the median of the
differences. Targets: at most 20 microseconds per call, at most 5% at
10,000 queries. With PyTorch and a GPU it also times CUDA tensors in and out
(DLPack) against the library call that leaves its results on the device,
and the framework's own DLPack steps for scale.
"""
import argparse
import statistics
import time

import numpy as np

import vector_accelerate as va


def paired(call, lib, repeats):
    call()
    lib()
    libs, pys = [], []
    for _ in range(repeats):
        libs.append(lib())
        t = time.perf_counter()
        call()
        pys.append(time.perf_counter() - t)
    diff = statistics.median(p - l for p, l in zip(pys, libs))
    return statistics.median(libs), statistics.median(pys), diff


def case(name, xq, xb, k, repeats, call=None, resident=False):
    lib = lambda: va._knn_call_seconds(xq, xb, k, 1, resident)[0]  # noqa: E731
    l, p, d = paired(call or (lambda: va.knn(xq, xb, k)), lib, repeats)
    print(f"{name:<58} library {l * 1e3:9.3f} ms  python {p * 1e3:9.3f} ms  "
          f"overhead {d * 1e6:8.1f} us/call ({100 * d / l:+.2f}%)")


def seconds(f, repeats=201):
    f()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--large-base", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=9)
    a = ap.parse_args()
    r = np.random.default_rng(0)
    print(f"vector_accelerate {va.__version__} on {va.get_device()!r}")
    tiny_b, tiny_q = r.standard_normal((1000, 64), np.float32), r.standard_normal((1, 64), np.float32)
    case("1 query x 1,000 x 64, k 10 (numpy)", tiny_q, tiny_b, 10, 301)
    big_b = r.standard_normal((a.large_base, 128), np.float32)
    big_q = r.standard_normal((10_000, 128), np.float32)
    case(f"10,000 queries x {a.large_base:,} x 128, k 10 (numpy)", big_q, big_b, 10, a.repeats)
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available() or not va.device().startswith("cuda"):
        return
    for name, q, b, reps in [("1 query x 1,000 x 64", tiny_q, tiny_b, 301),
                             (f"10,000 queries x {a.large_base:,} x 128", big_q, big_b, a.repeats)]:
        tq, tb = torch.from_numpy(q).cuda(), torch.from_numpy(b).cuda()

        def call(tq=tq, tb=tb):
            va.knn(tq, tb, 10)
        case(name + ", k 10 (torch cuda in and out)", tq, tb, 10, reps, call, resident=True)
    t = torch.zeros(10, 10, device="cuda")
    s = torch.cuda.Stream().cuda_stream
    print(f"for scale, PyTorch's own steps: __dlpack__(stream) {seconds(lambda: t.__dlpack__(stream=s)) * 1e6:.1f} us, "
          f"from_dlpack(tensor) {seconds(lambda: torch.from_dlpack(t)) * 1e6:.1f} us, "
          f"current_stream() {seconds(lambda: torch.cuda.current_stream().cuda_stream) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
