"""The Python package against NumPy float64 references and faiss-cpu."""
import numpy as np
import pytest

import vector_accelerate as va


def clustered(n, d, seed, centres=50, spread=0.3):
    r = np.random.default_rng(seed)
    c = np.random.default_rng(12345).standard_normal((centres, d))
    return (c[r.integers(0, centres, n)] + spread * r.standard_normal((n, d))).astype(np.float32)


def reference(xq, xb, k, metric):
    q, b = xq.astype(np.float64), xb.astype(np.float64)
    if metric == "l2":
        d = ((q[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        order = np.argsort(d, axis=1, kind="stable")
    elif metric == "ip":
        d = q @ b.T
        order = np.argsort(-d, axis=1, kind="stable")
    else:
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        d = 1.0 - qn @ bn.T
        order = np.argsort(d, axis=1, kind="stable")
    idx = order[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def test_version_and_device():
    assert isinstance(va.__version__, str) and va.__version__
    assert va.device() == "cpu" or va.device().startswith("cuda")


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
@pytest.mark.parametrize("d", [1, 2, 3, 17, 64])
def test_knn_matches_float64(metric, d):
    r = np.random.default_rng(d)
    xb = r.standard_normal((301, d)).astype(np.float32)
    xq = r.standard_normal((13, d)).astype(np.float32)
    k = 7
    D, I = va.knn(xq, xb, k, metric=metric)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (13, k)
    rd, ri = reference(xq, xb, k, metric)
    np.testing.assert_allclose(D, rd, rtol=1e-4, atol=1e-4)
    # Ids agree wherever the distances are not tied within rounding.
    clear = np.abs(np.diff(rd, axis=1)).min(axis=1) > 1e-4
    assert (I[clear] == ri[clear]).all()


def test_k_beyond_the_base_pads_with_minus_one():
    xb = np.eye(3, dtype=np.float32)
    D, I = va.knn(xb[:1], xb, 5)
    assert I[0, :3].tolist() == [0, 1, 2] and I[0, 3:].tolist() == [-1, -1]


def test_every_layout_and_dtype_gives_the_same_result():
    r = np.random.default_rng(3)
    xb = r.standard_normal((200, 24)).astype(np.float32)
    xq = r.standard_normal((9, 24)).astype(np.float32)
    want_d, want_i = va.knn(xq, xb, 5)
    wide = np.zeros((200, 48), dtype=np.float32)
    wide[:, ::2] = xb
    # The same values in another layout or a wider float type: the same
    # result exactly.
    for q, b in [
        (np.asfortranarray(xq), np.asfortranarray(xb)),
        (xq, wide[:, ::2]),
        (xq.astype(np.float64), xb.astype(np.float64)),
    ]:
        d, i = va.knn(q, b, 5)
        assert (i == want_i).all() and (d == want_d).all()
    # float16 rows are widened: the same as widening them first.
    h = xb.astype(np.float16)
    d, i = va.knn(xq, h, 5)
    d2, i2 = va.knn(xq, h.astype(np.float32), 5)
    assert (i == i2).all() and (d == d2).all()


def test_flat_index_equals_faiss():
    faiss = pytest.importorskip("faiss")
    xb = clustered(3000, 32, 1)
    xq = clustered(50, 32, 2)
    ours = va.index_factory(32, "Flat")
    ours.add(xb)
    theirs = faiss.IndexFlatL2(32)
    theirs.add(xb)
    D, I = ours.search(xq, 10)
    fD, fI = theirs.search(xq, 10)
    np.testing.assert_allclose(D, fD, rtol=1e-4, atol=1e-3)
    assert (I == fI).mean() > 0.99


def recall(I, truth):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(I, truth)])


@pytest.mark.parametrize("factory", ["IVF32,Flat", "IVF32,SQ8", "IVF32,PQ8x8,Refine"])
def test_ivf_recall_beside_faiss(factory):
    xb = clustered(8000, 32, 3)
    xq = clustered(100, 32, 4)
    _, truth = reference(xq, xb, 10, "l2")
    index = va.index_factory(32, factory, va.METRIC_L2)
    assert not index.is_trained
    index.train(xb)
    index.add(xb)
    _, I = index.search(xq, 10, nprobe=8, refine_factor=4)
    ours = recall(I, truth)
    assert ours >= 0.85, (factory, ours)
    faiss = pytest.importorskip("faiss")
    if factory == "IVF32,Flat":
        f = faiss.IndexIVFFlat(faiss.IndexFlatL2(32), 32, 32)
        f.train(xb)
        f.add(xb)
        f.nprobe = 8
        _, fI = f.search(xq, 10)
        assert ours >= recall(fI, truth) - 0.05


def test_graph_recall_beside_faiss_hnsw():
    xb = clustered(8000, 32, 3)
    xq = clustered(100, 32, 4)
    _, truth = reference(xq, xb, 10, "l2")
    index = va.index_factory(32, "Graph16", va.METRIC_L2)
    index.add(xb)
    _, I = index.search(xq, 10, ef=64)
    ours = recall(I, truth)
    assert ours >= 0.9, ours
    # The f16 and int8 walks (CUDA, batches of 4,096 queries or more) keep
    # exact distances and about the same recall; a mode that is not one is
    # refused.
    xl = clustered(4200, 32, 5)
    q, b = xl.astype(np.float64), xb.astype(np.float64)
    d = (q * q).sum(1)[:, None] - 2 * q @ b.T + (b * b).sum(1)[None, :]
    truth_l = np.argpartition(d, 10, axis=1)[:, :10]
    _, Il = index.search(xl, 10, ef=64)
    for precision, slack in [("f16", 0.03), ("int8", 0.05)]:
        Dc, Ic = index.search(xl, 10, ef=64, precision=precision)
        assert recall(Ic, truth_l) >= recall(Il, truth_l) - slack, precision
        exact = ((xl[:, None, :].astype(np.float64) - xb[Ic].astype(np.float64)) ** 2).sum(-1)
        np.testing.assert_allclose(Dc, exact, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError):
        index.search(xq, 10, precision="f8")
    faiss = pytest.importorskip("faiss")
    f = faiss.IndexHNSWFlat(32, 16)
    f.add(xb)
    f.hnsw.efSearch = 64
    _, fI = f.search(xq, 10)
    assert ours >= recall(fI, truth) - 0.05, (ours, recall(fI, truth))


def test_ids_removal_filters_reconstruct_and_files(tmp_path):
    xb = clustered(2000, 16, 5)
    ids = np.arange(2000, dtype=np.int64) * 7 + 3
    index = va.index_factory(16, "IVF16,Flat")
    index.train(xb)
    index.add_with_ids(xb, ids)
    assert index.ntotal == len(index) == 2000 and index.d == 16
    np.testing.assert_array_equal(index.reconstruct(int(ids[5])), xb[5])
    _, I = index.search(xb[:3], 1, nprobe=16)
    assert I[:, 0].tolist() == ids[:3].tolist()
    assert index.remove_ids(ids[:3]) == 3
    _, I = index.search(xb[:3], 5, nprobe=16)
    assert not np.isin(I, ids[:3]).any()
    allowed = ids[1000:1010]
    _, I = index.search(xb[:4], 10, allowed=allowed)
    assert np.isin(I, allowed).all()
    path = tmp_path / "idx.vai"
    va.write_index(index, str(path))
    back = va.read_index(str(path))
    assert back.ntotal == 1997 and "IVF16,Flat" in repr(back)
    a, b = index.search(xb[10:20], 5, nprobe=4), back.search(xb[10:20], 5, nprobe=4)
    assert (a[1] == b[1]).all() and (a[0] == b[0]).all()


def test_bad_input_raises_typed_errors(tmp_path):
    index = va.index_factory(8, "Flat")
    index.add_with_ids(np.ones((4, 8)), np.arange(4))
    with pytest.raises(ValueError, match="dimension"):
        index.search(np.zeros((2, 5)), 1)
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 8)), 0)
    with pytest.raises(ValueError, match="2-D"):
        index.search(np.zeros(8), 1)
    with pytest.raises(ValueError):
        index.add_with_ids(np.ones((1, 8)), np.array([2]))
    with pytest.raises(ValueError, match="negative"):
        index.add_with_ids(np.ones((1, 8)), np.array([-5]))
    with pytest.raises(KeyError):
        index.reconstruct(99)
    with pytest.raises(ValueError):
        va.index_factory(8, "HNSW32")
    with pytest.raises(ValueError):
        va.index_factory(8, "IVF4,Flat").add(np.ones((3, 8)))
    with pytest.raises(ValueError):
        va.knn(np.ones((2, 3)), np.ones((5, 4)), 1)
    with pytest.raises(ValueError):
        va.knn(np.ones((2, 3)), np.ones((5, 3)), 1, metric="nope")
    bad = tmp_path / "bad.vai"
    bad.write_bytes(b"VAINDEX\0" + b"\0" * 40)
    with pytest.raises(va.VectorAccelerateError, match="bad.vai"):
        va.read_index(str(bad))


