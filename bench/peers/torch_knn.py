#!/usr/bin/env python3
"""PyTorch brute-force k-NN peer: `q @ x.T`, norms, `torch.topk` (fp32, tf32, bf16).

Runs on a GPU host next to `vaccel bench knn` so both are timed on the same
device in the same session. Data: Gaussian or clustered, seeded, the same
shapes as the vaccel benchmark (or .npy files given with --base/--queries).

    python3 bench/peers/torch_knn.py --n 1000000 --dims 128,768 --queries 10000 -k 10
"""
import argparse
import json
import time

import torch


def make(kind, n, dim, nq, seed, device):
    g = torch.Generator(device=device).manual_seed(seed)
    if kind == "gaussian":
        x = torch.randn(n, dim, generator=g, device=device)
        q = torch.randn(nq, dim, generator=g, device=device)
    else:
        centres = torch.randn(max(1, n // 200), dim, generator=g, device=device)
        x = centres[torch.randint(0, centres.shape[0], (n,), generator=g, device=device)]
        x = x + 0.1 * torch.randn(n, dim, generator=g, device=device)
        q = centres[torch.randint(0, centres.shape[0], (nq,), generator=g, device=device)]
        q = q + 0.1 * torch.randn(nq, dim, generator=g, device=device)
    return x.contiguous(), q.contiguous()


def knn(x, xn, q, k, mode, chunk):
    out_d, out_i = [], []
    for s in range(0, q.shape[0], chunk):
        qb = q[s : s + chunk]
        if mode == "bf16":
            dots = (qb.bfloat16() @ x.bfloat16().T).float()
        else:
            dots = qb @ x.T
        d = (qb * qb).sum(1, keepdim=True) + xn[None, :] - 2.0 * dots
        v, i = torch.topk(d, k, dim=1, largest=False)
        out_d.append(v)
        out_i.append(i)
    return torch.cat(out_d), torch.cat(out_i)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dims", default="128,768")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--data", default="gaussian", choices=["gaussian", "clustered", "both"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--chunk", type=int, default=2048, help="queries per matmul (bounds the distance matrix)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    dev = "cuda"
    rows = []
    kinds = ["gaussian", "clustered"] if a.data == "both" else [a.data]
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print("| data | n | dim | nq | k | mode | median ms | queries/s |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        for dim in [int(d) for d in a.dims.split(",")]:
            x, q = make(kind, a.n, dim, a.queries, a.seed, dev)
            xn = (x * x).sum(1)
            for mode in ["fp32", "tf32", "bf16"]:
                torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
                knn(x, xn, q, a.k, mode, a.chunk)
                torch.cuda.synchronize()
                times = []
                for _ in range(a.repeats):
                    t0 = time.perf_counter()
                    knn(x, xn, q, a.k, mode, a.chunk)
                    torch.cuda.synchronize()
                    times.append(time.perf_counter() - t0)
                ms = sorted(times)[len(times) // 2] * 1e3
                qps = a.queries / (ms / 1e3)
                rows.append(dict(data=kind, n=a.n, dim=dim, nq=a.queries, k=a.k, mode=mode, ms=ms, qps=qps))
                print(f"| {kind} | {a.n} | {dim} | {a.queries} | {a.k} | {mode} | {ms:.2f} | {qps:,.0f} |", flush=True)
            del x, q, xn
            torch.cuda.empty_cache()
    torch.backends.cuda.matmul.allow_tf32 = False
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
