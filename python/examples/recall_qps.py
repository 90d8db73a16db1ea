"""Builds indexes over embedding-like vectors and plots recall@10 against
queries per second, as ann-benchmarks draws it.

    python python/examples/recall_qps.py [--n 200000] [--dim 96] [--out recall_qps.png]

The vectors mimic sentence embeddings: a few hundred topics, each a
low-dimensional subspace with its own spread, normalised to unit length and
searched by cosine distance. Ground truth is the exact search
(`va.knn`). The PNG needs matplotlib; without it the table is printed only.
"""
import argparse
import time

import numpy as np

import vector_accelerate as va


def embeddings(n, dim, seed, topics=300, rank=12):
    """Unit vectors near `topics` random `rank`-dimensional subspaces."""
    g = np.random.default_rng(1234)
    centres = g.standard_normal((topics, dim))
    bases = g.standard_normal((topics, rank, dim)) / np.sqrt(dim)
    scale = g.uniform(0.3, 1.2, topics)
    r = np.random.default_rng(seed)
    t = r.integers(0, topics, n)
    coef = r.standard_normal((n, rank)) * scale[t, None]
    x = centres[t] + np.einsum("nr,nrd->nd", coef, bases[t]) + 0.05 * r.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])


def sweep(index, xq, truth, nprobes, refine=None):
    points = []
    for p in nprobes:
        kw = {"nprobe": p} | ({"refine_factor": refine} if refine else {})
        index.search(xq[:100], 10, **kw)  # warm
        t = time.perf_counter()
        _, I = index.search(xq, 10, **kw)
        qps = len(xq) / (time.perf_counter() - t)
        points.append((p, recall(I, truth), qps))
        print(f"  {index.factory:<28} nprobe {p:4d}  recall@10 {points[-1][1]:.4f}  {qps:12,.0f} q/s")
    return points


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--queries", type=int, default=5_000)
    ap.add_argument("--out", default="recall_qps.png")
    a = ap.parse_args()
    xb, xq = embeddings(a.n, a.dim, 1), embeddings(a.queries, a.dim, 2)
    print(f"{a.n:,} x {a.dim} embeddings, {a.queries:,} queries on {va.device()}")
    t = time.perf_counter()
    _, truth = va.knn(xq, xb, 10, metric="cosine")
    print(f"exact search: {a.queries / (time.perf_counter() - t):,.0f} q/s (recall 1.0)")
    nlist = int(4 * np.sqrt(a.n))
    curves = {}
    for factory, refine in [(f"IVF{nlist},Flat", None), (f"IVF{nlist},SQ8", None),
                            (f"IVF{nlist},PQ{a.dim // 4}x8,Refine", 4)]:
        index = va.index_factory(a.dim, factory, "cosine")
        t = time.perf_counter()
        index.train(xb)
        index.add(xb)
        print(f"{factory}: built in {time.perf_counter() - t:.1f} s")
        curves[factory] = sweep(index, xq, truth, [1, 2, 4, 8, 16, 32, 64], refine)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(7, 5))
    for name, pts in curves.items():
        ax.plot([p[1] for p in pts], [p[2] for p in pts], "o-", label=name)
    ax.set(xlabel="recall@10", ylabel="queries per second", yscale="log",
           title=f"{a.n:,} x {a.dim} embeddings, cosine, {va.device()}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(a.out, dpi=120, bbox_inches="tight")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
