#!/usr/bin/env python3
"""faiss-cpu quantization peer: k-means, PQ training, SQ/PQ encode, PQ ADC search, binary flat search.

Runs on the CPU machine, all cores, on seeded NumPy data (clustered or
Gaussian). Every timing is one warm-up then the median of --repeats.

Sections (--only takes a comma list, default all):
  kmeans    faiss.Kmeans on n x d (no subsampling): total and per-iteration
            seconds, final objective (km.obj[-1]) and objective / n, and the
            objective of the final centroids / n (one more assignment pass).
  pq-train  faiss.ProductQuantizer(d, M, nbits).train on n points (no
            subsampling): seconds and reconstruction MSE on the training set.
  sq        faiss.ScalarQuantizer QT_8bit, QT_4bit, QT_8bit_uniform (RS_minmax),
            trained on the --encode-n rows, then compute_codes and decode of
            them: ms, rows/s, GB/s (bytes read + written = n*d*4 +
            n*code_size), reconstruction MSE and max abs error.
  sq-search IndexScalarQuantizer QT_8bit and QT_8bit_uniform over the
            --encode-n rows, --queries queries, k=10: ms, queries/s and
            recall@10 against exact IndexFlatL2 (no re-ranking).
  pq        PQ compute_codes of --encode-n rows; IndexPQ ADC search (L2 and
            inner product) of --queries queries, k=10: ms, queries/s, code
            distances/s (nq * n / s), recall@10 against exact (IndexFlatL2 /
            IndexFlatIP) and recall@10 after exact re-ranking of the PQ top-100.
  binary    faiss.IndexBinaryFlat over --binary-n random codes of --bits bits,
            --binary-queries queries, k=10: ms, queries/s, code bytes scanned/s.

    python3 bench/peers/faiss_cpu_quant.py --data clustered --n 100000 --d 128 --k 256 --niter 10 --encode-n 1000000
    python3 bench/peers/faiss_cpu_quant.py --only kmeans,sq
"""
import argparse
import time

import faiss
import numpy as np

SECTIONS = ["kmeans", "pq-train", "sq", "sq-search", "pq", "binary"]


