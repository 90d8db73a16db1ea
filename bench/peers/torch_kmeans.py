#!/usr/bin/env python3
"""PyTorch k-means peer (Lloyd iterations on the GPU), plus an optional eager int8 SQ encode.

A plain PyTorch k-means written the way a user would: X [n x d] float32 on
the device, k centroids initialised by a seeded random choice of k points,
then per iteration
  assignment: argmin over ||x||^2 - 2 x C^T + ||c||^2 (torch.mm), in chunks
              of rows so the chunk x k distance matrix fits;
  update:     index_add_ of the points into per-centroid sums, bincount
              counts; an empty cluster keeps its old centroid.
One untimed warm-up iteration (its result discarded), then --iters timed
iterations from the same initial centroids (torch.cuda.synchronize +
perf_counter around each); reports the median ms per iteration and the final
inertia / n (sum over points of ||x - c_label||^2 with the final centroids,
accumulated in float64). --precision fp32 sets
torch.backends.cuda.matmul.allow_tf32 = False, tf32 sets it True; a comma
list runs each.

--sq8 also times an eager PyTorch int8 scalar quantization of device-resident
data: per-column min/max fit (x.amin(0), x.amax(0)), then
codes = round((x - lo) / scale).clamp(0, 255).to(uint8), median of --repeats
after a warm-up, TB/s of bytes read + written (n*d*4 + n*d). If memory runs
out, the row count is halved (with a printed note) until it fits.

Data: clustered (--clusters N(0,1) centres + 0.1*N(0,1) noise) or Gaussian,
float32, generated on the device with a seeded torch.Generator.

    python3 bench/peers/torch_kmeans.py --n 1000000 --d 128 --k 4096 --iters 10 --precision fp32,tf32
    python3 bench/peers/torch_kmeans.py --sq8 --sq8-n 10000000 --sq8-d 768
"""
import argparse
import json
import time

import torch

GEN_CHUNK = 1 << 20  # rows generated at a time (bounds the temporaries of the clustered data)


def make(kind, n, d, clusters, seed, device):
    """Seeded float32 data generated on the device, row chunk by row chunk into one tensor."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.empty(n, d, device=device, dtype=torch.float32)
    centres = None
    if kind == "clustered":
        centres = torch.randn(clusters, d, generator=g, device=device)
    for s in range(0, n, GEN_CHUNK):
        m = min(GEN_CHUNK, n - s)
        if kind == "gaussian":
            x[s : s + m] = torch.randn(m, d, generator=g, device=device)
        else:
            idx = torch.randint(0, clusters, (m,), generator=g, device=device)
            x[s : s + m] = centres[idx] + 0.1 * torch.randn(m, d, generator=g, device=device)
    return x


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def assign(x, xn, c, chunk):
    """Nearest centroid of every row: argmin of ||x||^2 - 2 x.c + ||c||^2, chunk rows at a time."""
    cn = (c * c).sum(1)
    labels = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for s in range(0, x.shape[0], chunk):
        xb = x[s : s + chunk]
        dist = xn[s : s + chunk, None] - 2.0 * torch.mm(xb, c.T) + cn[None, :]
        labels[s : s + chunk] = torch.argmin(dist, dim=1)
    return labels


def update(x, labels, c):
    """Mean of the points of each cluster; an empty cluster keeps its old centroid."""
    k = c.shape[0]
    sums = torch.zeros_like(c).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=k)
    means = sums / counts.clamp_min(1).unsqueeze(1).to(c.dtype)
    return torch.where(counts.unsqueeze(1) > 0, means, c)


def inertia(x, labels, c, chunk):
    """Sum over rows of ||x - c_label||^2, accumulated in float64."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for s in range(0, x.shape[0], chunk):
        diff = x[s : s + chunk] - c[labels[s : s + chunk]]
        total += (diff * diff).sum(1).double().sum()
    return float(total)


def run_kmeans(a, x, precision):
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    n = x.shape[0]
    g = torch.Generator(device=a.device).manual_seed(a.seed + 1)
    init = x[torch.randperm(n, generator=g, device=a.device)[: a.k]].clone()
    xn = (x * x).sum(1)
    # warm-up iteration (cuBLAS handles, allocator), result discarded
    update(x, assign(x, xn, init, a.chunk), init)
    sync(a.device)
    c = init
    times = []
    for _ in range(a.iters):
        sync(a.device)
        t0 = time.perf_counter()
        labels = assign(x, xn, c, a.chunk)
        c = update(x, labels, c)
        sync(a.device)
        times.append(time.perf_counter() - t0)
    labels = assign(x, xn, c, a.chunk)
    inert = inertia(x, labels, c, a.chunk) / n
    empty = int((torch.bincount(labels, minlength=a.k) == 0).sum())
    torch.backends.cuda.matmul.allow_tf32 = False
    return times, inert, empty


