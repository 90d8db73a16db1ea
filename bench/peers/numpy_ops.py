#!/usr/bin/env python3
"""NumPy/SciPy peer for the vector utilities on the CPU machine.

The same cases as `vaccel bench ops --device cpu` on a float32 array of about --gib GiB shaped
rows x --dim (N(0, 1), seeded), one warm-up then the median of --repeats, with the bandwidth of
the ideal traffic (the bytes one pass must read and write). NumPy runs its ufuncs on one thread;
the sums use its pairwise summation in float32 unless noted.

    python3 bench/peers/numpy_ops.py --gib 0.125 --repeats 5
    python3 bench/peers/numpy_ops.py --gib 0.37253 --dim 1000 --maps-only  # 10^8 elements

The statistics cases (after the vector ones) match `vaccel bench ops`' statistics rows:
descriptive statistics with `scipy.stats.describe` (count, min/max, mean, variance, skewness,
kurtosis) over everything, per row and per column, the median per column, `np.cov`, and
`np.quantile` at nine levels of --quantile-n values.
"""
import argparse
import time

import numpy as np

try:
    from scipy.special import erf, expit, logsumexp, softmax
except ImportError:  # pragma: no cover - SciPy is optional
    erf = expit = logsumexp = softmax = None
try:
    from scipy.stats import describe
except ImportError:  # pragma: no cover - SciPy is optional
    describe = None


def timed(fn, repeats):
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return sorted(out)[len(out) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=0.125)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gemm", type=int, default=1024, help="size of the square float32 matmul case")
    ap.add_argument("--quantile-n", type=int, default=10_000_000, help="values of the quantile case")
    ap.add_argument("--maps-only", action="store_true", help="only the element-wise maps")
    a = ap.parse_args()
    rows = int(a.gib * 2**30) // 4 // a.dim
    rng = np.random.default_rng(a.seed)
    x = rng.standard_normal((rows, a.dim), dtype=np.float32)
    y = rng.standard_normal((rows, a.dim), dtype=np.float32)
    r = rng.standard_normal((1, a.dim), dtype=np.float32)
    z = x.copy()
    size = x.nbytes
    print(f"numpy {np.__version__}, float32 {rows} x {a.dim} ({size / 2**30:.3f} GiB), median of {a.repeats} after a warm-up")
    print("| case | shape | median ms | GB/s of ideal traffic |")
    print("|---|---|---:|---:|")

    def normalise_in_place():
        n = np.sqrt(np.einsum("ij,ij->i", z, z, dtype=np.float64))
        n[n == 0] = 1.0
        z[...] = z * (1.0 / n)[:, None].astype(np.float32)

    cases = [
        ("normalise rows in place (norms in f64)", normalise_in_place, 2 * size),
        ("x + 1.5", lambda: x + np.float32(1.5), 2 * size),
        ("exp(x)", lambda: np.exp(x), 2 * size),
        ("log(x)", lambda: np.log(x), 2 * size),
        ("tanh(x)", lambda: np.tanh(x), 2 * size),
        ("sin(x)", lambda: np.sin(x), 2 * size),
        ("cos(x)", lambda: np.cos(x), 2 * size),
        ("tanh(exp(0.5 x) - 1) chain (four passes)", lambda: np.tanh(np.exp(x * np.float32(0.5)) - np.float32(1)), 2 * size),
        ("sqrt(|sin(x)|) chain (three passes)", lambda: np.sqrt(np.abs(np.sin(x))), 2 * size),
        ("x * y", lambda: x * y, 3 * size),
        ("x + row vector", lambda: x + r, 2 * size),
        ("relu(x * 1.5 + 0.5) (three passes)", lambda: np.maximum(x * np.float32(1.5) + np.float32(0.5), 0), 2 * size),
        ("sum (all, float64 accumulator)", lambda: x.sum(dtype=np.float64), size),
        ("sum per row", lambda: x.sum(axis=1), size),
        ("sum per column", lambda: x.sum(axis=0), size),
        ("variance per column", lambda: x.var(axis=0), size),
        ("argmax per row", lambda: x.argmax(axis=1), size),
        ("histogram 1,024 bins over [-4, 4]", lambda: np.histogram(x, bins=1024, range=(-4.0, 4.0)), size),
        ("histogram 1,024 bins over the data range", lambda: np.histogram(x, bins=1024), size),
    ]
    if expit is not None:
        cases += [
            ("sigmoid(x) (scipy expit)", lambda: expit(x), 2 * size),
            ("gelu(x) (erf)", lambda: np.float32(0.5) * x * (1 + erf(x * np.float32(0.7071067811865476))), 2 * size),
            ("softmax per row (scipy)", lambda: softmax(x, axis=1), 2 * size),
            ("log-sum-exp per row (scipy)", lambda: logsumexp(x, axis=1), size),
        ]
    if a.maps_only:
        maps = ("x + 1.5", "exp", "log", "tanh", "sin", "cos", "chain", "sigmoid", "gelu")
        cases = [c for c in cases if c[0].startswith(maps) or "chain" in c[0]]
    for name, fn, nbytes in cases:
        ms = timed(fn, a.repeats)
        print(f"| {name} | {rows} x {a.dim} | {ms:.2f} | {nbytes / (ms / 1e3) / 1e9:.2f} |", flush=True)
    if a.maps_only:
        return
    stats_cases(a, rng, x)
    p = rng.standard_normal((a.gemm, a.gemm), dtype=np.float32)
    q = rng.standard_normal((a.gemm, a.gemm), dtype=np.float32)
    ms = timed(lambda: p @ q, a.repeats)
    print(f"| matmul float32 | {a.gemm} x {a.gemm} x {a.gemm} | {ms:.2f} | {2 * a.gemm**3 / (ms / 1e3) / 1e12:.3f} TFLOP/s |", flush=True)


def stats_cases(a, rng, x):
    rows, dim = x.shape
    size = x.nbytes
    cases = [
        ("median per column", lambda: np.median(x, axis=0), size),
        ("covariance matrix (np.cov)", lambda: np.cov(x, rowvar=False), size),
    ]
    if describe is not None:
        cases = [
            ("describe (all): scipy.stats.describe", lambda: describe(x, axis=None), size),
            ("describe per row", lambda: describe(x, axis=1), size),
            ("describe per column", lambda: describe(x, axis=0), size),
        ] + cases
    for name, fn, nbytes in cases:
        ms = timed(fn, a.repeats)
        print(f"| {name} | {rows} x {dim} | {ms:.2f} | {nbytes / (ms / 1e3) / 1e9:.2f} |", flush=True)
    v = rng.standard_normal(a.quantile_n, dtype=np.float32)
    levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    ms = timed(lambda: np.quantile(v, levels), a.repeats)
    print(f"| quantiles, 9 levels (np.quantile) | {a.quantile_n} | {ms:.2f} | {v.nbytes / (ms / 1e3) / 1e9:.2f} |", flush=True)


if __name__ == "__main__":
    main()
