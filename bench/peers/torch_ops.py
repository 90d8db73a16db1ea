#!/usr/bin/env python3
"""PyTorch peer for the vector utilities, statistics and matrix operations, on the GPU host.

Each case runs on a resident float32 array of about --gib GiB shaped rows x --dim, is timed with
CUDA events (one warm-up, then the median of --repeats), and reports the bandwidth of its ideal
traffic: the bytes a single pass must read and write (for example 2 x size for normalising rows
out of place), whatever PyTorch actually moves.

Sections (--only takes a comma list, default all):
  vector    row L2 normalise (F.normalize), add scalar, mul, exp, sigmoid, gelu, a row-broadcast
            add, in-place mul_; sums over all / rows / columns, column mean + variance
            (torch.var_mean, dim 0), argmax per row, row softmax and log-sum-exp, 1,024-bin
            histograms of the whole array (torch.histc over [-4, 4] and over the data range).
  stats     uniform 1,024-bin histogram (torch.histc) of --hist-n values; torch.sort of --sort-n
            values (the yardstick of device quantiles; torch.quantile refuses more than 2^24);
            on the rows x --dim array: scipy-style describe per column and per row with torch
            ops, torch.median per column, torch.cov.
  gemm      torch.matmul at fp32 (TF32 off), tf32, bf16 and f16 on square and odd shapes, and
            relu(x @ w + b) as PyTorch runs it (matmul, add, relu) and torch.addmm + relu, next
            to x @ w alone, on the --gemm shapes (those of `vaccel bench ops`).

    python3 bench/peers/torch_ops.py --gib 1 --only vector,stats
"""
import argparse

import torch
import torch.nn.functional as F


