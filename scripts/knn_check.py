#!/usr/bin/env python3
"""End-to-end check of `vaccel knn` against an fp64 NumPy brute force.

For every metric, on each device given, on shapes that include k > n, k = n
and dimensions that are not a multiple of 4, plus one search whose full
distance matrix (160 GB) could never be held in memory: the returned
neighbours must be the fp64 ones up to genuine ties (the fp64 value of the
id at each rank equals the rank's fp64 reference value within the fp32
error of the formula), missing tails must be -1 / +-inf.

    python3 scripts/knn_check.py target/release/vaccel /tmp/knncheck --devices cpu,cuda
"""
import os
import subprocess
import sys

import numpy as np

METRICS = ["l2", "euclidean", "cosine", "ip", "l1", "linf", "minkowski:3", "hamming", "jaccard"]


def ref(metric, q, x):
    q = q.astype(np.float64)
    x = x.astype(np.float64)
    if metric in ("l2", "euclidean"):
        d = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        return np.sqrt(d) if metric == "euclidean" else d
    if metric == "cosine":
        qn = np.linalg.norm(q, axis=1)[:, None]
        xn = np.linalg.norm(x, axis=1)[None, :]
        den = qn * xn
        c = np.where(den == 0, 0.0, (q @ x.T) / np.where(den == 0, 1, den))
        return 1 - np.clip(c, -1, 1)
    if metric == "ip":
        return q @ x.T
    diff = np.abs(q[:, None, :] - x[None, :, :])
    if metric == "l1":
        return diff.sum(-1)
    if metric == "linf":
        return diff.max(-1)
    if metric.startswith("minkowski:"):
        p = float(metric.split(":")[1])
        return (diff**p).sum(-1) ** (1 / p)
    if metric == "hamming":
        return ((q[:, None, :] > 0) != (x[None, :, :] > 0)).sum(-1).astype(np.float64)
    if metric == "jaccard":
        mn = np.minimum(q[:, None, :], x[None, :, :]).sum(-1)
        mx = np.maximum(q[:, None, :], x[None, :, :]).sum(-1)
        return np.where(mx == 0, 0.0, 1 - mn / np.where(mx == 0, 1, mx))
    raise ValueError(metric)


def tol(metric, q, x, vals):
    d = q.shape[1]
    s = max(1.0, np.sqrt(d))
    qn = (q.astype(np.float64) ** 2).sum(1)[:, None]
    xm = (x.astype(np.float64) ** 2).sum(1).max()
    vmax = np.abs(vals).max(1, keepdims=True)
    if metric == "l2":
        return 4e-6 * s * (qn + xm)
    if metric == "euclidean":
        return np.sqrt(4e-6 * s * (qn + xm)) + 1e-6 * vmax
    if metric == "cosine":
        return 4e-6 * s + 1e-6 + 0 * qn
    if metric == "ip":
        return 4e-6 * s * np.sqrt(qn * xm)
    if metric in ("l1",):
        return 4e-6 * s * vmax
    if metric.startswith("minkowski"):
        return 1e-4 * vmax
    return 1e-6 * vmax + 1e-6


def check(label, ids, dist, vals, t, k, largest):
    n = vals.shape[1]
    order = np.argsort(-vals if largest else vals, axis=1, kind="stable")
    sorted_vals = np.take_along_axis(vals, order, 1)
    bad = 0
    for i in range(ids.shape[0]):
        row = ids[i]
        have = min(k, n)
        assert len(set(row[:have].tolist())) == have, f"{label}: duplicate ids in row {i}"
        assert (row[:have] >= 0).all() and (row[:have] < n).all(), f"{label}: id out of range in row {i}"
        got = vals[i, row[:have]]
        if not np.all(np.abs(got - sorted_vals[i, :have]) <= 2 * t[i]):
            bad += 1
        if not np.all(np.abs(dist[i, :have] - got) <= t[i]):
            bad += 1
        if have < k:
            assert (row[have:] == -1).all(), f"{label}: missing ids not -1"
            miss = -np.inf if largest else np.inf
            assert (dist[i, have:] == miss).all(), f"{label}: missing distances not {miss}"
    assert bad == 0, f"{label}: {bad} rows differ from the fp64 reference"