def sq8_once(kind, n, d, clusters, seed, device, repeats):
    x = make(kind, n, d, clusters, seed, device)

    def fit():
        lo = x.amin(0)
        hi = x.amax(0)
        scale = ((hi - lo) / 255.0).clamp_min(1e-30)
        return lo, scale

    def encode(lo, scale):
        return torch.round((x - lo) / scale).clamp(0, 255).to(torch.uint8)

    def timed(fn):
        out = fn()
        sync(device)
        times = []
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            out = fn()
            sync(device)
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2], out

    s_fit, (lo, scale) = timed(fit)
    s_enc, codes = timed(lambda: encode(lo, scale))
    # check on the first rows: |x - decode(codes)| <= scale / 2 (up to rounding)
    m = min(n, 100_000)
    rec = codes[:m].float() * scale + lo
    err = float(((rec - x[:m]).abs() / scale).max())
    del x, codes, rec
    return s_fit, s_enc, err


def run_sq8(a, rows, kind):
    n = a.sq8_n
    while n >= 1:
        retry = False
        try:
            s_fit, s_enc, err = sq8_once(kind, n, a.sq8_d, a.clusters, a.seed, a.device, a.repeats)
        except torch.cuda.OutOfMemoryError:
            retry = True
        if not retry:
            break
        if a.device.startswith("cuda"):
            torch.cuda.empty_cache()
        print(f"note: sq8 with {n} x {a.sq8_d} ran out of device memory; retrying with {n // 2} rows", flush=True)
        n //= 2
    if n < 1:
        return
    d = a.sq8_d
    read = n * d * 4
    print(f"\n### sq8 encode (eager PyTorch, per-column min/max; median of {a.repeats} after a warm-up; "
          "bytes: fit n*d*4, encode n*d*4 + n*d)")
    print("| data | n | d | op | median ms | TB/s | max err / scale (first rows) |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for op, s, nbytes in [("fit (amin+amax)", s_fit, read), ("encode", s_enc, read + n * d)]:
        tbs = nbytes / s / 1e12
        rows.append(dict(section="sq8", data=kind, n=n, d=d, op=op, ms=s * 1e3, tbs=tbs, max_err_in_steps=err))
        print(f"| {kind} | {n} | {d} | {op} | {s * 1e3:.2f} | {tbs:.3f} | {err:.3f} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--data", default="clustered", choices=["gaussian", "clustered"])
    ap.add_argument("--clusters", type=int, default=1000, help="centres of the clustered data")
    ap.add_argument("--precision", default="fp32", help="comma list of fp32, tf32")
    ap.add_argument("--chunk", type=int, default=262_144, help="rows per assignment matmul (bounds the chunk x k matrix)")
    ap.add_argument("--no-kmeans", action="store_true", help="skip the k-means section")
    ap.add_argument("--sq8", action="store_true", help="also time the eager int8 SQ encode")
    ap.add_argument("--sq8-n", type=int, default=10_000_000)
    ap.add_argument("--sq8-d", type=int, default=768)
    ap.add_argument("--repeats", type=int, default=3, help="sq8 repeats after a warm-up")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu for a tiny check")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    precisions = [p.strip() for p in a.precision.split(",") if p.strip()]
    for p in precisions:
        if p not in ("fp32", "tf32"):
            ap.error(f"unknown precision {p!r}; choose from fp32, tf32")
    name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu"
    print(f"device: {name}, torch {torch.__version__}", flush=True)
    rows = []
    if not a.no_kmeans:
        x = make(a.data, a.n, a.d, a.clusters, a.seed, a.device)
        print(f"\n### k-means (Lloyd, chunk {a.chunk} rows, 1 warm-up iteration then {a.iters} timed, median)")
        print("| data | n | d | k | iters | precision | median ms/iter | min ms/iter | total ms | TFLOP/s (2nkd/iter) | inertia/n | empty clusters |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
        for p in precisions:
            times, inert, empty = run_kmeans(a, x, p)
            med = sorted(times)[len(times) // 2]
            tflops = 2.0 * a.n * a.k * a.d / med / 1e12
            rows.append(dict(section="kmeans", data=a.data, n=a.n, d=a.d, k=a.k, iters=a.iters, precision=p,
                             ms_per_iter=med * 1e3, min_ms=min(times) * 1e3, total_ms=sum(times) * 1e3,
                             tflops=tflops, inertia_per_n=inert, empty=empty))
            print(f"| {a.data} | {a.n} | {a.d} | {a.k} | {a.iters} | {p} | {med * 1e3:.2f} | {min(times) * 1e3:.2f} | "
                  f"{sum(times) * 1e3:.1f} | {tflops:.2f} | {inert:.6g} | {empty} |", flush=True)
        del x
        if a.device.startswith("cuda"):
            torch.cuda.empty_cache()
    if a.sq8:
        run_sq8(a, rows, a.data)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
