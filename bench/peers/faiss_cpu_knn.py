#!/usr/bin/env python3
"""faiss-cpu brute-force k-NN peer (IndexFlatL2 / IndexFlatIP) on the CPU machine.

Times the same shapes as `vaccel bench knn --device cpu` on Gaussian data
(NumPy, seeded), all cores, median of the repeats after a warm-up.

    python3 bench/peers/faiss_cpu_knn.py --n 100000 --dims 128,768 --queries 1000 -k 10
"""
import argparse
import time

import faiss
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dims", default="128,768")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--metric", default="l2", choices=["l2", "ip"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    print("| n | dim | nq | k | metric | median ms | queries/s |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(a.seed)
    for dim in [int(d) for d in a.dims.split(",")]:
        x = rng.standard_normal((a.n, dim), dtype=np.float32)
        q = rng.standard_normal((a.queries, dim), dtype=np.float32)
        index = faiss.IndexFlatL2(dim) if a.metric == "l2" else faiss.IndexFlatIP(dim)
        index.add(x)
        index.search(q, a.k)
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            index.search(q, a.k)
            times.append(time.perf_counter() - t0)
        ms = sorted(times)[len(times) // 2] * 1e3
        print(f"| {a.n} | {dim} | {a.queries} | {a.k} | {a.metric} | {ms:.1f} | {a.queries / (ms / 1e3):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