def test_readme_python_example_runs(tmp_path, monkeypatch):
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parents[2] / "README.md"
    section = readme.read_text().split("## Use from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("/tmp/readme.vai", str(tmp_path / "readme.vai")), "README.md", "exec"), {})


def test_range_search_matches_float64():
    xb = clustered(1500, 12, 6)
    xq = clustered(7, 12, 7)
    index = va.index_factory(12, "Flat")
    index.add_with_ids(xb, np.arange(1500) + 10)
    d = ((xq[:, None, :].astype(np.float64) - xb[None, :, :]) ** 2).sum(-1)
    radius = float(np.quantile(d, 0.01))
    lims, D, I = index.range_search(xq, radius)
    assert lims.shape == (8,) and lims[0] == 0 and lims[-1] == len(D) == len(I)
    for r in range(7):
        want = set(np.nonzero(d[r] < radius)[0] + 10)
        got = I[lims[r]:lims[r + 1]]
        # Values within rounding of the radius may fall either side.
        near = set(np.nonzero(np.abs(d[r] - radius) < 1e-3)[0] + 10)
        assert set(got) ^ want <= near
        assert (np.diff(D[lims[r]:lims[r + 1]]) >= 0).all()


@pytest.mark.parametrize("factory", ["Flat", "IVF8,SQ8,Refine", "Graph8"])
def test_indexes_pickle(factory):
    import pickle

    xb = clustered(600, 8, 8)
    index = va.index_factory(8, factory, "cosine")
    index.train(xb)
    index.add_with_ids(xb, np.arange(600) * 2)
    index.remove_ids(np.arange(10) * 2)
    back = pickle.loads(pickle.dumps(index))
    assert back.ntotal == 590 and back.factory == index.factory
    a, b = index.search(xb[:5], 4, nprobe=8), back.search(xb[:5], 4, nprobe=8)
    assert (a[1] == b[1]).all() and (a[0] == b[0]).all()


def test_every_public_name_has_a_stub_and_a_docstring():
    import ast
    import pathlib

    stub = pathlib.Path(__file__).resolve().parents[1] / "vector_accelerate" / "__init__.pyi"
    tree = ast.parse(stub.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    import types

    public = {
        n for n in dir(va) if not n.startswith("_") and not isinstance(getattr(va, n), types.ModuleType)
    } | {"__version__"}
    assert public <= names, public - names
    for n in public - {"__version__", "METRIC_L2", "METRIC_INNER_PRODUCT"}:
        assert getattr(va, n).__doc__, n
    for m in ["train", "add", "add_with_ids", "search", "range_search", "remove_ids", "reconstruct"]:
        assert getattr(va.Index, m).__doc__, m


def test_kmeans_normalize_and_gemm_match_numpy():
    x = clustered(3000, 8, 9, centres=5, spread=0.05)
    c, a, inertia = va.kmeans(x, 5, niter=20)
    assert c.shape == (5, 8) and a.shape == (3000,) and a.dtype == np.int64
    d = ((x[:, None, :].astype(np.float64) - c[None, :, :]) ** 2).sum(-1)
    assert (np.argmin(d, axis=1) == a).mean() > 0.999
    assert abs(d.min(axis=1).sum() - inertia) <= 1e-3 * inertia
    km = va.Kmeans(8, 5, niter=20)
    assert km.centroids is None
    km.train(x)
    D, I = km.assign(x[:100])
    assert I.shape == (100, 1) and (I[:, 0] == a[:100]).all() and km.obj[0] == pytest.approx(inertia)
    with pytest.raises(ValueError):
        va.Kmeans(9, 2).train(x)
    r = np.random.default_rng(1)
    y = r.standard_normal((50, 7))
    y[3] = 0
    n = va.normalize(y)
    ref = y / np.where(np.linalg.norm(y, axis=1, keepdims=True) > 0, np.linalg.norm(y, axis=1, keepdims=True), 1)
    np.testing.assert_allclose(n, ref, rtol=1e-5, atol=1e-6)
    a_, b_ = r.standard_normal((33, 17)), r.standard_normal((17, 5))
    np.testing.assert_allclose(va.gemm(a_, b_), a_ @ b_, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        va.gemm(a_, a_)


@pytest.mark.parametrize("qtype,steps", [("QT_8bit", 255), ("QT_4bit", 15)])
def test_scalar_quantizer_round_trip(qtype, steps):
    x = clustered(2000, 13, 10)
    sq = va.ScalarQuantizer(13, qtype)
    with pytest.raises(ValueError, match="not trained"):
        sq.compute_codes(x)
    sq.train(x)
    codes = sq.compute_codes(x)
    assert codes.dtype == np.uint8 and codes.shape == (2000, sq.code_size)
    y = sq.decode(codes)
    step = (x.max(0) - x.min(0)) / steps
    assert (np.abs(y - x) <= step / 2 + 1e-5).all()
    with pytest.raises(ValueError, match="code_size"):
        sq.decode(codes[:, :-1])
    with pytest.raises(ValueError):
        va.ScalarQuantizer(13, "QT_fp16")


def test_product_quantizer_round_trip_beside_faiss():
    x = clustered(4000, 16, 11)
    pq = va.ProductQuantizer(16, 4, 8)
    pq.train(x)
    codes = pq.compute_codes(x)
    assert codes.shape == (4000, pq.code_size) == (4000, 4)
    err = ((pq.decode(codes) - x) ** 2).sum(1).mean()
    assert err < 0.1 * (x.var(0).sum())
    faiss = pytest.importorskip("faiss")
    f = faiss.ProductQuantizer(16, 4, 8)
    f.train(x)
    ferr = ((f.decode(f.compute_codes(x)) - x) ** 2).sum(1).mean()
    assert err <= 1.25 * ferr, (err, ferr)


def hamming_reference(xq, xb, k):
    bq, bb = np.unpackbits(xq, axis=1, bitorder="little"), np.unpackbits(xb, axis=1, bitorder="little")
    d = (bq[:, None, :] != bb[None, :, :]).sum(-1)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


@pytest.mark.parametrize("nbytes", [1, 3, 8, 9, 32])
def test_uint8_bit_packed_vectors_search_by_hamming(nbytes):
    r = np.random.default_rng(nbytes)
    xb = r.integers(0, 256, (301, nbytes), dtype=np.uint8)
    xq = r.integers(0, 256, (17, nbytes), dtype=np.uint8)
    D, I = va.knn(xq, xb, 5)
    D0, I0 = hamming_reference(xq, xb, 5)
    np.testing.assert_array_equal(D, D0)
    np.testing.assert_array_equal(I, I0)
    faiss = pytest.importorskip("faiss")
    index = faiss.IndexBinaryFlat(nbytes * 8)
    index.add(xb)
    Df, _ = index.search(xq, 5)
    np.testing.assert_array_equal(D, Df)
    Dj, _ = va.knn(xq, xb, 5, metric="jaccard")
    assert Dj.min() >= 0 and Dj.max() <= 1


def test_uint8_with_float_rows_is_a_value_error():
    with pytest.raises(ValueError, match="uint8"):
        va.knn(np.zeros((2, 4), np.uint8), np.zeros((3, 4), np.float32), 1)
    with pytest.raises(ValueError, match="2-D"):
        va.knn(np.zeros(4, np.uint8), np.zeros((3, 4), np.uint8), 1)
