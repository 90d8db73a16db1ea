#!/usr/bin/env python3
"""PyTorch peer of `vaccel bench ml` on a GPU host: the same three computations with linear
layers, matmul and quantisation written the way a PyTorch user would, on the same shapes.

  nq encode   z = x @ W_e^T (768 -> 128), per-row symmetric int8: scale = max|z| / 127,
              codes = round(z / scale) clamped to [-127, 127] (scale 0 rows give codes 0)
  nq decode   x' = (codes * scale) @ W_d^T (128 -> 768)
  attention   q W_q^T and k W_k^T, then every score (q_p . k_p) / (H * T) written, T = sqrt(64)
              (H heads of 64, the mean over heads of per-head products divided by the
              temperature sqrt(head_dim), as vaccel's AttentionSimilarity defines it; the mean
              over heads is one matmul)
  learned     k-NN (squared L2) of projected queries over a base projected once (768 -> 128):
              distances by ||q||^2 - 2 q.p + ||p||^2 in blocks of queries, then torch.topk

Data. With --data DIR (written by `vaccel bench ml --export DIR`), the inputs (x.npy, queries.npy,
keys.npy, base.npy) and the weights (weights.safetensors: nq.encoder.weight, nq.decoder.weight,
attention{1,12}.{q,k}.weight, learned.weight) are those vaccel ran on, and the sizes (and k, from
manifest.json unless --k is given) are theirs:

    vaccel bench ml --export /tmp/mldata
    python3 bench/peers/torch_ml.py --data /tmp/mldata

Without --data, data are N(0, 1) and weights Xavier-uniform as in `vaccel bench ml` (same
distributions and shapes; drawn by torch from seed 7, the weights once for every precision).

Each row ends with a `check` column (6 significant digits), computed outside the timed region
with the definitions of `vaccel bench ml`, so that the two outputs compare number by number on
identical data: nq encode, the mean per-row scale of the first min(n, 1000) rows; nq decode, the
mean decoded value of those rows; attention, the mean score of the first min(queries, 100)
queries against the first min(keys, 1000) keys; learned distance, the mean k-NN distance of the
first min(queries, 10) queries.

Precisions: fp32 (TF32 off), tf32 (allow_tf32), bf16 (operands in bf16, outputs as PyTorch
returns them: bf16 for matmul). Median of --repeats after a warm-up, CUDA events.

The readers of the .npy and .safetensors files need only NumPy (torch is imported in main).
"""
import argparse
import json
import math
import os
import struct

import numpy as np

DIM = 768
LATENT = 128
HEAD_DIM = 64
HEADS = (1, 12)
# Rows behind the check column, as in `vaccel bench ml`.
CHECK_NQ_ROWS = 1000
CHECK_ATTENTION = (100, 1000)
CHECK_LEARNED_QUERIES = 10
ARRAYS = ("x", "queries", "keys", "base")


def expected_weights():
    """The weight tensors the benchmark uses: name -> shape ([d_out, d_in], nn.Linear layout)."""
    w = {"nq.encoder.weight": (LATENT, DIM), "nq.decoder.weight": (DIM, LATENT)}
    for h in HEADS:
        w[f"attention{h}.q.weight"] = (h * HEAD_DIM, DIM)
        w[f"attention{h}.k.weight"] = (h * HEAD_DIM, DIM)
    w["learned.weight"] = (LATENT, DIM)
    return w