def median_time(fn, repeats):
    """One warm-up call, then the median wall time of `repeats` calls; returns (seconds, last result)."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], out


class Data:
    """Seeded sampler: Gaussian N(0,1), or a mixture of `clusters` N(0,1) centres plus spread*N(0,1) noise."""

    def __init__(self, kind, d, clusters, seed, spread=0.1):
        self.kind = kind
        self.d = d
        self.seed = seed
        self.spread = np.float32(spread)
        self.centres = None
        if kind == "clustered":
            self.centres = np.random.default_rng(seed).standard_normal((clusters, d), dtype=np.float32)

    def sample(self, m, stream):
        """`stream` (train / base / queries) picks an independent seeded generator, so the same
        command line gives the same rows whichever sections run."""
        rng = np.random.default_rng([self.seed, {"train": 1, "base": 2, "queries": 3}[stream]])
        if self.kind == "gaussian":
            return rng.standard_normal((m, self.d), dtype=np.float32)
        x = self.centres[rng.integers(0, self.centres.shape[0], m)]
        x += self.spread * rng.standard_normal((m, self.d), dtype=np.float32)
        return np.ascontiguousarray(x)


def recall_at(found, truth, k):
    hits = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        hits += len(np.intersect1d(f, t))
    return hits / (truth.shape[0] * k)


def rerank(base, q, cand, k, metric):
    """Exact distances to the candidate ids (NumPy), keep the best k per query."""
    out = np.empty((q.shape[0], k), dtype=np.int64)
    for s in range(0, q.shape[0], 256):
        c = cand[s : s + 256]
        v = base[np.maximum(c, 0)]  # nq_b x r x d
        qb = q[s : s + 256, None, :]
        if metric == "l2":
            score = ((v - qb) ** 2).sum(-1)
        else:
            score = -(v * qb).sum(-1)
        score[c < 0] = np.inf
        order = np.argsort(score, axis=1)[:, :k]
        out[s : s + 256] = np.take_along_axis(c, order, axis=1)
    return out


def section_kmeans(a, data):
    x = data.sample(a.n, "train")
    print(f"\n### kmeans (faiss.Kmeans, max_points_per_centroid=1e9: no subsampling, seed {a.seed})", flush=True)
    print("| data | n | d | k | niter | total s | s/iter | obj[-1] | obj[-1]/n | final-centroid obj/n |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)

    def train():
        km = faiss.Kmeans(a.d, a.k, niter=a.niter, seed=a.seed, verbose=False, max_points_per_centroid=10**9)
        km.train(x)
        return km

    s, km = median_time(train, a.repeats)
    obj = float(km.obj[-1])
    dist, _ = km.index.search(x, 1)
    final = float(dist.astype(np.float64).sum()) / a.n
    print(f"| {a.data} | {a.n} | {a.d} | {a.k} | {a.niter} | {s:.3f} | {s / a.niter:.4f} | {obj:.6g} | {obj / a.n:.6g} | {final:.6g} |", flush=True)


def train_pq(a, x):
    pq = faiss.ProductQuantizer(a.d, a.M, a.nbits)
    pq.cp.niter = a.pq_iters
    pq.cp.seed = a.seed
    pq.cp.max_points_per_centroid = 10**9
    pq.train(x)
    return pq


def section_pq_train(a, data, state):
    x = data.sample(a.n, "train")
    print(f"\n### pq-train (faiss.ProductQuantizer, {a.pq_iters} k-means iterations per sub-space, no subsampling, seed {a.seed})", flush=True)
    print("| data | n | d | M | nbits | median s | recon MSE (train) |")
    print("|---|---|---|---|---|---|---|", flush=True)
    s, pq = median_time(lambda: train_pq(a, x), a.repeats)
    rec = pq.decode(pq.compute_codes(x))
    mse = float(np.mean((x.astype(np.float64) - rec) ** 2))
    print(f"| {a.data} | {a.n} | {a.d} | {a.M} | {a.nbits} | {s:.3f} | {mse:.6g} |", flush=True)
    state["pq"] = pq


def section_sq(a, data, base):
    print("\n### sq (faiss.ScalarQuantizer, rangestat RS_minmax: per-dimension min/max for QT_8bit and QT_4bit, one global min/max for QT_8bit_uniform; trained on the encoded rows)", flush=True)
    print("| data | qtype | rows | d | code bytes/row | op | median ms | rows/s | GB/s (read+write) | recon MSE | max abs err |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    m = base.shape[0]
    for name in ["QT_8bit", "QT_4bit", "QT_8bit_uniform"]:
        sq = faiss.ScalarQuantizer(a.d, getattr(faiss.ScalarQuantizer, name))
        sq.rangestat = faiss.ScalarQuantizer.RS_minmax
        sq.train(base)
        nbytes = m * a.d * 4 + m * sq.code_size
        s_enc, codes = median_time(lambda: sq.compute_codes(base), a.repeats)
        s_dec, rec = median_time(lambda: sq.decode(codes), a.repeats)
        err = rec - base
        mse = float(np.mean(err.astype(np.float64) ** 2))
        mx = float(np.abs(err).max())
        for op, s in [("encode", s_enc), ("decode", s_dec)]:
            print(f"| {a.data} | {name} | {m} | {a.d} | {sq.code_size} | {op} | {s * 1e3:.1f} | {m / s:,.0f} | {nbytes / s / 1e9:.2f} | {mse:.4g} | {mx:.4g} |", flush=True)
        del codes, rec, err


def section_sq_search(a, data, base):
    q = data.sample(a.queries, "queries")
    m = base.shape[0]
    exact = faiss.IndexFlatL2(a.d)
    exact.add(base)
    _, truth = exact.search(q, 10)
    del exact
    print(f"\n### sq-search (IndexScalarQuantizer, L2, trained and filled with the {m} base rows; no re-ranking)", flush=True)
    print("| data | qtype | n | nq | k | median ms | queries/s | recall@10 |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for name in ["QT_8bit", "QT_8bit_uniform"]:
        index = faiss.IndexScalarQuantizer(a.d, getattr(faiss.ScalarQuantizer, name), faiss.METRIC_L2)
        index.train(base)
        index.add(base)
        s, (_, found) = median_time(lambda: index.search(q, 10), a.repeats)
        print(f"| {a.data} | {name} | {m} | {a.queries} | 10 | {s * 1e3:.1f} | {a.queries / s:,.0f} | {recall_at(found, truth, 10):.4f} |", flush=True)
        del index


def section_pq(a, data, base, state):
    pq = state.get("pq")
    if pq is None:
        pq = train_pq(a, data.sample(a.n, "train"))
    m = base.shape[0]
    q = data.sample(a.queries, "queries")
    print(f"\n### pq encode (ProductQuantizer M={a.M} nbits={a.nbits}, trained on n={a.n})", flush=True)
    print("| data | rows | d | M | nbits | median ms | rows/s |")
    print("|---|---|---|---|---|---|---|", flush=True)
    s, codes = median_time(lambda: pq.compute_codes(base), a.repeats)
    print(f"| {a.data} | {m} | {a.d} | {a.M} | {a.nbits} | {s * 1e3:.1f} | {m / s:,.0f} |", flush=True)

    print(f"\n### pq ADC search (IndexPQ, base of {m} PQ codes; recall against exact IndexFlat; re-rank = exact distances on the PQ top-{a.rerank})", flush=True)
    print("| data | metric | n | nq | k | median ms | queries/s | code distances/s | recall@10 | recall@10 re-ranked |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    k = 10
    for metric, fmetric, flat in [("l2", faiss.METRIC_L2, faiss.IndexFlatL2), ("ip", faiss.METRIC_INNER_PRODUCT, faiss.IndexFlatIP)]:
        index = faiss.IndexPQ(a.d, a.M, a.nbits, fmetric)
        index.pq = pq
        index.is_trained = True
        index.add_sa_codes(codes)
        s, _ = median_time(lambda: index.search(q, k), a.repeats)
        _, cand = index.search(q, max(k, a.rerank))
        exact = flat(a.d)
        exact.add(base)
        _, truth = exact.search(q, k)
        del exact
        r_pq = recall_at(cand, truth, k)
        r_rr = recall_at(rerank(base, q, cand, k, metric), truth, k)
        print(f"| {a.data} | {metric} | {m} | {a.queries} | {k} | {s * 1e3:.1f} | {a.queries / s:,.0f} | {a.queries * m / s:.3g} | {r_pq:.4f} | {r_rr:.4f} |", flush=True)
        del index


def section_binary(a):
    rng = np.random.default_rng(a.seed + 1)
    nb = a.bits // 8
    xb = rng.integers(0, 256, (a.binary_n, nb), dtype=np.uint8)
    qb = rng.integers(0, 256, (a.binary_queries, nb), dtype=np.uint8)
    print("\n### binary (IndexBinaryFlat, Hamming, random uint8 codes)", flush=True)
    print("| n | bits | nq | k | median ms | queries/s | code GB/s scanned |")
    print("|---|---|---|---|---|---|---|", flush=True)
    index = faiss.IndexBinaryFlat(a.bits)
    index.add(xb)
    k = 10
    s, _ = median_time(lambda: index.search(qb, k), a.repeats)
    scanned = a.binary_queries * a.binary_n * nb
    print(f"| {a.binary_n} | {a.bits} | {a.binary_queries} | {k} | {s * 1e3:.1f} | {a.binary_queries / s:,.0f} | {scanned / s / 1e9:.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="clustered", choices=["gaussian", "clustered"])
    ap.add_argument("--clusters", type=int, default=1000, help="centres of the clustered data")
    ap.add_argument("--spread", type=float, default=0.1, help="noise of the clustered data around its centres")
    ap.add_argument("--n", type=int, default=100_000, help="k-means / training rows")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=256, help="k-means centroids")
    ap.add_argument("--niter", type=int, default=10, help="k-means iterations")
    ap.add_argument("--M", type=int, default=16, help="PQ sub-quantizers")
    ap.add_argument("--nbits", type=int, default=8, help="PQ bits per sub-quantizer")
    ap.add_argument("--pq-iters", type=int, default=25, help="k-means iterations of PQ training")
    ap.add_argument("--encode-n", type=int, default=1_000_000, help="rows encoded by SQ/PQ, and the PQ search base")
    ap.add_argument("--queries", type=int, default=1000, help="PQ search queries")
    ap.add_argument("--rerank", type=int, default=100, help="PQ shortlist re-ranked with exact distances")
    ap.add_argument("--bits", type=int, default=1024, help="binary code bits")
    ap.add_argument("--binary-n", type=int, default=1_000_000)
    ap.add_argument("--binary-queries", type=int, default=100)
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma list of " + ",".join(SECTIONS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    for s in only:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r}; choose from {','.join(SECTIONS)}")
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, numpy {np.__version__}")
    print(f"data {a.data}" + (f" ({a.clusters} centres, {a.spread} noise)" if a.data == "clustered" else "") + f", seed {a.seed}, median of {a.repeats} after a warm-up", flush=True)
    data = Data(a.data, a.d, a.clusters, a.seed, a.spread)
    state = {}
    base = data.sample(a.encode_n, "base") if {"sq", "sq-search", "pq"} & set(only) else None
    if "kmeans" in only:
        section_kmeans(a, data)
    if "pq-train" in only:
        section_pq_train(a, data, state)
    if "sq" in only:
        section_sq(a, data, base)
    if "sq-search" in only:
        section_sq_search(a, data, base)
    if "pq" in only:
        section_pq(a, data, base, state)
    if "binary" in only:
        section_binary(a)


if __name__ == "__main__":
    main()
