#!/usr/bin/env python3
"""faiss-cpu index peers on the data `vaccel bench index --export DIR` wrote.

Builds IndexIVFFlat (nlist lists, L2), IndexIVFPQ (nlist lists, m
sub-quantizers of 8 bits) and IndexHNSWFlat (M = 32) on DIR/base.npy, then
prints recall@k against DIR/truth.npy and queries per second for a sweep of
nprobe (IVF) or efSearch (HNSW), all cores, median of the repeats after a
warm-up. `--csv FILE` also writes the results as `name,param,recall,qps`
rows (name: the faiss index class; param: nprobe or efSearch), the peers
file `vaccel bench index --plot` draws:

    vaccel bench index --device cpu --n 400000 --dim 50 --factory IVF1024,Flat --export /tmp/ivfdata
    python3 bench/peers/faiss_cpu_index.py /tmp/ivfdata --nlist 1024 --nprobe 1,2,4,8,16,32 --csv /tmp/faiss.csv
"""
import argparse
import csv
import os
import time

import faiss
import numpy as np


def recall(got, truth):
    hits = sum(len(set(g) & set(t[t >= 0])) for g, t in zip(got, truth))
    return hits / max(1, int((truth >= 0).sum()))


def timed(index, q, k, repeats):
    index.search(q, k)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, ids = index.search(q, k)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3, ids


def sweep(name, index, knob, values, q, truth, k, repeats):
    """Prints a table row per value of the knob; returns (name, value, recall, qps) rows."""
    rows = []
    for v in values:
        setattr(knob, name, v) if not callable(knob) else knob(v)
        ms, ids = timed(index, q, k, repeats)
        r, qps = recall(ids, truth), len(q) / (ms / 1e3)
        print(f"| {index_name(index)} | {v} | {r:.4f} | {ms:.3f} | {qps:.0f} |", flush=True)
        rows.append((index_name(index), v, r, qps))
    return rows


def write_csv(path, rows):
    """Writes the rows under a temporary name, then renames it into place."""
    folder, base = os.path.split(os.path.abspath(path))
    temp = os.path.join(folder, f".{base}.{os.getpid()}.tmp")
    try:
        with open(temp, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["name", "param", "recall", "qps"])
            for name, v, r, qps in rows:
                w.writerow([name, v, f"{r:.6f}", f"{qps:.1f}"])
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def index_name(index):
    return type(index).__name__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--nprobe", default="1,2,4,8,16,32,64")
    ap.add_argument("--pq-m", type=int, default=0, help="sub-quantizers of IVFPQ (0: skip IVFPQ)")
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--hnsw", type=int, default=1, help="1: also HNSWFlat (M = 32)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--csv", metavar="FILE", help="also write name,param,recall,qps rows (for vaccel bench index --peers)")
    a = ap.parse_args()
    x = np.load(f"{a.dir}/base.npy")
    q = np.load(f"{a.dir}/queries.npy")
    truth = np.load(f"{a.dir}/truth.npy")
    k = truth.shape[1]
    d = x.shape[1]
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; {x.shape[0]} x {d}, {len(q)} queries, k {k}")
    print("| index | nprobe / efSearch | recall | ms | queries/s |")
    print("|---|---:|---:|---:|---:|")
    probes = [int(p) for p in a.nprobe.split(",")]
    t0 = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, a.nlist)
    ivf.train(x)
    ivf.add(x)
    print(f"(IndexIVFFlat build {time.perf_counter() - t0:.2f} s)")
    rows = sweep("nprobe", ivf, ivf, probes, q, truth, k, a.repeats)
    if a.pq_m:
        t0 = time.perf_counter()
        pq = faiss.IndexIVFPQ(faiss.IndexFlatL2(d), d, a.nlist, a.pq_m, 8)
        pq.train(x)
        pq.add(x)
        print(f"(IndexIVFPQ build {time.perf_counter() - t0:.2f} s)")
        rows += sweep("nprobe", pq, pq, probes, q, truth, k, a.repeats)
    if a.hnsw:
        t0 = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(d, 32)
        hnsw.add(x)
        print(f"(IndexHNSWFlat build {time.perf_counter() - t0:.2f} s)")
        rows += sweep("efSearch", hnsw, hnsw.hnsw, [int(e) for e in a.ef.split(",")], q, truth, k, a.repeats)
    if a.csv:
        write_csv(a.csv, rows)


if __name__ == "__main__":
    main()