def read_safetensors(path):
    """Every tensor of a safetensors file as a NumPy array: name -> array.

    The format: an 8-byte little-endian header length, a JSON header
    ({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": ...}), then the
    data, offsets counted from the end of the header. F32, F16, I8 and U8 keep their dtype;
    BF16 is widened exactly to float32 (its 16 bits are the upper half of an f32).
    """
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    dtypes = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
              "I8": np.dtype("i1"), "U8": np.dtype("u1")}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in dtypes:
            raise ValueError(f"{path}: tensor '{name}' has dtype {dt} (expected F32, F16, BF16, I8 or U8)")
        shape = tuple(int(s) for s in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        count = math.prod(shape)
        if not 0 <= begin <= end <= len(data) or end - begin != count * dtypes[dt].itemsize:
            raise ValueError(f"{path}: tensor '{name}' has data offsets [{begin}, {end}] that do not "
                             f"fit its shape {list(shape)} and dtype {dt} in {len(data)} bytes")
        a = np.frombuffer(data[begin:end], dtype=dtypes[dt], count=count)
        if dt == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.reshape(shape)
    return out


def load_data(folder):
    """The inputs, weights and manifest written by `vaccel bench ml --export folder`.

    Returns a dict: "x", "queries", "keys", "base" (read-only float32 memory maps, rows x 768),
    "weights" (name -> float32 array, checked against the shapes the benchmark uses) and
    "manifest" (the parsed manifest.json, {} when absent).
    """
    out = {}
    for name in ARRAYS:
        a = np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r")
        if a.dtype != np.float32 or a.ndim != 2 or a.shape[1] != DIM or a.shape[0] < 1:
            raise ValueError(f"{name}.npy: expected a float32 array [rows, {DIM}], found {a.dtype} {list(a.shape)}")
        out[name] = a
    weights = read_safetensors(os.path.join(folder, "weights.safetensors"))
    for name, shape in expected_weights().items():
        if name not in weights:
            raise ValueError(f"weights.safetensors: missing tensor '{name}' (has {sorted(weights)})")
        if tuple(weights[name].shape) != shape:
            raise ValueError(f"weights.safetensors: '{name}' has shape {list(weights[name].shape)}, expected {list(shape)}")
    out["weights"] = {name: np.asarray(w, dtype=np.float32) for name, w in weights.items()}
    path = os.path.join(folder, "manifest.json")
    out["manifest"] = {}
    if os.path.exists(path):
        with open(path) as f:
            out["manifest"] = json.load(f)
    return out


def to_cuda(a):
    """A float32 CUDA tensor with the values of a NumPy array (a memory map is copied in pieces)."""
    import torch
    out = torch.empty(a.shape, dtype=torch.float32, device="cuda")
    step = max(1, (64 << 20) // (4 * max(1, math.prod(a.shape[1:]))))
    for s in range(0, a.shape[0], step):
        out[s:s + step].copy_(torch.from_numpy(np.array(a[s:s + step], dtype=np.float32)))
    return out


def check(t):
    """The mean of a tensor's values (in float64), with 6 significant digits."""
    return f"{t.double().mean().item():.6g}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="folder written by `vaccel bench ml --export` (sizes are the files')")
    p.add_argument("--n", type=int, help="default 2,000,000 (not with --data)")
    p.add_argument("--queries", type=int, help="default 10,000 (not with --data)")
    p.add_argument("--keys", type=int, help="default 250,000 (not with --data)")
    p.add_argument("--base", type=int, help="default 1,000,000 (not with --data)")
    p.add_argument("--k", type=int, help="default 10, or the manifest's k with --data")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--precisions", default="fp32,tf32,bf16")
    a = p.parse_args()

    import torch

    from torch_ops import timed  # the same timing as the other PyTorch peer

    if a.data:
        given = [f"--{s}" for s in ("n", "queries", "keys", "base") if getattr(a, s) is not None]
        if given:
            p.error(f"{', '.join(given)}: the sizes come from the files of --data")
        data = load_data(a.data)
        n, nq, nk, nb = (data[s].shape[0] for s in ARRAYS)
        k = a.k if a.k is not None else int(data["manifest"].get("k", 10))
        weights = {name: to_cuda(w) for name, w in data["weights"].items()}

        def rows(name):
            return to_cuda(data[name])

        source = f"data and weights from {a.data}"
    else:
        n = a.n if a.n is not None else 2_000_000
        nq = a.queries if a.queries is not None else 10_000
        nk = a.keys if a.keys is not None else 250_000
        nb = a.base if a.base is not None else 1_000_000
        k = a.k if a.k is not None else 10
        torch.manual_seed(7)
        weights = {}
        for name, shape in expected_weights().items():
            w = torch.empty(shape, device="cuda")
            torch.nn.init.xavier_uniform_(w)
            weights[name] = w
        sizes = {"x": n, "queries": nq, "keys": nk, "base": nb}

        def rows(name):
            return torch.randn(sizes[name], DIM, device="cuda")

        source = "data and weights drawn by torch (seed 7)"
    if k < 1 or k > nb:
        p.error(f"k {k} must be between 1 and the {nb} base rows")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, median of {a.repeats} after a warm-up; {source}\n")
    print("| case | precision | shape | median ms | throughput | check |")
    print("|---|---|---|---:|---:|---:|", flush=True)
    precs = a.precisions.split(",")

    x32 = rows("x")
    m = min(n, CHECK_NQ_ROWS)
    for prec in precs:
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        dt = torch.bfloat16 if prec == "bf16" else torch.float32
        x = x32.to(dt)
        we, wd = weights["nq.encoder.weight"].to(dt), weights["nq.decoder.weight"].to(dt)
        be, bd = weights.get("nq.encoder.bias"), weights.get("nq.decoder.bias")

        def encode(x):
            z = x @ we.T
            if be is not None:
                z = z + be.to(dt)
            z = z.float()
            scale = z.abs().amax(dim=1, keepdim=True) / 127.0
            inv = torch.where(scale > 0, 1.0 / scale, torch.zeros_like(scale))
            return torch.round(z * inv).clamp_(-127, 127).to(torch.int8), scale

        def decode(codes, scale, out_dtype=None):
            z = codes.to(dt) * scale.to(dt)
            y = z @ wd.T if out_dtype is None else torch.mm(z, wd.T, out_dtype=out_dtype)
            return y if bd is None else y + bd.to(y.dtype)

        ms = timed(lambda: encode(x), a.repeats)
        codes_c, scale_c = encode(x[:m])
        print(f"| nq encode 768 -> 128 (int8 + scale) | {prec} | {n} x 768 | {ms:.3f} | {n / ms / 1e3:.1f} M vectors/s | {check(scale_c)} |", flush=True)
        codes, scale = encode(x)
        ms = timed(lambda: decode(codes, scale), a.repeats)
        print(f"| nq decode 128 -> 768 | {prec} | {n} x 128 | {ms:.3f} | {n / ms / 1e3:.1f} M vectors/s | {check(decode(codes_c, scale_c))} |", flush=True)
        if dt != torch.float32:
            # With the fp32 output vaccel returns (torch.mm's out_dtype).
            try:
                ms = timed(lambda: decode(codes, scale, torch.float32), a.repeats)
                c = check(decode(codes_c, scale_c, torch.float32))
                print(f"| nq decode 128 -> 768, fp32 out | {prec} | {n} x 128 | {ms:.3f} | {n / ms / 1e3:.1f} M vectors/s | {c} |", flush=True)
            except (TypeError, RuntimeError):
                pass
        del x, codes, scale
    del x32
    torch.cuda.empty_cache()

    q32, k32 = rows("queries"), rows("keys")
    cq, ck = min(nq, CHECK_ATTENTION[0]), min(nk, CHECK_ATTENTION[1])
    for heads in HEADS:
        for prec in precs:
            torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
            dt = torch.bfloat16 if prec == "bf16" else torch.float32
            q, kk = q32.to(dt), k32.to(dt)
            wq = weights[f"attention{heads}.q.weight"].to(dt)
            wk = weights[f"attention{heads}.k.weight"].to(dt)
            # vaccel: s = (1 / H) sum_h (W_q^h q . W_k^h k) / T, T = sqrt(head_dim).
            alpha = 1.0 / (heads * math.sqrt(HEAD_DIM))

            def scores(q, kk):
                return ((q @ wq.T) @ (kk @ wk.T).T) * alpha

            ms = timed(lambda: scores(q, kk), a.repeats)
            rate = nq * nk / (ms / 1e3)
            c = check(scores(q[:cq], kk[:ck]))
            print(f"| attention {heads} x {HEAD_DIM} (projections + scores) | {prec} | {nq} x {nk} | {ms:.3f} | {rate:.3e} pairs/s | {c} |", flush=True)
            del q, kk
            torch.cuda.empty_cache()
    del k32
    if not a.data:
        q32 = rows("queries")  # as before: fresh queries for the learned distance
    torch.cuda.empty_cache()

    base32 = rows("base")
    cl = min(nq, CHECK_LEARNED_QUERIES)
    for prec in precs:
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        dt = torch.bfloat16 if prec == "bf16" else torch.float32
        w = weights["learned.weight"].to(dt)
        pb = (base32.to(dt) @ w.T).float()
        pn = (pb * pb).sum(1)
        q = q32.to(dt)

        def search(q):
            qp = (q @ w.T).float()
            qn = (qp * qp).sum(1, keepdim=True)
            out = []
            for s in range(0, q.shape[0], 1000):
                d = qn[s:s + 1000] - 2.0 * (qp[s:s + 1000] @ pb.T) + pn
                out.append(torch.topk(d, k, dim=1, largest=False).values)
            return out

        ms = timed(lambda: search(q), a.repeats)
        c = check(search(q[:cl])[0])
        print(f"| learned distance 768 -> 128 k-NN (k {k}) | {prec} | {nq} x {nb} | {ms:.3f} | | {c} |", flush=True)
        del pb, pn, q
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
