"""MultiIndex: shards and replicas over several contexts of the module's
device, against the single index."""
import numpy as np
import pytest

import vector_accelerate as va


def data(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("layout", ["shards", "replicas"])
@pytest.mark.parametrize("factory", ["Flat", "IVF8,Flat"])
def test_multi_index_answers_as_the_single_index(layout, factory):
    xb, xq = data(1001, 12, 1), data(23, 12, 2)
    ids = np.arange(1001, dtype=np.int64) * 3 + 10
    single = va.index_factory(12, factory)
    single.train(xb)
    single.add_with_ids(xb, ids)
    multi = va.MultiIndex(12, factory, layout=layout, devices=3)
    multi.train(xb)
    multi.add_with_ids(xb[:400], ids[:400])
    multi.add_with_ids(xb[400:], ids[400:])
    assert multi.ntotal == 1001 and len(multi) == 1001 and multi.layout == layout
    sizes = multi.part_sizes
    assert (max(sizes) - min(sizes) <= 1) if layout == "shards" else sizes == [1001] * 3
    for k in (1, 10):
        D0, I0 = single.search(xq, k, nprobe=3)
        D1, I1 = multi.search(xq, k, nprobe=3)
        np.testing.assert_array_equal(I1, I0)
        np.testing.assert_allclose(D1, D0, rtol=1e-5, atol=1e-5)
    allowed = ids[::7]
    D0, I0 = single.search(xq, 5, nprobe=3, allowed=allowed)
    D1, I1 = multi.search(xq, 5, nprobe=3, allowed=allowed)
    np.testing.assert_array_equal(I1, I0)
    assert multi.remove_ids(ids[:10]) == 10 and multi.ntotal == 991


def test_multi_index_saves_and_refuses_bad_input(tmp_path):
    xb = data(300, 6, 3)
    multi = va.MultiIndex(6, "Flat", devices=2)
    multi.add(xb)
    D0, I0 = multi.search(xb[:4], 3)
    multi.save(tmp_path / "m")
    back = va.MultiIndex.load(tmp_path / "m", devices=3)
    D1, I1 = back.search(xb[:4], 3)
    np.testing.assert_array_equal(I1, I0)
    assert "MultiIndex('Flat', d=6, layout=shards, ntotal=300" in repr(back)
    with pytest.raises(ValueError, match="duplicate|already"):
        multi.add_with_ids(xb[:1], np.array([5]))
    with pytest.raises(ValueError, match="layout"):
        va.MultiIndex(6, "Flat", layout="mirrors")
    with pytest.raises(ValueError):
        multi.search(data(2, 5, 4), 3)
    with pytest.raises(va.VectorAccelerateError):
        va.MultiIndex.load(tmp_path / "missing")


@pytest.mark.parametrize("layout", ["shards", "replicas"])
def test_durable_multi_index_reopens_with_its_writes(tmp_path, layout):
    xb, xq = data(200, 5, 9), data(6, 5, 10)
    multi = va.MultiIndex(5, "Flat", layout=layout, devices=2)
    d = va.DurableMultiIndex.create(str(tmp_path / "d"), multi)
    d.add(xb[:120])
    d.add_with_ids(xb[120:], np.arange(80) + 1000)
    assert d.part_sizes == ([120, 80] if layout == "shards" else [200, 200])
    assert d.remove_ids(np.array([0, 1000, 5000])) == 2
    with pytest.raises(ValueError):
        d.add_with_ids(xb[:1], np.array([1001]))
    D0, I0 = d.search(xq, 4)
    del d
    back = va.DurableMultiIndex.open(str(tmp_path / "d"), devices=3)
    assert back.ntotal == 198 and len(back) == 198
    D1, I1 = back.search(xq, 4)
    np.testing.assert_array_equal(I1, I0)
    assert "layout=" + layout in repr(back)
    with pytest.raises(ValueError):
        va.DurableMultiIndex.create(str(tmp_path / "d"), multi)
