"""Shards of one IVF index on the workers of a Dask cluster, searched from the client.

    python python/examples/dask_shards.py [--workers 2] [--n 400000] [--scheduler ADDRESS]

Without --scheduler a local cluster of worker processes is started (each worker uses its own
device: its GPU where one is visible, else its CPU). The vectors are cut into one block per
worker; every shard starts from one index trained on the client, so the merged results are
those of a single index over all the blocks, which the script checks on a sample of queries.
"""
import argparse
import time

import numpy as np
from dask.distributed import Client, LocalCluster

import vector_accelerate as va
from vector_accelerate.dask import build_shards


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--n", type=int, default=400_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=2_000)
    p.add_argument("--scheduler", help="address of a running scheduler (default: a local cluster)")
    a = p.parse_args()

    r = np.random.default_rng(0)
    centres = r.standard_normal((500, a.dim)).astype(np.float32)
    xb = centres[r.integers(0, 500, a.n)] + 0.5 * r.standard_normal((a.n, a.dim)).astype(np.float32)
    xq = centres[r.integers(0, 500, a.queries)] + 0.5 * r.standard_normal((a.queries, a.dim)).astype(np.float32)

    cluster = None if a.scheduler else LocalCluster(n_workers=a.workers, threads_per_worker=1, dashboard_address=None)
    with Client(a.scheduler or cluster) as client:
        blocks = np.array_split(xb, len(client.scheduler_info()["workers"]))
        t = time.perf_counter()
        shards = build_shards(client, blocks, "IVF256,Flat", train=xb[::10])
        print(f"built {len(blocks)} shards, {shards.ntotal} vectors, in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        D, I = shards.search(xq, 10, nprobe=16)
        print(f"searched {len(xq)} queries in {time.perf_counter() - t:.3f} s")

        single = va.index_factory(a.dim, "IVF256,Flat")
        single.train(xb[::10])
        single.add(xb)
        D1, I1 = single.search(xq[:200], 10, nprobe=16)
        print("same results as one index:", bool((I1 == I[:200]).all()))
    if cluster is not None:
        cluster.close()


if __name__ == "__main__":
    main()