def run(vaccel, args, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run([vaccel, "knn", "--quiet", *args], capture_output=True, text=True, env=e)
    if r.returncode != 0:
        raise SystemExit(f"vaccel knn {' '.join(args)} failed: {r.stderr.strip()}")


def main():
    vaccel, out = sys.argv[1], sys.argv[2]
    devices = sys.argv[4].split(",") if len(sys.argv) > 4 else ["cpu", "cuda"]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    cases = [(5000, 40, 17, 10), (3000, 30, 17, 3000), (300, 20, 33, 400), (1031, 10, 769, 7), (2000, 25, 3, 50)]
    done = 0
    for (n, nq, dim, k) in cases:
        x = rng.standard_normal((n, dim), dtype=np.float32)
        q = rng.standard_normal((nq, dim), dtype=np.float32)
        for metric in METRICS:
            xs, qs = (np.abs(x), np.abs(q)) if metric == "jaccard" else (x, q)
            np.save(f"{out}/x.npy", xs)
            np.save(f"{out}/q.npy", qs)
            vals = ref(metric, qs, xs)
            t = tol(metric, qs, xs, vals)
            for dev in devices:
                run(vaccel, ["--base", f"{out}/x.npy", "--queries", f"{out}/q.npy", "-k", str(k), "--metric", metric,
                             "--device", dev, "--ids", f"{out}/i.npy", "--distances", f"{out}/d.npy"])
                check(f"{metric} {dev} n={n} nq={nq} dim={dim} k={k}", np.load(f"{out}/i.npy"), np.load(f"{out}/d.npy"),
                      vals, t, k, metric == "ip")
                done += 1
    # Bit-packed binary rows (numpy.packbits, little bit order).
    for metric in ["hamming", "jaccard"]:
        xb = rng.integers(0, 256, (2000, 13), dtype=np.uint8)
        qb = rng.integers(0, 256, (20, 13), dtype=np.uint8)
        np.save(f"{out}/xb.npy", xb)
        np.save(f"{out}/qb.npy", qb)
        xu = np.unpackbits(xb, axis=1, bitorder="little").astype(np.float32)
        qu = np.unpackbits(qb, axis=1, bitorder="little").astype(np.float32)
        vals = ref(metric, qu, xu)
        for dev in devices:
            for k in [5, 2000, 2100]:
                run(vaccel, ["--base", f"{out}/xb.npy", "--queries", f"{out}/qb.npy", "-k", str(k), "--metric", metric,
                             "--device", dev, "--ids", f"{out}/i.npy", "--distances", f"{out}/d.npy"])
                check(f"binary {metric} {dev} k={k}", np.load(f"{out}/i.npy"), np.load(f"{out}/d.npy"), vals,
                      np.full((20, 1), 1e-6), k, False)
                done += 1
    # A search whose full distance matrix (20,000 x 2,000,000 f32 = 160 GB)
    # fits neither device nor host memory, under a 256 MiB budget: the base
    # streams through in tiles. A sample of queries is checked in fp64.
    n, nq, dim, k = 2_000_000, 20_000, 32, 10
    x = rng.standard_normal((n, dim), dtype=np.float32)
    q = rng.standard_normal((nq, dim), dtype=np.float32)
    np.save(f"{out}/bx.npy", x)
    np.save(f"{out}/bq.npy", q)
    sample = rng.choice(nq, 16, replace=False)
    vals = np.concatenate([ref("l2", q[s : s + 1], x) for s in sample])
    t = tol("l2", q[sample], x, vals)
    for dev in [d for d in devices if d != "cpu"] or devices:
        run(vaccel, ["--base", f"{out}/bx.npy", "--queries", f"{out}/bq.npy", "-k", str(k), "--metric", "l2",
                     "--device", dev, "--ids", f"{out}/i.npy", "--distances", f"{out}/d.npy"],
            env={"VECTOR_ACCELERATE_MEMORY_BUDGET": "256M"})
        check(f"160 GB matrix l2 {dev}", np.load(f"{out}/i.npy")[sample], np.load(f"{out}/d.npy")[sample], vals, t, k, False)
        done += 1
    print(f"knn_check: {done} vaccel knn runs matched the fp64 reference ({', '.join(devices)})")


if __name__ == "__main__":
    main()