def timed(fn, repeats):
    """Median milliseconds of `fn` over `repeats` runs after one warm-up (CUDA events)."""
    fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(repeats):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b))
    return sorted(out)[len(out) // 2]


def row(name, shape, ms, nbytes):
    print(f"| {name} | {shape} | {ms:.3f} | {nbytes / (ms / 1e3) / 1e12:.3f} |", flush=True)


def section_vector(a):
    n = int(a.gib * 2**30) // 4
    rows = n // a.dim
    x = torch.randn(rows, a.dim, device="cuda")
    y = torch.randn(rows, a.dim, device="cuda")
    r = torch.randn(1, a.dim, device="cuda")
    size = x.numel() * 4
    shape = f"{rows} x {a.dim}"
    print(f"\n### vector (float32, {size / 2**30:.2f} GiB, TB/s of ideal traffic)")
    print("| case | shape | median ms | TB/s |")
    print("|---|---|---:|---:|", flush=True)
    cases = [
        ("normalise rows (F.normalize)", lambda: F.normalize(x, dim=1), 2 * size),
        ("x + 1.5", lambda: x + 1.5, 2 * size),
        ("x * y", lambda: x * y, 3 * size),
        ("exp(x)", lambda: torch.exp(x), 2 * size),
        ("sigmoid(x)", lambda: torch.sigmoid(x), 2 * size),
        ("gelu(x) (erf)", lambda: F.gelu(x), 2 * size),
        ("x + row vector", lambda: x + r, 2 * size),
        ("x.mul_(1.0001) in place", lambda: x.mul_(1.0001), 2 * size),
        ("sum (all)", lambda: x.sum(), size),
        ("sum per row", lambda: x.sum(dim=1), size),
        ("sum per column", lambda: x.sum(dim=0), size),
        ("column mean + variance (var_mean dim 0)", lambda: torch.var_mean(x, dim=0), size),
        ("argmax per row", lambda: x.argmax(dim=1), size),
        ("softmax per row", lambda: torch.softmax(x, dim=1), 2 * size),
        ("log-sum-exp per row", lambda: torch.logsumexp(x, dim=1), size),
        ("histogram 1,024 bins over [-4, 4] (histc)", lambda: torch.histc(x, 1024, -4, 4), size),
        ("histogram 1,024 bins over the data range (histc)", lambda: torch.histc(x, 1024), size),
    ]
    for name, fn, nbytes in cases:
        row(name, shape, timed(fn, a.repeats), nbytes)


def section_stats(a):
    print("\n### stats (float32)")
    print("| case | shape | median ms | TB/s |")
    print("|---|---|---:|---:|", flush=True)
    h = torch.randn(a.hist_n, device="cuda")
    row("histc 1,024 bins over [-4, 4]", f"{a.hist_n}", timed(lambda: torch.histc(h, 1024, -4, 4), a.repeats), h.numel() * 4)
    del h
    s = torch.randn(a.sort_n, device="cuda")
    row("torch.sort", f"{a.sort_n}", timed(lambda: torch.sort(s), a.repeats), 2 * s.numel() * 4)
    del s
    n = int(a.gib * 2**30) // 4
    rows = n // a.dim
    x = torch.randn(rows, a.dim, device="cuda")
    size = x.numel() * 4
    shape = f"{rows} x {a.dim}"

    def describe(dim):
        # scipy.stats.describe's figures with torch ops: count, min, max,
        # mean, variance, skewness and kurtosis (several passes).
        lo, hi = torch.aminmax(x, dim=dim)
        m = x.mean(dim=dim, keepdim=True)
        d = x - m
        d2 = d * d
        v = d2.mean(dim=dim)
        return lo, hi, m, v, (d2 * d).mean(dim=dim) / v**1.5, (d2 * d2).mean(dim=dim) / v**2 - 3

    row("describe per column (aminmax, mean, central moments)", shape, timed(lambda: describe(0), a.repeats), size)
    row("describe per row", shape, timed(lambda: describe(1), a.repeats), size)
    row("median per column (torch.median dim 0)", shape, timed(lambda: torch.median(x, dim=0), a.repeats), size)
    row("covariance matrix (torch.cov)", shape, timed(lambda: torch.cov(x.T), a.repeats), size)


def section_gemm(a):
    print("\n### gemm (torch.matmul; TFLOP/s in the last column)")
    print("| case | shape (m x n x k) | median ms | TFLOP/s |")
    print("|---|---|---:|---:|", flush=True)
    shapes = [(4096, 4096, 4096), (8192, 8192, 8192), (1, 1000, 3), (1000, 1, 1000), (4097, 4095, 1023)]
    for prec in ["fp32", "tf32", "bf16", "f16"]:
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        dt = {"bf16": torch.bfloat16, "f16": torch.float16}.get(prec, torch.float32)
        for m, n, k in shapes:
            p = torch.randn(m, k, device="cuda", dtype=dt)
            q = torch.randn(k, n, device="cuda", dtype=dt)
            ms = timed(lambda: p @ q, a.repeats)
            print(f"| matmul {prec} | {m} x {n} x {k} | {ms:.3f} | {2 * m * n * k / (ms / 1e3) / 1e12:.2f} |", flush=True)
            if dt != torch.float32:
                # The product as vaccel computes it: 16-bit operands, fp32 result (torch.mm's
                # out_dtype; absent from older PyTorch).
                try:
                    ms = timed(lambda: torch.mm(p, q, out_dtype=torch.float32), a.repeats)
                except (TypeError, RuntimeError):
                    continue
                print(f"| mm {prec}, fp32 out | {m} x {n} x {k} | {ms:.3f} | {2 * m * n * k / (ms / 1e3) / 1e12:.2f} |", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    # GEMM + bias + ReLU on the shapes of `vaccel bench ops --gemm` (the same default list), fp32
    # with TF32 off, each next to the plain matmul of the same shape: as PyTorch runs it without
    # fusion (matmul, add, relu: three kernels) and with the bias folded into the GEMM (addmm,
    # then relu).
    print("\n### gemm + bias + relu (fp32, TF32 off; TFLOP/s of the GEMM's 2mnk)")
    print("| case | shape (m x n x k) | median ms | TFLOP/s |")
    print("|---|---|---:|---:|", flush=True)
    for m, n, k in parse_shapes(a.gemm):
        x = torch.randn(m, k, device="cuda")
        w = torch.randn(k, n, device="cuda")
        b = torch.randn(n, device="cuda")
        for name, fn in [
            ("x @ w alone", lambda: x @ w),
            ("relu(x @ w + b) (matmul, add, relu)", lambda: torch.relu(x @ w + b)),
            ("relu(addmm(b, x, w))", lambda: torch.relu(torch.addmm(b, x, w))),
        ]:
            ms = timed(fn, a.repeats)
            print(f"| {name} fp32 | {m} x {n} x {k} | {ms:.3f} | {2 * m * n * k / (ms / 1e3) / 1e12:.2f} |", flush=True)


def parse_shapes(spec):
    """`MxNxK` comma list -> [(m, n, k)]."""
    out = []
    for t in spec.split(","):
        v = [int(u) for u in t.strip().split("x")]
        if len(v) != 3 or min(v) < 1:
            raise SystemExit(f"--gemm: {t!r} is not MxNxK with sizes >= 1")
        out.append(tuple(v))
    return out


SECTIONS = {"vector": section_vector, "stats": section_stats, "gemm": section_gemm}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=1.0, help="size of the vector section's array")
    ap.add_argument("--dim", type=int, default=1024, help="columns of the vector section's array")
    ap.add_argument("--hist-n", type=int, default=1_000_000_000)
    ap.add_argument("--sort-n", type=int, default=100_000_000)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--only", default=",".join(SECTIONS))
    ap.add_argument(
        "--gemm",
        default="4096x4096x4096,8192x8192x8192,4097x4095x1023,1x1000x3",
        help="MxNxK shapes of the GEMM + bias + ReLU cases (the default list of vaccel bench ops)",
    )
    a = ap.parse_args()
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    for s in only:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r}; choose from {','.join(SECTIONS)}")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, median of {a.repeats} after a warm-up")
    for s in only:
        SECTIONS[s](a)


if __name__ == "__main__":
    main()
