#!/usr/bin/env python3
"""PyTorch row-wise top-k peer: `torch.topk(x, k, dim=1, largest=False)` over
a [rows x n] float32 matrix on the GPU (Gaussian values, generated on the
device with a fixed seed: the same shape and distribution as
`vaccel bench select`).

    python3 bench/peers/torch_select.py --rows 4096 --n 1000000 -k 100
"""
import argparse

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("-k", "--k", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(a.seed)
    x = torch.randn(a.rows, a.n, generator=g, device=dev)
    v, _ = torch.topk(x, a.k, dim=1, largest=False)
    # Spot check one row against a sort.
    ref = torch.sort(x[0]).values[: a.k]
    assert torch.equal(v[0], ref), "torch.topk disagrees with a sort"
    times = []
    for _ in range(a.repeats):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        torch.topk(x, a.k, dim=1, largest=False)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    ms = times[len(times) // 2]
    gbs = a.rows * a.n * 4 / (ms / 1e3) / 1e9
    print(f"device: {torch.cuda.get_device_name()} (torch {torch.__version__})")
    print("| peer | rows | n | k | median ms | effective GB/s |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| torch.topk | {a.rows} | {a.n} | {a.k} | {ms:.2f} | {gbs:.0f} |")


if __name__ == "__main__":
    main()
